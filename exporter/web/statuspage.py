"""The status page (`/`), its JSON (`/api/v1/status`) and per-service badges.

For a person reading at a glance (docs/status.md): on top, the health of each network (down
since when, a set-up error, no UDP), since a dead network explains every cell under it; then
one matrix of services by networks whose compact cells say the service-level answer ("✗
blocked: IP blocking, SNI/TLS filtering", exporter.judge.summary), since when, and a strip of
the last 24 h (exporter.web.glance), with the cell's tuples folded in a `<details>` (no script)
linking to their /probes detail (render.py renders a probe; this module never does); then
the canaries and resolvers, which tell an outage from censorship but are no service; then
the recent verdict changes, with the first verdicts counted, not listed. Resolver checks
(service `_resolver`, judged for interception, not reachability) are left out, as from the
probe series of /metrics. Pure: snapshot and changes in, strings and JSON out. Everything
from config or peers goes through html.escape.

The icons are characters of DejaVu Sans (Debian's default font, and common elsewhere), so
they render on a machine without emoji fonts: \u2713 ok, \u2717 blocked, \u2193 down, ? unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from xml.sax.saxutils import escape as xml_escape

from exporter.config.matrix import RESOLVER_CHECK_SERVICE, Target
from exporter.config.model import CANARY_SERVICE, Check
from exporter.exposition.store import Snapshot
from exporter.judge.changes import STATES as STATES
from exporter.judge.changes import Change, Changes, Shift
from exporter.judge.changes import state_of as state_of
from exporter.model.judgement import Finding, Verdict
from exporter.model.observation import TupleKey
from exporter.web import glance, render

#: Version of the /api/v1/status schema (docs/status.md); bumped on incompatible changes
#: only: fields are added within a version (the cells' `blocked`, `methods`, `methods_text`,
#: `blocked_since`, `aspect`, `since` and `history`, and `network_health`, `resolvers` and
#: `first_verdicts` were).
SCHEMA_VERSION = 1

#: Seconds between refreshes of the page.
REFRESH_SECONDS = 30

#: Real verdict changes listed on the page (the API lists the latest 50 of any kind).
CHANGES_SHOWN = 20


#: Each blocking verdict in words, for people: how the service is blocked.
METHOD_WORDS: Mapping[Verdict, str] = {
    Verdict.DNS_TAMPERED: "DNS tampering",
    Verdict.TCP_BLOCKED: "IP blocking",
    Verdict.TLS_BLOCKED: "SNI/TLS filtering",
    Verdict.TLS_MITM: "TLS interception",
    Verdict.HTTP_BLOCKPAGE: "blockpage",
    Verdict.THROTTLED: "throttling",
    Verdict.QUIC_BLOCKED: "QUIC blocking",
    Verdict.UDP_BLOCKED: "calls blocked (STUN)",
    Verdict.PROTOCOL_BLOCKED: "Telegram's protocol blocked",
}


def methods_text(methods: Sequence[Verdict]) -> str:
    """The methods in words, e.g. "IP blocking, SNI/TLS filtering" (a blocking verdict
    newer than METHOD_WORDS reads as its value)."""
    return ", ".join(METHOD_WORDS.get(m, m.value) for m in methods)


#: The icon of each state (characters of DejaVu Sans: never an emoji-only glyph).
ICONS = {"blocked": "\u2717", "down": "\u2193", "reachable": "\u2713", "unknown": "?"}


def _rank(verdict: Verdict | None) -> tuple[int, str]:
    return (STATES.index(state_of(verdict)), "" if verdict is None else verdict.value)


def worst(verdicts: list[Verdict | None]) -> Verdict | None:
    """The worst verdict: blocked before down before ok before none."""
    return min(verdicts, key=_rank) if verdicts else None


def label(verdict: Verdict | None) -> str:
    """Icon and text, e.g. "\u2717 blocked: tls_blocked", "↓ down: network_down", "✓ ok"."""
    state = state_of(verdict)
    if verdict is None:
        return "? unknown"
    if verdict is Verdict.OK:
        return "\u2713 ok"
    return f"{ICONS[state]} {state}: {verdict.value}"


def _finished(snapshot: Snapshot, key: TupleKey) -> float | None:
    series = snapshot.get(key)
    return None if series is None else series.finished


def _change_json(c: Change) -> render.Json:
    return {
        **render.labels_of(c.key),
        "verdict": c.verdict.value,
        "previous": c.previous.value if c.previous else None,
        "since": render.iso_time(c.since),
        "reason": c.reason,
    }


#: The rows a service's calls and Telegram's protocol get of their own, by the check that
#: makes them, with the one blocking verdict each stands for: a person must see "messages
#: work, calls do not" at a glance, not a service-wide "blocked".
ASPECTS: Mapping[str, tuple[Check, Verdict, str]] = {
    "calls": (Check.STUN, Verdict.UDP_BLOCKED, "calls (STUN)"),
    "protocol": (Check.MTPROTO, Verdict.PROTOCOL_BLOCKED, "protocol (MTProto)"),
}

Targets = Callable[[TupleKey], Target | None]

#: (service, aspect or "", network): one row's cell.
RowCell = tuple[str, str, str]


def aspect_of(target: Target | None) -> str | None:
    """The row of its own a tuple belongs to (`ASPECTS`), or None: the service's row."""
    if target is None:
        return None
    for aspect, (check, _, _) in ASPECTS.items():
        if check in target.endpoint.checks:
            return aspect
    return None


