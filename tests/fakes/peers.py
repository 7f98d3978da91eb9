"""Real misbehaving peers on loopback for probe tests: every byte crosses a real socket.

A `Peer` is an async context manager: a TCP server on 127.0.0.1 (or another loopback
address), port 0, that runs a *behaviour* for each connection it accepts. Behaviours are
built by the factories below (`http`, `reset`, `blackhole`, `drip`, `garbage`, ...) and
combined with `sequence` (connection i gets behaviour i, the last one repeats), e.g. a peer
that resets the first connection and serves the second.

The peer records what it saw: client addresses, the SNI of each TLS handshake, and each
HTTP request (parsed with h11 like the client side: nothing here hand-parses HTTP). Leaving
the context closes the listener and every connection and waits for the handlers, so a test
that counts file descriptors after it sees none of the peer's.

Nothing here ever leaves 127.0.0.0/8 or ::1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11
import trustme

#: Bytes a peer reads at once.
READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request a peer received; header names lowercased, in wire order."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None


class PeerConnection:
    """One accepted connection, handed to a behaviour."""

    def __init__(
        self,
        peer: Peer,
        index: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.peer = peer
        self.index = index
        self.reader = reader
        self.writer = writer

    async def start_tls(
        self, ctx: ssl.SSLContext, *, refuse: Callable[[str | None], bool] | None = None
    ) -> None:
        """Server side TLS handshake; records the client's SNI (None when it sent none).
        When `refuse(sni)` is true the handshake is aborted with an unrecognized_name alert
        (raising here)."""
        names = self.peer.server_names

        def on_sni(_obj: Any, name: str | None, _ctx: ssl.SSLContext) -> int | None:
            names.append(name)
            if refuse is not None and refuse(name):
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            return None

        ctx.sni_callback = on_sni
        await self.writer.start_tls(ctx)

    def reset(self) -> None:
        """Close with SO_LINGER 0: the kernel sends a RST instead of a FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_some(self) -> bytes:
        return await self.reader.read(READ_CHUNK)

    async def until_closed(self) -> None:
        """Read and discard until the client closes (never answering)."""
        while await self.reader.read(READ_CHUNK):
            pass

    async def read_request(self) -> h11.Connection:
        """Read one request head with h11, record it; the server-side h11 state, ready to
        send a response."""
        conn = h11.Connection(h11.SERVER)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self.reader.read(READ_CHUNK))
                continue
            if isinstance(event, h11.Request):
                self.peer.requests.append(
                    Request(
                        method=event.method.decode(),
                        target=event.target.decode(),
                        headers=tuple((k.decode(), v.decode()) for k, v in event.headers),
                    )
                )
                continue
            if isinstance(event, h11.EndOfMessage):
                return conn
            raise h11.RemoteProtocolError(f"unexpected {event!r}")


Behaviour = Callable[[PeerConnection], Awaitable[None]]


