"""The Prober against real misbehaving peers on loopback (tests/fakes/peers.py).

Every case goes through real sockets, real TLS (trustme PKI) and the real Dialer; nothing
leaves 127.0.0.0/8. Timeouts are short so that the blackhole / drip cases stay fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import gc
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest
import trustme
from cryptography import x509

from exporter import __version__
from exporter.config.loader import parse_yaml
from exporter.config.matrix import Target
from exporter.config.model import (
    NO_RESOLVER,
    Check,
    Config,
    Endpoint,
    HttpOptions,
    Localisation,
    Network,
    Proxy,
    Resolver,
    ResolverType,
    StatusRange,
    TlsOptions,
)
from exporter.judge.verdict import classify
from exporter.model.judgement import Finding, Verdict
from exporter.model.observation import ErrorKind, Observation, PathOutcome, Phase, TupleKey
from exporter.probes.attempt import MAX_LOG_LINE, MAX_LOG_LINES, ProbeLog
from exporter.probes.localiser import Localiser
from exporter.probes.network import Dialer
from exporter.probes.probe import Prober
from exporter.probes.streams import unread_time
from exporter.runtime.garbage import full_passes_off
from tests.fakes import peers
from tests.fakes.certs import Pki, make_pki
from tests.fakes.dns_server import Behaviour as DnsBehaviour
from tests.fakes.dns_server import FakeDnsServer
from tests.fakes.peers import Peer, PeerConnection
from tests.fakes.stamps import stamping_on

HOST = "probe.test"
TCP = (Check.TCP,)
TLS = (Check.TCP, Check.TLS)
HTTPS = (Check.TCP, Check.TLS, Check.HTTP)
HTTP = (Check.TCP, Check.HTTP)
LOOPBACK = Network(name="loopback")

#: Timeout of probes expected to succeed or fail fast, seconds.
FAST = 2.0
#: Timeout of probes expected to time out, seconds.
SHORT = 0.5


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "trusted")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA the exporter does not trust: a TLS-intercepting middlebox."""
    return make_pki(tmp_path_factory.mktemp("foreign"), "foreign")


def ca_name(pki: Pki) -> str:
    """The CA's subject as `certificate_facts` renders it (trustme CAs have no CN)."""
    return x509.load_pem_x509_certificate(pki.ca.cert_pem.bytes()).subject.rfc4514_string()


def endpoint(
    port: int,
    checks: tuple[Check, ...],
    *,
    host: str | None = HOST,
    address: str = "127.0.0.1",
    tls: TlsOptions | None = None,
    http: HttpOptions | None = None,
    ca: Pki | None = None,
) -> Endpoint:
    if tls is None:
        tls = TlsOptions(ca_file=str(ca.ca_file)) if ca is not None else TlsOptions()
    return Endpoint(
        service="test",
        name="ep",
        host=host,
        address=address,
        port=port,
        checks=checks,
        tls=tls,
        http=http or HttpOptions(),
        networks=("loopback",),
        families=(6 if ":" in address else 4,),
    )


def target(ep: Endpoint, network: Network = LOOPBACK) -> Target:
    key = TupleKey(
        service=ep.service,
        endpoint=ep.name,
        network=network.name,
        resolver=NO_RESOLVER,
        family=ep.families[0],
    )
    return Target(key=key, endpoint=ep, network=network, resolver=None)


def prober(timeout: float = FAST, network: Network = LOOPBACK, *, localise: bool = False) -> Prober:
    """A prober for loopback peers; localisation off unless asked (its extra connections
    would count in the peers' tallies)."""
    return Prober(
        Config(
            timeout=timeout,
            networks=MappingProxyType({network.name: network}),
            localisation=Localisation(enabled=localise),
        )
    )


async def run(
    ep: Endpoint, *, budget: float = FAST, network: Network = LOOPBACK, localise: bool = False
) -> Observation:
    p = prober(budget, network, localise=localise)
    try:
        return await p.probe(target(ep, network))
    finally:
        await p.aclose()


def open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def assert_sane(obs: Observation) -> None:
    """Invariants of every observation."""
    assert Phase.TOTAL in obs.phases
    assert obs.started <= obs.finished
    assert all(d >= 0 for d in obs.phases.values())
    assert 0 < len(obs.log) <= MAX_LOG_LINES
    assert all(len(line) <= MAX_LOG_LINE for line in obs.log)
    if obs.error is None:
        assert obs.failed_phase is None
    else:
        assert obs.failed_phase is not None
        assert obs.failed_phase in obs.phases


# --- success ----------------------------------------------------------------------------------


async def test_https_success_records_every_phase(pki: Pki) -> None:
    not_after = datetime.datetime(2031, 5, 17, 12, 0, tzinfo=datetime.UTC)
    ctx = peers.server_context(pki.ca, HOST, not_after=not_after)
    behaviour = peers.http(body=b"welcome", headers=[("Server", "fake")], tls=ctx)
    async with Peer(behaviour) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki))
        again = await run(endpoint(peer.port, HTTPS, ca=pki))
    assert_sane(obs)
    assert obs.success, obs.log
    assert obs.attempts == 1
    assert obs.tls is not None
    assert again.tls is not None
    assert obs.tls.version == again.tls.version == "TLSv1.3"
    assert obs.tls.cipher == again.tls.cipher
    assert obs.tls.alpn == again.tls.alpn == "http/1.1"
    assert set(obs.phases) == {Phase.CONNECT, Phase.TLS, Phase.HTTP, Phase.TOTAL}
    assert obs.address == "127.0.0.1"
    assert len(obs.connects) == 1
    assert obs.connects[0].error is None
    assert obs.connects[0].duration > 0
    rtt = obs.connects[0].rtt
    assert rtt is not None
    assert 0 < rtt <= obs.connects[0].duration  # the path alone, within the wall-clock phase
    assert obs.tcp_rtt == rtt
    assert obs.dns is None
    assert obs.tls is not None
    assert obs.tls.server_name == HOST
    assert obs.tls.version in {"TLSv1.2", "TLSv1.3"}
    assert obs.tls.cipher
    assert obs.tls.alpn == "http/1.1"
    cert = obs.tls.certificate
    assert cert is not None
    assert cert.subject == HOST
    assert cert.issuer == ca_name(pki)
    assert cert.sans == (HOST,)
    assert cert.verified
    assert abs(cert.not_after - not_after.timestamp()) < 1
    assert obs.cert_not_after == cert.not_after
    assert obs.http is not None
    assert (obs.http.status, obs.http.reason) == (200, "OK")
    assert obs.http.body_head == b"welcome"
    assert ("server", "fake") in obs.http.headers
    assert obs.http.url == f"https://{HOST}:{peer.port}/"
    assert peer.server_names == [HOST, HOST]  # the two probes
    # Phases add up: nothing but scheduling between them.
    parts = obs.phases[Phase.CONNECT] + obs.phases[Phase.TLS] + obs.phases[Phase.HTTP]
    assert parts <= obs.phases[Phase.TOTAL]
    assert any("connect 127.0.0.1:" in line and " ok in " in line for line in obs.log)