def _keys(snapshot: Snapshot) -> list[TupleKey]:
    keys = set(snapshot.series) | set(snapshot.judgement.findings)
    shown = (k for k in keys if k.service != RESOLVER_CHECK_SERVICE)
    return sorted(shown, key=lambda k: k.labels())


def status_json(
    snapshot: Snapshot, changes: Changes, *, now: float, targets: Targets | None = None
) -> render.Json:
    """The /api/v1/status document (schema in docs/status.md). `targets` gives each tuple's
    target: the calls and protocol tuples of a service then get cells of their own."""
    return _document(snapshot, changes, now, targets)[0]


def _document(
    snapshot: Snapshot, changes: Changes, now: float, targets: Targets | None
) -> tuple[render.Json, dict[RowCell, list[Shift]]]:
    """The document, and each cell's timeline (the page draws its strip from it)."""
    cells: dict[RowCell, list[TupleKey]] = {}
    for key in _keys(snapshot):
        aspect = aspect_of(targets(key)) if targets is not None else None
        cells.setdefault((key.service, aspect or "", key.network), []).append(key)
    services: dict[str, list[Verdict | None]] = {}
    timelines: dict[RowCell, list[Shift]] = {}
    cell_docs = []
    for cell, keys in sorted(cells.items()):
        service, _, network = cell
        endpoints = sorted({k.endpoint for k in keys})
        timeline = timelines[cell] = glance.merge(
            changes.timeline((service, e, network)) for e in endpoints
        )
        services.setdefault(service, []).extend(
            _verdict(snapshot.judgement.findings.get(k)) for k in keys
        )
        cell_docs.append(_cell_json(snapshot, changes, cell, keys, timeline, now, targets))
    networks = sorted({n for _, _, n in cells})
    firsts = changes.firsts()
    doc: render.Json = {
        "schema_version": SCHEMA_VERSION,
        "generated": render.iso_time(now),
        "services": [
            {"service": s, "state": state_of(worst(v)), "verdict": _value(worst(v))}
            for s, v in sorted(services.items())
        ],
        "networks": networks,
        "cells": cell_docs,
        "changes": [
            _change_json(c) for c in changes.recent() if c.key.service != RESOLVER_CHECK_SERVICE
        ],
        "network_health": glance.network_health_json(snapshot, networks),
        "resolvers": glance.resolvers_json(snapshot),
        "first_verdicts": {
            "count": firsts.count,
            "earliest": glance.iso(firsts.earliest),
            "latest": glance.iso(firsts.latest),
        },
    }
    return doc, timelines