@dataclass(eq=False)
class Peer:
    """A loopback TCP server running `behaviour` per connection."""

    behaviour: Behaviour
    host: str = "127.0.0.1"
    port: int = 0
    connections: int = 0
    clients: list[str] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def __aenter__(self) -> Peer:
        self._server = await asyncio.start_server(self._on_connect, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index = self.connections
        self.connections += 1
        self.clients.append(writer.get_extra_info("peername")[0])
        try:
            await self.behaviour(PeerConnection(self, index, reader, writer))
        except (OSError, ssl.SSLError, EOFError, h11.ProtocolError):
            pass  # the client went away or spoke nonsense: that is what tests provoke
        except asyncio.CancelledError:
            # Only __aexit__ cancels handlers; ending normally keeps Python 3.11's
            # start_server from logging the cancelled handler task as an error.
            pass
        finally:
            writer.transport.abort()


@contextlib.asynccontextmanager
async def closed_port(host: str = "127.0.0.1") -> AsyncIterator[int]:
    """A port with a bound socket that does not listen: a connect is refused (RST)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((host, 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()


def server_context(
    ca: trustme.CA,
    *names: str,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    alpn: Sequence[str] = ("http/1.1",),
) -> ssl.SSLContext:
    """A server context presenting a certificate for `names` (its CN is the first name)
    issued by `ca`."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf = ca.issue_cert(*names, common_name=names[0], not_before=not_before, not_after=not_after)
    leaf.configure_cert(ctx)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


# --- behaviours -----------------------------------------------------------------------------


def sequence(*behaviours: Behaviour) -> Behaviour:
    """Connection i runs behaviours[i]; the last one serves every later connection."""

    async def run(conn: PeerConnection) -> None:
        await behaviours[min(conn.index, len(behaviours) - 1)](conn)

    return run


def notify(event: asyncio.Event, behaviour: Behaviour) -> Behaviour:
    """Set `event` once the client's first bytes arrived, then run `behaviour` (which sees
    those bytes as already read)."""

    async def run(conn: PeerConnection) -> None:
        await conn.read_some()
        event.set()
        await behaviour(conn)

    return run


def accept() -> Behaviour:
    """Accept and wait for the client to close (a plain TCP listener)."""

    async def run(conn: PeerConnection) -> None:
        await conn.until_closed()

    return run


def reset(*, after_hello: bool = False) -> Behaviour:
    """RST right after accepting, or after the client's first bytes (its ClientHello)."""

    async def run(conn: PeerConnection) -> None:
        if after_hello:
            await conn.read_some()
        conn.reset()

    return run


def eof(*, after_hello: bool = True) -> Behaviour:
    """Close with a FIN after the client's first bytes."""

    async def run(conn: PeerConnection) -> None:
        if after_hello:
            await conn.read_some()
        conn.writer.close()
        await conn.until_closed()

    return run


def blackhole() -> Behaviour:
    """Accept, read everything, never answer."""

    async def run(conn: PeerConnection) -> None:
        await conn.until_closed()

    return run


def garbage(data: bytes, *, tls: ssl.SSLContext | None = None) -> Behaviour:
    """After the client's first bytes (over TLS when `tls`), send `data` and keep the
    connection open, so that the client's verdict is about the bytes, not an EOF."""

    async def run(conn: PeerConnection) -> None:
        if tls is not None:
            await conn.start_tls(tls)
        await conn.read_some()
        await conn.send(data)
        await conn.until_closed()

    return run


def drip(data: bytes, *, interval: float, tls: ssl.SSLContext | None = None) -> Behaviour:
    """After the request, send `data` one byte every `interval` seconds, over and over."""

    async def run(conn: PeerConnection) -> None:
        if tls is not None:
            await conn.start_tls(tls)
        await conn.read_request()
        while True:
            for byte in data:
                await conn.send(bytes([byte]))
                await asyncio.sleep(interval)

    return run


def http(
    *,
    status: int = 200,
    body: bytes = b"hello",
    headers: Sequence[tuple[str, str]] = (),
    reason: str | None = None,
    tls: ssl.SSLContext | None = None,
) -> Behaviour:
    """A one-request HTTP/1.1 server (HTTPS with `tls`), response framed by h11; the reason
    defaults to the standard phrase of `status`."""
    phrase = HTTPStatus(status).phrase if reason is None else reason

    async def run(conn: PeerConnection) -> None:
        if tls is not None:
            await conn.start_tls(tls)
        server = await conn.read_request()
        response_headers = [("Content-Length", str(len(body))), *headers]
        data = server.send(
            h11.Response(status_code=status, reason=phrase.encode(), headers=response_headers)
        )
        data = (data or b"") + (server.send(h11.Data(data=body)) or b"")
        data += server.send(h11.EndOfMessage()) or b""
        await conn.send(data)
        await conn.until_closed()

    return run


def sni_gate(ctx: ssl.SSLContext, *, refuse: str, residual: bool = False) -> Behaviour:
    """A TLS server that aborts handshakes asking for SNI `refuse` (an SNI filter: the client
    sees an alert or, as asyncio may close before flushing it, an EOF); with
    `residual`, every connection after such a hit is reset on accept (a censor that keeps
    blocking the flow for a while). Other names get a handshake and then silence."""
    hit: list[bool] = []  # this behaviour's own state: whether `refuse` was seen

    def blocked(name: str | None) -> bool:
        if name == refuse:
            hit.append(True)
            return True
        return False

    async def run(conn: PeerConnection) -> None:
        if residual and hit:
            conn.reset()
            return
        await conn.start_tls(ctx, refuse=blocked)
        await conn.until_closed()

    return run


def endless_headers(*, tls: ssl.SSLContext | None = None) -> Behaviour:
    """A status line, then header lines for ever (as fast as the client reads)."""

    async def run(conn: PeerConnection) -> None:
        if tls is not None:
            await conn.start_tls(tls)
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Padding: " + b"a" * 1000 + b"\r\n"
        while True:
            await conn.send(line * 16)

    return run


def endless_body(*, tls: ssl.SSLContext | None = None) -> Behaviour:
    """A valid head without Content-Length (body delimited by close), then body for ever."""

    async def run(conn: PeerConnection) -> None:
        if tls is not None:
            await conn.start_tls(tls)
        await conn.read_request()
        await conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        chunk = b"x" * 16384
        while True:
            await conn.send(chunk)

    return run
