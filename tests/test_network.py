"""The network seam against real sockets: source binding, interface binding, a namespace the
test makes, and a real SOCKS5 server (Debian's microsocks)."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from exporter.config.model import Network, Proxy
from exporter.model.observation import ErrorKind
from exporter.probes.errors import NetworkSetupError, ProxyFailure, ProxyUnsupported, classify
from exporter.probes.network import Dialer, namespace, setup_problem
from tests.fakes.stamps import stamping_on


class BannerServer:
    """Accepts, records the peer address, sends a banner and closes."""

    def __init__(self, banner: bytes) -> None:
        self.banner = banner
        self.peers: list[str] = []
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[0])
        writer.write(self.banner)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def start(self, sock: socket.socket) -> None:
        self.server = await asyncio.start_server(self._handle, sock=sock)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(16)
    sock.setblocking(False)
    return sock


@pytest.fixture
async def banner() -> AsyncIterator[tuple[BannerServer, int]]:
    server = BannerServer(b"host")
    sock = listening_socket()
    port = sock.getsockname()[1]
    await server.start(sock)
    yield server, port
    await server.close()


async def read_banner(sock: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.sock_recv(sock, 64), 5)
    finally:
        sock.close()


async def test_default_network_connects(banner: tuple[BannerServer, int]) -> None:
    server, port = banner
    sock = await Dialer(Network(name="default")).connect_tcp("127.0.0.1", port)
    assert await read_banner(sock) == b"host"
    assert server.peers == ["127.0.0.1"]


async def test_handshake_rtt_is_the_kernels_not_the_event_loops(
    banner: tuple[BannerServer, int],
) -> None:
    """The connect's wall-clock time holds the loop's wake-up; TCP_INFO's RTT does not. The
    loop is held for 50 ms while the loopback handshake completes in the kernel: the
    wall-clock connect takes at least that long, the kernel's RTT stays far below it."""
    _, port = banner
    dialer = Dialer(Network(name="default"))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    task = asyncio.create_task(dialer.connect_tcp("127.0.0.1", port))
    await asyncio.sleep(0)  # the task runs up to connect(): the SYN is sent
    time.sleep(0.05)  # noqa: ASYNC251  # holding the loop is the point: a busy exporter
    sock = await task
    wall = loop.time() - t0
    rtt = dialer.handshake_rtt(sock)
    sock.close()
    assert wall >= 0.05
    assert rtt is not None
    assert 0 < rtt < 0.01, (
        f"kernel RTT {rtt * 1000:.3f} ms, wall-clock connect {wall * 1000:.1f} ms"
    )


async def test_source_address_is_bound(banner: tuple[BannerServer, int]) -> None:
    server, port = banner
    dialer = Dialer(Network(name="b", source_address="127.0.0.2"))
    assert await read_banner(await dialer.connect_tcp("127.0.0.1", port)) == b"host"
    assert server.peers == ["127.0.0.2"]
    udp = dialer.udp_socket(socket.AF_INET)
    try:
        assert udp.getsockname()[0] == "127.0.0.2"
    finally:
        udp.close()


async def test_source_address_of_other_family_is_a_setup_error() -> None:
    dialer = Dialer(Network(name="b", source_address="127.0.0.2"))
    with pytest.raises(NetworkSetupError, match="cannot reach an IPv6 destination") as info:
        await dialer.connect_tcp("::1", 9)
    assert classify(info.value) is ErrorKind.NETWORK_SETUP


async def test_unusable_source_address_is_a_setup_error() -> None:
    # 192.0.2.1 (TEST-NET-1) is not configured on this machine; bind fails locally, no packet
    # is ever sent.
    dialer = Dialer(Network(name="b", source_address="192.0.2.1"))
    with pytest.raises(NetworkSetupError, match=r"source address 192\.0\.2\.1") as info:
        await dialer.connect_tcp("127.0.0.1", 9)
    assert info.value.errno == errno.EADDRNOTAVAIL
    assert classify(info.value) is ErrorKind.NETWORK_SETUP


