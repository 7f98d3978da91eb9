"""Hostile peers: the exporter, as a real process, probes broken and malicious servers on
loopback next to healthy ones, and keeps working.

Two runs of `python -m exporter run` with the same healthy tuples: a baseline with only them,
then one with every hostile peer too (tests/fakes/hostile.py, tests/fakes/peers.py). Per
hostile tuple, over every round: the result (error kind) on /probes and in
`messaging_probes_total`, and every probe ending within the timeout (the 2.5 s bucket of
`messaging_probe_phase_seconds{phase="total"}` for a 2 s timeout). For the process: resident
memory (VmRSS) within +50 MB of the baseline's, and the healthy tuples still succeeding every
round, their probe durations and the round lag as in the baseline (metric-based).

`-s` prints the figures docs/reliability.md quotes.
"""

from __future__ import annotations

import ipaddress
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.rrset
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.model import DEFAULT_BODY_LIMIT, Network, Resolver, ResolverType
from exporter.model.observation import ErrorKind
from exporter.probes.dns import EDNS_PAYLOAD, MAX_STREAM_REPLY, query
from exporter.probes.network import Dialer
from exporter.probes.tls import TlsContexts
from tests.fakes import peers
from tests.fakes.certs import make_pki
from tests.fakes.dns_server import UDP, FakeDnsServer
from tests.fakes.exporter_process import ExporterProcess
from tests.fakes.hostile import (
    HUGE_BYTES,
    DnsAttack,
    HostileDns,
    gzip_bomb,
    never_read,
    redirect_loop,
)

TIMEOUT = 2.0
INTERVAL = 3.0
#: Rounds each run waits for (after the first, which makes the exporter ready).
ROUNDS = 3
#: The histogram bucket every probe must fall in: the timeout plus scheduling slack.
BOUND = 2.5
#: Growth of resident memory allowed over the baseline exporter, bytes.
RSS_ALLOWANCE = 50 * 1024 * 1024
#: Slack on the healthy tuples' mean probe duration and on the round lag, seconds: the
#: hostile run has more tuples on the same event loop (parsing a 64 KB DNS reply of 4,000
#: records takes ~30 ms of CPU); anything near the 2 s timeout would be a real effect.
TIMING_SLACK = 0.15


@dataclass(frozen=True, slots=True)
class Case:
    service: str
    endpoint: str
    result: str  # "success" or an error kind
    phase: str | None = None  # the failed phase


HEALTHY = (
    Case("healthy", "web", "success"),
    Case("healthy", "named", "success"),
)
HOSTILE = (
    Case("dns", "malformed", "dns_bad_response", "dns"),
    Case("dns", "truncated", "dns_bad_response", "dns"),
    # From the resolver's own address (the socket is connected) but not an answer to the
    # query: "a malformed or mismatched reply" (ErrorKind.DNS_BAD_RESPONSE).
    Case("dns", "mismatched-id", "dns_bad_response", "dns"),
    # 64 KB of valid records, but the query allowed 1,232 bytes (EDNS): refused unparsed,
    # as parsing them would hold the event loop 0.3 s (exporter/probes/dns/call.py).
    Case("dns", "huge", "dns_bad_response", "dns"),
    Case("dns", "count-lie", "dns_bad_response", "dns"),
    Case("dns", "compression-loop", "dns_bad_response", "dns"),
    Case("peer", "tls-garbage", "tls_error", "tls"),
    Case("peer", "endless-headers", "http_protocol_error", "http"),
    # Read up to http.body_limit, then the connection is closed: not an error.
    Case("peer", "endless-body", "success"),
    Case("peer", "drip", "timeout", "http"),
    # Not followed: the exporter makes one request and judges the 302 by expect_status.
    Case("peer", "redirect-loop", "success"),
    # Never asked for (no Accept-Encoding) nor inflated: body bytes against body_limit.
    Case("peer", "gzip-bomb", "success"),
    Case("peer", "never-reads", "timeout", "http"),
)


@dataclass(slots=True)
class Servers:
    dns_port: int
    healthy_port: int
    ports: dict[str, int]  # hostile endpoint name -> port (TCP peers or DNS servers)
    peers: dict[str, peers.Peer]