async def test_request_headers_seen_by_the_server(pki: Pki) -> None:
    options = HttpOptions(
        method="GET", path="/api/ping", headers=MappingProxyType({"X-Probe": "yes"})
    )
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki, http=options))
    assert obs.success, obs.log
    [request] = peer.requests
    assert request.method == "GET"
    assert request.target == "/api/ping"
    assert request.header("host") == f"{HOST}:{peer.port}"
    assert request.header("user-agent") == f"messaging-exporter/{__version__}"
    assert request.header("connection") == "close"
    assert request.header("x-probe") == "yes"


class _HeldReply:
    """One connection served by a thread, for the tests of a busy event loop: the thread
    takes what the probe sends first, signals `received`, and sends its reply only on `go`,
    then signals `sent`. Between `sent` and the await of the probe, the test holds the loop:
    the reply sits in the kernel, as it does when the exporter is busy."""

    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = self.listener.getsockname()[1]
        self.received, self.go, self.sent = threading.Event(), threading.Event(), threading.Event()
        self.tls = tls
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _reply(self, conn: socket.socket, data: bytes) -> None:
        self.received.set()
        self.go.wait(5)
        conn.sendall(data)
        self.sent.set()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(5)
            if self.tls is None:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                self._reply(conn, reply)
            else:  # hold the server's handshake flight (ServerHello ... Finished)
                incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
                tls = self.tls.wrap_bio(incoming, outgoing, server_side=True)
                while True:
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        flight = outgoing.read()
                        if flight and not self.sent.is_set():
                            self._reply(conn, flight)
                        elif flight:
                            conn.sendall(flight)
                        chunk = conn.recv(65536)
                        if not chunk:
                            return
                        incoming.write(chunk)
                conn.sendall(outgoing.read())  # session tickets
            # Until the probe closes: a reset when it closes with the tickets unread.
            with contextlib.suppress(ConnectionResetError):
                conn.recv(1)

    def close(self) -> None:
        self.go.set()
        self.listener.close()
        self.thread.join(5)


@pytest.mark.parametrize(
    ("checks", "phase"),
    [pytest.param(HTTP, Phase.HTTP, id="http"), pytest.param(TLS, Phase.TLS, id="tls")],
)
async def test_phase_leaves_out_the_busy_loops_late_wake_up(
    pki: Pki, checks: tuple[Check, ...], phase: Phase
) -> None:
    """The kernel stamps the reply's arrival (SO_TIMESTAMPNS): a reply that sits in the
    socket while the event loop is busy for 50 ms does not count in the phase; that wait is
    reported apart as the observation's `overhead`."""
    tls = Check.TLS in checks
    gc.collect()
    # The exporter runs with automatic full collector passes off (exporter/runtime/garbage.py);
    # a pass in this test process (large by the middle of the suite) would add its own ~0.1 s stall.
    with stamping_on(), full_passes_off():  # the kernel's stamping on before the first read
        server = _HeldReply(peers.server_context(pki.ca, HOST) if tls else None)
        p = prober()
        try:
            ep = endpoint(server.port, checks, ca=pki, host=HOST if tls else None)
            task = asyncio.create_task(p.probe(target(ep)))
            while not server.received.is_set():  # step the loop until the probe's part is out
                assert not task.done(), task
                await asyncio.sleep(0)
            t0 = time.perf_counter()
            server.go.set()
            assert server.sent.wait(5)
            time.sleep(0.05)  # noqa: ASYNC251  # holding the loop is the point: a busy exporter
            obs = await task
            waited = time.perf_counter() - t0
        finally:
            server.close()
            await p.aclose()
    assert obs.success, obs.log
    seen = obs.http if phase is Phase.HTTP else obs.tls
    assert seen is not None
    assert waited >= 0.05
    assert seen.overhead >= 0.045, seen
    assert seen.duration == obs.phases[phase]
    assert seen.duration < 0.03, f"{seen.duration * 1e3:.1f} ms reported, {waited * 1e3:.1f} held"


@pytest.mark.parametrize(
    ("read_at", "arrived", "since", "unread"),
    [
        pytest.param(10.5, 10.2, 10.0, 0.3, id="arrived-in-the-phase"),
        pytest.param(10.5, 9.8, 10.0, 0.5, id="arrived-before-the-phase"),
        pytest.param(9.9, 9.8, 10.0, 0.0, id="read-before-the-phase"),
        pytest.param(0.0, 0.0, 10.0, 0.0, id="nothing-read"),
        pytest.param(10.5, 10.5, 10.0, 0.0, id="read-on-arrival"),
    ],
)
def test_unread_time_counts_only_inside_the_phase(
    read_at: float, arrived: float, since: float, unread: float
) -> None:
    assert unread_time(read_at=read_at, arrived=arrived, since=since) == pytest.approx(unread)