async def test_interface_binding(banner: tuple[BannerServer, int]) -> None:
    _, port = banner
    sock = await Dialer(Network(name="lo", interface="lo")).connect_tcp("127.0.0.1", port)
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0") == b"lo"
    assert await read_banner(sock) == b"host"


async def test_missing_interface_is_a_setup_error() -> None:
    dialer = Dialer(Network(name="x", interface="mx-nosuch0"))
    with pytest.raises(NetworkSetupError, match="interface 'mx-nosuch0'") as info:
        await dialer.connect_tcp("127.0.0.1", 9)
    assert classify(info.value) is ErrorKind.NETWORK_SETUP


async def test_missing_namespace_is_a_setup_error() -> None:
    dialer = Dialer(Network(name="x", netns="mx-nosuch-ns"))
    with pytest.raises(NetworkSetupError, match="network namespace 'mx-nosuch-ns'"):
        await dialer.connect_tcp("127.0.0.1", 9)


# --- a namespace the test makes -------------------------------------------------------------


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("this test needs root and iproute2's `ip` (CI runs as root)")
    name = f"mx-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


async def test_netns_sockets_live_in_the_namespace(
    netns: str, banner: tuple[BannerServer, int]
) -> None:
    host_server, port = banner
    # The same address and port inside the namespace: only a socket made there reaches it.
    with namespace(netns):
        inner_sock = listening_socket(port=port)
    inner = BannerServer(b"inner")
    await inner.start(inner_sock)
    try:
        inside = Dialer(Network(name="vpn", netns=netns))
        assert await read_banner(await inside.connect_tcp("127.0.0.1", port)) == b"inner"
        outside = Dialer(Network(name="default"))
        assert await read_banner(await outside.connect_tcp("127.0.0.1", port)) == b"host"
        assert inner.peers == ["127.0.0.1"]
        assert host_server.peers == ["127.0.0.1"]
    finally:
        await inner.close()


async def test_netns_udp_socket_is_in_the_namespace(netns: str) -> None:
    with namespace(netns):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setblocking(False)
    port = receiver.getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        sender = Dialer(Network(name="vpn", netns=netns)).udp_socket(socket.AF_INET)
        try:
            await loop.sock_sendto(sender, b"ping", ("127.0.0.1", port))
            data, _ = await asyncio.wait_for(loop.sock_recvfrom(receiver, 16), 5)
            assert data == b"ping"
        finally:
            sender.close()
    finally:
        receiver.close()


def test_namespace_is_left_after_the_block(netns: str) -> None:
    before = os.readlink("/proc/thread-self/ns/net")
    with namespace(netns):
        inside = os.readlink("/proc/thread-self/ns/net")
    assert inside != before
    assert os.readlink("/proc/thread-self/ns/net") == before


# --- SOCKS5 through a real server -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_listening(port: int, proc: asyncio.subprocess.Process) -> None:
    """Poll until the proxy accepts: it announces nothing we could await."""
    loop = asyncio.get_running_loop()
    for _ in range(200):
        if proc.returncode is not None:
            raise RuntimeError(f"microsocks exited with {proc.returncode}")
        with socket.socket() as probe:
            probe.setblocking(False)
            try:
                await loop.sock_connect(probe, ("127.0.0.1", port))
                return
            except ConnectionRefusedError:
                await asyncio.sleep(0.02)
    raise RuntimeError("microsocks did not start listening")


@pytest.fixture
async def microsocks() -> AsyncIterator[tuple[int, str, str]]:
    binary = shutil.which("microsocks")
    if binary is None:
        pytest.fail("Debian's microsocks is required (apt-get install microsocks; .ci/run does)")
    port = free_port()
    user, password = "probe", "s3cret-pass"
    proc = await asyncio.create_subprocess_exec(
        binary,
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-u",
        user,
        "-P",
        password,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_listening(port, proc)
        yield port, user, password
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 5)