def _cell_json(
    snapshot: Snapshot,
    changes: Changes,
    cell: RowCell,
    keys: list[TupleKey],
    timeline: list[Shift],
    now: float,
    targets: Targets | None,
) -> render.Json:
    service, aspect, network = cell
    verdict = worst([_verdict(snapshot.judgement.findings.get(k)) for k in keys])
    state = state_of(verdict)
    blocking = (
        _aspect_json(snapshot, changes, keys, aspect)
        if aspect
        else _blocking_json(snapshot, service, network, split=targets is not None)
    )
    since = blocking["blocked_since"] if state == "blocked" else None
    return {
        "service": service,
        "aspect": aspect or None,
        "network": network,
        "verdict": _value(verdict),
        "state": state,
        **blocking,
        "since": since or glance.iso(glance.since(timeline, state)),
        "history": [
            {"start": render.iso_time(t), "state": s} for t, s in glance.history(timeline, now)
        ],
        "tuples": [_tuple_json(snapshot, changes, k) for k in keys],
    }


def _blocking_json(
    snapshot: Snapshot, service: str, network: str, *, split: bool = False
) -> render.Json:
    """The service-level answer of a cell: `blocked` (null when not summarised: a canary, or
    not judged yet), the blocking `methods` (verdict values) and `methods_text` (in words),
    and `blocked_since` (the first round of the block in progress, or null). With `split`,
    the methods of the rows of their own (calls, protocol) are theirs, not this row's."""
    state = snapshot.services.get((service, network))
    since = snapshot.service_blocked_since.get((service, network))
    methods = () if state is None else state.methods
    if split:
        own = {verdict for _, verdict, _ in ASPECTS.values()}
        methods = tuple(m for m in methods if m not in own)
    blocked = None if state is None else bool(methods)
    return {
        "blocked": blocked,
        "methods": [m.value for m in methods],
        "methods_text": methods_text(methods) if methods else None,
        "blocked_since": render.iso_time(since) if blocked and since is not None else None,
    }


def _aspect_json(
    snapshot: Snapshot, changes: Changes, keys: list[TupleKey], aspect: str
) -> render.Json:
    """The answer of a row of its own (calls, protocol): blocked when one of its tuples has
    the verdict it stands for, since the earliest of their blocks."""
    verdict = ASPECTS[aspect][1]
    findings = snapshot.judgement.findings
    blocked_keys = [k for k in keys if _verdict(findings.get(k)) is verdict]
    starts = [c.since for k in blocked_keys if (c := changes.current(k)) is not None]
    judged = any(k in findings for k in keys)
    return {
        "blocked": bool(blocked_keys) if judged else None,
        "methods": [verdict.value] if blocked_keys else [],
        "methods_text": methods_text([verdict]) if blocked_keys else None,
        "blocked_since": render.iso_time(min(starts)) if blocked_keys and starts else None,
    }


def _verdict(finding: Finding | None) -> Verdict | None:
    return finding.verdict if finding else None


def _value(verdict: Verdict | None) -> str | None:
    return verdict.value if verdict else None


def _tuple_json(snapshot: Snapshot, changes: Changes, key: TupleKey) -> render.Json:
    finding = snapshot.judgement.findings.get(key)
    finished = _finished(snapshot, key)
    current = changes.current(key)
    return {
        **render.labels_of(key),
        "verdict": _value(_verdict(finding)),
        "state": state_of(_verdict(finding)),
        "reason": finding.reason if finding else None,
        "last_probe": render.iso_time(finished) if finished is not None else None,
        "since": render.iso_time(current.since) if current else None,
        "detail": "/probes?" + render.probe_query(key),
    }


def service_state(snapshot: Snapshot, service: str) -> str | None:
    """The badge state of `service`, or None when no tuple of it is known."""
    keys = [k for k in _keys(snapshot) if k.service == service]
    if not keys:
        return None
    findings = snapshot.judgement.findings
    return state_of(worst([_verdict(findings.get(k)) for k in keys]))


_BADGE_COLORS = {
    "reachable": "#2e7d32",
    "blocked": "#c62828",
    "down": "#e65100",
    "unknown": "#616161",
}