async def test_plain_http_on_a_tls_port_like_telegram_data_centres() -> None:
    async with Peer(peers.http(body=b"telegram")) as peer:
        obs = await run(endpoint(peer.port, HTTP, host=None))
    assert obs.success, obs.log
    assert obs.tls is None
    assert set(obs.phases) == {Phase.CONNECT, Phase.HTTP, Phase.TOTAL}
    assert obs.http is not None
    assert obs.http.url == f"http://127.0.0.1:{peer.port}/"
    assert peer.requests[0].header("host") == f"127.0.0.1:{peer.port}"


async def test_tcp_only() -> None:
    async with Peer(peers.accept()) as peer:
        obs = await run(endpoint(peer.port, TCP))
    assert obs.success, obs.log
    assert set(obs.phases) == {Phase.CONNECT, Phase.TOTAL}


async def test_address_only_endpoint_sends_no_sni_and_checks_the_ip(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, "127.0.0.1")
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, host=None, ca=pki))
    assert obs.success, obs.log
    assert peer.server_names == [None]
    assert obs.tls is not None
    assert obs.tls.server_name is None
    assert obs.tls.certificate is not None
    assert obs.tls.certificate.verified
    assert peer.requests[0].header("host") == f"127.0.0.1:{peer.port}"


async def test_tls_server_name_overrides_sni(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, "front.test")
    async with Peer(peers.http(tls=ctx)) as peer:
        tls = TlsOptions(ca_file=str(pki.ca_file), server_name="front.test")
        obs = await run(endpoint(peer.port, HTTPS, tls=tls))
    assert obs.success, obs.log
    assert peer.server_names == ["front.test"]
    assert peer.requests[0].header("host") == f"{HOST}:{peer.port}"


async def test_extra_ca_file_adds_to_system_roots(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, tls=TlsOptions(extra_ca_file=str(pki.ca_file))))
    assert obs.success, obs.log


async def test_insecure_skip_verify_accepts_and_marks_unverified(foreign: Pki) -> None:
    ctx = peers.server_context(foreign.ca, "elsewhere.test")
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, tls=TlsOptions(insecure_skip_verify=True)))
    assert obs.success, obs.log
    assert obs.tls is not None
    assert obs.tls.certificate is not None
    assert not obs.tls.certificate.verified
    assert obs.tls.certificate.issuer == ca_name(foreign)


async def test_tls_without_http_offers_no_alpn(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.garbage(b"", tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, TLS, ca=pki))
    assert obs.success, obs.log
    assert obs.tls is not None
    assert obs.tls.alpn is None
    assert set(obs.phases) == {Phase.CONNECT, Phase.TLS, Phase.TOTAL}


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_loopback() -> None:
    async with Peer(peers.http(), host="::1") as peer:
        obs = await run(endpoint(peer.port, HTTP, host=None, address="::1"))
    assert obs.success, obs.log
    assert obs.key.family == 6
    assert peer.requests[0].header("host") == f"[::1]:{peer.port}"


# --- failures ---------------------------------------------------------------------------------

Make = Callable[[Pki, Pki], peers.Behaviour]

FAILURES: list[tuple[str, Make, tuple[Check, ...], ErrorKind, Phase, float]] = [
    ("reset-on-connect", lambda p, f: peers.reset(), TLS, ErrorKind.RESET, Phase.TLS, FAST),
    (
        "reset-after-client-hello",
        lambda p, f: peers.reset(after_hello=True),
        HTTPS,
        ErrorKind.RESET,
        Phase.TLS,
        FAST,
    ),
    (
        "eof-after-client-hello",
        lambda p, f: peers.eof(),
        HTTPS,
        ErrorKind.EOF,
        Phase.TLS,
        FAST,
    ),
    ("blackhole-hello", lambda p, f: peers.blackhole(), HTTPS, ErrorKind.TIMEOUT, Phase.TLS, SHORT),
    (
        "garbage-instead-of-tls",
        lambda p, f: peers.garbage(b"SSH-2.0-OpenSSH_9.6\r\n" * 10),
        HTTPS,
        ErrorKind.TLS_ERROR,
        Phase.TLS,
        FAST,
    ),
    (
        "unknown-authority",
        lambda p, f: peers.http(tls=peers.server_context(f.ca, HOST)),
        HTTPS,
        ErrorKind.CERT_UNKNOWN_AUTHORITY,
        Phase.TLS,
        FAST,
    ),
    (
        "hostname-mismatch",
        lambda p, f: peers.http(tls=peers.server_context(p.ca, "other.test")),
        HTTPS,
        ErrorKind.CERT_HOSTNAME,
        Phase.TLS,
        FAST,
    ),
    (
        "expired",
        lambda p, f: peers.http(
            tls=peers.server_context(
                p.ca,
                HOST,
                not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
                not_after=datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC),
            )
        ),
        HTTPS,
        ErrorKind.CERT_EXPIRED,
        Phase.TLS,
        FAST,
    ),
    (
        "garbage-instead-of-http-plain",
        lambda p, f: peers.garbage(b"\x00\x01\x02garbage\r\n\r\n"),
        HTTP,
        ErrorKind.HTTP_PROTOCOL,
        Phase.HTTP,
        FAST,
    ),
    (
        "garbage-instead-of-http-tls",
        lambda p, f: peers.garbage(b"BLOCKED\r\n\r\n", tls=peers.server_context(p.ca, HOST)),
        HTTPS,
        ErrorKind.HTTP_PROTOCOL,
        Phase.HTTP,
        FAST,
    ),
    (
        "reset-after-request",
        lambda p, f: peers.reset(after_hello=True),
        HTTP,
        ErrorKind.RESET,
        Phase.HTTP,
        FAST,
    ),
    ("eof-after-request", lambda p, f: peers.eof(), HTTP, ErrorKind.EOF, Phase.HTTP, FAST),
    (
        "endless-headers",
        lambda p, f: peers.endless_headers(tls=peers.server_context(p.ca, HOST)),
        HTTPS,
        ErrorKind.HTTP_PROTOCOL,
        Phase.HTTP,
        FAST,
    ),
    (
        "drip",
        lambda p, f: peers.drip(b"HTTP/1.1 200 OK\r\n", interval=0.05),
        HTTP,
        ErrorKind.TIMEOUT,
        Phase.HTTP,
        SHORT,
    ),
    (
        "status-403",
        lambda p, f: peers.http(status=403, tls=peers.server_context(p.ca, HOST)),
        HTTPS,
        ErrorKind.HTTP_STATUS,
        Phase.HTTP,
        FAST,
    ),
]


