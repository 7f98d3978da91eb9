"""The `quic` check against a real aioquic HTTP/3 server on loopback (tests/fakes/h3_server.py).

Real UDP sockets from the real Dialer, real QUIC and TLS 1.3 (trustme PKI); nothing leaves
127.0.0.0/8 and ::1. The silent peer is a bound UDP socket that never answers: what a censor
dropping UDP 443 looks like.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from exporter.config.matrix import Target
from exporter.config.model import (
    NO_RESOLVER,
    Check,
    Config,
    Endpoint,
    HttpOptions,
    Network,
    Proxy,
    QuicOptions,
    StatusRange,
    TlsOptions,
)
from exporter.model.observation import ErrorKind, Observation, Phase, QuicObservation, TupleKey
from exporter.probes.network import Dialer
from exporter.probes.probe import Prober
from exporter.probes.quic import QuicProbe, close_failure
from tests.fakes import peers
from tests.fakes.certs import Pki, make_pki
from tests.fakes.h3_server import FakeH3Server
from tests.fakes.peers import Peer

HOST = "quic.test"
LOOPBACK = Network(name="loopback")
#: Timeout of checks expected to succeed or fail fast, seconds.
FAST = 3.0
#: Timeout of checks expected to time out, seconds.
SHORT = 0.6
BODY = b"hello over h3"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "trusted")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("foreign"), "foreign")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory, pki: Pki, foreign: Pki) -> dict[str, Path]:
    """Chain and key files: a trusted certificate for HOST (and the loopback addresses), one
    for another name, and one for HOST from the foreign CA."""
    directory = tmp_path_factory.mktemp("certs")
    out: dict[str, Path] = {}
    for label, ca, names in (
        ("good", pki, (HOST, "127.0.0.1", "::1")),
        ("other-name", pki, ("elsewhere.test",)),
        ("foreign", foreign, (HOST,)),
    ):
        sub = directory / label
        sub.mkdir()
        out[f"{label}-cert"], out[f"{label}-key"] = ca.cert_files(*names, directory=sub)
    return out


@contextlib.asynccontextmanager
async def h3_server(
    certs: dict[str, Path], label: str = "good", **options: object
) -> AsyncIterator[FakeH3Server]:
    server = FakeH3Server(
        cert=certs[f"{label}-cert"],
        key=certs[f"{label}-key"],
        **{"body": BODY, "objects": {"/large": 100_000}, **options},  # type: ignore[arg-type]
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.contextmanager
def silent_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A bound UDP socket that never answers: every datagram vanishes into its queue."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


def unbound_port(host: str = "127.0.0.1") -> int:
    """A UDP port nothing is bound to (the kernel answers ICMP port unreachable)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


class RecordingDialer(Dialer):
    """The real Dialer, keeping every socket it made (to check they were closed)."""

    def __init__(self, network: Network = LOOPBACK) -> None:
        super().__init__(network)
        self.made: list[socket.socket] = []

    def make_socket(self, family: socket.AddressFamily, kind: socket.SocketKind) -> socket.socket:
        sock = super().make_socket(family, kind)
        self.made.append(sock)
        return sock

    def all_closed(self) -> bool:
        return bool(self.made) and all(s.fileno() == -1 for s in self.made)


def trusted(pki: Pki) -> TlsOptions:
    return TlsOptions(ca_file=str(pki.ca_file))


def quic_probe(
    port: int,
    tls: TlsOptions,
    *,
    dialer: Dialer | None = None,
    server_name: str | None = HOST,
    http: HttpOptions | None = None,
    address: str = "127.0.0.1",
) -> QuicProbe:
    return QuicProbe(
        dialer or RecordingDialer(),
        address,
        port,
        server_name=server_name,
        tls=tls,
        http=http,
        authority=f"{HOST}:{port}",
        user_agent="test-agent/1",
    )


async def check(probe: QuicProbe, budget: float = FAST) -> QuicObservation:
    """Run the check, bounded as the Prober bounds it."""
    async with asyncio.timeout(budget):
        return await probe.run()


def client_timers() -> list[asyncio.TimerHandle]:
    """Retransmission timers of our QUIC clients still scheduled on the loop."""
    loop = asyncio.get_running_loop()
    scheduled: list[asyncio.TimerHandle] = getattr(loop, "_scheduled", [])
    return [
        h
        for h in scheduled
        if not h.cancelled() and type(getattr(h._callback, "__self__", None)).__name__ == "_Client"  # type: ignore[attr-defined]
    ]


