"""exporter.probes.dns against a real fake DNS server on loopback, over every transport.

Everything here talks to 127.0.0.0/8 or ::1 only. Synchronisation is by awaiting the server
(`wait_for_queries`), never by sleeping; wall-clock checks only bound the timeout budget.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import h11
import pytest

from exporter.config.model import Network, Proxy, Resolver, ResolverType, TlsOptions
from exporter.model.observation import ErrorKind
from exporter.probes import dns as resolvers
from exporter.probes.dns import doh, exchange, query
from exporter.probes.dns import system as system_resolver
from exporter.probes.dns.call import Trace, address_query
from exporter.probes.network import Dialer
from exporter.probes.tls import TlsContexts
from tests.fakes.certs import Pki, make_pki
from tests.fakes.dns_server import Behaviour, FakeDnsServer
from tests.fakes.stamps import stamping_on

ZONE = {
    "a.test": {"A": ["192.0.2.1", "192.0.2.2"], "AAAA": ["2001:db8::1", "2001:db8::2"]},
    "v4only.test": {"A": ["192.0.2.7"]},
    "alias.test": {"CNAME": ["hop.test"]},
    "hop.test": {"CNAME": ["a.test"]},
    "outside.test": {"CNAME": ["elsewhere.example"]},
    "slow.test": {"A": ["192.0.2.9"]},
}
CHAOS = {"id.server": ["fake-1"]}
SERVER_NAME = "dns.test"

ENCRYPTED = (ResolverType.DOT, ResolverType.DOH, ResolverType.DOQ, ResolverType.DOH3)
ALL = (ResolverType.UDP, ResolverType.TCP, *ENCRYPTED)
#: The fake server's transport name that each resolver type should reach.
SERVED_BY = {
    ResolverType.UDP: "udp",
    ResolverType.TCP: "tcp",
    ResolverType.DOT: "dot",
    ResolverType.DOH: "doh",
    ResolverType.DOQ: "doq",
    ResolverType.DOH3: "doh3",
    ResolverType.SYSTEM: "udp",
}
DEFAULT = Dialer(Network(name="default"))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest.fixture
def foreign_pki(tmp_path: Path) -> Pki:
    """A CA the exporter is not told about: a stand-in for an intercepting middlebox."""
    return make_pki(tmp_path, "foreign")


@pytest.fixture
async def server(pki: Pki) -> AsyncIterator[FakeDnsServer]:
    async with FakeDnsServer(ZONE, pki=pki, chaos=CHAOS) as fake:
        yield fake


@pytest.fixture
def contexts() -> TlsContexts:
    return TlsContexts()


def make_resolver(
    server: FakeDnsServer, kind: ResolverType, *, tls: TlsOptions | None = None, **kw: Any
) -> Resolver:
    """A resolver of type `kind` pointing at `server`, trusting its CA by default."""
    if tls is None:
        tls = TlsOptions(ca_file=str(server.pki.ca_file), server_name=SERVER_NAME)
    port = server.port(SERVED_BY[kind])
    fields: dict[str, Any] = {"name": kind.value, "type": kind, "port": port, "tls": tls}
    if kind in (ResolverType.DOH, ResolverType.DOH3):
        fields["url"] = f"https://{SERVER_NAME}:{port}/dns-query"
    if kind is not ResolverType.SYSTEM:
        fields["address"] = server.host
    fields.update(kw)
    return Resolver(**fields)


def closed_port(kind: socket.SocketKind, host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class RecordingDialer(Dialer):
    """A dialer that remembers every socket it made, to prove they all get closed."""

    def __init__(self, network: Network) -> None:
        super().__init__(network)
        self.sockets: list[socket.socket] = []

    def make_socket(self, family: socket.AddressFamily, kind: socket.SocketKind) -> socket.socket:
        sock = super().make_socket(family, kind)
        self.sockets.append(sock)
        return sock

    def all_closed(self) -> bool:
        return all(sock.fileno() == -1 for sock in self.sockets)


# --- answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL)
async def test_a_answer(server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType) -> None:
    resolver = make_resolver(server, kind)
    obs = await query(resolver, DEFAULT, "a.test", "A", contexts=contexts, timeout=5)
    assert obs.error is None, obs.detail
    assert obs.rcode == "NOERROR"
    assert obs.answers == ("192.0.2.1", "192.0.2.2")
    assert obs.cnames == ()
    assert obs.ttl == 300
    assert 0 < obs.duration < 5
    # It went where the transport says, and only there.
    assert server.counts == {SERVED_BY[kind]: 1}


@pytest.mark.parametrize("kind", ALL)
async def test_aaaa_answer(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    obs = await query(
        make_resolver(server, kind), DEFAULT, "a.test", "AAAA", contexts=contexts, timeout=5
    )
    assert obs.error is None, obs.detail
    assert obs.answers == ("2001:db8::1", "2001:db8::2")
    assert server.queries[0].qtype == "AAAA"


async def test_server_labels(server: FakeDnsServer, contexts: TlsContexts) -> None:
    labels = {}
    for kind in ALL:
        resolver = make_resolver(server, kind)
        obs = await query(resolver, DEFAULT, "a.test", "A", contexts=contexts, timeout=5)
        labels[kind] = obs.server
    assert labels[ResolverType.UDP] == f"udp://127.0.0.1:{server.port('udp')}"
    assert labels[ResolverType.TCP] == f"tcp://127.0.0.1:{server.port('tcp')}"
    assert labels[ResolverType.DOT] == f"dot://127.0.0.1:{server.port('dot')}"
    assert labels[ResolverType.DOH] == f"doh://https://{SERVER_NAME}:{server.port('doh')}/dns-query"
    assert labels[ResolverType.DOQ] == f"doq://127.0.0.1:{server.port('doq')}"
    doh3 = server.port("doh3")
    assert labels[ResolverType.DOH3] == f"doh3://https://{SERVER_NAME}:{doh3}/dns-query"


@pytest.mark.parametrize("kind", [ResolverType.UDP, ResolverType.DOH])
async def test_cname_chain_is_followed(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    obs = await query(
        make_resolver(server, kind), DEFAULT, "alias.test", "A", contexts=contexts, timeout=5
    )
    assert obs.error is None, obs.detail
    assert obs.cnames == ("hop.test", "a.test")
    assert obs.answers == ("192.0.2.1", "192.0.2.2")


async def test_cname_out_of_answer_is_no_answer(
    server: FakeDnsServer, contexts: TlsContexts
) -> None:
    obs = await query(
        make_resolver(server, ResolverType.UDP),
        DEFAULT,
        "outside.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is ErrorKind.DNS_NO_ANSWER
    assert obs.rcode == "NOERROR"
    assert obs.cnames == ("elsewhere.example",)
    assert obs.answers == ()


async def test_query_of_an_unsupported_type_is_an_observation(
    server: FakeDnsServer, contexts: TlsContexts
) -> None:
    obs = await query(
        make_resolver(server, ResolverType.UDP),
        DEFAULT,
        "a.test",
        "MX",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is ErrorKind.OTHER
    assert server.counts == {}


# --- rcodes --------------------------------------------------------------------------------

RCODE_CASES = [
    ("nx.test", None, "NXDOMAIN", ErrorKind.DNS_NXDOMAIN),
    ("a.test", "SERVFAIL", "SERVFAIL", ErrorKind.DNS_SERVFAIL),
    ("a.test", "REFUSED", "REFUSED", ErrorKind.DNS_REFUSED),
    ("a.test", "NOTIMP", "NOTIMP", ErrorKind.DNS_BAD_RESPONSE),
    ("v4only.test", None, "NOERROR", ErrorKind.DNS_NO_ANSWER),
]


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize(("name", "override", "rcode", "kind_of_error"), RCODE_CASES)
async def test_rcodes(
    server: FakeDnsServer,
    contexts: TlsContexts,
    kind: ResolverType,
    name: str,
    override: str | None,
    rcode: str,
    kind_of_error: ErrorKind,
) -> None:
    if override is not None:
        server.behave(Behaviour(rcode=override), name)
    qtype = "AAAA" if name == "v4only.test" else "A"
    obs = await query(
        make_resolver(server, kind), DEFAULT, name, qtype, contexts=contexts, timeout=5
    )
    assert obs.error is kind_of_error
    assert obs.rcode == rcode
    assert obs.answers == ()


# --- bad replies ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("behaviour", [Behaviour(wrong_id=True), Behaviour(garbage=True)])
async def test_bad_reply(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType, behaviour: Behaviour
) -> None:
    server.behave(behaviour, "a.test")
    obs = await query(
        make_resolver(server, kind), DEFAULT, "a.test", "A", contexts=contexts, timeout=2
    )
    assert obs.error is ErrorKind.DNS_BAD_RESPONSE, obs.detail
    assert obs.rcode is None


@pytest.mark.parametrize("kind", [ResolverType.DOH, ResolverType.DOH3])
@pytest.mark.parametrize("behaviour", [Behaviour(http_status=503), Behaviour(http_status=404)])
async def test_doh_http_error_is_bad_response(
    server: FakeDnsServer, contexts: TlsContexts, behaviour: Behaviour, kind: ResolverType
) -> None:
    server.behave(behaviour)
    obs = await query(
        make_resolver(server, kind),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is ErrorKind.DNS_BAD_RESPONSE
    assert obs.detail is not None
    assert str(behaviour.http_status) in obs.detail


async def test_doh_wrong_content_type_is_bad_response(
    server: FakeDnsServer, contexts: TlsContexts
) -> None:
    server.behave(Behaviour(content_type="text/html"))
    obs = await query(
        make_resolver(server, ResolverType.DOH),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is ErrorKind.DNS_BAD_RESPONSE
    assert obs.detail is not None
    assert "text/html" in obs.detail


async def test_doh_url_with_ip_host_needs_no_address(
    server: FakeDnsServer, contexts: TlsContexts
) -> None:
    port = server.port("doh")
    resolver = make_resolver(
        server, ResolverType.DOH, address=None, url=f"https://127.0.0.1:{port}/dns-query"
    )
    obs = await query(resolver, DEFAULT, "a.test", "A", contexts=contexts, timeout=5)
    assert obs.error is None, obs.detail


async def test_doh_url_with_a_name_needs_an_address(
    server: FakeDnsServer, contexts: TlsContexts
) -> None:
    resolver = make_resolver(server, ResolverType.DOH, address=None)
    obs = await query(resolver, DEFAULT, "a.test", "A", contexts=contexts, timeout=5)
    assert obs.error is ErrorKind.OTHER
    assert server.counts == {}


# --- time budget ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL)
async def test_drop_times_out_within_budget(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    server.behave(Behaviour(drop=True), "slow.test")
    budget = 0.5
    started = time.monotonic()
    obs = await query(
        make_resolver(server, kind), DEFAULT, "slow.test", "A", contexts=contexts, timeout=budget
    )
    elapsed = time.monotonic() - started
    assert obs.error is ErrorKind.TIMEOUT
    assert obs.rcode is None
    assert budget <= obs.duration < budget + 0.2
    # DoQ may spend QUIC_CLOSE_GRACE closing after the budget; nothing else may overrun.
    assert elapsed < budget + resolvers.QUIC_CLOSE_GRACE + 0.3
    assert server.counts[SERVED_BY[kind]] >= 1


async def test_delay_within_budget_still_answers(
    server: FakeDnsServer, contexts: TlsContexts
) -> None:
    server.behave(Behaviour(delay=0.2), "a.test")
    obs = await query(
        make_resolver(server, ResolverType.TCP),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is None
    assert obs.duration >= 0.2


async def test_udp_reply_time_is_its_arrival_not_the_busy_loops_wake_up(
    contexts: TlsContexts,
) -> None:
    """The kernel stamps a UDP reply's arrival: a reply that waits in the socket while the
    event loop is busy does not count as DNS time. A responder thread answers at once, while
    the test holds the loop for 50 ms: the exchange takes >= 50 ms of wall clock, the
    observation reports the network's part and the exporter's own time apart."""
    received, go = threading.Event(), threading.Event()
    with stamping_on(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(5)

        def respond() -> None:
            wire, peer = udp.recvfrom(512)
            received.set()
            go.wait(5)
            reply = dns.message.make_response(dns.message.from_wire(wire))
            reply.answer.append(dns.rrset.from_text("a.test.", 300, "IN", "A", "192.0.2.1"))
            udp.sendto(reply.to_wire(), peer)

        responder = threading.Thread(target=respond, daemon=True)
        responder.start()
        resolver = Resolver(
            name="udp", type=ResolverType.UDP, address="127.0.0.1", port=udp.getsockname()[1]
        )
        t0 = time.monotonic()
        task = asyncio.create_task(
            query(resolver, DEFAULT, "a.test", "A", contexts=contexts, timeout=5)
        )
        while not received.is_set():  # step the loop until the query is out
            assert not task.done(), task
            await asyncio.sleep(0)
        go.set()
        responder.join(5)  # the reply is in the socket's queue now
        time.sleep(0.05)  # noqa: ASYNC251  # holding the loop is the point: a busy exporter
        obs = await task
        wall = time.monotonic() - t0
    assert obs.error is None, obs.detail
    assert obs.answers == ("192.0.2.1",)
    assert wall >= 0.05
    assert obs.overhead >= 0.045, obs
    assert obs.duration < 0.02, f"{obs.duration * 1e3:.1f} ms reported, {wall * 1e3:.1f} ms wall"
    assert abs(obs.duration + obs.overhead - wall) < 0.02


@pytest.mark.parametrize(
    ("first_sent", "arrived", "elapsed"),
    [
        pytest.param(10.1, 10.3, 0.2, id="stamped"),
        pytest.param(10.1, 11.0, 0.5, id="arrival-after-the-read"),  # the wall clock jumped
        pytest.param(10.1, 10.05, 0.5, id="arrival-before-the-send"),
        pytest.param(None, 10.3, 0.5, id="never-sent"),
        pytest.param(10.1, None, 0.5, id="no-stamp"),
    ],
)
def test_trace_takes_the_kernel_stamp_only_inside_the_exchange(
    first_sent: float | None, arrived: float | None, elapsed: float
) -> None:
    trace = Trace(
        server="udp://x", started=10.0, finished=10.5, first_sent=first_sent, arrived=arrived
    )
    assert trace.elapsed() == pytest.approx(elapsed)
    assert trace.overhead() == pytest.approx(0.5 - elapsed)


@pytest.mark.parametrize(
    ("lost", "answered"),
    [
        pytest.param(0, True, id="none-lost"),
        pytest.param(1, True, id="first-lost"),
        pytest.param(2, True, id="two-lost"),
        pytest.param(3, False, id="all-lost"),
    ],
)
async def test_udp_query_is_resent_inside_the_budget(
    server: FakeDnsServer, contexts: TlsContexts, lost: int, answered: bool
) -> None:
    """A lost UDP query (the server leaves the first `lost` unanswered) is sent again after
    a third of the budget, the same bytes: one lost datagram is not a failed lookup."""
    server.behave(Behaviour(drop_first=lost), "a.test")
    budget = 0.6
    interval = resolvers.resend_interval(budget)
    obs = await query(
        make_resolver(server, ResolverType.UDP),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=budget,
    )
    if answered:
        assert obs.error is None, obs.detail
        assert obs.answers == ("192.0.2.1", "192.0.2.2")
        assert server.counts == {"udp": lost + 1}  # no resend once answered
        assert lost * interval <= obs.duration < lost * interval + 0.15
    else:
        assert obs.error is ErrorKind.TIMEOUT
        assert server.counts == {"udp": resolvers.UDP_SENDS}  # and no more
        assert budget <= obs.duration < budget + 0.2
    # Every send was the same question (a resend, not a new query).
    assert {(q.qname, q.qtype) for q in server.queries} == {("a.test", "A")}


def test_resend_interval() -> None:
    assert resolvers.resend_interval(5.0) == resolvers.UDP_RESEND_MAX  # 1 s, as stubs do
    assert resolvers.resend_interval(0.6) == pytest.approx(0.2)
    assert resolvers.resend_interval(-1.0) == 0.0


@pytest.mark.parametrize(
    "kind", [ResolverType.UDP, ResolverType.TCP, ResolverType.DOT, ResolverType.DOH]
)
@pytest.mark.parametrize("outcome", ["answer", "nxdomain", "timeout", "cancelled"])
async def test_sockets_are_always_closed(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType, outcome: str
) -> None:
    dialer = RecordingDialer(Network(name="default"))
    resolver = make_resolver(server, kind)
    name = {"answer": "a.test", "nxdomain": "nx.test"}.get(outcome, "slow.test")
    server.behave(Behaviour(drop=True), "slow.test")
    task = asyncio.create_task(
        query(
            resolver,
            dialer,
            name,
            "A",
            contexts=contexts,
            timeout=0.3 if outcome == "timeout" else 5,
        )
    )
    if outcome == "cancelled":
        async with asyncio.timeout(5):
            await server.wait_for_queries(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        await task
    assert dialer.sockets
    assert dialer.all_closed()


@pytest.mark.parametrize("kind", [ResolverType.DOQ, ResolverType.DOH3])
async def test_quic_cancelled_mid_query_leaves_no_task(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    server.behave(Behaviour(drop=True), "slow.test")
    before = asyncio.all_tasks()
    resolver = make_resolver(server, kind)
    task = asyncio.create_task(
        query(resolver, DEFAULT, "slow.test", "A", contexts=contexts, timeout=5)
    )
    async with asyncio.timeout(5):
        await server.wait_for_queries(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # dnspython's QUIC sender and receiver tasks ended with the connection.
    assert not [t for t in asyncio.all_tasks() - before if _is_dnspython_quic(t)]


def _is_dnspython_quic(task: asyncio.Task[Any]) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and "dns/quic" in code.co_filename


# --- truncation ----------------------------------------------------------------------------


async def test_truncated_udp_falls_back_to_tcp(
    server: FakeDnsServer, contexts: TlsContexts
) -> None:
    server.behave(Behaviour(truncate=True), "a.test")
    obs = await query(
        make_resolver(server, ResolverType.UDP),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is None, obs.detail
    assert obs.answers == ("192.0.2.1", "192.0.2.2")
    assert server.counts == {"udp": 1, "tcp": 1}


async def test_oversized_udp_reply_falls_back_to_tcp(pki: Pki, contexts: TlsContexts) -> None:
    many = [f"192.0.2.{i}" for i in range(1, 200)]  # > 1232 bytes over UDP
    async with FakeDnsServer({"big.test": {"A": many}}, pki=pki, transports=("udp", "tcp")) as s:
        obs = await query(
            make_resolver(s, ResolverType.UDP),
            DEFAULT,
            "big.test",
            "A",
            contexts=contexts,
            timeout=5,
        )
        assert obs.error is None, obs.detail
        assert obs.answers == tuple(many)
        assert s.counts == {"udp": 1, "tcp": 1}


# --- certificates --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ENCRYPTED)
async def test_untrusted_ca(
    server: FakeDnsServer, foreign_pki: Pki, contexts: TlsContexts, kind: ResolverType
) -> None:
    tls = TlsOptions(ca_file=str(foreign_pki.ca_file), server_name=SERVER_NAME)
    obs = await query(
        make_resolver(server, kind, tls=tls),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is ErrorKind.CERT_UNKNOWN_AUTHORITY, obs.detail
    assert server.counts == {}  # no question ever left


@pytest.mark.parametrize("kind", ENCRYPTED)
async def test_wrong_server_name(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    tls = TlsOptions(ca_file=str(server.pki.ca_file), server_name="other.test")
    obs = await query(
        make_resolver(server, kind, tls=tls),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is ErrorKind.CERT_HOSTNAME, obs.detail
    assert server.counts == {}


@pytest.mark.parametrize("kind", ENCRYPTED)
async def test_extra_ca_adds_to_system_roots(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    tls = TlsOptions(extra_ca_file=str(server.pki.ca_file), server_name=SERVER_NAME)
    obs = await query(
        make_resolver(server, kind, tls=tls),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is None, obs.detail


@pytest.mark.parametrize("kind", ENCRYPTED)
async def test_system_roots_alone_reject_the_test_ca(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    tls = TlsOptions(server_name=SERVER_NAME)
    obs = await query(
        make_resolver(server, kind, tls=tls),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is ErrorKind.CERT_UNKNOWN_AUTHORITY, obs.detail


@pytest.mark.parametrize("kind", ENCRYPTED)
async def test_insecure_skip_verify(
    server: FakeDnsServer, foreign_pki: Pki, contexts: TlsContexts, kind: ResolverType
) -> None:
    tls = TlsOptions(
        ca_file=str(foreign_pki.ca_file), server_name="other.test", insecure_skip_verify=True
    )
    obs = await query(
        make_resolver(server, kind, tls=tls),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is None, obs.detail


@pytest.mark.parametrize("kind", [ResolverType.DOT, ResolverType.DOQ, ResolverType.DOH3])
async def test_certificate_for_the_ip_when_no_name_is_given(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    tls = TlsOptions(ca_file=str(server.pki.ca_file))  # SNI/check falls back to the address
    obs = await query(
        make_resolver(server, kind, tls=tls),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is None, obs.detail


# --- connection failures -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL)
async def test_closed_port_is_refused(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    udp = kind in (ResolverType.UDP, ResolverType.DOQ)
    port = closed_port(socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    resolver = make_resolver(server, kind, port=port)
    if kind is ResolverType.DOH:
        resolver = dataclasses.replace(resolver, url=f"https://{SERVER_NAME}:{port}/dns-query")
    obs = await query(resolver, DEFAULT, "a.test", "A", contexts=contexts, timeout=5)
    assert obs.error is ErrorKind.REFUSED, obs.detail
    assert obs.duration < 2  # refused, not timed out


@pytest.mark.parametrize("kind", [ResolverType.DOQ, ResolverType.DOH3])
async def test_quic_transports_refuse_a_network_they_cannot_honour(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    dialer = Dialer(Network(name="wlan", interface="lo"))
    obs = await query(
        make_resolver(server, kind),
        dialer,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
    )
    assert obs.error is ErrorKind.NETWORK_SETUP
    assert server.counts == {}


@pytest.mark.parametrize(
    "kind", [ResolverType.UDP, ResolverType.DOQ, ResolverType.DOH3, ResolverType.SYSTEM]
)
async def test_udp_transports_refuse_a_proxy_network(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType, tmp_path: Path
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")
    proxy = Proxy(scheme="socks5", host="127.0.0.1", port=closed_port(socket.SOCK_STREAM))
    dialer = Dialer(Network(name="tor", proxy=proxy))
    obs = await query(
        make_resolver(server, kind),
        dialer,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
        resolv_conf=str(conf),
    )
    assert obs.error is ErrorKind.NETWORK_SETUP
    assert server.counts == {}


async def test_bad_source_address_is_network_setup(
    server: FakeDnsServer, contexts: TlsContexts
) -> None:
    dialer = Dialer(Network(name="gone", source_address="192.0.2.254"))  # not on this host
    for kind in ALL:
        obs = await query(
            make_resolver(server, kind), dialer, "a.test", "A", contexts=contexts, timeout=5
        )
        assert obs.error is ErrorKind.NETWORK_SETUP, (kind, obs.detail)
    assert server.counts == {}


# --- the network seam ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*ALL, ResolverType.SYSTEM])
async def test_source_address_is_honoured(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType, tmp_path: Path
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")
    dialer = Dialer(Network(name="second", source_address="127.0.0.2"))
    obs = await query(
        make_resolver(server, kind),
        dialer,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
        resolv_conf=str(conf),
    )
    assert obs.error is None, obs.detail
    assert server.peers() == ["127.0.0.2"]


async def test_ipv6_loopback(pki: Pki, contexts: TlsContexts) -> None:
    try:
        fake = FakeDnsServer(ZONE, pki=pki, host="::1", transports=("udp", "tcp", "dot"))
        await fake.start()
    except OSError as exc:  # pragma: no cover - hosts without IPv6 loopback
        pytest.skip(f"no ::1: {exc}")
    try:
        for kind in (ResolverType.UDP, ResolverType.TCP, ResolverType.DOT):
            obs = await query(
                make_resolver(fake, kind),
                DEFAULT,
                "a.test",
                "AAAA",
                contexts=contexts,
                timeout=5,
            )
            assert obs.error is None, obs.detail
            assert obs.server.startswith(f"{kind.value}://[::1]:")
        assert set(fake.peers()) == {"::1"}
    finally:
        await fake.stop()


# --- system resolver -----------------------------------------------------------------------


async def test_system_reads_the_given_resolv_conf(
    server: FakeDnsServer, contexts: TlsContexts, tmp_path: Path
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("# test\nsearch example\nnameserver 127.0.0.1\noptions ndots:1\n")
    resolver = make_resolver(server, ResolverType.SYSTEM)
    obs = await query(
        resolver, DEFAULT, "a.test", "A", contexts=contexts, timeout=5, resolv_conf=str(conf)
    )
    assert obs.error is None, obs.detail
    assert obs.answers == ("192.0.2.1", "192.0.2.2")
    assert obs.server == f"udp://127.0.0.1:{server.port('udp')}"
    assert server.counts == {"udp": 1}


async def test_system_truncation_falls_back_to_tcp(
    server: FakeDnsServer, contexts: TlsContexts, tmp_path: Path
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")
    server.behave(Behaviour(truncate=True))
    obs = await query(
        make_resolver(server, ResolverType.SYSTEM),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
        resolv_conf=str(conf),
    )
    assert obs.error is None, obs.detail
    assert server.counts == {"udp": 1, "tcp": 1}


async def test_system_moves_to_the_next_nameserver(
    server: FakeDnsServer, pki: Pki, contexts: TlsContexts, tmp_path: Path
) -> None:
    """127.0.0.3 has nothing listening (ICMP refused), 127.0.0.2 says SERVFAIL, 127.0.0.1
    answers: glibc's order of things."""
    port = server.port("udp")
    async with FakeDnsServer(
        ZONE,
        pki=pki,
        host="127.0.0.2",
        dns_port=port,
        transports=("udp", "tcp"),
        behaviour=Behaviour(rcode="SERVFAIL"),
    ) as failing:
        conf = tmp_path / "resolv.conf"
        conf.write_text("nameserver 127.0.0.3\nnameserver 127.0.0.2\nnameserver 127.0.0.1\n")
        obs = await query(
            make_resolver(server, ResolverType.SYSTEM),
            DEFAULT,
            "a.test",
            "A",
            contexts=contexts,
            timeout=5,
            resolv_conf=str(conf),
        )
        assert obs.error is None, obs.detail
        assert obs.server == f"udp://127.0.0.1:{port}"
        assert failing.counts == {"udp": 1}
        assert server.counts == {"udp": 1}


