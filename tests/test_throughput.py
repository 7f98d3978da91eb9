"""The throughput check on loopback: real sockets, real TLS, real misbehaving peers
(tests/fakes/peers.py). A local server serving N bytes, one that drips, one that never ends
(the cap), one that answers 404 or resets; then the whole probe with the check turned on.
Nothing leaves 127.0.0.0/8."""

from __future__ import annotations

import asyncio
import socket
import time
from types import MappingProxyType

import h11
import pytest

from exporter.config.matrix import Target
from exporter.config.model import (
    NO_RESOLVER,
    Check,
    Config,
    Endpoint,
    HttpOptions,
    Network,
    ThroughputOptions,
    TlsOptions,
)
from exporter.model.observation import ErrorKind, Observation, ThroughputObservation, TupleKey
from exporter.probes.http import ByteStream
from exporter.probes.probe import Prober
from exporter.probes.streams import SocketStream, TlsStream
from exporter.probes.throughput import measure
from exporter.probes.tls import TlsContexts
from tests.fakes import peers
from tests.fakes.certs import Pki, make_pki
from tests.fakes.peers import Behaviour, Peer, PeerConnection

HOST = "probe.test"
LOOPBACK = Network(name="loopback")
MIB = 1024 * 1024
UA = "messaging-exporter/test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "trusted")


# --- peers -----------------------------------------------------------------------------------


def objects(sizes: dict[str, int], *, tls: bool | None = None, pki: Pki | None = None) -> Behaviour:
    """A one-request HTTP(S) server: GET <path> answers `sizes[path]` bytes, else 404."""
    ctx = peers.server_context(pki.ca, HOST) if tls and pki is not None else None

    async def run(conn: PeerConnection) -> None:
        if ctx is not None:
            await conn.start_tls(ctx)
        server = await conn.read_request()
        target = conn.peer.requests[-1].target
        size = sizes.get(target)
        status, body = (200, b"x" * size) if size is not None else (404, b"no such object")
        data = server.send(
            h11.Response(status_code=status, headers=[("Content-Length", str(len(body)))])
        )
        data = (data or b"") + (server.send(h11.Data(data=body)) or b"")
        data += server.send(h11.EndOfMessage()) or b""
        await conn.send(data)
        await conn.until_closed()

    return run


def dripping(*, chunk: int, interval: float) -> Behaviour:
    """A 200 head at once, then `chunk` body bytes every `interval` seconds, for ever."""

    async def run(conn: PeerConnection) -> None:
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        while True:
            await conn.send(b"x" * chunk)
            await asyncio.sleep(interval)

    return run