def badge_svg(service: str, state: str) -> str:
    """A shields-like badge: the service on the left, the state on the right."""
    left_w = 10 + 7 * len(service)
    right_w = 10 + 7 * len(state)
    width = left_w + right_w
    name = xml_escape(service, {'"': "&quot;"})
    color = _BADGE_COLORS[state]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{name}: {state}"><title>{name}: {state}</title>'
        f'<rect width="{left_w}" height="20" fill="#555"/>'
        f'<rect x="{left_w}" width="{right_w}" height="20" fill="{color}"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="5" y="14">{name}</text><text x="{left_w + 5}" y="14">{state}</text>'
        "</g></svg>\n"
    )


# ---- the page

_STYLE = """
body{font-family:system-ui,"DejaVu Sans",sans-serif;margin:.8em 1em;color:#111}
h1{font-size:1.4em;margin:0 0 .4em}h2{font-size:1.15em;margin:1.2em 0 .4em}
table{border-collapse:collapse}td,th{border:1px solid #999;padding:.25em .4em;vertical-align:top}
th{text-align:left}
.reachable{background:#c8e6c9}.blocked{background:#ffcdd2}.down{background:#ffe0b2}
.unknown{background:#e0e0e0}
#banner{list-style:none;margin:0 0 .6em;padding:0;display:flex;flex-wrap:wrap;gap:.3em}
#banner li{padding:.2em .6em;border:1px solid #777;border-radius:.3em;font-weight:bold}
.wrap{overflow-x:auto;max-width:100%}
#matrix th[scope=row],#infra th[scope=row]{position:sticky;left:0;background:#f4f4f4;z-index:1}
#matrix thead th small,#infra thead th small{font-weight:normal;white-space:nowrap}
td.cell{min-width:9em;max-width:19em;font-size:.88em;line-height:1.25}
.cell>a.verdict{display:block;font-weight:bold;color:#111}
.cell>a.verdict :is(time,.for){font-weight:normal}
.strip{display:flex;height:.55em;margin:.2em 0 .1em;border:1px solid #666;background:#fff}
.strip i{display:block;min-width:0}.strip i.none{background:#fff}
.strip i.reachable{background:#2e7d32}.strip i.down{background:#e65100}
.strip i.unknown{background:#9e9e9e}
.strip i.blocked{background:repeating-linear-gradient(135deg,#b71c1c 0 3px,#ef9a9a 3px 5px)}
details>summary{cursor:pointer;font-size:.92em;color:#222}
ul.res{margin:.2em 0 0;padding-left:1em;font-size:.95em}ul.res a{color:#111}
li{overflow-wrap:anywhere}small{color:#333}p.legend{margin:.3em 0;font-size:.85em}
@media (max-width:600px){
body{margin:.4em}h1{font-size:1.3em}
#matrix,#matrix tbody,#matrix tr,#matrix th,#matrix td{display:block}
#matrix thead{display:none}#matrix tr{margin-bottom:.8em}
#matrix th[scope=row]{text-align:left;background:#333;color:#fff;position:static}
#matrix td::before{content:attr(data-network);display:block;font-size:.8em;
text-transform:uppercase;letter-spacing:.05em;color:#333}
td.cell{max-width:none}
}
"""


_e = glance.e


def _verdict_of(value: object) -> Verdict | None:
    return Verdict(str(value)) if value else None


def _row(t: Mapping[str, object]) -> str:
    """One tuple within a cell: its resolver, endpoint and family, verdict, last probe."""
    tv = _verdict_of(t["verdict"])
    probed = t["last_probe"]
    when = (
        f' <small>probed <time datetime="{_e(probed)}">{_e(str(probed)[11:19])}</time></small>'
        if probed
        else ""
    )
    return (
        f'<li class="{state_of(tv)}"><a href="{_e(t["detail"])}">'
        f"{_e(t['resolver'])} {_e(t['endpoint'])} v{_e(t['family'])}: "
        f"{_e(label(tv))}</a>{when}</li>"
    )