# --- the handshake and the request ------------------------------------------------------------


async def test_handshake_with_sni_and_h3(certs: dict[str, Path], pki: Pki) -> None:
    dialer = RecordingDialer()
    async with h3_server(certs) as server:
        probe = quic_probe(server.port, trusted(pki), dialer=dialer)
        obs = await check(probe)
    assert obs.error is None, obs.detail
    assert obs.connected
    assert obs.version == "1"
    assert obs.alpn == "h3"
    assert obs.handshake_duration is not None
    assert 0 < obs.handshake_duration <= obs.duration
    assert obs.url is None  # handshake only
    assert obs.status is None
    assert server.handshakes == 1
    assert server.requests == []
    assert dialer.all_closed()
    assert client_timers() == []


async def test_http3_get_keeps_the_status_and_counts_the_body(
    certs: dict[str, Path], pki: Pki
) -> None:
    http = HttpOptions(path="/hello", headers=MappingProxyType({"X-Probe": "1"}))
    async with h3_server(certs) as server:
        obs = await check(quic_probe(server.port, trusted(pki), http=http))
    assert obs.error is None, obs.detail
    assert obs.status == 200
    assert obs.body_bytes == len(BODY)
    assert not obs.body_truncated
    assert obs.url == f"https://{HOST}:{server.port}/hello"
    [(path, headers)] = server.requests
    assert path == "/hello"
    assert headers[b":authority"] == f"{HOST}:{server.port}".encode()
    assert headers[b"user-agent"] == b"test-agent/1"
    assert headers[b"x-probe"] == b"1"


async def test_a_response_followed_at_once_by_a_close_still_counts(
    certs: dict[str, Path], pki: Pki
) -> None:
    async with h3_server(certs, close_after_response=True) as server:
        obs = await check(quic_probe(server.port, trusted(pki), http=HttpOptions()))
    assert obs.error is None, obs.detail
    assert obs.status == 200
    assert obs.body_bytes == len(BODY)


async def test_a_close_before_the_response_is_eof(certs: dict[str, Path], pki: Pki) -> None:
    async with h3_server(certs, respond=False) as server:
        obs = await check(quic_probe(server.port, trusted(pki), http=HttpOptions()))
    assert obs.error is ErrorKind.EOF, obs.detail
    assert obs.connected
    assert obs.status is None


async def test_http3_body_is_read_up_to_the_cap(certs: dict[str, Path], pki: Pki) -> None:
    http = HttpOptions(path="/large", body_limit=5000)
    async with h3_server(certs) as server:
        obs = await check(quic_probe(server.port, trusted(pki), http=http))
    assert obs.error is None, obs.detail
    assert obs.status == 200
    assert obs.body_bytes == 5000
    assert obs.body_truncated


async def test_http3_status_is_judged_by_expect_status(certs: dict[str, Path], pki: Pki) -> None:
    async with h3_server(certs, status=404) as server:
        bad = await check(quic_probe(server.port, trusted(pki), http=HttpOptions()))
        fine = await check(
            quic_probe(
                server.port,
                trusted(pki),
                http=HttpOptions(expect_status=(StatusRange(low=400, high=499),)),
            )
        )
    assert bad.error is ErrorKind.HTTP_STATUS
    assert bad.status == 404
    assert bad.connected
    assert bad.detail is not None
    assert "404" in bad.detail
    assert fine.error is None


async def test_ipv6_loopback(certs: dict[str, Path], pki: Pki) -> None:
    async with h3_server(certs, host="::1") as server:
        obs = await check(quic_probe(server.port, trusted(pki), address="::1", http=HttpOptions()))
    assert obs.error is None, obs.detail
    assert obs.status == 200


async def test_an_ip_address_is_checked_against_the_ip_sans(
    certs: dict[str, Path], pki: Pki
) -> None:
    async with h3_server(certs) as server:
        obs = await check(quic_probe(server.port, trusted(pki), server_name=None))
    assert obs.error is None, obs.detail


# --- certificates -----------------------------------------------------------------------------


async def test_untrusted_ca_is_cert_unknown_authority(certs: dict[str, Path], pki: Pki) -> None:
    dialer = RecordingDialer()
    async with h3_server(certs, "foreign") as server:
        t0 = time.perf_counter()
        obs = await check(quic_probe(server.port, trusted(pki), dialer=dialer))
        elapsed = time.perf_counter() - t0
    assert obs.error is ErrorKind.CERT_UNKNOWN_AUTHORITY, obs.detail
    assert not obs.connected
    assert obs.version is None
    assert elapsed < 1.0  # named when it happens, not after aioquic's closing period
    assert dialer.all_closed()
    assert client_timers() == []