async def test_system_shares_the_budget_among_nameservers(
    server: FakeDnsServer, pki: Pki, contexts: TlsContexts, tmp_path: Path
) -> None:
    port = server.port("udp")
    async with FakeDnsServer(
        ZONE,
        pki=pki,
        host="127.0.0.2",
        dns_port=port,
        transports=("udp", "tcp"),
        behaviour=Behaviour(drop=True),
    ) as silent:
        conf = tmp_path / "resolv.conf"
        conf.write_text("nameserver 127.0.0.2\nnameserver 127.0.0.1\n")
        obs = await query(
            make_resolver(server, ResolverType.SYSTEM),
            DEFAULT,
            "a.test",
            "A",
            contexts=contexts,
            timeout=1,
            resolv_conf=str(conf),
        )
        assert obs.error is None, obs.detail
        assert 0.5 <= obs.duration < 1
        # Its half of the budget: the query and two resends (resolvers.UDP_SENDS).
        assert silent.counts == {"udp": resolvers.UDP_SENDS}


async def test_system_last_failure_is_reported(
    server: FakeDnsServer, contexts: TlsContexts, tmp_path: Path
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")
    server.behave(Behaviour(rcode="SERVFAIL"))
    obs = await query(
        make_resolver(server, ResolverType.SYSTEM),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
        resolv_conf=str(conf),
    )
    assert obs.error is ErrorKind.DNS_SERVFAIL
    assert obs.server == f"udp://127.0.0.1:{server.port('udp')}"


async def test_system_without_nameservers_is_network_setup(
    server: FakeDnsServer, contexts: TlsContexts, tmp_path: Path
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example\n")
    obs = await query(
        make_resolver(server, ResolverType.SYSTEM),
        DEFAULT,
        "a.test",
        "A",
        contexts=contexts,
        timeout=5,
        resolv_conf=str(conf),
    )
    assert obs.error is ErrorKind.NETWORK_SETUP
    assert obs.server == f"system://{conf}"


def test_resolv_conf_of_a_namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system_resolver, "NETNS_ETC", str(tmp_path))
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "resolv.conf").write_text("nameserver 127.0.0.9\n")
    in_lab = Dialer(Network(name="lab", netns="lab"))
    elsewhere = Dialer(Network(name="other", netns="other"))
    assert system_resolver.resolv_conf_path(None, in_lab) == str(tmp_path / "lab" / "resolv.conf")
    assert system_resolver.resolv_conf_path(None, elsewhere) == system_resolver.RESOLV_CONF
    assert system_resolver.resolv_conf_path(None, DEFAULT) == system_resolver.RESOLV_CONF
    assert system_resolver.resolv_conf_path("/x/resolv.conf", in_lab) == "/x/resolv.conf"


