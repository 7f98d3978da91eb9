"""Observations as people read them: a text table and JSON (for `once` and `/probes`) and HTML
pages (for the web UI). Pure: strings in, strings out.

Everything a peer controls (DNS answers, certificate names, HTTP headers and bodies, error
text) ends up here, so every value put into HTML goes through `html.escape`, attributes
included, and URLs are built with `urlencode`, never by pasting.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlencode

from exporter.config.matrix import Target
from exporter.config.model import Endpoint, Network, Resolver
from exporter.model.judgement import Finding, Verdict
from exporter.model.observation import (
    LABEL_NAMES,
    PHASES,
    Certificate,
    ConnectAttempt,
    DnsObservation,
    HttpObservation,
    MtprotoObservation,
    Observation,
    PathObservation,
    Phase,
    QuicObservation,
    StunObservation,
    ThroughputObservation,
    TlsObservation,
    TupleKey,
)

Json = dict[str, object]


def iso_time(unix: float) -> str:
    """Unix seconds as RFC 3339 UTC with milliseconds."""
    whole = int(unix)
    millis = round((unix - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _millis(seconds: float | None) -> float | None:
    """Seconds as milliseconds for JSON (a number, one decimal)."""
    return None if seconds is None else round(seconds * 1000.0, 1)


def labels_of(key: TupleKey) -> dict[str, str]:
    return dict(zip(LABEL_NAMES, key.labels(), strict=True))


def probe_query(key: TupleKey) -> str:
    """The query string selecting one tuple on /probes."""
    return urlencode(labels_of(key))


# ---- JSON


def summary_json(obs: Observation, finding: Finding | None = None) -> Json:
    """One row of the table: labels, result, verdict, failed phase, phase durations (ms), the
    kernel's handshake RTT (ms), start and finish time."""
    return {
        **labels_of(obs.key),
        "result": obs.result,
        "verdict": finding.verdict.value if finding else None,
        "verdict_reason": finding.reason if finding else None,
        "failed_phase": obs.failed_phase.value if obs.failed_phase else None,
        "phases_ms": {p.value: _millis(s) for p, s in _ordered_phases(obs.phases)},
        "tcp_rtt_ms": None if obs.tcp_rtt is None else round(obs.tcp_rtt * 1000.0, 3),
        "started": iso_time(obs.started),
        "finished": iso_time(obs.finished),
    }


def _dns_json(dns: DnsObservation) -> Json:
    return {
        "qname": dns.qname,
        "qtype": dns.qtype,
        "server": dns.server,
        "rcode": dns.rcode,
        "answers": list(dns.answers),
        "cnames": list(dns.cnames),
        "ttl": dns.ttl,
        "error": dns.error.value if dns.error else None,
        "detail": dns.detail,
        "duration_ms": _millis(dns.duration),
        "overhead_ms": round(dns.overhead * 1000.0, 3),
    }


def _connect_json(c: ConnectAttempt) -> Json:
    return {
        "address": c.address,
        "port": c.port,
        "error": c.error.value if c.error else None,
        "detail": c.detail,
        "duration_ms": _millis(c.duration),
        "rtt_ms": None if c.rtt is None else round(c.rtt * 1000.0, 3),
    }


def _cert_json(cert: Certificate) -> Json:
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "sans": list(cert.sans),
        "not_before": iso_time(cert.not_before),
        "not_after": iso_time(cert.not_after),
        "verified": cert.verified,
        "sha256": cert.sha256,
    }


def _tls_json(tls: TlsObservation) -> Json:
    return {
        "server_name": tls.server_name,
        "version": tls.version,
        "cipher": tls.cipher,
        "alpn": tls.alpn,
        "certificate": _cert_json(tls.certificate) if tls.certificate else None,
        "error": tls.error.value if tls.error else None,
        "detail": tls.detail,
        "duration_ms": _millis(tls.duration),
        "overhead_ms": round(tls.overhead * 1000.0, 3),
    }


def _http_json(h: HttpObservation) -> Json:
    return {
        "method": h.method,
        "url": h.url,
        "status": h.status,
        "reason": h.reason,
        "headers": [[k, v] for k, v in h.headers],
        "body_bytes": h.body_bytes,
        "body_truncated": h.body_truncated,
        "body_head": h.body_head.decode("utf-8", "backslashreplace"),
        "error": h.error.value if h.error else None,
        "detail": h.detail,
        "duration_ms": _millis(h.duration),
        "overhead_ms": round(h.overhead * 1000.0, 3),
    }


def _throughput_json(t: ThroughputObservation) -> Json:
    return {
        "url": t.url,
        "status": t.status,
        "limit": t.limit,
        "body_bytes": t.body_bytes,
        "complete": t.complete,
        "duration_ms": _millis(t.duration),
        "bytes_per_second": None if t.bytes_per_second is None else round(t.bytes_per_second, 1),
        "error": t.error.value if t.error else None,
        "detail": t.detail,
    }


