"""exporter.probes.path: where on the path an exchange ends.

`conclude` is a pure table. `localise` runs for real in namespaces the test makes: a client,
three routers and a server (IPv4 and IPv6), the censor's rules in nftables on the first
router, listeners made inside the namespaces by this process. Nothing leaves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from exporter.config.model import Network, Proxy
from exporter.model.observation import PathOutcome, Phase
from exporter.probes.network import Dialer, namespace
from exporter.probes.path import Result, Step, conclude, localise
from tests.fakes.certs import Pki, make_pki

E, R, S, X = Step.EXPIRED, Step.REACHED, Step.SILENCE, Step.RESET
BEFORE, DROPPED = PathOutcome.BEFORE_DESTINATION, PathOutcome.DROPPED
AT, UNSURE = PathOutcome.AT_DESTINATION, PathOutcome.INCONCLUSIVE


def steps(
    *kinds: Step, routers: tuple[str, ...] = ("10.0.0.1", "10.0.1.1", "10.0.2.1")
) -> list[Result]:
    """Results by TTL from 1; an expiry names the router of its hop."""
    out = []
    for ttl, kind in enumerate(kinds, start=1):
        sender = routers[ttl - 1] if kind is E and ttl <= len(routers) else None
        out.append(Result(ttl, kind, sender or ("192.0.2.9" if kind is R else None)))
    return out


#: A trace reaching the destination at TTL 4 through three routers that answer.
TRACE4 = steps(E, E, E, R)
#: The same, with the second router silent (it filters ICMP).
TRACE4_GAP = steps(E, S, E, R)


@pytest.mark.parametrize(
    ("trace", "exchange", "outcome", "hop"),
    [
        # the destination answers at its own distance: its doing
        (TRACE4, steps(E, E, E, Step.SYN_ACK), AT, 4),
        (TRACE4, steps(E, E, E, X), AT, 4),
        (TRACE4, steps(E, E, E, S), AT, 4),
        # a filter on hop 1 resets from TTL 2 on, a proxy on hop 1 answers from TTL 1
        (TRACE4, steps(E, X, X, X), BEFORE, 2),
        (TRACE4, steps(*[Step.SYN_ACK] * 4), BEFORE, 1),
        (TRACE4, steps(*[Step.ANSWER] * 4), BEFORE, 1),
        (TRACE4, steps(E, Step.UNREACHABLE, X, X), BEFORE, 2),
        # a drop on hop 1 that the trace passes
        (TRACE4, steps(E, S, S, S), DROPPED, 2),
        # the destination beyond: the trace's routers go on, the destination never answers it
        (steps(E, E, E, E, S), steps(E, X, X, X, X), BEFORE, 2),
        # answered one hop before the last that the trace shows: a front-end, not proof
        (steps(E, E, S), steps(E, E, X), UNSURE, 3),
        (TRACE4, steps(E, E, X, X), UNSURE, 3),
        # silence where the trace is silent too: ICMP filtered or everything dropped
        (steps(E, S, S, S), steps(E, S, S, S), UNSURE, 2),
        (TRACE4_GAP, steps(E, S, S, S), UNSURE, 2),
        # uneven: a router that filters ICMP between ones that answer
        (TRACE4_GAP, steps(E, S, E, Step.SYN_ACK), UNSURE, None),
        (TRACE4, steps(E, X, E, X), UNSURE, None),
        (TRACE4, steps(E, X, S, X), UNSURE, None),
        # nothing to judge
        (TRACE4, steps(E, E), UNSURE, None),
        (TRACE4, steps(E, Step.NO_CONNECTION, X, X), UNSURE, None),
    ],
)  # fmt: skip
def test_conclude(
    trace: list[Result], exchange: list[Result], outcome: PathOutcome, hop: int | None
) -> None:
    found = conclude(Phase.CONNECT, "192.0.2.9", trace, exchange)
    assert (found.outcome, found.hop if outcome is not PathOutcome.INCONCLUSIVE else hop) == (
        outcome,
        hop,
    ), found.detail
    assert found.detail
    if outcome is not PathOutcome.INCONCLUSIVE:
        assert found.hop == hop


def test_conclude_names_the_routers_and_the_distance() -> None:
    found = conclude(
        Phase.CONNECT, "192.0.2.9", TRACE4, steps(E, Step.RESET, Step.RESET, Step.RESET)
    )
    assert found.distance == 4
    assert found.routers == ("10.0.0.1", "10.0.1.1", "10.0.2.1")
    assert found.router(1) == "10.0.0.1"
    assert found.router(9) is None
    assert found.answer == "reset"
    assert "hop 1 is 10.0.0.1" in found.detail
    assert "4 hops away" in found.detail


# --- for real, in namespaces -------------------------------------------------------------------

V4 = {"server": "198.51.100.10", "r1": "10.91.0.1"}
V6 = {"server": "2001:db8:91::10"}


@dataclass(frozen=True, slots=True)
class Chain:
    """client -- r1 -- r2 -- r3 -- server; each router its own namespace."""

    client: str
    r1: str
    r2: str
    r3: str
    server: str

    def all(self) -> tuple[str, ...]:
        return (self.client, self.r1, self.r2, self.r3, self.server)


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=20)


def nft(ns: str, script: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"],
        input=script.encode(),
        check=True,
        capture_output=True,
        timeout=20,
    )


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None:
        pytest.fail("these tests need root, iproute2 and nftables (CI has them)")
    tag = uuid.uuid4().hex[:6]
    c = Chain(*(f"mxp-{tag}-{role}" for role in ("c", "r1", "r2", "r3", "s")))
    try:
        for ns in c.all():
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            for key, value in (
                ("net.ipv4.icmp_ratelimit", "0"),
                ("net.ipv6.icmp.ratelimit", "0"),
                ("net.ipv4.conf.all.rp_filter", "0"),
            ):
                run("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")
        links = list(zip(c.all(), c.all()[1:], strict=False))
        for i, (a, b) in enumerate(links):
            run(
                "ip",
                "-n",
                a,
                "link",
                "add",
                f"up{i}",
                "type",
                "veth",
                "peer",
                "name",
                f"dn{i}",
                "netns",
                b,
            )
            run("ip", "-n", a, "addr", "add", f"10.91.{i}.2/24", "dev", f"up{i}")
            run("ip", "-n", b, "addr", "add", f"10.91.{i}.1/24", "dev", f"dn{i}")
            run("ip", "-n", a, "addr", "add", f"fd91:{i}::2/64", "dev", f"up{i}", "nodad")
            run("ip", "-n", b, "addr", "add", f"fd91:{i}::1/64", "dev", f"dn{i}", "nodad")
            run("ip", "-n", a, "link", "set", f"up{i}", "up")
            run("ip", "-n", b, "link", "set", f"dn{i}", "up")
        # Routers forward; each side routes everything towards the other end.
        for i, ns in enumerate(c.all()):
            if ns not in (c.client, c.server):
                run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
                run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
            if i < len(links):  # towards the server: the next hop up
                run("ip", "-n", ns, "route", "add", f"{V4['server']}/32", "via", f"10.91.{i}.1")
                run(
                    "ip",
                    "-n",
                    ns,
                    "-6",
                    "route",
                    "add",
                    f"{V6['server']}/128",
                    "via",
                    f"fd91:{i}::1",
                )
            if i > 1:  # back to the client (r1 is on the client's link)
                run("ip", "-n", ns, "route", "add", "10.91.0.0/24", "via", f"10.91.{i - 1}.2")
                run("ip", "-n", ns, "-6", "route", "add", "fd91:0::/64", "via", f"fd91:{i - 1}::2")
        run("ip", "-n", c.server, "addr", "add", f"{V4['server']}/32", "dev", "lo")
        run("ip", "-n", c.server, "addr", "add", f"{V6['server']}/128", "dev", "lo")
        for ns in c.all():
            nft(ns, BASE_RULESET)
        yield c
    finally:
        for ns in c.all():
            subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)


BASE_RULESET = """
table inet t {
    chain fw { type filter hook forward priority 0; }
    chain out { type filter hook output priority 0; }
    chain pre { type nat hook prerouting priority -100; }
}
"""


def client(chain: Chain) -> Dialer:
    return Dialer(Network(name="uplink", netns=chain.client))


@dataclass
class Listener:
    """A TCP listener made inside a namespace, served by this event loop: `mode` accept-only
    (a SYN-ACK and silence), reset (reads, then a reset), or tls (a real handshake)."""

    server: asyncio.Server
    port: int


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "path")


async def listen(
    ns: str, host: str, port: int, mode: str, pki: Pki | None = None
) -> asyncio.Server:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with namespace(ns):
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    sock.setblocking(False)
    ctx = None
    if mode == "tls":
        assert pki is not None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        pki.ca.issue_cert("svc.test").configure_cert(ctx)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if mode == "reset":
            await reader.read(1)
            raw = writer.get_extra_info("socket")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            writer.transport.abort()
            return
        with contextlib.suppress(OSError, ssl.SSLError):
            await reader.read(65536)  # tls: the handshake happens in start_server's ssl
        writer.close()

    return await asyncio.start_server(handle, sock=sock, ssl=ctx)


@pytest.fixture
async def servers(chain: Chain, pki: Pki) -> AsyncIterator[None]:
    started = [
        await listen(chain.server, V4["server"], 443, "tls", pki),
        await listen(chain.server, V6["server"], 443, "tls", pki),
        await listen(chain.r1, "0.0.0.0", 8443, "reset"),
        await listen(chain.r1, "0.0.0.0", 8444, "accept"),
    ]
    try:
        yield
    finally:
        for server in started:
            server.close()
            await server.wait_closed()


def client_hello(name: str) -> bytes:
    ctx = ssl.create_default_context()
    hello = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), hello, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return hello.read()


class Rules:
    """nft rules added to one router for a test, removed after it."""

    def __init__(self, ns: str, *rules: str) -> None:
        self.ns = ns
        self.rules = rules

    def __enter__(self) -> None:
        nft(self.ns, "\n".join(self.rules))

    def __exit__(self, *exc: object) -> None:
        nft(self.ns, "flush table inet t")


@pytest.mark.parametrize("address", [V4["server"], V6["server"]], ids=["ipv4", "ipv6"])
async def test_a_clean_path_ends_at_the_destination(
    chain: Chain, servers: None, address: str
) -> None:
    dialer = client(chain)
    connect = await localise(dialer, Phase.CONNECT, address, 443, max_hops=8)
    assert (connect.outcome, connect.distance, connect.hop) == (PathOutcome.AT_DESTINATION, 4, 4), (
        connect.detail
    )
    assert len(connect.routers) == 3
    assert all(connect.routers)
    hello = await localise(
        dialer, Phase.TLS, address, 443, payload=client_hello("svc.test"), max_hops=8
    )
    assert (hello.outcome, hello.hop, hello.answer) == (PathOutcome.AT_DESTINATION, 4, "answer"), (
        hello.detail
    )


@pytest.mark.parametrize("address", [V4["server"], V6["server"]], ids=["ipv4", "ipv6"])
async def test_a_reset_injected_on_hop_1(chain: Chain, servers: None, address: str) -> None:
    family = "ip6" if ":" in address else "ip"
    with Rules(
        chain.r1, f"add rule inet t fw {family} daddr {address} tcp dport 443 reject with tcp reset"
    ):
        found = await localise(client(chain), Phase.CONNECT, address, 443, max_hops=8)
    assert (found.outcome, found.hop, found.answer) == (
        PathOutcome.BEFORE_DESTINATION,
        2,
        "reset",
    ), found.detail
    assert found.router(1) is not None
    assert found.router(1) in found.detail


async def test_a_drop_on_hop_1_that_other_traffic_passes(chain: Chain, servers: None) -> None:
    address = V4["server"]
    with Rules(chain.r1, f"add rule inet t fw ip daddr {address} tcp dport 443 drop"):
        found = await localise(client(chain), Phase.CONNECT, address, 443, max_hops=8)
    assert (found.outcome, found.hop, found.answer) == (PathOutcome.DROPPED, 2, "silence"), (
        found.detail
    )


async def test_a_transparent_proxy_on_hop_1(chain: Chain, servers: None) -> None:
    address = V4["server"]
    with Rules(chain.r1, f"add rule inet t pre ip daddr {address} tcp dport 443 redirect to :8443"):
        syn = await localise(client(chain), Phase.CONNECT, address, 443, max_hops=8)
        hello = await localise(
            client(chain), Phase.TLS, address, 443, payload=client_hello("svc.test"), max_hops=8
        )
    assert (syn.outcome, syn.hop, syn.answer) == (PathOutcome.BEFORE_DESTINATION, 1, "syn-ack"), (
        syn.detail
    )
    assert (hello.outcome, hello.hop, hello.answer) == (
        PathOutcome.BEFORE_DESTINATION,
        1,
        "reset",
    ), hello.detail


async def test_a_router_that_filters_icmp_is_inconclusive(chain: Chain, servers: None) -> None:
    """r2 sends no time-exceeded: a drop on r1 can no longer be told from r2's silence."""
    address = V4["server"]
    with (
        Rules(chain.r2, "add rule inet t out icmp type time-exceeded drop"),
        Rules(chain.r1, f"add rule inet t fw ip daddr {address} tcp dport 443 drop"),
    ):
        found = await localise(client(chain), Phase.CONNECT, address, 443, max_hops=8)
    assert found.outcome is PathOutcome.INCONCLUSIVE, found.detail
    assert "filters ICMP" in found.detail
    assert found.routers[1] is None  # hop 2 never answered


async def test_a_proxy_network_cannot_be_localised() -> None:
    proxied = Dialer(Network(name="tor", proxy=Proxy(scheme="socks5", host="127.0.0.1", port=9)))
    found = await localise(proxied, Phase.CONNECT, "127.0.0.1", 443)
    assert found.outcome is PathOutcome.INCONCLUSIVE
    assert "proxy" in found.detail
    assert found.probes == 0