class Opener:
    """Opens plain TCP streams to 127.0.0.1:port, and closes their sockets at the end."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sockets: list[socket.socket] = []

    async def __call__(self) -> ByteStream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        self.sockets.append(sock)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        return SocketStream(sock)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


async def download(
    port: int, *, path: str = "/large", size: int = MIB, within: float = 2.0
) -> ThroughputObservation:
    open_stream = Opener(port)
    try:
        return await measure(
            open_stream,
            ThroughputOptions(path=path, bytes=size),
            authority=f"127.0.0.1:{port}",
            scheme="http",
            user_agent=UA,
            until=asyncio.get_running_loop().time() + within,
        )
    finally:
        open_stream.close()


# --- the download on its own -----------------------------------------------------------------


async def test_counts_every_byte_of_an_object_smaller_than_the_cap() -> None:
    async with Peer(objects({"/large": 300_000})) as peer:
        result = await download(peer.port)
    assert result.error is None, result.detail
    assert result.status == 200
    assert result.complete
    assert result.body_bytes == 300_000
    assert result.limit == MIB
    assert result.bytes_per_second is not None
    assert result.bytes_per_second == pytest.approx(300_000 / result.duration)
    assert peer.requests[0].method == "GET"
    assert peer.requests[0].target == "/large"
    assert peer.requests[0].header("connection") == "close"
    assert result.url == f"http://127.0.0.1:{peer.port}/large"


async def test_the_cap_is_honoured_on_an_endless_body() -> None:
    async with Peer(peers.endless_body()) as peer:
        result = await download(peer.port, size=64 * 1024 + 1)
    assert result.error is None, result.detail
    assert result.complete  # `bytes` of the object arrived: that is a complete measurement
    assert result.body_bytes == 64 * 1024 + 1
    assert result.bytes_per_second is not None
    assert result.bytes_per_second > 0


async def test_a_dripping_peer_ends_at_the_deadline_with_the_rate_so_far() -> None:
    async with Peer(dripping(chunk=1000, interval=0.05)) as peer:
        t0 = time.perf_counter()
        result = await download(peer.port, within=0.6)
        elapsed = time.perf_counter() - t0
    assert elapsed < 0.9
    assert not result.complete
    assert result.error is ErrorKind.TIMEOUT
    assert result.detail is not None
    assert "mid-body" in result.detail
    assert 3_000 <= result.body_bytes <= 14_000
    assert result.duration == pytest.approx(0.6, abs=0.15)
    assert result.bytes_per_second == pytest.approx(result.body_bytes / result.duration)
    # ~20 kB/s: orders of magnitude below what loopback does
    assert result.bytes_per_second is not None
    assert result.bytes_per_second < 40_000


async def test_a_silent_peer_measures_nothing() -> None:
    async with Peer(peers.blackhole()) as peer:
        result = await download(peer.port, within=0.3)
    assert result.error is ErrorKind.TIMEOUT
    assert result.status is None
    assert result.bytes_per_second is None
    assert result.detail is not None
    assert "before the response" in result.detail


async def test_not_2xx_measures_nothing() -> None:
    async with Peer(objects({})) as peer:
        result = await download(peer.port)
    assert result.error is ErrorKind.HTTP_STATUS
    assert result.status == 404
    assert result.bytes_per_second is None


async def test_a_reset_is_recorded() -> None:
    async with Peer(peers.reset(after_hello=True)) as peer:
        result = await download(peer.port)
    assert result.error in (ErrorKind.RESET, ErrorKind.EOF)
    assert result.bytes_per_second is None


async def test_a_refused_connection_is_recorded() -> None:
    async with peers.closed_port() as port:
        result = await download(port)
    assert result.error is ErrorKind.REFUSED
    assert result.bytes_per_second is None
    assert result.duration == 0.0


async def test_over_tls(pki: Pki) -> None:
    ctx = TlsContexts().get(TlsOptions(ca_file=str(pki.ca_file)), ("http/1.1",))
    sockets: list[socket.socket] = []
    async with Peer(objects({"/large": MIB}, tls=True, pki=pki)) as peer:

        async def open_stream() -> ByteStream:
            sock = socket.socket()
            sock.setblocking(False)
            sockets.append(sock)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", peer.port))
            stream = TlsStream(sock, ctx, HOST)
            await stream.handshake()
            return stream

        try:
            result = await measure(
                open_stream,
                ThroughputOptions(path="/large", bytes=MIB),
                authority=HOST,
                scheme="https",
                user_agent=UA,
                until=asyncio.get_running_loop().time() + 3,
            )
        finally:
            for sock in sockets:
                sock.close()
    assert result.error is None, result.detail
    assert result.complete
    assert result.body_bytes == MIB
    assert peer.server_names == [HOST]
    assert peer.requests[0].header("host") == HOST


# --- the probe with the check ----------------------------------------------------------------


def endpoint(
    port: int,
    pki: Pki,
    *,
    path: str = "/large",
    size: int = MIB,
    checks: tuple[Check, ...] = (Check.TCP, Check.TLS, Check.HTTP, Check.THROUGHPUT),
) -> Endpoint:
    return Endpoint(
        service="test",
        name="ep",
        host=HOST,
        address="127.0.0.1",
        port=port,
        checks=checks,
        tls=TlsOptions(ca_file=str(pki.ca_file)),
        http=HttpOptions(path="/"),
        throughput=ThroughputOptions(path=path, bytes=size),
        networks=("loopback",),
        families=(4,),
    )


async def probe(ep: Endpoint, budget: float = 2.0) -> Observation:
    p = Prober(Config(timeout=budget, networks=MappingProxyType({"loopback": LOOPBACK})))
    key = TupleKey(
        service="test", endpoint="ep", network="loopback", resolver=NO_RESOLVER, family=4
    )
    try:
        return await p.probe(Target(key=key, endpoint=ep, network=LOOPBACK, resolver=None))
    finally:
        await p.aclose()


def serve_then(pki: Pki, second: Behaviour) -> Behaviour:
    """The http check's connection gets the small page; the download's gets `second`."""
    return peers.sequence(objects({"/": 100}, tls=True, pki=pki), second)


async def test_probe_downloads_on_a_fresh_connection_after_the_http_check(pki: Pki) -> None:
    async with Peer(objects({"/": 100, "/large": MIB}, tls=True, pki=pki)) as peer:
        obs = await probe(endpoint(peer.port, pki))
    assert obs.success, obs.log
    assert peer.connections == 2
    assert [r.target for r in peer.requests] == ["/", "/large"]
    assert peer.server_names == [HOST, HOST]
    t = obs.throughput
    assert t is not None
    assert t.complete
    assert t.body_bytes == MIB
    assert t.error is None
    assert t.bytes_per_second is not None
    assert t.bytes_per_second > 1_000_000
    assert t.url == f"https://{HOST}:{peer.port}/large"
    assert any(line.split(" ", 1)[1].startswith("throughput GET") for line in obs.log)


async def test_probe_without_the_check_downloads_nothing(pki: Pki) -> None:
    async with Peer(objects({"/": 100, "/large": MIB}, tls=True, pki=pki)) as peer:
        obs = await probe(endpoint(peer.port, pki, checks=(Check.TCP, Check.TLS, Check.HTTP)))
    assert obs.success
    assert obs.throughput is None
    assert peer.connections == 1


async def test_a_dripping_download_is_measured_and_the_probe_still_succeeds(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, HOST)

    async def drip_tls(conn: PeerConnection) -> None:
        await conn.start_tls(ctx)
        await dripping(chunk=2000, interval=0.05)(conn)

    async with Peer(serve_then(pki, drip_tls)) as peer:
        t0 = time.perf_counter()
        obs = await probe(endpoint(peer.port, pki), budget=1.0)
        elapsed = time.perf_counter() - t0
    assert obs.success, obs.log
    assert elapsed < 1.2  # the download ended before the probe's deadline
    t = obs.throughput
    assert t is not None
    assert not t.complete
    assert t.error is ErrorKind.TIMEOUT
    assert t.body_bytes > 0
    assert t.bytes_per_second is not None
    assert t.bytes_per_second < 100_000


async def test_a_failed_download_is_recorded_not_the_probes_failure(pki: Pki) -> None:
    async with Peer(serve_then(pki, peers.reset())) as peer:
        obs = await probe(endpoint(peer.port, pki))
    assert obs.success
    assert obs.throughput is not None
    assert obs.throughput.error is not None
    assert obs.throughput.bytes_per_second is None


async def test_no_download_when_the_http_check_fails(pki: Pki) -> None:
    async with Peer(objects({"/large": MIB}, tls=True, pki=pki)) as peer:
        obs = await probe(endpoint(peer.port, pki))
    assert obs.error is ErrorKind.HTTP_STATUS
    assert obs.throughput is None
    assert [r.target for r in peer.requests] == ["/", "/"]  # retried; never /large


async def test_the_probe_honours_the_cap(pki: Pki) -> None:
    ctx = peers.server_context(pki.ca, HOST)
    async with Peer(serve_then(pki, peers.endless_body(tls=ctx))) as peer:
        obs = await probe(endpoint(peer.port, pki, size=200_000))
    assert obs.success
    assert obs.throughput is not None
    assert obs.throughput.complete
    assert obs.throughput.body_bytes == 200_000


def test_probes_page_shows_the_download() -> None:
    from exporter.web import render
    from tests.fakes.observations import key, ok, with_rate

    obs = with_rate(ok(key("censor", "google")), 2048.0)
    detail = render.detail_json(obs)
    assert detail["throughput"] == {
        "url": "https://web.telegram.lab/large",
        "status": 200,
        "limit": MIB,
        "body_bytes": MIB,
        "complete": True,
        "duration_ms": 512000.0,
        "bytes_per_second": 2048.0,
        "error": None,
        "detail": None,
    }
    page = render.detail_html(obs)
    assert "<h2>Throughput</h2>" in page
    assert "https://web.telegram.lab/large" in page
    assert render.detail_json(ok(key("censor", "google")))["throughput"] is None