# --- exchange ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ALL)
async def test_exchange_chaos_txt(
    server: FakeDnsServer, contexts: TlsContexts, kind: ResolverType
) -> None:
    message = dns.message.make_query("id.server", dns.rdatatype.TXT, dns.rdataclass.CH)
    reply = await exchange(
        make_resolver(server, kind), DEFAULT, message, contexts=contexts, timeout=5
    )
    (rrset,) = reply.answer
    assert rrset.rdclass == dns.rdataclass.CH
    assert [b"".join(rd.strings) for rd in rrset] == [b"fake-1"]
    assert server.queries[0].qclass == "CH"


async def test_exchange_raises(server: FakeDnsServer, contexts: TlsContexts) -> None:
    server.behave(Behaviour(drop=True))
    message = dns.message.make_query("a.test", dns.rdatatype.A)
    with pytest.raises(TimeoutError):
        await exchange(
            make_resolver(server, ResolverType.TCP),
            DEFAULT,
            message,
            contexts=contexts,
            timeout=0.2,
        )


# --- the fake server itself ----------------------------------------------------------------


async def test_fake_doh_answers_get(server: FakeDnsServer) -> None:
    """The fake also serves RFC 8484 GET, for clients other than ours."""
    wire = dns.message.make_query("a.test", "A").to_wire()
    param = base64.urlsafe_b64encode(wire).rstrip(b"=").decode()
    ctx = ssl.create_default_context(cafile=str(server.pki.ca_file))
    url = f"https://127.0.0.1:{server.port('doh')}/dns-query?dns={param}"
    async with aiohttp.ClientSession() as session, session.get(url, ssl=ctx) as response:
        assert response.status == 200
        assert response.content_type == "application/dns-message"
        reply = dns.message.from_wire(await response.read())
    assert [rd.address for rd in reply.answer[0]] == ["192.0.2.1", "192.0.2.2"]
    assert server.counts == {"doh": 1}