def headline(cell: Mapping[str, object]) -> str:
    """A cell's headline: the service-level answer when it is blocked, with every method in
    words ("✗ blocked: IP blocking, SNI/TLS filtering"), else the worst verdict's label."""
    verdict = _verdict_of(cell["verdict"])
    if cell["methods_text"] and state_of(verdict) == "blocked":
        return f"{ICONS['blocked']} blocked: {cell['methods_text']}"
    return label(verdict)


def _tuples(tuples: Sequence[Mapping[str, object]]) -> str:
    """The cell's tuples, folded: "24 tuples · 3 ✗ · 21 ✓", opened without any script."""
    counts = {s: sum(1 for t in tuples if t["state"] == s) for s in STATES}
    tally = "".join(f" \u00b7 {n} {ICONS[s]}" for s, n in counts.items() if n)
    noun = "tuple" if len(tuples) == 1 else "tuples"
    return (
        f"<details><summary>{len(tuples)} {noun}{tally}</summary>"
        f'<ul class="res">{"".join(_row(t) for t in tuples)}</ul></details>'
    )


def _cell(
    service: str, network: str, cell: Mapping[str, object] | None, timeline: list[Shift], now: float
) -> str:
    if cell is None:
        return (
            f'<td class="unknown" data-service="{_e(service)}" data-network="{_e(network)}">'
            "\u2013 not probed</td>"
        )
    tuples: list[Mapping[str, object]] = cell["tuples"]  # type: ignore[assignment]  # list of dicts
    # the headline opens the first tuple that has the cell's verdict: the one that explains it
    shown = next((t for t in tuples if t["verdict"] == cell["verdict"]), None)
    href = str(shown["detail"]) if shown else ""
    # since when, in the headline's words: "✗ blocked: IP blocking since 08:21 UTC (42 min)"
    since = f" {glance.since_html(cell['since'], now)}" if cell["since"] else ""
    return (
        f'<td class="cell {_e(cell["state"])}" data-service="{_e(service)}" '
        f'data-network="{_e(network)}" data-verdict="{_e(cell["verdict"])}">'
        f'<a class="verdict" href="{_e(href)}">{_e(headline(cell))}{since}</a>'
        f"{glance.strip_html(timeline, now)}{_tuples(tuples)}</td>"
    )


def _row_name(service: str, aspect: str) -> str:
    if service == CANARY_SERVICE and aspect == "calls":
        return "canary \u00b7 UDP (public STUN)"  # the network's UDP, no service's calls
    return f"{service} \u00b7 {ASPECTS[aspect][2]}" if aspect else service


def _table(
    table_id: str,
    cells: Sequence[Mapping[str, object]],
    doc: render.Json,
    timelines: Mapping[RowCell, list[Shift]],
    now: float,
    extra_rows: str = "",
) -> str:
    """A table of rows by networks, each column headed by its network's health."""
    networks: list[str] = doc["networks"]  # type: ignore[assignment]  # built as a list
    health = {h["network"]: h for h in doc["network_health"]}  # type: ignore[attr-defined]
    by_cell = {(str(c["service"]), str(c["aspect"] or ""), str(c["network"])): c for c in cells}
    head = ""
    for n in networks:
        state, words = glance.network_state(health.get(n))
        head += (
            f'<th scope="col" class="{state}" data-network="{_e(n)}">{_e(n)}'
            f"{f' <small>{words}</small>' if words else ''}</th>"
        )
    rows = "".join(
        f'<tr><th scope="row">{_e(_row_name(service, aspect))}</th>'
        + "".join(
            _cell(
                service,
                n,
                by_cell.get((service, aspect, n)),
                timelines.get((service, aspect, n), []),
                now,
            )
            for n in networks
        )
        + "</tr>"
        for service, aspect in sorted({(s, a) for s, a, _ in by_cell})
    )
    return (
        f'<div class="wrap"><table id="{table_id}"><thead><tr><th scope="col"></th>{head}</tr>'
        f"</thead><tbody>{rows}{extra_rows}</tbody></table></div>"
    )


