"""What the status page says besides its matrix of cells: the networks' health (the banner
on top and the column heads), the resolvers, the 24-hour strips, and times in words. Pure.

The banner: a dead network, one the exporter cannot use, or one without UDP explains every
cell under it, so it is said first and once ("uplink-b down since 08:21 UTC (42 min)"), from
the judgement's `network_up`, `network_setup` and `network_udp` and the snapshot's
`network_down_since`.

A row of the page (a service, or its calls or protocol, on one network) is a set of endpoints;
exporter.judge.changes keeps each endpoint's state changes over the last 24 h. `merge` makes
the row's own timeline from them (the worst state of its endpoints at each change), which
gives both the strip (`segments`: the worst state within each half hour, so that a blip shows)
and the time the row's current state began (`since`). `strip_html` draws the segments as a
bar of runs, each with a title in words, and the whole with an aria-label, so that the strip
reads without colour too.

Times are UTC, said so ("08:21 UTC"): the page has no script to learn the reader's zone.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from itertools import groupby

from exporter.exposition.store import Snapshot
from exporter.judge.changes import (
    SEGMENT_SECONDS,
    SEGMENTS,
    STATES,
    Shift,
    window_start,
    worse,
)
from exporter.web import render

#: What a segment without any judgement reads as (before the exporter ran, or trimmed).
NO_DATA = "none"

#: The words of each state in a strip's titles.
WORDS = {
    "blocked": "\u2717 blocked",
    "down": "\u2193 down",
    "reachable": "\u2713 ok",
    "unknown": "? unknown",
    NO_DATA: "no data",
}


def merge(timelines: Iterable[Sequence[Shift]]) -> list[Shift]:
    """The worst state over several timelines at each change, oldest first (a timeline not
    started yet counts for nothing). Changes at the same instant count as one."""
    events = sorted((t, i, s) for i, tl in enumerate(timelines) for t, s in tl)
    now_of: dict[int, str] = {}
    counts = dict.fromkeys(STATES, 0)
    out: list[Shift] = []
    for t, same in groupby(events, key=lambda e: e[0]):
        for _, i, state in same:
            old = now_of.get(i)
            if old is not None:
                counts[old] -= 1
            now_of[i] = state
            counts[state] += 1
        row = next(s for s in STATES if counts[s])
        if not out or out[-1][1] != row:
            out.append((t, row))
    return out


def since(timeline: Sequence[Shift], state: str) -> float | None:
    """When the row's current `state` began, or None when its timeline ends otherwise."""
    return timeline[-1][0] if timeline and timeline[-1][1] == state else None


def segments(timeline: Sequence[Shift], now: float) -> list[str]:
    """The worst state within each segment of the last 24 h, oldest first (`NO_DATA` before
    the first change)."""
    start = window_start(now)
    out: list[str] = []
    i = 0
    state = NO_DATA
    for n in range(SEGMENTS):
        begin = start + n * SEGMENT_SECONDS
        end = begin + SEGMENT_SECONDS
        while i < len(timeline) and timeline[i][0] <= begin:
            state = timeline[i][1]
            i += 1
        seen = state
        while i < len(timeline) and timeline[i][0] < end:
            state = timeline[i][1]
            seen = state if seen == NO_DATA else worse(seen, state)
            i += 1
        out.append(seen)
    return out


def runs(timeline: Sequence[Shift], now: float) -> list[tuple[float, float, str]]:
    """The segments as runs of one state: (start, end, state), oldest first; the last ends
    at `now`."""
    start = window_start(now)
    found: list[tuple[float, float, str]] = []
    for n, state in enumerate(segments(timeline, now)):
        begin = start + n * SEGMENT_SECONDS
        end = min(begin + SEGMENT_SECONDS, now)
        if found and found[-1][2] == state:
            found[-1] = (found[-1][0], end, state)
        else:
            found.append((begin, end, state))
    return found


def history(timeline: Sequence[Shift], now: float) -> list[tuple[float, str]]:
    """The changes within the last 24 h, the first one clipped to the window's start: what
    /api/v1/status gives as a cell's `history`."""
    start = window_start(now)
    inside = [(max(t, start), s) for t, s in timeline]
    while len(inside) > 1 and inside[1][0] <= start:
        inside.pop(0)
    return inside


def clock(unix: float, now: float) -> str:
    """A time as a person reads it: "08:21 UTC" within the last day, else with its date."""
    fmt = "%H:%M UTC" if now - unix < 86_400 else "%Y-%m-%d %H:%M UTC"
    return time.strftime(fmt, time.gmtime(unix))


