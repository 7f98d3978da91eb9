"""A real DNS server for tests: one zone served over UDP, TCP, DoT, DoH, DoQ and DoH3.

Every transport answers from the same zone and the same behaviours, so a test can point any
resolver type at it and assert on what the server saw (`queries`, `counts`, the peer address
of each query). Replies are built with dnspython; nothing is hand-encoded.

Design constraints (the censorship lab reuses it inside other network namespaces):
- no global state: everything hangs off the instance, built from plain host/port values;
- plain DNS shares one port between UDP and TCP (as port 53 does), so a truncated UDP reply
  falls back to TCP on the same port;
- `stop()` ends every connection and task it started, so tests run with warnings as errors.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import errno
import ipaddress
import socket
import urllib.parse
from collections.abc import Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from aiohttp import web
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.tls import load_pem_private_key, load_pem_x509_certificates

from tests.fakes.certs import Pki

#: Transport names, as counted in `FakeDnsServer.counts`.
UDP, TCP, DOT, DOH, DOQ, DOH3 = "udp", "tcp", "dot", "doh", "doq", "doh3"
ALL_TRANSPORTS: tuple[str, ...] = (UDP, TCP, DOT, DOH, DOQ, DOH3)

DNS_MESSAGE = "application/dns-message"
#: Longest CNAME chain the server follows inside its zone.
MAX_CHAIN = 16

#: name -> rdtype -> values in zone-file text, e.g. {"a.test": {"A": ["192.0.2.1"]}}.
Zone = Mapping[str, Mapping[str, Sequence[str]]]


def _key(name: str | dns.name.Name) -> str:
    """Zone lookup key: lower case, no trailing dot."""
    text = name.to_text() if isinstance(name, dns.name.Name) else name
    return text.rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the server answers a name (or every name, as the default behaviour)."""

    #: Answer with this rcode ("NXDOMAIN", "SERVFAIL", "REFUSED", ...) and no records.
    rcode: str | None = None
    #: Seconds to wait before answering.
    delay: float = 0.0
    #: Never answer (the connection, if any, stays open).
    drop: bool = False
    #: Leave the first this many queries of the name unanswered (lost datagrams), then
    #: answer as the rest says. Counted per name over every transport.
    drop_first: int = 0
    #: UDP only: answer with the TC bit and no records, forcing the client to TCP.
    truncate: bool = False
    #: Answer with another message ID (what a blind spoofer's reply looks like).
    wrong_id: bool = False
    #: Answer with bytes that are not a DNS message.
    garbage: bool = False
    #: DoH only: the HTTP status of the reply (non-2xx replies carry no DNS message).
    http_status: int = 200
    #: DoH only: the Content-Type of a 2xx reply.
    content_type: str = DNS_MESSAGE


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """One query the server received (even if it then dropped it)."""

    transport: str
    peer: str  # source address of the query
    qname: str | None  # None when the message did not parse or had no question
    qtype: str | None
    qclass: str | None