async def test_socks5_with_credentials(
    microsocks: tuple[int, str, str], banner: tuple[BannerServer, int]
) -> None:
    proxy_port, user, password = microsocks
    server, port = banner
    proxy = Proxy(
        scheme="socks5", host="127.0.0.1", port=proxy_port, username=user, password=password
    )
    dialer = Dialer(Network(name="tor", proxy=proxy))
    sock = await dialer.connect_tcp("127.0.0.1", port)
    assert dialer.handshake_rtt(sock) is None  # the kernel knows only the hop to the proxy
    assert await read_banner(sock) == b"host"
    assert server.peers == ["127.0.0.1"]
    assert password not in dialer.describe()
    assert password not in repr(proxy)


async def test_socks5_wrong_password(microsocks: tuple[int, str, str]) -> None:
    proxy_port, user, _ = microsocks
    proxy = Proxy(
        scheme="socks5", host="127.0.0.1", port=proxy_port, username=user, password="wrong"
    )
    with pytest.raises(ProxyFailure) as info:
        await Dialer(Network(name="tor", proxy=proxy)).connect_tcp("127.0.0.1", 9)
    assert classify(info.value) is ErrorKind.PROXY


async def test_socks5_refusal_behind_the_proxy_is_refused(
    microsocks: tuple[int, str, str],
) -> None:
    proxy_port, user, password = microsocks
    closed = free_port()
    proxy = Proxy(
        scheme="socks5", host="127.0.0.1", port=proxy_port, username=user, password=password
    )
    with pytest.raises(ProxyFailure) as info:
        await Dialer(Network(name="tor", proxy=proxy)).connect_tcp("127.0.0.1", closed)
    assert info.value.reached
    assert classify(info.value) is ErrorKind.REFUSED


async def test_dead_proxy_is_a_proxy_error() -> None:
    proxy = Proxy(scheme="socks5", host="127.0.0.1", port=free_port())
    with pytest.raises(ProxyFailure, match="cannot reach proxy") as info:
        await Dialer(Network(name="tor", proxy=proxy)).connect_tcp("127.0.0.1", 9)
    assert classify(info.value) is ErrorKind.PROXY


def test_proxy_network_refuses_udp() -> None:
    proxy = Proxy(scheme="socks5", host="127.0.0.1", port=1080)
    with pytest.raises(ProxyUnsupported, match="carries TCP only"):
        Dialer(Network(name="tor", proxy=proxy)).udp_socket(socket.AF_INET)


def test_stream_reads_carry_the_arrival_stamp_on_asyncio_and_uvloop() -> None:
    """`sock_recv_stamped` on TCP: data comes with how long it waited in the kernel (here
    the 50 ms the test held it), the end of the stream with no stamp; on both loops."""
    from exporter.probes.network import sock_recv_stamped, stamp_arrivals
    from exporter.runtime.app import loop_factory

    async def exchange() -> tuple[bytes, float | None, bytes, float | None]:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            with client, server:
                client.setblocking(False)
                assert stamp_arrivals(client)  # Linux on this machine's architecture
                reading = asyncio.create_task(sock_recv_stamped(client, 100))
                await asyncio.sleep(0)  # the read waits: nothing sent yet
                server.sendall(b"data")
                time.sleep(0.05)  # noqa: ASYNC251  # the data waits in the kernel meanwhile
                data, waited = await asyncio.wait_for(reading, 5)
                server.close()
                end, none = await asyncio.wait_for(sock_recv_stamped(client, 100), 5)
                return data, waited, end, none

    for choice in ("asyncio", "uvloop"):
        with stamping_on(), asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
            data, waited, end, none = runner.run(exchange())
        assert data == b"data", choice
        assert waited is not None, choice
        assert 0.045 <= waited < 1.0, (choice, waited)
        assert (end, none) == (b"", None), choice