@asynccontextmanager
async def servers(tmp_path: Path) -> AsyncIterator[Servers]:
    pki = make_pki(tmp_path)
    async with AsyncExitStack() as stack:
        dns = await stack.enter_async_context(
            FakeDnsServer({"ok.test": {"A": ["127.0.0.1"]}}, pki=pki, transports=(UDP,))
        )
        healthy = await stack.enter_async_context(peers.Peer(peers.http(body=b"fine")))
        behaviours = {
            # Answers the ClientHello with bytes that are no TLS record.
            "tls-garbage": peers.garbage(b"NOT TLS " * 64),
            "endless-headers": peers.endless_headers(),
            "endless-body": peers.endless_body(),
            "drip": peers.drip(b"HTTP/1.1 200 OK\r\n", interval=1.0),
            "redirect-loop": redirect_loop(),
            "gzip-bomb": gzip_bomb(),
            "never-reads": never_read(),
        }
        ports: dict[str, int] = {}
        tcp: dict[str, peers.Peer] = {}
        for name, behaviour in behaviours.items():
            tcp[name] = await stack.enter_async_context(peers.Peer(behaviour))
            ports[name] = tcp[name].port
        attacks = {
            "malformed": DnsAttack.MALFORMED,
            "truncated": DnsAttack.TRUNCATED,
            "mismatched-id": DnsAttack.MISMATCHED_ID,
            "huge": DnsAttack.HUGE,
            "count-lie": DnsAttack.COUNT_LIE,
            "compression-loop": DnsAttack.COMPRESSION_LOOP,
        }
        for name, attack in attacks.items():
            ports[name] = (await stack.enter_async_context(HostileDns(attack))).port
        yield Servers(dns.port(UDP), healthy.port, ports, tcp)


def config_yaml(s: Servers, *, hostile: bool) -> str:
    lines = [
        f"interval: {INTERVAL:g}s",
        f"timeout: {TIMEOUT:g}s",
        "resolvers:",
        f"  healthy: {{type: udp, address: 127.0.0.1, port: {s.dns_port}}}",
    ]
    dns_cases = [c for c in HOSTILE if c.service == "dns"] if hostile else []
    peer_cases = [c for c in HOSTILE if c.service == "peer"] if hostile else []
    for c in dns_cases:
        lines.append(
            f"  {c.endpoint}: {{type: udp, address: 127.0.0.1, port: {s.ports[c.endpoint]}}}"
        )
    lines += [
        "services:",
        "  healthy:",
        "    endpoints:",
        f"      web: {{address: 127.0.0.1, port: {s.healthy_port}, checks: [tcp, http]}}",
        f"      named: {{host: ok.test, port: {s.healthy_port}, checks: [dns, tcp, http],"
        " resolvers: [healthy]}",
    ]
    if dns_cases:
        lines += ["  dns:", "    endpoints:"]
        lines += [
            f"      {c.endpoint}: {{host: svc.test, port: {s.healthy_port},"
            f" checks: [dns, tcp, http], resolvers: [{c.endpoint}]}}"
            for c in dns_cases
        ]
    if peer_cases:
        lines += ["  peer:", "    endpoints:"]
        for c in peer_cases:
            checks = "[tcp, tls]" if c.endpoint == "tls-garbage" else "[tcp, http]"
            lines.append(
                f"      {c.endpoint}: {{address: 127.0.0.1, port: {s.ports[c.endpoint]},"
                f" checks: {checks}}}"
            )
    return "\n".join(lines) + "\n"


@dataclass(slots=True)
class Run:
    rss_idle: int  # after the first round
    rss_max: int  # the most seen after any later round
    samples: dict[str, dict[tuple[str, ...], float]]  # metric sample name -> labels -> value
    probes: list[dict[str, object]]  # /probes?format=json rows
    details: dict[tuple[str, str], dict[str, object]]  # (service, endpoint) -> detail JSON
    durations: dict[tuple[str, str], list[float]]  # every probe's duration, from the log