def _infra(doc: render.Json, timelines: Mapping[RowCell, list[Shift]], now: float) -> str:
    """The canaries and resolvers: what tells an outage from censorship, not a service."""
    cells = [c for c in doc["cells"] if c["service"] == CANARY_SERVICE]  # type: ignore[attr-defined]
    networks: list[str] = doc["networks"]  # type: ignore[assignment]  # built as a list
    resolvers = glance.resolver_rows(networks, doc["resolvers"])  # type: ignore[arg-type]
    if not cells and not resolvers:
        return ""
    return (
        '<h2 id="canaries">Canaries and resolvers</h2>'
        '<p class="legend">Canaries are sites no censor blocks: when they fail too, the network '
        "is down, not censoring. A resolver is intercepted when someone else answers for it.</p>"
        + _table("infra", cells, doc, timelines, now, extra_rows=resolvers)
    )


def _change_item(c: Change, now: float) -> str:
    """An item like "telegram on isp-b (local, web): ✗ blocked: tls_blocked since 14:02 UTC
    (was ✓ ok)"."""
    k = c.key
    return (
        f"<li>{_e(k.service)} on {_e(k.network)} ({_e(k.resolver)}, {_e(k.endpoint)}): "
        f"{_e(label(c.verdict))} since {glance.time_html(c.since, now)} "
        f"(was {_e(label(c.previous))})</li>"
    )


def changes_html(changes: Changes, doc: render.Json, now: float) -> str:
    """The latest real changes, then the first verdicts in one line with their true count
    (the ring is bounded; the count is not)."""
    items = "".join(_change_item(c, now) for c in changes.recent_changes(CHANGES_SHOWN))
    firsts: Mapping[str, object] = doc["first_verdicts"]  # type: ignore[assignment]
    count = int(str(firsts["count"]))
    if count:
        earliest = glance.unix_of(firsts["earliest"])
        items += (
            f'<li class="first">{count} first verdict{"s" if count > 1 else ""} '
            "(a tuple judged for the first time), the earliest at "
            + glance.time_html(earliest, now)
        )
        if firsts["latest"] != firsts["earliest"]:
            items += f", the latest at {glance.time_html(glance.unix_of(firsts['latest']), now)}"
        items += "</li>"
    return f'<h2>Recent changes</h2><ul id="changes">{items or "<li>none yet</li>"}</ul>'


_LEGEND = (
    '<p class="legend">Each strip is the last 24 h, oldest left, one segment per half hour '
    "coloured by the worst state in it (hatched: blocked; white: no data); hover a segment "
    "for its times. Open a cell's tuples for their probes.</p>"
)


def status_html(
    snapshot: Snapshot,
    changes: Changes,
    *,
    now: float,
    version: str,
    targets: Targets | None = None,
) -> str:
    """The status page: banner, matrix, canaries and resolvers, changes, links; refreshes
    itself every REFRESH_SECONDS."""
    doc, timelines = _document(snapshot, changes, now, targets)
    services = [c for c in doc["cells"] if c["service"] != CANARY_SERVICE]  # type: ignore[attr-defined]
    body = (
        glance.banner(doc["network_health"], now)  # type: ignore[arg-type]  # list of dicts
        + _table("matrix", services, doc, timelines, now)
        + _LEGEND
        + _infra(doc, timelines, now)
        + changes_html(changes, doc, now)
        + f'<p><small>generated <time id="generated" datetime="{_e(doc["generated"])}">'
        f"{_e(doc['generated'])}</time>, refreshes every {REFRESH_SECONDS} s; "
        f"messaging-exporter {_e(version)}</small></p>"
        '<p><a href="/metrics">/metrics</a> \u00b7 <a href="/probes">/probes</a> \u00b7 '
        '<a href="/api/v1/status">/api/v1/status</a> \u00b7 <a href="/-/healthy">/-/healthy</a> '
        '\u00b7 <a href="/-/ready">/-/ready</a></p>'
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f"<title>Messaging status</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>Messaging status</h1>\n{body}\n</body></html>\n"
    )
