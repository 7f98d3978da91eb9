"""A scriptable STUN server on loopback for the hostile cases of the `stun` check.

`FakeStunServer` is an async context manager: a UDP socket on 127.0.0.1 (or ::1), port 0,
that answers the i-th Binding request it receives with the i-th *reply* of its script (the
last one repeats). Replies are built by the factories below (`success`, `silence`,
`garbage`, `other_transaction`, `error`, `without_mapped`, `echo`) and encoded with
`aioice.stun`: nothing here hand-writes STUN, except `garbage`, which is not STUN on purpose.

The server records every request it parsed (`requests`) and sets `received` at each, so a
test waits for an event instead of sleeping. Leaving the context closes the socket and waits
until it is closed, so tests run with warnings as errors.

Nothing here ever leaves 127.0.0.0/8 or ::1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, cast

from aioice import stun

#: What the server sends back for one request: zero or more datagrams.
Reply = Callable[[stun.Message, tuple[Any, ...]], Sequence[bytes]]


def success(message: stun.Message, addr: tuple[Any, ...]) -> Sequence[bytes]:
    """A Binding success response with XOR-MAPPED-ADDRESS, what a real server sends."""
    response = stun.Message(
        stun.Method.BINDING,
        stun.Class.RESPONSE,
        transaction_id=message.transaction_id,
        attributes={"XOR-MAPPED-ADDRESS": (addr[0], addr[1])},
    )
    return [bytes(response)]


def silence(message: stun.Message, addr: tuple[Any, ...]) -> Sequence[bytes]:
    """No answer: the request was lost (or dropped by a censor)."""
    return []


def garbage(message: stun.Message, addr: tuple[Any, ...]) -> Sequence[bytes]:
    """A datagram that is not STUN at all."""
    return [b"HTTP/1.1 403 Forbidden\r\n\r\nblocked"]


def other_transaction(message: stun.Message, addr: tuple[Any, ...]) -> Sequence[bytes]:
    """A well-formed success response to a request the client never sent."""
    response = stun.Message(
        stun.Method.BINDING,
        stun.Class.RESPONSE,
        transaction_id=bytes(b ^ 0xFF for b in message.transaction_id),
        attributes={"XOR-MAPPED-ADDRESS": (addr[0], addr[1])},
    )
    return [bytes(response)]


def error(code: int = 400, reason: str = "Bad Request") -> Reply:
    """A Binding error response with ERROR-CODE `code`."""

    def reply(message: stun.Message, addr: tuple[Any, ...]) -> Sequence[bytes]:
        response = stun.Message(
            stun.Method.BINDING,
            stun.Class.ERROR,
            transaction_id=message.transaction_id,
            attributes={"ERROR-CODE": (code, reason)},
        )
        return [bytes(response)]

    return reply


def without_mapped(message: stun.Message, addr: tuple[Any, ...]) -> Sequence[bytes]:
    """A Binding success response to the right transaction, with no mapped address."""
    response = stun.Message(
        stun.Method.BINDING, stun.Class.RESPONSE, transaction_id=message.transaction_id
    )
    return [bytes(response)]


def echo(message: stun.Message, addr: tuple[Any, ...]) -> Sequence[bytes]:
    """The request itself, sent back (a reflector in the server's place)."""
    return [bytes(message)]


def then(*replies: Reply) -> Reply:
    """Every datagram of `replies`, in order, for the same request."""

    def reply(message: stun.Message, addr: tuple[Any, ...]) -> Sequence[bytes]:
        return [datagram for one in replies for datagram in one(message, addr)]

    return reply


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: FakeStunServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return
        server = self.server
        index = len(server.requests)
        server.requests.append(message)
        server.peers.append(addr)
        reply = server.script[min(index, len(server.script) - 1)]
        assert self.transport is not None
        for datagram in reply(message, addr):
            self.transport.sendto(datagram, addr)
        server.received.set()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class FakeStunServer:
    """A UDP STUN server on `host`, port 0 (`port` once entered), answering by `script`."""

    def __init__(self, *script: Reply, host: str = "127.0.0.1") -> None:
        self.script: tuple[Reply, ...] = script or (success,)
        self.host = host
        self.port = 0
        #: Requests received, in order (retransmissions included).
        self.requests: list[stun.Message] = []
        #: Source address of each request.
        self.peers: list[tuple[Any, ...]] = []
        #: Set at each request received; a test clears it to wait for the next one.
        self.received = asyncio.Event()
        self._protocol: _Protocol | None = None

    async def __aenter__(self) -> FakeStunServer:
        loop = asyncio.get_running_loop()
        protocol = _Protocol(self)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, local_addr=(self.host, 0)
        )
        self._protocol = protocol
        self.port = transport.get_extra_info("sockname")[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            return
        protocol.transport.close()
        await protocol.closed  # the socket is closed once connection_lost ran