def _stun_json(s: StunObservation) -> Json:
    return {
        "address": s.address,
        "port": s.port,
        "requests": s.requests,
        "mapped": s.mapped,
        "error": s.error.value if s.error else None,
        "detail": s.detail,
        "duration_ms": _millis(s.duration),
    }


def _mtproto_json(m: MtprotoObservation) -> Json:
    return {
        "address": m.address,
        "port": m.port,
        "transport": m.transport.value,
        "answered": m.answered,
        "error": m.error.value if m.error else None,
        "detail": m.detail,
        "duration_ms": _millis(m.duration),
    }


def _quic_json(q: QuicObservation) -> Json:
    return {
        "address": q.address,
        "port": q.port,
        "server_name": q.server_name,
        "version": q.version,
        "alpn": q.alpn,
        "handshake_ms": _millis(q.handshake_duration),
        "url": q.url,
        "status": q.status,
        "body_bytes": q.body_bytes,
        "body_truncated": q.body_truncated,
        "error": q.error.value if q.error else None,
        "detail": q.detail,
        "duration_ms": _millis(q.duration),
    }


def _path_json(p: PathObservation) -> Json:
    """What localisation found (docs/verdicts.md, "One uplink is enough"): the hop, its
    address, the destination's distance and the routers of the trace."""
    return {
        "phase": p.phase.value,
        "outcome": p.outcome.value,
        "hop": p.hop,
        "hop_address": p.router(p.hop),
        "answer": p.answer,
        "distance": p.distance,
        "routers": list(p.routers),
        "detail": p.detail,
        "probes": p.probes,
        "duration_ms": _millis(p.duration),
    }


def target_json(target: Target) -> Json:
    """What the tuple probes, from the config; a proxy only as its redacted URL."""
    return {
        "endpoint": _endpoint_json(target.endpoint),
        "resolver": _resolver_json(target.resolver) if target.resolver else None,
        "network": _network_json(target.network),
    }


def _endpoint_json(e: Endpoint) -> Json:
    return {
        "host": e.host,
        "address": e.address,
        "port": e.port,
        "checks": [c.value for c in e.checks],
        "server_name": e.server_name,
    }


def _resolver_json(r: Resolver) -> Json:
    return {"type": r.type.value, "address": r.address, "port": r.port, "url": r.url}


def _network_json(n: Network) -> Json:
    return {
        "source_address": n.source_address,
        "interface": n.interface,
        "netns": n.netns,
        "proxy": n.proxy.redacted_url if n.proxy else None,
    }


def detail_json(
    obs: Observation, target: Target | None = None, finding: Finding | None = None
) -> Json:
    """One probe in full."""
    out: Json = {
        **summary_json(obs, finding),
        "attempts": obs.attempts,
        "address": obs.address,
        "dns": _dns_json(obs.dns) if obs.dns else None,
        "connects": [_connect_json(c) for c in obs.connects],
        "tls": _tls_json(obs.tls) if obs.tls else None,
        "control_tls": _tls_json(obs.control) if obs.control else None,
        "http": _http_json(obs.http) if obs.http else None,
        "throughput": _throughput_json(obs.throughput) if obs.throughput else None,
        "quic": _quic_json(obs.quic) if obs.quic else None,
        "stun": _stun_json(obs.stun) if obs.stun else None,
        "mtproto": _mtproto_json(obs.mtproto) if obs.mtproto else None,
        "path": _path_json(obs.path) if obs.path else None,
        "log": list(obs.log),
    }
    if target is not None:
        out["target"] = target_json(target)
    return out


# ---- text table

TABLE_PHASES: tuple[Phase, ...] = PHASES