@pytest.mark.parametrize(
    ("make", "checks", "kind", "phase", "budget"),
    [pytest.param(*row[1:], id=row[0]) for row in FAILURES],
)
async def test_failure_table(
    pki: Pki,
    foreign: Pki,
    make: Make,
    checks: tuple[Check, ...],
    kind: ErrorKind,
    phase: Phase,
    budget: float,
) -> None:
    async with Peer(make(pki, foreign)) as peer:
        obs = await run(endpoint(peer.port, checks, ca=pki), budget=budget)
    assert_sane(obs)
    assert (obs.error, obs.failed_phase) == (kind, phase), obs.log
    if kind is ErrorKind.TIMEOUT:
        assert obs.attempts == 1  # the timeout used the budget: no retry
        assert obs.phases[Phase.TOTAL] < budget + 0.3
    else:
        assert obs.attempts == 2  # a fast failure is retried once
    # The phases before the failing one completed and are kept; later ones did not run.
    ran = [Phase.CONNECT] + [Phase(c.value) for c in checks if c in (Check.TLS, Check.HTTP)]
    assert set(obs.phases) == {*ran[: ran.index(phase) + 1], Phase.TOTAL}
    assert obs.address == "127.0.0.1"
    if phase is Phase.TLS:
        assert obs.tls is not None
        assert obs.tls.error is kind
        assert obs.http is None
    if phase is Phase.HTTP:
        assert obs.http is not None
        assert obs.http.error is kind


async def test_refused() -> None:
    async with peers.closed_port() as port:
        obs = await run(endpoint(port, HTTPS))
    assert_sane(obs)
    assert (obs.error, obs.failed_phase) == (ErrorKind.REFUSED, Phase.CONNECT)
    assert obs.address is None
    assert [c.error for c in obs.connects] == [ErrorKind.REFUSED]
    assert obs.tls is None
    assert obs.attempts == 2
    assert any("attempt 1 failed: refused in connect" in line for line in obs.log)


@pytest.mark.parametrize(
    ("names", "kind"),
    [
        (("elsewhere.test",), ErrorKind.CERT_UNKNOWN_AUTHORITY),
        ((HOST,), ErrorKind.CERT_UNKNOWN_AUTHORITY),
    ],
)
async def test_mitm_certificate_is_recorded_unverified(
    pki: Pki, foreign: Pki, names: tuple[str, ...], kind: ErrorKind
) -> None:
    """A middlebox's certificate: verification fails, and the certificate it presents is
    kept (verified=False) from a second, unverified handshake with the same SNI."""
    ctx = peers.server_context(foreign.ca, *names)
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki))
    assert (obs.error, obs.failed_phase) == (kind, Phase.TLS)
    assert obs.tls is not None
    cert = obs.tls.certificate
    assert cert is not None
    assert cert.issuer == ca_name(foreign)
    assert cert.sans == names
    assert not cert.verified
    assert obs.cert_not_after is None  # a failed handshake feeds no expiry metric
    # Two attempts, each a verified handshake plus an unverified one, all with our SNI.
    assert peer.connections == 4
    assert peer.server_names.count(HOST) == 4
    assert obs.http is None
    assert not peer.requests


async def test_hostname_mismatch_records_the_presented_certificate(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, "other.test")
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki))
    assert obs.error is ErrorKind.CERT_HOSTNAME
    assert obs.tls is not None
    assert obs.tls.certificate is not None
    assert obs.tls.certificate.sans == ("other.test",)
    assert obs.tls.certificate.issuer == ca_name(pki)


async def test_body_match(pki: Pki) -> None:
    options = HttpOptions(fail_if_body_matches=(re.compile(rb"blocked by order"),))
    blockpage = b"<html><h1>This resource is blocked by order of the ministry</h1></html>"
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.http(body=blockpage, tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki, http=options))
    assert (obs.error, obs.failed_phase) == (ErrorKind.HTTP_BODY_MATCH, Phase.HTTP)
    assert obs.http is not None
    assert obs.http.body_head == blockpage


async def test_a_filter_known_only_by_its_server_header_is_judged_a_blockpage(pki: Pki) -> None:
    """Some national filters serve a page that says nothing, with their name in `Server`
    (OONI's WireFilter fingerprint): a real server sends it, the probe keeps the header, and
    the shipped `blockpage_headers` make it http_blockpage, not ok."""
    shipped = parse_yaml("services: {s: {endpoints: {e: {host: example.org, port: 443}}}}")
    ctx = peers.server_context(pki.ca, HOST)
    server = ("Server", "Protected by WireFilter 8000 (ksa-gw-12)")
    body = b"<html><body>This page is not available.</body></html>"
    async with Peer(peers.http(body=body, headers=[server], tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki))
    assert obs.success, obs.log
    assert obs.http is not None
    assert ("server", server[1]) in obs.http.headers  # h11 gives names lower-case

    def judged(o: Observation) -> Finding:
        return classify(
            o,
            endpoint=None,
            resolver=None,
            peers=[o],
            network_up=True,
            resolver_up=True,
            config=shipped,
        )

    finding = judged(obs)
    assert finding.verdict is Verdict.HTTP_BLOCKPAGE
    assert "server header" in finding.reason
    ordinary = dataclasses.replace(
        obs, http=dataclasses.replace(obs.http, headers=(("server", "nginx/1.22.1"),))
    )
    assert judged(ordinary).verdict is Verdict.OK


