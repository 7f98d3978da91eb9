"""dnspython's async socket interface over sockets the probe made (the `Dialer`'s).

`dns.asyncquery.tcp()` takes a `sock=` of dnspython's socket types; these adapters
hand it the network's sockets, so a netns, interface, source address or proxy is honoured,
and bound what a hostile resolver can make dnspython parse. None of them owns its socket:
the exchange's exit stack closes it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable
from typing import Any

import dns.exception

from exporter.probes.compat import StreamSocket
from exporter.probes.dns.call import MAX_STREAM_REPLY, bad_response


async def _bounded(awaitable: Awaitable[Any], seconds: float | None) -> Any:
    """dnspython passes per-call timeouts in seconds (None = no limit); honour them the way
    its own backend does."""
    if seconds is None:
        return await awaitable
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        raise dns.exception.Timeout(timeout=seconds) from None  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated


def _within_stream_budget(received: int, data: bytes) -> int:
    """Bytes received so far in a stream exchange, with `data`; BadResponse past the cap."""
    received += len(data)
    if received > MAX_STREAM_REPLY + 2:  # + the 2-byte length prefix of DNS over TCP
        raise bad_response(f"reply larger than {MAX_STREAM_REPLY} bytes")
    return received


class TcpStream(StreamSocket):
    """A connected dialer TCP socket as dnspython's `StreamSocket`. Does not own it.

    Used for one exchange: past `MAX_STREAM_REPLY` bytes received it raises BadResponse."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock.family, socket.SOCK_STREAM)
        self.sock = sock
        self.received = 0

    async def sendall(self, what: bytes, seconds: float | None) -> None:
        loop = asyncio.get_running_loop()
        await _bounded(loop.sock_sendall(self.sock, what), seconds)

    async def recv(self, size: int, seconds: float | None) -> bytes:
        loop = asyncio.get_running_loop()
        data = bytes(await _bounded(loop.sock_recv(self.sock, size), seconds))
        self.received = _within_stream_budget(self.received, data)
        return data

    async def close(self) -> None:
        pass

    async def getpeername(self) -> Any:
        return self.sock.getpeername()

    async def getsockname(self) -> Any:
        return self.sock.getsockname()


class TlsStream(StreamSocket):
    """An asyncio TLS stream (over a dialer socket) as dnspython's `StreamSocket`, bounded
    like `TcpStream`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        super().__init__(sock.family if sock is not None else socket.AF_INET, socket.SOCK_STREAM)
        self.reader = reader
        self.writer = writer
        self.received = 0

    async def sendall(self, what: bytes, seconds: float | None) -> None:
        self.writer.write(what)
        await _bounded(self.writer.drain(), seconds)

    async def recv(self, size: int, seconds: float | None) -> bytes:
        data = bytes(await _bounded(self.reader.read(size), seconds))
        self.received = _within_stream_budget(self.received, data)
        return data

    async def close(self) -> None:
        pass

    async def getpeername(self) -> Any:
        return self.writer.get_extra_info("peername")

    async def getsockname(self) -> Any:
        return self.writer.get_extra_info("sockname")


class HttpStream:
    """An asyncio stream pair (TLS over a dialer socket) as `exporter.probes.http.ByteStream`,
    for DoH's HTTP/1.1 exchange. Does not own the stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, max_bytes: int) -> bytes:
        return await self.reader.read(max_bytes)