def test_udp_helpers_work_on_asyncio_and_uvloop() -> None:
    """`sock_send`/`sock_recv(from)_stamped` stand in for the loop methods uvloop lacks: a
    datagram goes out on a connected socket and one comes back, on both loops
    (MESSAGING_EXPORTER_LOOP=uvloop runs the exporter on uvloop)."""
    import asyncio

    from exporter.probes.network import (
        sock_recv_stamped,
        sock_recvfrom_stamped,
        sock_send,
        stamp_arrivals,
    )
    from exporter.runtime.app import loop_factory

    async def exchange() -> tuple[bytes, bytes]:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            a.setblocking(False)
            b.setblocking(False)
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", 0))
            a.connect(b.getsockname())
            b.connect(a.getsockname())
            receive = asyncio.create_task(sock_recvfrom_stamped(b, 100))  # waits: none sent
            await asyncio.sleep(0)
            await sock_send(a, b"ping")
            got, sender, _ = await asyncio.wait_for(receive, 5)
            assert sender == a.getsockname()
            await sock_send(b, b"pong")
            assert stamp_arrivals(a)  # Linux on this machine's architecture
            back, waited = await asyncio.wait_for(sock_recv_stamped(a, 100), 5)
            assert waited is not None
            assert 0.0 <= waited < 1.0  # the arrival stamp was read: a wait, not a date
            return got, back

    for choice in ("asyncio", "uvloop"):
        factory = loop_factory(choice)
        with stamping_on(), asyncio.Runner(loop_factory=factory) as runner:
            loop_type = type(runner.get_loop()).__module__
            assert runner.run(exchange()) == (b"ping", b"pong"), loop_type
        if choice == "uvloop":
            assert loop_type.startswith("uvloop"), "uvloop is in the test extra: it must be used"


# --- the host check behind `check`, start-up, reload and setup_error ---------------------------


@pytest.mark.parametrize(
    ("network", "line"),
    [
        (Network(name="lo"), None),
        (Network(name="lo", interface="lo", source_address="127.0.0.2"), None),
        (Network(name="v6", source_address="::1"), None),
        (
            Network(name="wg0", interface="mx-nosuch0"),
            'networks.wg0.interface: no such interface "mx-nosuch0"',
        ),
        (
            Network(name="vpn", netns="mx-nosuch-ns"),
            'networks.vpn.netns: no such network namespace "mx-nosuch-ns"',
        ),
        # TEST-NET-1 is on no interface here: the bind fails locally, no packet is sent.
        (
            Network(name="b", source_address="192.0.2.10"),
            "networks.b.source_address: 192.0.2.10 is not an address of this host",
        ),
    ],
)
def test_setup_problem_names_the_key(network: Network, line: str | None) -> None:
    problem = setup_problem(network)
    assert (problem.line(network.name) if problem else None) == line


def test_setup_problem_looks_inside_the_namespace(netns: str) -> None:
    """The interface and the address are looked for where the sockets will be made: inside
    the network's namespace, not on the host."""
    # A veth pair stands for the VPN's interface (this kernel has no dummy driver).
    subprocess.run(
        ["ip", "-n", netns, "link", "add", "mx-wg0", "type", "veth", "peer", "name", "mx-wg0p"],
        check=True,
    )
    subprocess.run(["ip", "-n", netns, "addr", "add", "192.0.2.77/32", "dev", "mx-wg0"], check=True)
    inside = Network(name="vpn", netns=netns, interface="mx-wg0", source_address="192.0.2.77")
    assert setup_problem(inside) is None
    # Neither exists on the host itself.
    on_host = setup_problem(Network(name="h", interface="mx-wg0"))
    assert on_host is not None
    assert on_host.key == "interface"
    missing = setup_problem(Network(name="vpn", netns=netns, interface="mx-wg1"))
    assert missing is not None
    assert missing.line("vpn") == (
        f'networks.vpn.interface: no such interface "mx-wg1" in network namespace "{netns}"'
    )
    subprocess.run(["ip", "-n", netns, "link", "del", "mx-wg0"], check=True)
    gone = setup_problem(Network(name="vpn", netns=netns, source_address="192.0.2.77"))
    assert gone is not None
    assert gone.key == "source_address"