def _samples(text: str) -> dict[str, dict[tuple[str, ...], float]]:
    out: dict[str, dict[tuple[str, ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[sample.name][labels] = sample.value
    return out


def _durations(log: str) -> dict[tuple[str, str], list[float]]:
    """Each probe's duration_seconds from the debug log's probe lines (logfmt)."""
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for line in log.splitlines():
        if 'msg="probe succeeded"' not in line and 'msg="probe failed"' not in line:
            continue
        fields = dict(
            part.split("=", 1) for part in line.split(" ") if "=" in part and '"' not in part
        )
        if "duration_seconds" in fields:
            key = (fields["service"], fields["endpoint"])
            out[key].append(float(fields["duration_seconds"]))
    return out


async def run_exporter(config: Path) -> Run:
    async with ExporterProcess(config, "--log.level", "debug") as exporter:
        await exporter.wait_for('msg="round judged"', timeout=60)
        rss_idle = rss_max = exporter.rss_bytes()
        for done in range(2, ROUNDS + 2):
            await exporter.wait_for('msg="round judged"', count=done, timeout=60)
            rss_max = max(rss_max, exporter.rss_bytes())
        status, metrics = await exporter.get("/metrics")
        assert status == 200
        status, summary = await exporter.get("/probes?format=json")
        assert status == 200
        probes = json.loads(summary)["probes"]
        details = {}
        for row in probes:
            labels = ("service", "endpoint", "network", "resolver", "family")
            query = "&".join(f"{k}={row[k]}" for k in labels)
            status, page = await exporter.get(f"/probes?{query}&format=json")
            assert status == 200
            details[(row["service"], row["endpoint"])] = json.loads(page)
        rss_max = max(rss_max, exporter.rss_bytes())
        assert await exporter.stop() == 0, exporter.log[-3000:]
    assert "Traceback" not in exporter.log, exporter.log
    return Run(rss_idle, rss_max, _samples(metrics), probes, details, _durations(exporter.log))


def _tuple_sample(run: Run, name: str, case: Case, **extra: str) -> float:
    """The value of sample `name` of the case's tuple (other labels given in `extra`)."""
    for labels, value in run.samples[name].items():
        got = dict(label.split("=", 1) for label in labels)
        wanted = {"service": case.service, "endpoint": case.endpoint, **extra}
        if all(got.get(k) == v for k, v in wanted.items()):
            return value
    raise AssertionError(f"no {name} {extra} for {case}")


def _mean_total(run: Run, case: Case) -> float:
    total = _tuple_sample(run, "messaging_probe_phase_seconds_sum", case, phase="total")
    count = _tuple_sample(run, "messaging_probe_phase_seconds_count", case, phase="total")
    return total / count


# ---- unit: the resolver refuses oversized replies unparsed (the fix this suite led to)


def _udp_resolver(port: int) -> Resolver:
    return Resolver(name="r", type=ResolverType.UDP, address="127.0.0.1", port=port)


@pytest.mark.parametrize("attack", [DnsAttack.HUGE, DnsAttack.COUNT_LIE])
async def test_udp_reply_larger_than_the_edns_payload_is_refused(attack: DnsAttack) -> None:
    async with HostileDns(attack) as server:
        obs = await query(
            _udp_resolver(server.port),
            Dialer(Network(name="n")),
            "svc.test",
            "A",
            contexts=TlsContexts(),
            timeout=5,
        )
    assert obs.error is ErrorKind.DNS_BAD_RESPONSE
    assert obs.detail == (
        f"BadResponse: UDP reply of {HUGE_BYTES} bytes, larger than the {EDNS_PAYLOAD} bytes asked"
    )
    assert server.queries == 1


def _tcp_dns(reply_records: int) -> peers.Behaviour:
    """DNS over TCP: reads one length-prefixed query, answers `reply_records` A records."""

    async def run(conn: peers.PeerConnection) -> None:
        length = int.from_bytes(await conn.reader.readexactly(2), "big")
        query_msg = dns.message.from_wire(await conn.reader.readexactly(length))
        response = dns.message.make_response(query_msg)
        base = int(ipaddress.IPv4Address("127.1.0.0"))
        response.answer.append(
            dns.rrset.from_text_list(
                query_msg.question[0].name,
                60,
                "IN",
                "A",
                [str(ipaddress.IPv4Address(base + i)) for i in range(reply_records)],
            )
        )
        wire = response.to_wire(max_size=65535)
        await conn.send(len(wire).to_bytes(2, "big") + wire)
        await conn.until_closed()

    return run


@pytest.mark.parametrize(("records", "refused"), [(4000, True), (900, False)])
async def test_tcp_reply_is_capped(records: int, refused: bool) -> None:
    async with peers.Peer(_tcp_dns(records)) as server:
        resolver = Resolver(name="r", type=ResolverType.TCP, address="127.0.0.1", port=server.port)
        obs = await query(
            resolver, Dialer(Network(name="n")), "svc.test", "A", contexts=TlsContexts(), timeout=5
        )
    if refused:  # 64 KB
        assert obs.error is ErrorKind.DNS_BAD_RESPONSE
        assert obs.detail == f"BadResponse: reply larger than {MAX_STREAM_REPLY} bytes"
    else:  # 14.5 KB: under the cap, parsed
        assert obs.error is None
        assert len(obs.answers) == records


# ---- the exporter process among hostile peers


async def test_hostile_peers_fail_alone_within_the_timeout(tmp_path: Path) -> None:
    async with servers(tmp_path) as s:
        (tmp_path / "baseline.yaml").write_text(config_yaml(s, hostile=False))
        (tmp_path / "hostile.yaml").write_text(config_yaml(s, hostile=True))
        baseline = await run_exporter(tmp_path / "baseline.yaml")
        requests_before = {name: len(p.requests) for name, p in s.peers.items()}
        connections_before = {name: p.connections for name, p in s.peers.items()}
        hostile = await run_exporter(tmp_path / "hostile.yaml")
        redirect_requests = len(s.peers["redirect-loop"].requests)
        redirect_connections = s.peers["redirect-loop"].connections
        bomb_requests = s.peers["gzip-bomb"].requests

    assert requests_before == dict.fromkeys(requests_before, 0)  # the baseline saw no peer
    assert connections_before == dict.fromkeys(connections_before, 0)
    problems: list[str] = []
    rows = {(r["service"], r["endpoint"]): r for r in hostile.probes}
    assert set(rows) == {(c.service, c.endpoint) for c in (*HEALTHY, *HOSTILE)}
    table = [f"{'tuple':<26} {'result':<20} {'phase':<6} {'probes':>6} {'max s':>6} {'mean s':>6}"]
    for case in (*HEALTHY, *HOSTILE):
        row = rows[(case.service, case.endpoint)]
        count = _tuple_sample(hostile, "messaging_probe_phase_seconds_count", case, phase="total")
        within = _tuple_sample(
            hostile, "messaging_probe_phase_seconds_bucket", case, phase="total", le=f"{BOUND}"
        )
        results = {
            dict(label.split("=", 1) for label in labels)["result"]: value
            for labels, value in hostile.samples["messaging_probes_total"].items()
            if f"service={case.service}" in labels and f"endpoint={case.endpoint}" in labels
        }
        durations = hostile.durations[(case.service, case.endpoint)]
        table.append(
            f"{case.service + '/' + case.endpoint:<26} {row['result']:<20} "
            f"{row['failed_phase'] or '-':<6} {int(count):>6} {max(durations):>6.3f} "
            f"{sum(durations) / len(durations):>6.3f}"
        )
        if row["result"] != case.result or row["failed_phase"] != case.phase:
            problems.append(f"{case}: got {row['result']} in {row['failed_phase']}")
        if count < ROUNDS:
            problems.append(f"{case}: only {count} probes")
        if within != count:
            problems.append(f"{case}: {count - within} probes took more than {BOUND} s")
        if results.get(case.result) != count:
            problems.append(f"{case}: results over every round {results}, not all {case.result}")
        if len(durations) < count or max(durations) > BOUND:
            problems.append(f"{case}: logged durations {durations}")

    # What each peer's case means beyond its error kind.
    details = hostile.details
    endless = details[("peer", "endless-body")]["http"]
    assert isinstance(endless, dict)
    assert (endless["body_bytes"], endless["body_truncated"]) == (DEFAULT_BODY_LIMIT, True)
    bomb = details[("peer", "gzip-bomb")]["http"]
    assert isinstance(bomb, dict)
    assert (bomb["body_bytes"], bomb["body_truncated"]) == (DEFAULT_BODY_LIMIT, True)
    assert ["content-encoding", "gzip"] in bomb["headers"]
    assert bomb_requests
    assert all(r.header("accept-encoding") is None for r in bomb_requests)
    redirect = details[("peer", "redirect-loop")]["http"]
    assert isinstance(redirect, dict)
    assert redirect["status"] == 302
    # One request per probe, one probe per connection: the Location is never followed.
    assert redirect_requests == redirect_connections
    huge = details[("dns", "huge")]["dns"]
    assert isinstance(huge, dict)
    refused = f"UDP reply of {HUGE_BYTES} bytes, larger than the 1232 bytes asked"
    if refused not in str(huge["detail"]):
        problems.append(f"dns/huge: {huge['detail']}")

    # The process: memory, and the healthy tuples as in the baseline.
    growth = hostile.rss_max - baseline.rss_max
    lag_before = baseline.samples["messaging_exporter_round_lag_seconds"][()]
    lag_after = hostile.samples["messaging_exporter_round_lag_seconds"][()]
    table.append(
        f"RSS baseline {baseline.rss_idle / 2**20:.1f} -> {baseline.rss_max / 2**20:.1f} MiB, "
        f"hostile {hostile.rss_idle / 2**20:.1f} -> {hostile.rss_max / 2**20:.1f} MiB "
        f"(+{growth / 2**20:.1f} MiB); round lag {lag_before:.4f} s -> {lag_after:.4f} s"
    )
    if growth > RSS_ALLOWANCE:
        problems.append(f"RSS grew by {growth / 2**20:.1f} MiB over the baseline")
    if lag_after > lag_before + TIMING_SLACK:
        problems.append(f"round lag {lag_after} s against {lag_before} s")
    for case in HEALTHY:
        before, after = _mean_total(baseline, case), _mean_total(hostile, case)
        table.append(f"{case.endpoint}: mean probe {before:.4f} s -> {after:.4f} s")
        if after > before + TIMING_SLACK:
            problems.append(f"{case}: mean probe {after:.3f} s, baseline {before:.3f} s")
        failures = {
            labels: value
            for labels, value in hostile.samples["messaging_probes_total"].items()
            if f"endpoint={case.endpoint}" in labels and "result=success" not in labels
        }
        if any(failures.values()):
            problems.append(f"{case}: failed probes {failures}")
    print("\n".join(table))
    assert not problems, "\n".join([*problems, *table])