async def test_expect_status_accepts_a_listed_code(pki: Pki) -> None:
    options = HttpOptions(expect_status=(StatusRange(low=404, high=404),))
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.http(status=404, tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki, http=options))
    assert obs.success, obs.log


async def test_body_cap_on_an_endless_body(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.endless_body(tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki, http=HttpOptions(body_limit=50_000)))
    assert obs.success, obs.log
    assert obs.http is not None
    assert obs.http.body_truncated
    assert obs.http.body_bytes == 50_000
    assert obs.http.body_head == b"x" * 4096


async def test_timeout_keeps_the_phases_that_completed(pki: Pki) -> None:
    """A peer that sends the head and then stalls the body: the status is kept."""

    async def stall_body(conn: PeerConnection) -> None:
        await conn.start_tls(peers.server_context(pki.ca, HOST))
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
        await conn.until_closed()

    async with Peer(stall_body) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki), budget=SHORT)
    assert_sane(obs)
    assert (obs.error, obs.failed_phase) == (ErrorKind.TIMEOUT, Phase.HTTP)
    assert obs.attempts == 1
    assert set(obs.phases) == {Phase.CONNECT, Phase.TLS, Phase.HTTP, Phase.TOTAL}
    assert obs.tls is not None
    assert obs.tls.error is None
    assert obs.tls.certificate is not None
    assert obs.http is not None
    assert obs.http.error is ErrorKind.TIMEOUT
    assert obs.http.status == 200
    assert obs.http.body_head == b"partial"
    assert obs.http.duration == obs.phases[Phase.HTTP]
    assert SHORT - 0.05 < obs.phases[Phase.TOTAL] < SHORT + 0.3
    assert any("http: timeout" in line for line in obs.log)


async def test_timeout_in_tls_is_partial(pki: Pki) -> None:
    async with Peer(peers.blackhole()) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki), budget=SHORT)
    assert (obs.error, obs.failed_phase) == (ErrorKind.TIMEOUT, Phase.TLS)
    assert set(obs.phases) == {Phase.CONNECT, Phase.TLS, Phase.TOTAL}
    assert obs.tls is not None
    assert obs.tls.server_name == HOST
    assert obs.tls.duration == obs.phases[Phase.TLS]
    assert obs.phases[Phase.CONNECT] + obs.phases[Phase.TLS] <= obs.phases[Phase.TOTAL]


async def test_retry_after_a_reset_succeeds_with_two_attempts(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    behaviour = peers.sequence(peers.reset(after_hello=True), peers.http(tls=ctx))
    async with Peer(behaviour) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki))
    assert obs.success, obs.log
    assert obs.attempts == 2
    assert peer.connections == 2
    assert len(obs.connects) == 1  # the second attempt's facts
    assert any("attempt 1 failed: reset in tls" in line for line in obs.log)
    assert obs.http is not None
    assert obs.http.status == 200


async def test_no_retry_when_less_than_a_third_of_the_budget_is_left(pki: Pki) -> None:
    """The first attempt fails after 0.8 of the budget: the failure counts at once."""
    timeout = 1.0

    async def slow_reset(conn: PeerConnection) -> None:
        if conn.index == 0:
            await conn.read_some()
            await asyncio.sleep(0.8 * timeout)  # peer behaviour: answers late, with a RST
            conn.reset()
            return
        await peers.http(tls=peers.server_context(pki.ca, HOST))(conn)

    async with Peer(slow_reset) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki), budget=timeout)
    assert (obs.error, obs.failed_phase) == (ErrorKind.RESET, Phase.TLS)
    assert obs.attempts == 1
    assert peer.connections == 1
    assert any("not retried" in line for line in obs.log)


async def test_source_address_binding() -> None:
    network = Network(name="second", source_address="127.0.0.2")
    async with Peer(peers.http()) as peer:
        obs = await run(endpoint(peer.port, HTTP, host=None), network=network)
    assert obs.success, obs.log
    assert peer.clients == ["127.0.0.2"]
    assert obs.key.network == "second"
    assert any("source=127.0.0.2" in line for line in obs.log)


async def test_unusable_source_address_is_network_setup() -> None:
    network = Network(name="bad", source_address="192.0.2.1")  # TEST-NET-1: not ours
    async with Peer(peers.http()) as peer:
        obs = await run(endpoint(peer.port, HTTP, host=None), network=network)
    assert (obs.error, obs.failed_phase) == (ErrorKind.NETWORK_SETUP, Phase.CONNECT)
    assert peer.connections == 0


async def test_proxy_password_never_logged() -> None:
    async with peers.closed_port() as port:
        proxy = Proxy(
            scheme="socks5", host="127.0.0.1", port=port, username="user", password="s3cr3t-pw"
        )
        network = Network(name="proxied", proxy=proxy)
        obs = await run(endpoint(443, HTTPS), network=network)
    assert (obs.error, obs.failed_phase) == (ErrorKind.PROXY, Phase.CONNECT)
    assert "s3cr3t-pw" not in repr(obs)
    assert any("<redacted>" in line for line in obs.log)


async def test_no_descriptor_leaks_after_many_failing_probes(pki: Pki, foreign: Pki) -> None:
    before = open_fds()
    async with (
        Peer(peers.reset(after_hello=True)) as resetter,
        Peer(peers.blackhole()) as hole,
        Peer(peers.http(tls=peers.server_context(foreign.ca, HOST))) as mitm,
        Peer(peers.endless_headers(tls=peers.server_context(pki.ca, HOST))) as headers,
        Peer(peers.eof()) as closer,
        peers.closed_port() as closed,
    ):
        p = prober(timeout=0.3)
        ports = [resetter.port, hole.port, mitm.port, headers.port, closer.port, closed]
        targets = [target(endpoint(port, HTTPS, ca=pki)) for port in ports]
        for _ in range(5):
            results = await asyncio.gather(*(p.probe(t) for t in targets))
            assert all(not r.success for r in results)
        # Cancelled from outside mid-handshake: sockets are closed too.
        await cancel_mid_handshake(p, targets[1], hole)
        await p.aclose()
    assert open_fds() == before