@dataclass(slots=True)
class _Running:
    """Everything `start()` opened, for `stop()` to close."""

    tcp_server: asyncio.Server | None = None
    dot_server: asyncio.Server | None = None
    udp_transport: asyncio.DatagramTransport | None = None
    doh_runner: web.AppRunner | None = None
    doq_server: QuicServer | None = None
    doh3_server: QuicServer | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class FakeDnsServer:
    """Serves `zone` on `host` over the chosen transports.

    Ports: `dns_port` is shared by UDP and TCP; `dot_port`, `doh_port` and `doq_port` are the
    encrypted ones. 0 (the default) picks a free port; after `start()` the `port(transport)`
    method tells the bound one. The certificate of DoT/DoH/DoQ is issued by `pki` for
    `tls_names` plus `host` itself (so IP-addressed clients verify too).

    `chaos` holds CH-class TXT answers (name -> strings), e.g. {"id.server": ["fake-1"]}.
    """

    def __init__(
        self,
        zone: Zone,
        *,
        pki: Pki,
        host: str = "127.0.0.1",
        dns_port: int = 0,
        dot_port: int = 0,
        doh_port: int = 0,
        doq_port: int = 0,
        doh3_port: int = 0,
        tls_names: Sequence[str] = ("dns.test",),
        transports: Collection[str] = ALL_TRANSPORTS,
        chaos: Mapping[str, Sequence[str]] | None = None,
        ttl: int = 300,
        shuffle: bool = False,
        behaviour: Behaviour = Behaviour(),
    ) -> None:
        unknown = set(transports) - set(ALL_TRANSPORTS)
        if unknown:
            raise ValueError(f"unknown transports: {sorted(unknown)}")
        self.host = host
        self.zone = {_key(name): dict(records) for name, records in zone.items()}
        self.chaos = {_key(name): list(values) for name, values in (chaos or {}).items()}
        self.ttl = ttl
        #: Shuffle records within an rrset like a real server; off so tests see zone order.
        self.shuffle = shuffle
        self.pki = pki
        self.tls_names = (*tls_names, host)
        self.transports = frozenset(transports)
        #: Behaviour of names without their own.
        self.default_behaviour = behaviour
        #: Per-name behaviours (keys as `_key` makes them).
        self.behaviours: dict[str, Behaviour] = {}
        #: Every query received, in order.
        self.queries: list[QueryRecord] = []
        #: Queries received per transport.
        self.counts: collections.Counter[str] = collections.Counter()
        #: Queries received per name (keys as `_key` makes them), for `drop_first`.
        self._per_name: collections.Counter[str] = collections.Counter()
        self._requested = {UDP: dns_port, TCP: dns_port, DOT: dot_port, DOH: doh_port}
        self._requested[DOQ] = doq_port
        self._requested[DOH3] = doh3_port
        self._ports: dict[str, int] = {}
        self._running: _Running | None = None
        self._stopping: asyncio.Event | None = None
        #: Set (and replaced) on every query received: what `wait_for_queries` waits on.
        self._arrived: asyncio.Event | None = None

    # --- configuration -----------------------------------------------------------------

    def behave(self, behaviour: Behaviour, name: str | None = None) -> None:
        """Set the behaviour of `name`, or the default one when `name` is None."""
        if name is None:
            self.default_behaviour = behaviour
        else:
            self.behaviours[_key(name)] = behaviour

    def behaviour_for(self, name: str) -> Behaviour:
        return self.behaviours.get(_key(name), self.default_behaviour)

    def port(self, transport: str) -> int:
        """The bound port of `transport` (after `start()`)."""
        try:
            return self._ports[transport]
        except KeyError:
            raise LookupError(f"{transport} is not being served") from None

    def peers(self, transport: str | None = None) -> list[str]:
        """Source addresses of the queries received (over `transport`, or all)."""
        return [q.peer for q in self.queries if transport is None or q.transport == transport]

    async def wait_for_queries(self, count: int, transport: str | None = None) -> None:
        """Return once `count` queries (over `transport`, or any) have been received: how a
        test synchronises with the server instead of sleeping. Bound it with a timeout."""
        while len(self.peers(transport)) < count:
            if self._arrived is None:
                self._arrived = asyncio.Event()
            await self._arrived.wait()

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> FakeDnsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._running is not None:
            raise RuntimeError("already started")
        self._running = running = _Running()
        self._stopping = asyncio.Event()
        try:
            if UDP in self.transports or TCP in self.transports:
                await self._start_plain(running)
            if DOT in self.transports:
                ctx = self.pki.server_context(*self.tls_names, alpn=("dot",))
                sock = _bind(self.host, self._requested[DOT], socket.SOCK_STREAM)
                running.dot_server = await asyncio.start_server(
                    lambda r, w: self._serve_stream(r, w, DOT), sock=sock, ssl=ctx
                )
                self._ports[DOT] = sock.getsockname()[1]
            if DOH in self.transports:
                await self._start_doh(running)
            if DOQ in self.transports:
                running.doq_server = await self._start_quic(DOQ, ["doq"], _DoqProtocol)
            if DOH3 in self.transports:
                running.doh3_server = await self._start_quic(DOH3, list(H3_ALPN), _Doh3Protocol)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        running, self._running = self._running, None
        if running is None:
            return
        if self._stopping is not None:
            self._stopping.set()  # releases DoH handlers parked by `drop`
        for server in (running.tcp_server, running.dot_server):
            if server is not None:
                server.close()
        if running.udp_transport is not None:
            running.udp_transport.close()
        for quic_server in (running.doq_server, running.doh3_server):
            if quic_server is not None:
                quic_server.close()
        for writer in list(running.writers):
            writer.transport.abort()
        for task in list(running.tasks):
            task.cancel()
        if running.tasks:
            await asyncio.wait(running.tasks)
        if running.doh_runner is not None:
            await running.doh_runner.cleanup()
        for server in (running.tcp_server, running.dot_server):
            if server is not None:
                await server.wait_closed()
        self._ports.clear()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` as a task that `stop()` cancels; dropped if the server is stopped."""
        if self._running is None:
            coro.close()
            return
        tasks = self._running.tasks
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _start_plain(self, running: _Running) -> None:
        """TCP and UDP on one port number: bind TCP, then UDP on the same port."""
        loop = asyncio.get_running_loop()
        for _attempt in range(20):
            tcp_sock = _bind(self.host, self._requested[TCP], socket.SOCK_STREAM)
            port = tcp_sock.getsockname()[1]
            try:
                udp_sock = _bind(self.host, port, socket.SOCK_DGRAM)
            except OSError as exc:
                tcp_sock.close()
                if exc.errno == errno.EADDRINUSE and self._requested[TCP] == 0:
                    continue  # the ephemeral TCP port is taken for UDP: pick another
                raise
            break
        else:
            raise OSError(errno.EADDRINUSE, "no port free for both UDP and TCP")
        if TCP in self.transports:
            running.tcp_server = await asyncio.start_server(
                lambda r, w: self._serve_stream(r, w, TCP), sock=tcp_sock
            )
            self._ports[TCP] = port
        else:
            tcp_sock.close()
        if UDP in self.transports:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self), sock=udp_sock
            )
            running.udp_transport = transport
            self._ports[UDP] = port
        else:
            udp_sock.close()

    async def _start_doh(self, running: _Running) -> None:
        app = web.Application()
        app.router.add_post("/dns-query", self._doh)
        app.router.add_get("/dns-query", self._doh)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        running.doh_runner = runner
        sock = _bind(self.host, self._requested[DOH], socket.SOCK_STREAM)
        self._ports[DOH] = sock.getsockname()[1]
        ctx = self.pki.server_context(*self.tls_names, alpn=("http/1.1",))
        await web.SockSite(runner, sock, ssl_context=ctx).start()

    async def _start_quic(
        self, transport: str, alpn: list[str], protocol: type[_FakeQuicProtocol]
    ) -> QuicServer:
        config = QuicConfiguration(is_client=False, alpn_protocols=alpn)
        leaf = self.pki.ca.issue_cert(*self.tls_names)
        chain = load_pem_x509_certificates(b"".join(p.bytes() for p in leaf.cert_chain_pems))
        config.certificate, config.certificate_chain = chain[0], chain[1:]
        config.private_key = load_pem_private_key(leaf.private_key_pem.bytes())
        sock = _bind(self.host, self._requested[transport], socket.SOCK_DGRAM)
        self._ports[transport] = sock.getsockname()[1]
        # aioquic's serve() binds by host/port only; building its QuicServer on our own socket
        # is the same thing with the port known up front.
        _, server = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: QuicServer(
                configuration=config,
                create_protocol=lambda *a, **kw: protocol(*a, fake=self, **kw),
            ),
            sock=sock,
        )
        return server

    # --- answering ---------------------------------------------------------------------

    async def answer(self, wire: bytes, transport: str, peer: str) -> bytes | None:
        """The reply to one query received over `transport` from `peer`; None = no reply."""
        return (await self._answer(wire, transport, peer))[1]

    async def _answer(
        self, wire: bytes, transport: str, peer: str
    ) -> tuple[Behaviour, bytes | None]:
        """(the behaviour applied, the reply or None)."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            self._record(QueryRecord(transport, peer, None, None, None))
            return self.default_behaviour, None
        if len(query.question) != 1:
            self._record(QueryRecord(transport, peer, None, None, None))
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.FORMERR)
            return self.default_behaviour, response.to_wire()
        question = query.question[0]
        self._record(
            QueryRecord(
                transport,
                peer,
                _key(question.name),
                dns.rdatatype.to_text(question.rdtype),
                dns.rdataclass.to_text(question.rdclass),
            )
        )
        name = _key(question.name)
        behaviour = self.behaviour_for(name)
        self._per_name[name] += 1
        if self._per_name[name] <= behaviour.drop_first:
            return behaviour, None
        if behaviour.delay > 0:
            await asyncio.sleep(behaviour.delay)
        if behaviour.drop:
            return behaviour, None
        if behaviour.garbage:
            return behaviour, b"\x00\x01 this is not a DNS message"
        response = self._respond(query, behaviour)
        if behaviour.wrong_id:
            response.id = (query.id + 1) & 0xFFFF
        if transport != UDP:
            return behaviour, response.to_wire(max_size=65535, want_shuffle=self.shuffle)
        if behaviour.truncate:
            return behaviour, _truncated(response)
        limit = max(query.payload, 512) if query.edns >= 0 else 512
        try:
            return behaviour, response.to_wire(max_size=limit, want_shuffle=self.shuffle)
        except dns.exception.TooBig:
            return behaviour, _truncated(response)

    def _record(self, record: QueryRecord) -> None:
        self.queries.append(record)
        self.counts[record.transport] += 1
        arrived, self._arrived = self._arrived, None
        if arrived is not None:
            arrived.set()

    def _respond(self, query: dns.message.Message, behaviour: Behaviour) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if behaviour.rcode is not None:
            response.set_rcode(dns.rcode.from_text(behaviour.rcode))
            return response
        question = query.question[0]
        if question.rdclass == dns.rdataclass.CH:
            values = self.chaos.get(_key(question.name))
            if question.rdtype != dns.rdatatype.TXT or values is None:
                response.set_rcode(dns.rcode.REFUSED)
                return response
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name,
                    0,
                    dns.rdataclass.CH,
                    dns.rdatatype.TXT,
                    [_txt(v) for v in values],
                )
            )
            return response
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        name = question.name
        wanted = dns.rdatatype.to_text(question.rdtype)
        if _key(name) not in self.zone:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        for _hop in range(MAX_CHAIN):
            records = self.zone.get(_key(name))
            if records is None:
                break  # a CNAME pointing out of the zone: NOERROR with the chain so far
            if wanted in records:
                response.answer.append(self._rrset(name, wanted, records[wanted]))
                break
            if "CNAME" not in records:
                break
            cname = self._rrset(name, "CNAME", records["CNAME"])
            response.answer.append(cname)
            name = next(iter(cname)).target
        return response

    def _rrset(self, name: dns.name.Name, rdtype: str, values: Sequence[str]) -> dns.rrset.RRset:
        return dns.rrset.from_text_list(
            name,
            self.ttl,
            dns.rdataclass.IN,
            rdtype,
            list(values),
            origin=dns.name.root,
            relativize=False,
        )

    # --- transports --------------------------------------------------------------------

    async def _serve_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, transport: str
    ) -> None:
        """TCP and DoT: 2-byte length-prefixed messages, several per connection."""
        running = self._running
        if running is None:
            writer.transport.abort()
            return
        running.writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            running.tasks.add(task)
        peer = writer.get_extra_info("peername")[0]
        try:
            while True:
                try:
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    wire = await reader.readexactly(size)
                except (EOFError, OSError):  # IncompleteReadError, resets, TLS errors
                    return
                reply = await self.answer(wire, transport, peer)
                if reply is not None:
                    writer.write(len(reply).to_bytes(2, "big") + reply)
                    with contextlib.suppress(OSError):
                        await writer.drain()
        finally:
            running.writers.discard(writer)
            if task is not None:
                running.tasks.discard(task)
            writer.transport.abort()

    async def _doh(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            if request.content_type != DNS_MESSAGE:
                return web.Response(status=415, text="want application/dns-message")
            wire = await request.read()
        else:
            try:
                param = request.query["dns"]
                wire = base64.urlsafe_b64decode(param + "=" * (-len(param) % 4))
            except (KeyError, binascii.Error):
                return web.Response(status=400, text="missing or bad ?dns=")
        behaviour, reply = await self._answer(wire, DOH, request.remote or "")
        if reply is None:
            assert self._stopping is not None
            await self._stopping.wait()  # `drop`: hold the request until the server stops
            return web.Response(status=503)
        if not 200 <= behaviour.http_status < 300:
            return web.Response(status=behaviour.http_status, text="fake DoH error")
        return web.Response(
            status=behaviour.http_status,
            body=reply,
            headers={"Content-Type": behaviour.content_type},
        )


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, fake: FakeDnsServer) -> None:
        self.fake = fake
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # 3.11's selector datagram transport does not subclass DatagramTransport
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.fake._spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple[Any, ...]) -> None:
        reply = await self.fake.answer(data, UDP, addr[0])
        if reply is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(reply, addr)


class _FakeQuicProtocol(QuicConnectionProtocol):
    """One server-side QUIC connection of the fake; remembers the client's address."""

    def __init__(self, *args: Any, fake: FakeDnsServer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fake = fake
        self.peer = ""
        self.buffers: dict[int, bytes] = {}

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        self.peer = addr[0]
        super().datagram_received(data, addr)


class _DoqProtocol(_FakeQuicProtocol):
    """RFC 9250: each client-initiated bidirectional stream carries one length-prefixed
    query, answered on the same stream, which the server then ends."""

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            data = self.buffers.pop(event.stream_id, b"") + event.data
            if not event.end_stream:
                self.buffers[event.stream_id] = data
                return
            if len(data) < 2 or int.from_bytes(data[:2], "big") != len(data) - 2:
                self._quic.reset_stream(event.stream_id, 0x2)  # DOQ_PROTOCOL_ERROR
                self.transmit()
                return
            self.fake._spawn(self._reply(event.stream_id, data[2:], self.peer))

    async def _reply(self, stream_id: int, wire: bytes, peer: str) -> None:
        reply = await self.fake.answer(wire, DOQ, peer)
        if reply is None:
            return
        try:
            self._quic.send_stream_data(stream_id, len(reply).to_bytes(2, "big") + reply, True)
        except (AssertionError, ValueError):  # aioquic's way to say the stream/connection ended
            return
        self.transmit()


def _bind(host: str, port: int, kind: socket.SocketKind) -> socket.socket:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _truncated(response: dns.message.Message) -> bytes:
    response.flags |= dns.flags.TC
    response.answer.clear()
    response.authority.clear()
    response.additional.clear()
    return response.to_wire()


def _txt(value: str) -> str:
    """A TXT rdata in zone-file text: one quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Doh3Protocol(_FakeQuicProtocol):
    """RFC 8484 over HTTP/3: a POST of `application/dns-message` (or a GET with `?dns=`) to
    /dns-query, answered like the HTTP/1.1 DoH endpoint, behaviours included."""

    def __init__(self, *args: Any, fake: FakeDnsServer, **kwargs: Any) -> None:
        super().__init__(*args, fake=fake, **kwargs)
        self.h3: H3Connection | None = None
        self.heads: dict[int, dict[bytes, bytes]] = {}

    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.HandshakeCompleted):
            self.h3 = H3Connection(self._quic)
        if self.h3 is None:
            return
        for h3_event in self.h3.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            self.heads[event.stream_id] = dict(event.headers)
        elif isinstance(event, DataReceived):
            self.buffers[event.stream_id] = self.buffers.get(event.stream_id, b"") + event.data
        else:
            return
        if event.stream_ended and event.stream_id in self.heads:
            head = self.heads.pop(event.stream_id)
            body = self.buffers.pop(event.stream_id, b"")
            self.fake._spawn(self._reply(event.stream_id, head, body))

    async def _reply(self, stream_id: int, head: dict[bytes, bytes], body: bytes) -> None:
        method, path = head.get(b":method", b""), head.get(b":path", b"").decode("latin-1")
        wire: bytes | None = body
        if method == b"GET":
            param = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query).get("dns", [""])[0]
            try:
                wire = base64.urlsafe_b64decode(param + "=" * (-len(param) % 4))
            except binascii.Error:
                wire = None
        elif head.get(b"content-type") != DNS_MESSAGE.encode():
            wire = None
        if wire is None or not path.startswith("/dns-query"):
            self._send(stream_id, 400, b"want a DNS query at /dns-query", "text/plain")
            return
        behaviour, reply = await self.fake._answer(wire, DOH3, self.peer)
        if reply is None:
            return  # `drop`: the request is never answered
        if not 200 <= behaviour.http_status < 300:
            self._send(stream_id, behaviour.http_status, b"fake DoH3 error", "text/plain")
            return
        self._send(stream_id, behaviour.http_status, reply, behaviour.content_type)

    def _send(self, stream_id: int, status: int, body: bytes, content_type: str) -> None:
        assert self.h3 is not None
        try:
            self.h3.send_headers(
                stream_id,
                [
                    (b":status", str(status).encode()),
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            )
            self.h3.send_data(stream_id, body, end_stream=True)
        except (AssertionError, ValueError):  # the stream or connection ended meanwhile
            return
        self.transmit()