async def test_wrong_name_is_cert_hostname_mismatch(certs: dict[str, Path], pki: Pki) -> None:
    async with h3_server(certs, "other-name") as server:
        obs = await check(quic_probe(server.port, trusted(pki)))
    assert obs.error is ErrorKind.CERT_HOSTNAME, obs.detail


async def test_insecure_skip_verify_accepts_any_certificate(
    certs: dict[str, Path], pki: Pki
) -> None:
    async with h3_server(certs, "foreign") as server:
        obs = await check(quic_probe(server.port, TlsOptions(insecure_skip_verify=True)))
    assert obs.error is None, obs.detail


async def test_extra_ca_file_adds_to_the_roots_ca_file_replaces_them(
    certs: dict[str, Path], pki: Pki, foreign: Pki
) -> None:
    async with h3_server(certs) as server:
        extra = await check(quic_probe(server.port, TlsOptions(extra_ca_file=str(pki.ca_file))))
        system = await check(quic_probe(server.port, TlsOptions()))
        other = await check(quic_probe(server.port, TlsOptions(ca_file=str(foreign.ca_file))))
    assert extra.error is None, extra.detail
    assert system.error is ErrorKind.CERT_UNKNOWN_AUTHORITY, system.detail
    assert other.error is ErrorKind.CERT_UNKNOWN_AUTHORITY, other.detail


async def test_a_server_without_h3_fails_the_handshake(certs: dict[str, Path], pki: Pki) -> None:
    async with h3_server(certs, alpn=("doq",)) as server:
        obs = await check(quic_probe(server.port, trusted(pki)))
    assert obs.error is ErrorKind.TLS_ERROR, obs.detail
    assert obs.detail is not None
    assert "the peer closed" in obs.detail


# --- no answer ----------------------------------------------------------------------------------


async def test_nothing_listening_is_refused(pki: Pki) -> None:
    dialer = RecordingDialer()
    t0 = time.perf_counter()
    obs = await check(quic_probe(unbound_port(), trusted(pki), dialer=dialer))
    assert obs.error is ErrorKind.REFUSED, obs.detail
    assert time.perf_counter() - t0 < 1.0
    assert dialer.all_closed()
    assert client_timers() == []


async def test_silence_is_cut_by_the_deadline_and_everything_is_closed(pki: Pki) -> None:
    dialer = RecordingDialer()
    with silent_port() as port:
        probe = quic_probe(port, trusted(pki), dialer=dialer)
        t0 = time.perf_counter()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(SHORT):
                await probe.run()
        elapsed = time.perf_counter() - t0
    assert SHORT <= elapsed < SHORT + 0.3
    assert dialer.all_closed()
    assert client_timers() == []
    obs = probe.observation(error=ErrorKind.TIMEOUT, detail="cut")
    assert not obs.connected
    assert obs.duration >= SHORT


async def test_a_proxy_network_has_no_udp(pki: Pki) -> None:
    proxied = Network(name="tor", proxy=Proxy(scheme="socks5", host="127.0.0.1", port=9))
    obs = await check(quic_probe(443, trusted(pki), dialer=Dialer(proxied)))
    assert obs.error is ErrorKind.NETWORK_SETUP
    assert obs.detail is not None
    assert "SOCKS" in obs.detail


# --- in the Prober ------------------------------------------------------------------------------


def endpoint(port: int, checks: tuple[Check, ...], pki: Pki, quic: QuicOptions) -> Endpoint:
    return Endpoint(
        service="test",
        name="ep",
        host=HOST,
        address="127.0.0.1",
        port=port,
        checks=checks,
        tls=trusted(pki),
        quic=quic,
        networks=("loopback",),
        families=(4,),
    )


async def probe(ep: Endpoint, budget: float = FAST) -> Observation:
    p = Prober(Config(timeout=budget, networks=MappingProxyType({"loopback": LOOPBACK})))
    key = TupleKey(
        service="test", endpoint="ep", network="loopback", resolver=NO_RESOLVER, family=4
    )
    return await p.probe(Target(key=key, endpoint=ep, network=LOOPBACK, resolver=None))


def open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


HTTPS_QUIC = (Check.TCP, Check.TLS, Check.HTTP, Check.QUIC)


