"""The status page (`/`), its JSON (`/api/v1/status`) and per-service badges.

For a person reading at a glance: a matrix of services by networks, each cell showing the
worst verdict of its tuples with an icon and a word beside the color (readable without
color), the resolver rows within, links to the /probes detail (render.py renders a probe;
this module never renders one itself), the service-level answer of each cell ("blocked: IP
blocking, SNI/TLS filtering since ...", exporter.judge.summary and
exporter.judge.history.Blocks), and
the recent verdict changes. Resolver checks
(service `_resolver`, judged for interception, not reachability) are left out, as from the
probe series of /metrics. Pure: snapshot and changes in, strings and JSON out. Everything from
config or peers goes through html.escape.

The icons are characters of DejaVu Sans (Debian's default font, and common elsewhere), so
they render on a machine without emoji fonts: \u2713 ok, \u2717 blocked, \u2193 down, ? unknown.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from xml.sax.saxutils import escape as xml_escape

from exporter.config.matrix import RESOLVER_CHECK_SERVICE, Target
from exporter.config.model import Check
from exporter.exposition.store import Snapshot
from exporter.judge.changes import Change, Changes
from exporter.model.judgement import BLOCKED, Finding, Verdict
from exporter.model.observation import TupleKey
from exporter.web import render

#: Version of the /api/v1/status schema (docs/status.md); bumped on incompatible changes
#: only: fields are added within a version (the cells' `blocked`, `methods`, `methods_text`
#: and `blocked_since` were).
SCHEMA_VERSION = 1

#: Seconds between refreshes of the page.
REFRESH_SECONDS = 30

#: Badge states, worst first.
STATES: tuple[str, ...] = ("blocked", "down", "reachable", "unknown")


def state_of(verdict: Verdict | None) -> str:
    """The coarse state of a verdict: blocked, down, reachable or unknown."""
    if verdict is None or verdict is Verdict.SETUP_ERROR:
        return "unknown"  # a network the exporter cannot use says nothing of the service
    if verdict in BLOCKED:
        return "blocked"
    if verdict is Verdict.OK:
        return "reachable"
    return "down"


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
    findings = snapshot.judgement.findings
    cells: dict[tuple[str, str, str], list[TupleKey]] = {}
    for key in _keys(snapshot):
        aspect = aspect_of(targets(key)) if targets is not None else None
        cells.setdefault((key.service, aspect or "", key.network), []).append(key)
    services: dict[str, list[Verdict | None]] = {}
    cell_docs = []
    for (service, aspect, network), keys in sorted(cells.items()):
        verdicts = [_verdict(findings.get(k)) for k in keys]
        services.setdefault(service, []).extend(verdicts)
        blocking = (
            _aspect_json(snapshot, changes, keys, aspect)
            if aspect
            else _blocking_json(snapshot, service, network, split=targets is not None)
        )
        cell_docs.append(
            {
                "service": service,
                "aspect": aspect or None,
                "network": network,
                "verdict": _value(worst(verdicts)),
                "state": state_of(worst(verdicts)),
                **blocking,
                "tuples": [_tuple_json(snapshot, changes, k) for k in keys],
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "generated": render.iso_time(now),
        "services": [
            {"service": s, "state": state_of(worst(v)), "verdict": _value(worst(v))}
            for s, v in sorted(services.items())
        ],
        "networks": sorted({n for _, _, n in cells}),
        "cells": cell_docs,
        "changes": [
            _change_json(c) for c in changes.recent() if c.key.service != RESOLVER_CHECK_SERVICE
        ],
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


_STYLE = """
body{font-family:system-ui,"DejaVu Sans",sans-serif;margin:1em;color:#111}
table{border-collapse:collapse}td,th{border:1px solid #999;padding:.4em;vertical-align:top}
.reachable{background:#c8e6c9}.blocked{background:#ffcdd2}.down{background:#ffe0b2}
.unknown{background:#e0e0e0}.cell>a{font-weight:bold;color:#111}
ul.res{margin:.3em 0 0;padding-left:1em;font-size:.9em}ul.res a{color:#111}
p.blocking{margin:.3em 0 0;font-size:.9em}
li{overflow-wrap:anywhere}.wrap{overflow-x:auto}small{color:#333}
@media (max-width:600px){
body{margin:.4em}h1{font-size:1.5em}
#matrix,#matrix tbody,#matrix tr,#matrix th,#matrix td{display:block}
#matrix thead{display:none}#matrix tr{margin-bottom:.8em}
#matrix th[scope=row]{text-align:left;background:#333;color:#fff}
#matrix td::before{content:attr(data-network);display:block;font-size:.8em;
text-transform:uppercase;letter-spacing:.05em;color:#333}
}
"""


def _e(value: object) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def _verdict_of(value: object) -> Verdict | None:
    return Verdict(str(value)) if value else None


def _row(t: Mapping[str, object]) -> str:
    """One tuple within a cell: its resolver, endpoint and family, verdict, last probe."""
    tv = _verdict_of(t["verdict"])
    when = (
        f' <small>probed <time datetime="{_e(t["last_probe"])}">{_e(t["last_probe"])}</time>'
        "</small>"
        if t["last_probe"]
        else ""
    )
    return (
        f'<li class="{state_of(tv)}"><a href="{_e(t["detail"])}">'
        f"{_e(t['resolver'])} {_e(t['endpoint'])} v{_e(t['family'])}: "
        f"{_e(label(tv))}</a>{when}</li>"
    )


def _cell(service: str, network: str, cell: Mapping[str, object] | None) -> str:
    if cell is None:
        return (
            f'<td class="unknown" data-service="{_e(service)}" data-network="{_e(network)}">'
            "\u2013 not probed</td>"
        )
    verdict = _verdict_of(cell["verdict"])
    tuples: list[Mapping[str, object]] = cell["tuples"]  # type: ignore[assignment]  # list of dicts
    first = str(tuples[0]["detail"]) if tuples else ""
    return (
        f'<td class="cell {state_of(verdict)}" data-service="{_e(service)}" '
        f'data-network="{_e(network)}" data-verdict="{_e(cell["verdict"])}">'
        f'<a class="verdict" href="{_e(first)}">{_e(label(verdict))}</a>{_blocking(cell)}'
        f'<ul class="res">{"".join(_row(t) for t in tuples)}</ul></td>'
    )


def _blocking(cell: Mapping[str, object]) -> str:
    """The service-level answer under the cell's verdict, while the service is blocked
    there: "blocked: IP blocking, SNI/TLS filtering since <time>"."""
    if not cell["blocked"]:
        return ""
    since = cell["blocked_since"]
    when = f' since <time datetime="{_e(since)}">{_e(since)}</time>' if since else ""
    return f'<p class="blocking">blocked: {_e(cell["methods_text"])}{when}</p>'


def _change_item(c: Mapping[str, object]) -> str:
    """An item like "telegram on isp-b (local, web): ✗ blocked: tls_blocked since … (was ✓ ok)"."""
    was = f"was {label(_verdict_of(c['previous']))}"
    return (
        f"<li>{_e(c['service'])} on {_e(c['network'])} ({_e(c['resolver'])}, "
        f"{_e(c['endpoint'])}): {_e(label(_verdict_of(c['verdict'])))} since "
        f'<time datetime="{_e(c["since"])}">{_e(c["since"])}</time> ({_e(was)})</li>'
    )


def _row_name(service: str, aspect: str) -> str:
    return f"{service} \u00b7 {ASPECTS[aspect][2]}" if aspect else service


def status_html(
    snapshot: Snapshot,
    changes: Changes,
    *,
    now: float,
    version: str,
    targets: Targets | None = None,
) -> str:
    """The status page: matrix, changes, links; refreshes itself every REFRESH_SECONDS."""
    doc = status_json(snapshot, changes, now=now, targets=targets)
    networks: list[str] = doc["networks"]  # type: ignore[assignment]  # built above as list
    by_cell: Mapping[tuple[str, str, str], Mapping[str, object]] = {
        (str(c["service"]), str(c["aspect"] or ""), str(c["network"])): c
        for c in doc["cells"]  # type: ignore[attr-defined]  # built above as list of dicts
    }
    rows_of = sorted({(s, a) for s, a, _ in by_cell})
    head = "".join(f'<th scope="col">{_e(n)}</th>' for n in networks)
    rows = "".join(
        f'<tr><th scope="row">{_e(_row_name(service, aspect))}</th>'
        + "".join(_cell(service, n, by_cell.get((service, aspect, n))) for n in networks)
        + "</tr>"
        for service, aspect in rows_of
    )
    recent: list[Mapping[str, object]] = doc["changes"]  # type: ignore[assignment]  # list of dicts
    # First verdicts (a change from none: the exporter started, or a reload added tuples) in
    # one line, so that the real changes read at a glance; the API lists each.
    firsts = [c for c in recent if c["previous"] is None]
    change_items = "".join(_change_item(c) for c in recent if c["previous"] is not None)
    if firsts:
        change_items += (
            f'<li class="first">{len(firsts)} first verdict{"s" if len(firsts) > 1 else ""} '
            f"(a tuple judged for the first time), the earliest at "
            f'<time datetime="{_e(firsts[-1]["since"])}">{_e(firsts[-1]["since"])}</time></li>'
        )
    body = (
        f'<div class="wrap"><table id="matrix"><thead><tr><th>service</th>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
        f'<h2>Recent changes</h2><ul id="changes">{change_items or "<li>none yet</li>"}</ul>'
        f'<p><small>generated <time id="generated" datetime="{_e(doc["generated"])}">'
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