def duration(seconds: float) -> str:
    """A length of time in words: "42 min", "3 h 5 min", "2 d 4 h", "under a minute"."""
    minutes = int(max(seconds, 0.0) // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def strip_html(timeline: Sequence[Shift], now: float) -> str:
    """The strip: one span per run, its width its number of segments, titled in words; the
    whole labelled for screen readers. Names nothing from config: nothing to escape but
    times and fixed words."""
    parts = []
    spoken = []
    for begin, end, state in runs(timeline, now):
        width = round((end - begin) / SEGMENT_SECONDS, 3)
        words = f"{WORDS[state]} {_hm(begin)}\u2013{_hm(end)}"
        spoken.append(words)
        parts.append(f'<i class="{state}" style="flex:{width}" title="{html.escape(words)}"></i>')
    label = html.escape("last 24 h (UTC): " + ", ".join(spoken))
    return f'<span class="strip" role="img" aria-label="{label}">{"".join(parts)}</span>'


def _hm(unix: float) -> str:
    return time.strftime("%H:%M", time.gmtime(unix))


def e(value: object) -> str:
    """HTML-escaped text of any value; None as an empty string."""
    return "" if value is None else html.escape(str(value), quote=True)


def time_html(unix: float, now: float) -> str:
    """A `<time>` a person reads ("08:21 UTC"), exact in its `datetime`."""
    return f'<time datetime="{render.iso_time(unix)}">{clock(unix, now)}</time>'


def unix_of(iso: object) -> float:
    """A time of the JSON document back to unix seconds."""
    return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()


def since_html(iso: object, now: float) -> str:
    """ "since 08:21 UTC (42 min)" of a time of the JSON document."""
    unix = unix_of(iso)
    return f'since {time_html(unix, now)} <span class="for">({duration(now - unix)})</span>'


def iso(unix: float | None) -> str | None:
    return None if unix is None else render.iso_time(unix)


def network_health_json(snapshot: Snapshot, networks: Sequence[str]) -> list[render.Json]:
    """Per network: judged up (null: not judged, or a set-up error), since when down, the
    set-up error, and whether UDP works (null: not known)."""
    judgement = snapshot.judgement
    names = sorted(set(networks) | set(judgement.network_up) | set(judgement.network_setup))
    out: list[render.Json] = []
    for n in names:
        up = judgement.network_up.get(n)
        down_since = snapshot.network_down_since.get(n) if up is False else None
        out.append(
            {
                "network": n,
                "up": up,
                "down_since": iso(down_since),
                "setup_error": judgement.network_setup.get(n),
                "udp": judgement.network_udp.get(n),
            }
        )
    return out


def resolvers_json(snapshot: Snapshot) -> list[render.Json]:
    """Per network and resolver: answering the canary questions, and intercepted."""
    judgement = snapshot.judgement
    pairs = sorted(set(judgement.resolver_up) | set(judgement.resolver_intercepted))
    return [
        {
            "network": network,
            "resolver": resolver,
            "up": judgement.resolver_up.get((network, resolver)),
            "intercepted": judgement.resolver_intercepted.get((network, resolver)),
        }
        for network, resolver in pairs
    ]


def network_state(health: Mapping[str, object] | None) -> tuple[str, str]:
    """A network's state and its words, for its column head: set-up error, down, no UDP,
    up, or nothing known ("", "")."""
    if health is None:
        return "", ""
    if health["setup_error"] is not None:
        return "unknown", "? set-up error"
    if health["up"] is False:
        return "down", "\u2193 down"
    if health["udp"] is False:
        return "down", "\u2193 no UDP"
    return ("reachable", "\u2713 up") if health["up"] else ("", "")


def banner(health: Sequence[Mapping[str, object]], now: float) -> str:
    """The networks' health, one item per problem, or one item saying all are up (or that
    nothing is judged yet)."""
    items: list[tuple[str, str]] = []
    for h in health:
        name = e(h["network"])
        if h["setup_error"] is not None:
            items.append(("unknown", f"? {name}: set-up error: {e(h['setup_error'])}"))
        elif h["up"] is False:
            since = f" {since_html(h['down_since'], now)}" if h["down_since"] else ""
            items.append(("down", f"\u2193 {name} down{since}"))
        if h["udp"] is False:
            items.append(("down", f"\u2193 no UDP on {name} (calls cannot be judged there)"))
    if not items:
        judged = sum(1 for h in health if h["up"] is not None)
        many = "s" if judged != 1 else ""
        items.append(
            ("reachable", f"\u2713 {'all ' if many else ''}{judged} network{many} up")
            if judged
            else ("unknown", "? not judged yet")
        )
    lis = "".join(f'<li class="{state}">{text}</li>' for state, text in items)
    return f'<ul id="banner" aria-label="networks">{lis}</ul>'


def resolver_rows(networks: Sequence[str], resolvers: Iterable[Mapping[str, object]]) -> str:
    """One table row per resolver: on each network, up, intercepted or answering nothing."""
    found: dict[str, dict[str, Mapping[str, object]]] = {}
    for each in resolvers:
        found.setdefault(str(each["resolver"]), {})[str(each["network"])] = each
    rows = []
    for resolver, on in sorted(found.items()):
        tds = []
        for n in networks:
            if (r := on.get(n)) is None:
                state, words = "unknown", "\u2013 not used"
            elif r["intercepted"]:
                state, words = "blocked", "\u2717 intercepted"
            elif r["up"] is False:
                state, words = "down", "\u2193 answers no canary"
            else:
                state, words = ("reachable", "\u2713 up") if r["up"] else ("unknown", "? unknown")
            tds.append(
                f'<td class="{state}" data-resolver="{e(resolver)}" data-network="{e(n)}">'
                f"{words}</td>"
            )
        rows.append(f'<tr><th scope="row">resolver {e(resolver)}</th>{"".join(tds)}</tr>')
    return "".join(rows)