async def cancel_mid_handshake(p: Prober, t: Target, hole: Peer) -> None:
    """Start a probe of a blackhole peer, cancel it once the peer has its ClientHello."""
    hello = asyncio.Event()
    hole.behaviour = peers.notify(hello, peers.blackhole())
    task = asyncio.create_task(p.probe(t))
    await hello.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancellation_propagates(pki: Pki) -> None:
    before = open_fds()
    async with Peer(peers.blackhole()) as hole:
        await cancel_mid_handshake(prober(FAST), target(endpoint(hole.port, HTTPS, ca=pki)), hole)
    assert open_fds() == before


async def test_unreadable_ca_file_fails_in_tls(tmp_path: Path) -> None:
    tls = TlsOptions(ca_file=str(tmp_path / "missing.pem"))
    async with Peer(peers.blackhole()) as peer:
        obs = await run(endpoint(peer.port, HTTPS, tls=tls))
    assert obs.failed_phase is Phase.TLS
    assert obs.error is ErrorKind.OTHER


def test_probe_log_is_bounded() -> None:
    log = ProbeLog(0.0)
    for i in range(200):
        log.add(f"line {i} " + "x" * 1000)
    lines = log.lines()
    assert len(lines) == MAX_LOG_LINES
    assert all(len(line) <= MAX_LOG_LINE for line in lines)
    assert lines[-1] == f"... {200 - MAX_LOG_LINES + 1} more log lines dropped"


async def test_prober_builds_contexts_once(pki: Pki) -> None:
    """No per-probe SSL context: the prober's cache holds one per (options, ALPN)."""
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.http(tls=ctx)) as peer:
        ep = endpoint(peer.port, HTTPS, ca=pki)
        p = prober()
        for _ in range(3):
            assert (await p.probe(target(ep))).success
    cache = p._contexts._cache  # white-box: the invariant is about sharing
    assert len(cache) <= 2  # verified + unverified for the one endpoint options


# --- dns (through the real fake DNS server) ---------------------------------------------------

DNS_HTTPS = (Check.DNS, *HTTPS)
DNS_HTTP = (Check.DNS, *HTTP)


def dns_target(
    server: FakeDnsServer,
    port: int,
    checks: tuple[Check, ...],
    *,
    host: str = HOST,
    family: int = 4,
    network: Network = LOOPBACK,
    ca: Pki | None = None,
) -> Target:
    """A tuple whose endpoint is a name, resolved over UDP by `server`."""
    resolver = Resolver(
        name="fake", type=ResolverType.UDP, address=server.host, port=server.port("udp")
    )
    ep = Endpoint(
        service="test",
        name="ep",
        host=host,
        address=None,
        port=port,
        checks=checks,
        tls=TlsOptions(ca_file=str(ca.ca_file)) if ca is not None else TlsOptions(),
        resolvers=("fake",),
        networks=(network.name,),
        families=(family,),
    )
    key = TupleKey(
        service="test", endpoint="ep", network=network.name, resolver="fake", family=family
    )
    return Target(key=key, endpoint=ep, network=network, resolver=resolver)


async def probe_once(t: Target, budget: float = FAST) -> Observation:
    p = prober(budget, t.network)
    try:
        return await p.probe(t)
    finally:
        await p.aclose()


async def test_dns_then_https(pki: Pki) -> None:
    zone = {HOST: {"A": ["127.0.0.1"]}}
    async with (
        FakeDnsServer(zone, pki=pki, transports=("udp",)) as dns_server,
        Peer(peers.http(tls=peers.server_context(pki.ca, HOST))) as peer,
    ):
        obs = await probe_once(dns_target(dns_server, peer.port, DNS_HTTPS, ca=pki))
    assert_sane(obs)
    assert obs.success, obs.log
    assert set(obs.phases) == {Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.HTTP, Phase.TOTAL}
    assert obs.dns is not None
    assert (obs.dns.qname, obs.dns.qtype, obs.dns.answers) == (HOST, "A", ("127.0.0.1",))
    assert obs.address == "127.0.0.1"
    assert [(q.qname, q.qtype) for q in dns_server.queries] == [(HOST, "A")]
    assert any(f"resolved {HOST} A via fake" in line for line in obs.log)
    assert peer.requests[0].header("host") == f"{HOST}:{peer.port}"


async def test_dns_failure_stops_the_probe(pki: Pki) -> None:
    async with (
        FakeDnsServer({}, pki=pki, transports=("udp",)) as dns_server,
        Peer(peers.http()) as peer,
    ):
        obs = await probe_once(dns_target(dns_server, peer.port, DNS_HTTP))
    assert_sane(obs)
    assert (obs.error, obs.failed_phase) == (ErrorKind.DNS_NXDOMAIN, Phase.DNS)
    assert set(obs.phases) == {Phase.DNS, Phase.TOTAL}
    assert obs.connects == ()
    assert peer.connections == 0


async def test_dns_timeout_is_partial(pki: Pki) -> None:
    zone = {HOST: {"A": ["127.0.0.1"]}}
    async with FakeDnsServer(
        zone, pki=pki, transports=("udp",), behaviour=DnsBehaviour(drop=True)
    ) as dns_server:
        obs = await probe_once(dns_target(dns_server, 443, DNS_HTTP), budget=SHORT)
    assert (obs.error, obs.failed_phase) == (ErrorKind.TIMEOUT, Phase.DNS)
    assert obs.attempts == 1
    assert obs.dns is not None
    assert obs.dns.error is ErrorKind.TIMEOUT
    assert obs.connects == ()