# --- interception checks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expect", "intercepted"),
    [(r"^fake-\d+$", False), (r"^google-public-dns", True)],
)
async def test_identity_check_through_the_prober(
    server: FakeDnsServer, expect: str, intercepted: bool
) -> None:
    """The prober asks the identity question; the judgement compares the answer."""
    import re
    from types import MappingProxyType

    from exporter.config.matrix import TargetKind, resolver_checks
    from exporter.config.model import Config, IdentityCheck, Service
    from exporter.judge.verdict import judge_round
    from exporter.probes.probe import Prober

    resolver = make_resolver(
        server,
        ResolverType.UDP,
        identity=IdentityCheck(qname="id.server", qclass="CH", expect=re.compile(expect)),
    )
    endpoint_resolver = dataclasses.replace(resolver, name="plain", identity=None)
    config = Config(
        timeout=3.0,
        resolvers=MappingProxyType({"udp": resolver, "plain": endpoint_resolver}),
        networks=MappingProxyType({"default": DEFAULT.network}),
        services=MappingProxyType({"svc": Service(name="svc", endpoints=MappingProxyType({}))}),
    )
    # An endpoint using the identity resolver makes the check run on that network.
    from exporter.config.model import Check, Endpoint

    web = Endpoint(
        service="svc",
        name="web",
        host="a.test",
        address=None,
        port=443,
        checks=(Check.DNS,),
        resolvers=("udp",),
        networks=("default",),
    )
    config = dataclasses.replace(
        config,
        services=MappingProxyType(
            {"svc": Service(name="svc", endpoints=MappingProxyType({"web": web}))}
        ),
    )
    (target,) = resolver_checks(config)
    assert target.kind is TargetKind.RESOLVER_CHECK
    obs = await Prober(config).probe(target)
    assert obs.dns is not None
    assert obs.dns.rcode == "NOERROR"
    assert obs.dns.answers == ("fake-1",)
    assert server.queries[-1].qclass == "CH"
    judgement = judge_round(config, [obs])
    assert judgement.resolver_intercepted == {("default", "udp"): intercepted}