async def test_prober_runs_quic_after_https_to_the_same_address(
    certs: dict[str, Path], pki: Pki
) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.http(tls=ctx)) as peer, h3_server(certs) as server:
        obs = await probe(endpoint(peer.port, HTTPS_QUIC, pki, QuicOptions(port=server.port)))
        h3 = await probe(
            endpoint(peer.port, HTTPS_QUIC, pki, QuicOptions(port=server.port, http3=True))
        )
    assert obs.success, obs.log
    assert set(obs.phases) == {Phase.CONNECT, Phase.TLS, Phase.HTTP, Phase.QUIC, Phase.TOTAL}
    assert obs.quic is not None
    assert obs.quic.address == "127.0.0.1"
    assert obs.quic.server_name == HOST
    assert obs.quic.duration == obs.phases[Phase.QUIC]
    assert any(line.split()[1] == "quic" and "alpn=h3" in line for line in obs.log)
    assert h3.success, h3.log
    assert h3.quic is not None
    assert h3.quic.status == 200
    assert h3.quic.body_bytes == len(BODY)


async def test_quic_alone_needs_only_an_address(certs: dict[str, Path], pki: Pki) -> None:
    async with h3_server(certs) as server:
        obs = await probe(endpoint(server.port, (Check.QUIC,), pki, QuicOptions()))
    assert obs.success, obs.log
    assert set(obs.phases) == {Phase.QUIC, Phase.TOTAL}
    assert obs.connects == ()


async def test_a_quic_failure_after_https_succeeded_fails_the_probe_in_phase_quic(
    pki: Pki,
) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(peers.http(tls=ctx)) as peer:
        obs = await probe(endpoint(peer.port, HTTPS_QUIC, pki, QuicOptions(port=unbound_port())))
    assert not obs.success
    assert obs.error is ErrorKind.REFUSED
    assert obs.failed_phase is Phase.QUIC
    assert obs.attempts == 2  # a fast failure is retried, like any other
    assert obs.http is not None
    assert obs.http.status == 200
    assert obs.tls is not None
    assert obs.tls.error is None
    assert obs.quic is not None
    assert obs.quic.error is ErrorKind.REFUSED


async def test_silence_times_out_within_the_probe_budget(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    before = open_fds()
    async with Peer(peers.http(tls=ctx)) as peer:
        with silent_port() as port:
            t0 = time.perf_counter()
            obs = await probe(endpoint(peer.port, HTTPS_QUIC, pki, QuicOptions(port=port)), SHORT)
            elapsed = time.perf_counter() - t0
    assert obs.error is ErrorKind.TIMEOUT
    assert obs.failed_phase is Phase.QUIC
    assert elapsed < SHORT + 0.3
    assert obs.quic is not None
    assert obs.quic.error is ErrorKind.TIMEOUT
    assert obs.quic.port == port
    assert obs.http is not None
    assert obs.http.error is None
    assert Phase.QUIC in obs.phases
    assert open_fds() == before
    assert client_timers() == []


# --- naming a close -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "frame", "reason", "local", "connected", "kind"),
    [
        (0x12A, 6, "unable to get local issuer certificate", True, False, "cert_unknown_authority"),
        (0x12A, 6, "self-signed certificate in certificate chain", True, False,
         "cert_unknown_authority"),
        (0x12A, 6, "hostname 'a.test' doesn't match 'b.test'", True, False,
         "cert_hostname_mismatch"),
        (0x12D, 6, "Certificate is no longer valid", True, False, "cert_expired"),
        (0x12A, 6, "certificate signature failure", True, False, "cert_invalid"),
        (0x12A, 6, "bad certificate", False, False, "tls_error"),  # the peer's alert
        (0x178, 6, "no application protocol", False, False, "tls_error"),
        (0x2, None, "", False, False, "refused"),  # QUIC's CONNECTION_REFUSED
        (0x1, 0, "Idle timeout", False, False, "timeout"),
        (0x0, None, "", False, True, "eof"),
        (0x100, None, "", False, True, "eof"),  # H3_NO_ERROR after the handshake
        (0x101, None, "", False, True, "http_protocol_error"),
        (0x105, None, "frame unexpected", True, True, "http_protocol_error"),
    ],
)  # fmt: skip
def test_close_codes_are_named(
    code: int, frame: int | None, reason: str, local: bool, connected: bool, kind: str
) -> None:
    failure = close_failure(code, frame, reason, local=local, connected=connected)
    assert failure.kind.value == kind
    assert f"0x{code:x}" in failure.detail