async def test_addresses_tried_in_order_until_one_connects(pki: Pki) -> None:
    """The peer listens on 127.0.0.1 only: 127.0.0.3 and .4 on its port refuse."""
    zone = {HOST: {"A": ["127.0.0.3", "127.0.0.4", "127.0.0.1"]}}
    async with (
        FakeDnsServer(zone, pki=pki, transports=("udp",)) as dns_server,
        Peer(peers.http()) as peer,
    ):
        obs = await probe_once(dns_target(dns_server, peer.port, DNS_HTTP))
    assert obs.success, obs.log
    assert [(c.address, c.error) for c in obs.connects] == [
        ("127.0.0.3", ErrorKind.REFUSED),
        ("127.0.0.4", ErrorKind.REFUSED),
        ("127.0.0.1", None),
    ]
    assert obs.address == "127.0.0.1"
    assert obs.attempts == 1


async def test_retry_reuses_the_dns_answer(pki: Pki) -> None:
    """A retry after a failure past DNS asks the resolver nothing more: the name resolved,
    and asking again only exposes the probe to another loss."""
    zone = {HOST: {"A": ["127.0.0.1"]}}
    ctx = peers.server_context(pki.ca, HOST)
    behaviour = peers.sequence(peers.reset(after_hello=True), peers.http(tls=ctx))
    async with (
        FakeDnsServer(zone, pki=pki, transports=("udp",)) as dns_server,
        Peer(behaviour) as peer,
    ):
        obs = await probe_once(dns_target(dns_server, peer.port, DNS_HTTPS, ca=pki))
    assert obs.success, obs.log
    assert obs.attempts == 2
    assert dns_server.counts == {"udp": 1}
    assert obs.dns is not None
    assert obs.dns.answers == ("127.0.0.1",)
    assert Phase.DNS in obs.phases
    assert any("reusing attempt 1's answer" in line for line in obs.log)


async def test_at_most_four_addresses_are_tried(pki: Pki) -> None:
    zone = {HOST: {"A": [f"127.0.0.{i}" for i in range(3, 9)]}}
    async with (
        FakeDnsServer(zone, pki=pki, transports=("udp",)) as dns_server,
        peers.closed_port() as port,
    ):
        obs = await probe_once(dns_target(dns_server, port, DNS_HTTP))
    assert (obs.error, obs.failed_phase) == (ErrorKind.REFUSED, Phase.CONNECT)
    assert [c.address for c in obs.connects] == [f"127.0.0.{i}" for i in range(3, 7)]
    assert obs.attempts == 2


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_family_6_asks_aaaa(pki: Pki) -> None:
    zone = {HOST: {"A": ["127.0.0.1"], "AAAA": ["::1"]}}
    async with (
        FakeDnsServer(zone, pki=pki, transports=("udp",)) as dns_server,
        Peer(peers.http(), host="::1") as peer,
    ):
        obs = await probe_once(dns_target(dns_server, peer.port, DNS_HTTP, family=6))
    assert obs.success, obs.log
    assert obs.dns is not None
    assert (obs.dns.qtype, obs.dns.answers) == ("AAAA", ("::1",))
    assert obs.address == "::1"


async def test_source_address_applies_to_dns_and_connect(pki: Pki) -> None:
    network = Network(name="second", source_address="127.0.0.2")
    zone = {HOST: {"A": ["127.0.0.1"]}}
    async with (
        FakeDnsServer(zone, pki=pki, transports=("udp",)) as dns_server,
        Peer(peers.http()) as peer,
    ):
        obs = await probe_once(dns_target(dns_server, peer.port, DNS_HTTP, network=network))
    assert obs.success, obs.log
    assert dns_server.peers() == ["127.0.0.2"]
    assert peer.clients == ["127.0.0.2"]


# --- control SNI ------------------------------------------------------------------------------

CONTROL = "control.test"


def with_control(ep: Endpoint, control_sni: str = CONTROL) -> Endpoint:
    return dataclasses.replace(ep, control_sni=control_sni)


async def test_control_sni_handshake_precedes_the_real_one(pki: Pki) -> None:
    """An SNI filter: the real name is refused, the control name to the same address gets a
    handshake. The control runs before the real ClientHello and is reused by the retry."""
    ctx = peers.server_context(pki.ca, CONTROL, HOST)
    async with Peer(peers.sni_gate(ctx, refuse=HOST)) as peer:
        obs = await run(with_control(endpoint(peer.port, HTTPS, ca=pki)))
    assert_sane(obs)
    # asyncio's server may close before flushing its alert: the client sees EOF or the alert.
    assert obs.error in {ErrorKind.EOF, ErrorKind.TLS_ERROR}
    assert obs.failed_phase is Phase.TLS
    assert obs.attempts == 2
    assert peer.server_names == [CONTROL, HOST, HOST]
    control = obs.control
    assert control is not None
    assert control.server_name == CONTROL
    assert control.error is None
    assert control.certificate is not None
    assert control.certificate.verified
    assert control.alpn == "http/1.1"
    assert Phase.TLS in obs.phases
    assert any(f"control sni={CONTROL}" in line and ": ok " in line for line in obs.log)


async def test_control_is_kept_from_before_residual_blocking(pki: Pki) -> None:
    """After the hit every connection is reset: attempt 2's own control would be reset too,
    so the observation keeps attempt 1's, made before the hit."""
    ctx = peers.server_context(pki.ca, CONTROL, HOST)
    async with Peer(peers.sni_gate(ctx, refuse=HOST, residual=True)) as peer:
        obs = await run(with_control(endpoint(peer.port, HTTPS, ca=pki)))
    assert (obs.error, obs.failed_phase) == (ErrorKind.RESET, Phase.TLS)
    assert obs.attempts == 2
    assert obs.control is not None
    assert obs.control.error is None