async def test_silent_resolver_check_sees_only_silence(server: FakeDnsServer) -> None:
    """A silent resolver's address runs no DNS: here a closed port, so nothing answers and
    there is no interception; the fake server standing in for an injector answers."""
    from types import MappingProxyType

    from exporter.config.matrix import resolver_checks
    from exporter.config.model import Check, Config, Endpoint, Service
    from exporter.judge.verdict import judge_round
    from exporter.probes.probe import Prober

    web = Endpoint(
        service="svc",
        name="web",
        host="a.test",
        address=None,
        port=443,
        checks=(Check.DNS,),
        resolvers=("udp",),
        networks=("default",),
    )
    results = {}
    for name, port in (
        ("silence", closed_port(socket.SOCK_DGRAM)),
        ("injector", server.port("udp")),
    ):
        silent = Resolver(
            name="nobody", type=ResolverType.UDP, address="127.0.0.1", port=port, silent=True
        )
        config = Config(
            timeout=2.0,
            resolvers=MappingProxyType(
                {"udp": make_resolver(server, ResolverType.UDP), "nobody": silent}
            ),
            networks=MappingProxyType({"default": DEFAULT.network}),
            services=MappingProxyType(
                {"svc": Service(name="svc", endpoints=MappingProxyType({"web": web}))}
            ),
        )
        (target,) = resolver_checks(config)
        obs = await Prober(config).probe(target)
        results[name] = judge_round(config, [obs]).resolver_intercepted[("default", "nobody")]
    assert results == {"silence": False, "injector": True}