def text_table(
    observations: Iterable[Observation], findings: Mapping[TupleKey, Finding] | None = None
) -> str:
    """A fixed-width table: labels, result, verdict, failed phase and each phase in ms
    ("-" = not run)."""
    findings = findings or {}
    header = [
        *(n.upper() for n in LABEL_NAMES),
        "RESULT",
        "VERDICT",
        "FAILED",
        *(f"{p.value.upper()}_MS" for p in TABLE_PHASES),
    ]
    rows: list[list[str]] = [header]
    for obs in observations:
        phases = [
            "-" if (s := obs.phases.get(p)) is None else f"{s * 1000.0:.1f}" for p in TABLE_PHASES
        ]
        rows.append(
            [
                *obs.key.labels(),
                obs.result,
                f.verdict.value if (f := findings.get(obs.key)) else "-",
                obs.failed_phase.value if obs.failed_phase else "-",
                *phases,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    numeric_from = len(header) - len(TABLE_PHASES)
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if i >= numeric_from else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def _ordered_phases(phases: Mapping[Phase, float]) -> list[tuple[Phase, float]]:
    return [(p, phases[p]) for p in PHASES if p in phases]


# ---- HTML

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.fail { color: #a00; } .ok { color: #070; }
pre { background: #f6f6f6; padding: 0.5em; white-space: pre-wrap; word-break: break-all; }
"""


def _e(value: object) -> str:
    """HTML-escaped text of any value; None as an empty string."""
    return "" if value is None else html.escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body>\n<h1>{_e(title)}</h1>\n{body}\n</body></html>\n"
    )


def probes_html(
    observations: Iterable[Observation],
    *,
    targets: int,
    findings: Mapping[TupleKey, Finding] | None = None,
) -> str:
    """The `/probes` page: one row per tuple with a link to its detail."""
    findings = findings or {}
    head = "".join(
        f"<th>{_e(h)}</th>"
        for h in (
            *LABEL_NAMES,
            "result",
            "verdict",
            "failed phase",
            *(f"{p.value} ms" for p in PHASES),
            "finished",
        )
    )
    rows = []
    count = 0
    for obs in observations:
        count += 1
        cls = "ok" if obs.success else "fail"
        cells = [
            f'<td><a href="/probes?{_e(probe_query(obs.key))}">{_e(v)}</a></td>'
            if i == 0
            else f"<td>{_e(v)}</td>"
            for i, v in enumerate(obs.key.labels())
        ]
        cells.append(f'<td class="{cls}">{_e(obs.result)}</td>')
        finding = findings.get(obs.key)
        vcls = "fail" if finding is not None and finding.verdict is not Verdict.OK else "ok"
        cells.append(
            f'<td class="{vcls}" title="{_e(finding.reason) if finding else ""}">'
            f"{_e(finding.verdict.value) if finding else ''}</td>"
        )
        cells.append(f"<td>{_e(obs.failed_phase.value if obs.failed_phase else '')}</td>")
        for p in PHASES:
            seconds = obs.phases.get(p)
            cells.append(
                f'<td class="num">{"" if seconds is None else f"{seconds * 1000.0:.1f}"}</td>'
            )
        cells.append(f"<td>{_e(iso_time(obs.finished))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    body = (
        f"<p>{count} of {targets} tuples probed so far. "
        '<a href="/probes?format=json">JSON</a></p>\n'
        f"<table>\n<tr>{head}</tr>\n" + "\n".join(rows) + "\n</table>"
    )
    return _page("Probes", body)


def _words(value: object) -> object:
    """A list (an endpoint's checks) as comma-separated words, not a Python repr."""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    return value


def _dl(items: Iterable[tuple[str, object]]) -> str:
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(_words(v))}</td></tr>" for k, v in items if v is not None
    )
    return f"<table>{rows}</table>" if rows else "<p>(none)</p>"


def _error_text(error: object, detail: str | None) -> str | None:
    if error is None and detail is None:
        return None
    value = getattr(error, "value", error)
    return f"{value}: {detail}" if detail else str(value)


def _tls_html(title: str, t_: TlsObservation) -> list[str]:
    parts: list[str] = [f"<h2>{_e(title)}</h2>"]
    parts.append(
        _dl(
            [
                ("server name", t_.server_name),
                ("version", t_.version),
                ("cipher", t_.cipher),
                ("ALPN", t_.alpn),
                ("error", _error_text(t_.error, t_.detail)),
                ("duration ms", f"{t_.duration * 1000.0:.1f}"),
            ]
        )
    )
    if t_.certificate is not None:
        c = t_.certificate
        parts.append("<h3>Certificate</h3>")
        parts.append(
            _dl(
                [
                    ("subject", c.subject),
                    ("issuer", c.issuer),
                    ("SANs", ", ".join(c.sans) or None),
                    ("not before", iso_time(c.not_before)),
                    ("not after", iso_time(c.not_after)),
                    ("verified", "yes" if c.verified else "no"),
                ]
            )
        )
    return parts


def _dns_html(d: DnsObservation) -> list[str]:
    parts: list[str] = []
    parts.append("<h2>DNS</h2>")
    parts.append(
        _dl(
            [
                ("question", f"{d.qname} {d.qtype}"),
                ("server", d.server),
                ("rcode", d.rcode),
                ("answers", ", ".join(d.answers) or None),
                ("cnames", ", ".join(d.cnames) or None),
                ("ttl", d.ttl),
                ("error", _error_text(d.error, d.detail)),
                ("duration ms", f"{d.duration * 1000.0:.1f}"),
            ]
        )
    )
    return parts


def _connects_html(connects: Sequence[ConnectAttempt]) -> list[str]:
    parts: list[str] = []
    parts.append("<h2>Connect attempts</h2>")
    rows = "".join(
        f"<tr><td>{_e(c.address)}</td><td>{_e(c.port)}</td>"
        f"<td>{_e(_error_text(c.error, c.detail) or 'connected')}</td>"
        f'<td class="num">{c.duration * 1000.0:.1f}</td>'
        f'<td class="num">{"" if c.rtt is None else f"{c.rtt * 1000.0:.3f}"}</td></tr>'
        for c in connects
    )
    parts.append(
        "<table><tr><th>address</th><th>port</th><th>outcome</th><th>ms</th>"
        "<th>kernel RTT ms</th></tr>"
        f"{rows}</table>"
    )
    return parts


def _http_html(h: HttpObservation) -> list[str]:
    parts: list[str] = []
    parts.append("<h2>HTTP</h2>")
    parts.append(
        _dl(
            [
                ("request", f"{h.method} {h.url}"),
                (
                    "status",
                    None if h.status is None else f"{h.status} {h.reason or ''}".strip(),
                ),
                ("body bytes", f"{h.body_bytes}{' (truncated)' if h.body_truncated else ''}"),
                ("error", _error_text(h.error, h.detail)),
                ("duration ms", f"{h.duration * 1000.0:.1f}"),
            ]
        )
    )
    if h.headers:
        parts.append("<h3>Response headers</h3>")
        parts.append("<pre>" + _e("\n".join(f"{k}: {v}" for k, v in h.headers)) + "</pre>")
    body = h.body_head  # unpacked at each read
    if body:
        parts.append("<h3>Body (first bytes)</h3>")
        parts.append("<pre>" + _e(body.decode("utf-8", "replace")) + "</pre>")
    return parts


def detail_html(
    obs: Observation, target: Target | None = None, finding: Finding | None = None
) -> str:
    """One probe in full, like blackbox_exporter's debug output."""
    key = obs.key
    parts: list[str] = ['<p><a href="/">\u2190 status page</a></p>']
    parts.append(
        _dl(
            [
                *labels_of(key).items(),
                ("result", obs.result),
                ("verdict", finding.verdict.value if finding else None),
                ("evidence", finding.reason if finding else None),
                ("failed phase", obs.failed_phase.value if obs.failed_phase else None),
                ("started", iso_time(obs.started)),
                ("finished", iso_time(obs.finished)),
                ("attempts", obs.attempts),
                ("address dialled", obs.address),
            ]
        )
    )
    if target is not None:
        t = target_json(target)
        parts.append("<h2>Target</h2>")
        for section in ("endpoint", "resolver", "network"):
            value = t[section]
            if isinstance(value, dict):
                parts.append(f"<h3>{_e(section)}</h3>" + _dl(value.items()))
    parts.append("<h2>Phases (ms)</h2>")
    parts.append(_dl((p.value, f"{s * 1000.0:.1f}") for p, s in _ordered_phases(obs.phases)))
    if obs.dns is not None:
        parts.extend(_dns_html(obs.dns))
    if obs.connects:
        parts.extend(_connects_html(obs.connects))
    for title, tls_obs in (("TLS", obs.tls), ("Control handshake (control SNI)", obs.control)):
        if tls_obs is not None:
            parts.extend(_tls_html(title, tls_obs))
    if obs.http is not None:
        parts.extend(_http_html(obs.http))
    if obs.throughput is not None:
        parts.append("<h2>Throughput</h2>")
        parts.append(_dl(_throughput_json(obs.throughput).items()))
    if obs.quic is not None:
        parts.append("<h2>QUIC</h2>")
        parts.append(_dl(_quic_json(obs.quic).items()))
    if obs.stun is not None:
        parts.append("<h2>STUN (the call path)</h2>")
        parts.append(_dl(_stun_json(obs.stun).items()))
    if obs.mtproto is not None:
        parts.append("<h2>MTProto (Telegram's protocol)</h2>")
        parts.append(_dl(_mtproto_json(obs.mtproto).items()))
    if obs.path is not None:
        parts.append("<h2>Path (localisation)</h2>")
        shown = _path_json(obs.path)
        shown["routers"] = " ".join(r or "*" for r in obs.path.routers)
        parts.append(_dl(shown.items()))
    parts.append("<h2>Log</h2>")
    parts.append("<pre>" + _e("\n".join(obs.log)) + "</pre>" if obs.log else "<p>(empty)</p>")
    parts.append(
        f'<p><a href="/probes?{_e(probe_query(key))}&amp;format=json">JSON</a> · '
        '<a href="/probes">all probes</a> · <a href="/">status page</a></p>'
    )
    return _page("Probe " + " / ".join(key.labels()), "\n".join(parts))