async def test_control_success_and_real_success(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await run(with_control(endpoint(peer.port, HTTPS, ca=pki)))
    assert obs.success, obs.log
    assert obs.control is not None
    assert obs.control.error is ErrorKind.CERT_HOSTNAME  # a fact: the cert is HOST's only
    assert peer.server_names == [CONTROL, HOST]
    assert len(peer.requests) == 1


async def test_silent_control_leaves_the_real_handshake_its_time(pki: Pki) -> None:
    """Connection 0 is the real one (connected first, idle during the control), connection 1
    the control: silence there costs at most CONTROL_SHARE of what is left."""
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.sequence(peers.http(tls=ctx), peers.blackhole())) as peer:
        obs = await run(with_control(endpoint(peer.port, HTTPS, ca=pki)), budget=1.0)
    assert obs.success, obs.log
    assert obs.control is not None
    assert obs.control.error is ErrorKind.TIMEOUT
    assert 0.45 < obs.phases[Phase.TOTAL] < 1.0


@pytest.mark.parametrize(
    ("names", "verdict"),
    [
        # An interceptor mints a certificate for whatever name is asked, the control's too.
        ((HOST, CONTROL), Verdict.TLS_MITM),
        # A server on a root the endpoint lacks presents its own certificate, for its names.
        ((HOST,), Verdict.DOWN),
    ],
    ids=["minted-for-any-name", "the-server's-own-on-an-unknown-root"],
)
async def test_an_untrusted_control_certificate_is_read_and_tells_minted_from_own(
    names: tuple[str, ...], verdict: Verdict
) -> None:
    """Both handshakes fail verification (an authority the endpoint does not trust); the
    control's certificate is read through an unverified handshake, and whom it names decides
    between interception and a root the endpoint's trust lacks (docs/verdicts.md, rule 15)."""
    ctx = peers.server_context(trustme.CA(), *names)
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await run(with_control(endpoint(peer.port, HTTPS)))
    assert (obs.error, obs.failed_phase) == (ErrorKind.CERT_UNKNOWN_AUTHORITY, Phase.TLS)
    control = obs.control
    assert control is not None
    assert control.error is ErrorKind.CERT_UNKNOWN_AUTHORITY
    assert control.certificate is not None
    assert control.certificate.verified is False
    assert set(control.certificate.sans) == set(names)
    finding = classify(
        obs,
        endpoint=None,
        resolver=None,
        peers=[obs],
        network_up=True,
        resolver_up=True,
        config=parse_yaml("services: {s: {endpoints: {e: {host: example.org, port: 443}}}}"),
    )
    assert finding.verdict is verdict, finding.reason


async def test_no_control_without_tls() -> None:
    async with Peer(peers.http()) as peer:
        obs = await run(with_control(endpoint(peer.port, HTTP)))
    assert obs.success, obs.log
    assert obs.control is None
    assert peer.connections == 1


# ---- localisation after a failure (exporter.probes.path; the path: tests/test_path.py) ----


async def test_a_failed_connect_is_localised_once_per_interval() -> None:
    """On loopback the destination is the first hop: nothing stands before it. The second
    failure within the interval reuses the first localisation instead of tracing again."""
    p = prober(localise=True)
    try:
        async with peers.closed_port() as port:
            first = await p.probe(target(endpoint(port, TCP)))
            second = await p.probe(target(endpoint(port, TCP)))
    finally:
        await p.aclose()
    assert first.error is ErrorKind.REFUSED
    assert first.path is not None
    assert (first.path.phase, first.path.outcome) == (Phase.CONNECT, PathOutcome.AT_DESTINATION)
    assert (first.path.distance, first.path.hop) == (1, 1)
    assert first.path.probes > 0
    assert second.path is first.path
    assert any(
        line.startswith(("path (connect", "+")) and "at_destination" in line for line in first.log
    )
    assert first.phases[Phase.TOTAL] < first.path.duration + 1.0  # its time is not the probe's


async def test_a_success_over_tls_is_never_localised(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await run(endpoint(peer.port, HTTPS, ca=pki), localise=True)
        assert obs.success
        assert obs.path is None
        assert peer.connections == 1


async def test_a_plain_http_answer_is_localised_when_it_changes() -> None:
    """A blockpage appearing on a plain-HTTP endpoint looks like a changed answer: the first
    answer and each change are localised, the same answer again is not."""
    statuses = iter((404, 404, 200))
    p = prober(localise=True)
    try:
        async with Peer(lambda conn: peers.http(status=next(statuses))(conn)) as peer:
            ep = endpoint(
                peer.port, HTTP, http=HttpOptions(expect_status=(StatusRange(low=100, high=599),))
            )
            found = [await p.probe(target(ep)) for _ in range(3)]
    finally:
        await p.aclose()
    assert [o.http.status for o in found if o.http is not None] == [404, 404, 200]
    assert [o.path is not None for o in found] == [True, False, True]
    assert all(o.success for o in found)


async def test_localisation_can_be_turned_off() -> None:
    async with peers.closed_port() as port:
        obs = await run(endpoint(port, TCP), localise=False)
    assert obs.error is ErrorKind.REFUSED
    assert obs.path is None


async def test_failures_to_the_same_address_meanwhile_share_one_localisation() -> None:
    """A thousand tuples failing to one blocked address make one localisation: those that
    fail while it runs wait for it (not a full house, even with room for one only)."""
    localiser = Localiser(Localisation(concurrency=1), interval=60.0)
    dialer = Dialer(LOOPBACK)
    async with peers.closed_port() as port:
        results = await asyncio.gather(
            *(localiser.run(dialer, Phase.CONNECT, "127.0.0.1", port) for _ in range(5))
        )
    assert all(r is results[0] for r in results)
    assert results[0].outcome is PathOutcome.AT_DESTINATION


async def test_a_full_house_of_localisations_is_said_not_waited_for() -> None:
    localiser = Localiser(Localisation(concurrency=1), interval=60.0)
    dialer = Dialer(LOOPBACK)
    async with peers.closed_port() as port:
        first = asyncio.create_task(localiser.run(dialer, Phase.CONNECT, "127.0.0.1", port))
        await asyncio.sleep(0)  # let it take the only slot
        busy = await localiser.run(dialer, Phase.CONNECT, "127.0.0.2", port)
        done = await first
    assert busy.outcome is PathOutcome.INCONCLUSIVE
    assert "already running" in busy.detail
    assert done.outcome is PathOutcome.AT_DESTINATION