class _ScriptedPeer:
    """A ByteStream whose peer sends `chunks` in order, then closes."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.sent = bytearray()

    async def send(self, data: bytes) -> None:
        self.sent += data

    async def recv(self, max_bytes: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


_DOH_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n"


@pytest.mark.parametrize(
    ("chunks", "error", "text"),
    [
        pytest.param((), EOFError, "without an HTTP reply", id="closed-before-the-reply"),
        pytest.param((b"HTTP/1.1 200",), EOFError, "without an HTTP reply", id="closed-in-head"),
        pytest.param(
            (_DOH_HEAD + b"Content-Length: 10\r\n\r\nabc",),
            EOFError,
            "before the end",
            id="closed-mid-body",
        ),
        pytest.param((b"HTTP/1.1 503 Busy\r\n\r\n",), resolvers.DohError, "503 Busy", id="503"),
        pytest.param(
            (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",),
            resolvers.DohError,
            "text/html",
            id="wrong-type",
        ),
        pytest.param(
            (_DOH_HEAD + b"\r\n", b"x" * (resolvers.DOH_BODY_LIMIT + 1)),
            resolvers.DohError,
            "exceeds",
            id="too-big",
        ),
        pytest.param((b"garbage\r\n\r\n",), h11.RemoteProtocolError, None, id="garbage"),
    ],
)
async def test_doh_http_exchange_maps_failures(
    chunks: tuple[bytes, ...], error: type[Exception], text: str | None
) -> None:
    """DoH's HTTP/1.1 POST (over the shared `exporter.probes.http.Roundtrip`): a peer that
    hangs up is an EOF, a reply that is not DNS a DohError, bad HTTP a protocol error."""
    target = doh.DohTarget(
        dial="127.0.0.1", port=443, authority="dns.test", target="/dns-query", sni="dns.test"
    )
    peer = _ScriptedPeer(*chunks)
    with pytest.raises(error, match=text):
        await doh.http_post(peer, target, b"\x00" * 12)
    assert peer.sent.startswith(b"POST /dns-query HTTP/1.1\r\n")
    assert peer.sent.endswith(b"\r\n\r\n" + b"\x00" * 12)


async def test_doh_http_exchange_returns_the_body() -> None:
    target = doh.DohTarget(
        dial="127.0.0.1", port=443, authority="dns.test", target="/dns-query", sni="dns.test"
    )
    peer = _ScriptedPeer(_DOH_HEAD + b"Content-Length: 3\r\n\r\nabc")
    assert await doh.http_post(peer, target, b"q") == b"abc"


@pytest.mark.parametrize("rdtype", [dns.rdatatype.A, dns.rdatatype.AAAA])
def test_a_query_from_its_template_is_what_dnspython_would_encode(
    rdtype: dns.rdatatype.RdataType,
) -> None:
    """Built once per name and type, sent with a fresh ID: the same bytes as the message's
    own encoding, and a transport changing one query's ID (DoQ sets 0) changes no other."""
    first, first_wire = address_query("a.test", rdtype)
    second, second_wire = address_query("a.test", rdtype)
    assert first_wire == first.to_wire()
    assert second_wire == second.to_wire()
    assert first_wire[2:] == second_wire[2:]
    ids = {address_query("a.test", rdtype)[0].id for _ in range(50)}
    assert len(ids) > 40  # random, not a counter or a constant
    first.id = 0
    assert second.id != 0 or second_wire[:2] == b"\0\0"
    assert address_query("a.test", rdtype)[0].to_wire()[2:] == first_wire[2:]
    made = dns.message.make_query("a.test", rdtype, use_edns=0, payload=1232)
    made.id = second.id
    assert made.to_wire() == second_wire
