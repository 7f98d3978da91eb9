"""The `stun` probe (exporter.probes.stun) against a real STUN server and hostile fakes.

The real server is Debian's coturn (`turnserver --stun-only`) on 127.0.0.1; the hostile
cases use tests/fakes/stun_server.py. Sockets come from the real Dialer; nothing leaves
127.0.0.0/8 and ::1.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
from aioice import stun

from exporter.config.model import Network, Proxy
from exporter.model.observation import ErrorKind
from exporter.probes.network import Dialer
from exporter.probes.stun import StunProbe, format_address
from tests.fakes.stun_server import (
    FakeStunServer,
    Reply,
    echo,
    error,
    garbage,
    other_transaction,
    silence,
    success,
    then,
    without_mapped,
)

#: Initial retransmission timeout of the tests, seconds: short, so silence ends soon.
RTO = 0.05
#: Seconds coturn may take to answer its first Binding request after starting.
STARTUP = 20.0


class Sockets:
    """A `sock_factory` over the real Dialer that keeps every socket it made, for the test to
    see their local addresses and that they were closed."""

    def __init__(self, network: Network) -> None:
        self.dialer = Dialer(network)
        self.made: list[socket.socket] = []
        self.names: list[tuple[str, int]] = []

    def __call__(self, family: socket.AddressFamily) -> socket.socket:
        sock = self.dialer.udp_socket(family)
        self.made.append(sock)
        if sock.getsockname()[1]:  # bound by the network's source address
            self.names.append(sock.getsockname()[:2])
        return sock

    def all_closed(self) -> bool:
        return all(sock.fileno() == -1 for sock in self.made)


def bound(address: str = "127.0.0.1") -> Sockets:
    """Sockets bound to `address` (the network's source address), so the test knows the
    address a server must report as mapped."""
    return Sockets(Network(name="loopback", source_address=address))


def probe(
    sockets: Sockets, address: str, port: int, *, max_requests: int = 4, rto: float = RTO
) -> StunProbe:
    return StunProbe(sockets, address, port, rto=rto, max_requests=max_requests)


def ipv6_loopback() -> str | None:
    """Why ::1 cannot be used here, or None when it can."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        return f"cannot bind ::1: {exc}"
    return None


# --- a real server: coturn ---------------------------------------------------------------------


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    """Whether a STUN server on 127.0.0.1:port answers one Binding request within 0.1 s."""
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        sock.connect(("127.0.0.1", port))
        try:
            sock.send(bytes(request))
            reply = stun.parse_message(sock.recv(2048))
        except (OSError, ValueError):  # not listening yet: refused, or silence
            return False
    # A response, not our own request: a socket whose ephemeral port happens to be `port`
    # is connected to itself and reads back what it sent.
    return (
        reply.transaction_id == request.transaction_id
        and reply.message_class == stun.Class.RESPONSE
    )


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A coturn STUN server (STUN only, UDP only, no auth database) on 127.0.0.1; its port.
    Ready once it answers a Binding request (polled with requests, no fixed wait)."""
    turnserver = shutil.which("turnserver")
    assert turnserver is not None, (
        "turnserver is not installed (the real STUN server of tests/test_stun.py): "
        "`apt-get install coturn`"
    )
    home = tmp_path_factory.mktemp("coturn")
    port = _free_udp_port()
    log = home / "turnserver.log"
    command = [
        turnserver,
        "-n",  # no configuration file: only these flags
        "--stun-only",
        "--listening-ip=127.0.0.1",
        f"--listening-port={port}",
        "--no-tcp",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-rfc5780",  # NAT behaviour discovery wants a second address
        "--log-file=stdout",
        "--simple-log",
        f"--pidfile={home / 'turnserver.pid'}",
        f"--userdb={home / 'turndb'}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=home)
    try:
        deadline = time.monotonic() + STARTUP
        while not _answers(port):
            assert proc.poll() is None, f"turnserver exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"turnserver never answered:\n{log.read_text()}"
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_coturn_answers_with_our_address(coturn: int) -> None:
    sockets = bound()
    obs = await probe(sockets, "127.0.0.1", coturn).run()
    assert obs.error is None, obs.detail
    assert obs.mapped == format_address(sockets.names[0])
    assert obs.mapped.startswith("127.0.0.1:")
    assert obs.requests == 1
    assert (obs.address, obs.port) == ("127.0.0.1", coturn)
    assert 0 < obs.duration < 1
    assert sockets.all_closed()


# --- hostile fakes -----------------------------------------------------------------------------


async def test_fake_success_reports_mapped_address() -> None:
    sockets = bound()
    async with FakeStunServer(success) as server:
        obs = await probe(sockets, "127.0.0.1", server.port).run()
    assert obs.error is None, obs.detail
    assert obs.mapped == format_address(sockets.names[0])
    assert obs.requests == 1
    assert sockets.all_closed()


async def test_lost_request_is_absorbed_by_retransmission() -> None:
    sockets = bound()
    async with FakeStunServer(silence, success) as server:
        obs = await probe(sockets, "127.0.0.1", server.port).run()
    assert obs.error is None, obs.detail
    assert obs.requests == 2
    assert obs.mapped == format_address(sockets.names[0])
    assert obs.duration >= RTO * 0.9  # the answer came only after the first RTO
    ids = {request.transaction_id for request in server.requests}
    assert len(ids) == 1, "a retransmission must reuse the transaction ID"


async def test_silence_is_a_timeout_after_every_request() -> None:
    sockets = bound()
    async with FakeStunServer(silence) as server:
        obs = await probe(sockets, "127.0.0.1", server.port, max_requests=3).run()
    assert obs.error is ErrorKind.TIMEOUT
    assert obs.requests == 3
    assert obs.detail == "no answer to 3 Binding requests"
    assert obs.mapped is None
    assert obs.duration >= RTO * (1 + 2 + 4) * 0.9  # RTO, doubling, after each request
    assert len(server.requests) == 3
    assert len({request.transaction_id for request in server.requests}) == 1
    assert sockets.all_closed()


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (garbage, "not STUN"),
        (other_transaction, "another transaction"),
        (without_mapped, "without (XOR-)MAPPED-ADDRESS"),
        (echo, "a Binding request, not a response"),
    ],
    ids=["garbage", "other-transaction", "without-mapped", "echo"],
)
async def test_bad_datagrams_are_a_bad_reply(reply: Reply, why: str) -> None:
    sockets = bound()
    async with FakeStunServer(reply) as server:
        obs = await probe(sockets, "127.0.0.1", server.port, max_requests=2).run()
    assert obs.error is ErrorKind.BAD_REPLY
    assert obs.mapped is None
    assert obs.requests == 2  # kept waiting for the real answer until the requests ran out
    assert obs.detail is not None
    assert obs.detail.startswith("no valid answer to 2 Binding requests; 2 bad datagrams")
    assert why in obs.detail
    assert sockets.all_closed()


async def test_garbage_shows_its_first_bytes() -> None:
    async with FakeStunServer(garbage) as server:
        obs = await probe(bound(), "127.0.0.1", server.port, max_requests=1).run()
    assert obs.detail is not None
    assert b"HTTP/1.1 403".hex() in obs.detail


async def test_real_answer_after_a_bad_datagram_is_success() -> None:
    """A forged datagram first, then the server's answer: the answer counts."""
    sockets = bound()
    async with FakeStunServer(then(other_transaction, garbage, success)) as server:
        obs = await probe(sockets, "127.0.0.1", server.port).run()
    assert obs.error is None, obs.detail
    assert obs.requests == 1
    assert obs.mapped == format_address(sockets.names[0])


async def test_an_error_response_is_the_server_reached_at_once() -> None:
    """The server read our request and answered in STUN: the path is open, not tampered."""
    async with FakeStunServer(error(420, "Unknown Attribute")) as server:
        obs = await probe(bound(), "127.0.0.1", server.port).run()
    assert obs.error is None
    assert obs.mapped is None
    assert obs.detail == "Binding error response: 420 Unknown Attribute (the server answered)"
    assert obs.requests == 1  # the error response ends the transaction
    assert len(server.requests) == 1


async def test_closed_port_is_refused() -> None:
    sockets = bound()
    sock = sockets(socket.AF_INET)  # bound first, so the closed port cannot be its own
    port = _free_udp_port()  # bound, then closed: the kernel answers port unreachable
    check = StunProbe(lambda _family: sock, "127.0.0.1", port, rto=2.0)
    obs = await check.run()
    assert obs.error is ErrorKind.REFUSED, obs.detail
    assert obs.requests == 1
    assert obs.duration < 2.0  # the ICMP error, not a retransmission timeout
    assert sockets.all_closed()


async def test_ipv6_loopback() -> None:
    reason = ipv6_loopback()
    if reason is not None:
        print(f"skipping the IPv6 case: {reason}")
        pytest.skip(reason)
    sockets = bound("::1")
    async with FakeStunServer(success, host="::1") as server:
        obs = await probe(sockets, "::1", server.port).run()
    assert obs.error is None, obs.detail
    host, port = sockets.names[0]
    assert obs.mapped == f"[::1]:{port}"
    assert host == "::1"


async def test_proxy_network_has_no_udp() -> None:
    proxied = Network(name="tor", proxy=Proxy(scheme="socks5", host="127.0.0.1", port=9))
    sockets = Sockets(proxied)
    obs = await probe(sockets, "127.0.0.1", 3478).run()
    assert obs.error is ErrorKind.NETWORK_SETUP
    assert obs.detail is not None
    assert "SOCKS" in obs.detail
    assert obs.requests == 0
    assert obs.duration == 0.0
    assert sockets.made == []


# --- cancellation ------------------------------------------------------------------------------


async def test_cancellation_closes_the_socket() -> None:
    sockets = bound()
    async with FakeStunServer(silence) as server:
        check = probe(sockets, "127.0.0.1", server.port, rto=30.0)
        task = asyncio.create_task(check.run())
        await server.received.wait()  # the request is out; run() waits for the answer
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sockets.all_closed()
        check.close()  # idempotent
        check.close()
    assert len(sockets.made) == 1


async def test_caller_deadline_then_observation() -> None:
    """The caller's asyncio.timeout cuts run(); observation() says what was known."""
    sockets = bound()
    async with FakeStunServer(garbage) as server:
        check = probe(sockets, "127.0.0.1", server.port, rto=30.0)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await check.run()
        check.close()
    assert sockets.all_closed()
    obs = check.observation()
    assert obs.error is ErrorKind.BAD_REPLY
    assert obs.requests == 1
    assert obs.duration >= 0.25


async def test_caller_deadline_in_silence_is_a_timeout() -> None:
    sockets = bound()
    async with FakeStunServer(silence) as server:
        check = probe(sockets, "127.0.0.1", server.port, rto=30.0)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await check.run()
        check.close()
    obs = check.observation()
    assert obs.error is ErrorKind.TIMEOUT
    assert obs.detail == "no answer to 1 Binding request"
    assert sockets.all_closed()


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="rto"):
        StunProbe(bound(), "127.0.0.1", 3478, rto=0)
    with pytest.raises(ValueError, match="max_requests"):
        StunProbe(bound(), "127.0.0.1", 3478, max_requests=0)


def test_format_address_brackets_ipv6() -> None:
    assert format_address(("192.0.2.1", 3478)) == "192.0.2.1:3478"
    assert format_address(("2001:db8::1", 5000)) == "[2001:db8::1]:5000"
