"""dnspython's async socket interface over sockets the probe made (the `Dialer`'s).

`dns.asyncquery.udp()` / `tcp()` take a `sock=` of dnspython's socket types; these adapters
hand it the network's sockets, so a netns, interface, source address or proxy is honoured,
and bound what a hostile resolver can make dnspython parse. None of them owns its socket:
the exchange's exit stack closes it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable
from typing import Any

import dns.exception

from exporter.probes.compat import DatagramSocket, StreamSocket
from exporter.probes.dns.call import MAX_STREAM_REPLY, bad_response
from exporter.probes.network import sock_recvfrom_stamped, sock_sendto


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


class Datagrams(DatagramSocket):
    """A dialer UDP socket as dnspython's `DatagramSocket`. Does not own the socket.

    A datagram larger than `max_reply` bytes raises BadResponse before dnspython parses it."""

    def __init__(self, sock: socket.socket, *, max_reply: int = 65535) -> None:
        super().__init__(sock.family, socket.SOCK_DGRAM)
        self.sock = sock
        self.max_reply = max_reply
        #: Monotonic time of the first send, and the kernel's arrival time of the last
        #: datagram read (None without an arrival stamp).
        self.sent: float | None = None
        self.arrived: float | None = None

    async def sendto(self, what: bytes, destination: Any, seconds: float | None) -> int:
        if self.sent is None:
            self.sent = time.monotonic()
        return int(await _bounded(sock_sendto(self.sock, what, destination), seconds))

    async def recvfrom(self, size: int, seconds: float | None) -> tuple[bytes, Any]:
        data, address, waited = await _bounded(sock_recvfrom_stamped(self.sock, size), seconds)
        self.arrived = None if waited is None else time.monotonic() - waited
        if len(data) > self.max_reply:
            raise bad_response(
                f"UDP reply of {len(data)} bytes, larger than the {self.max_reply} bytes asked"
            )
        return data, address

    async def close(self) -> None:
        pass  # the exchange's exit stack closes the socket

    async def getpeername(self) -> Any:
        return self.sock.getpeername()

    async def getsockname(self) -> Any:
        return self.sock.getsockname()


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
