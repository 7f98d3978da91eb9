"""The byte streams a probe's phases read and write: plain TCP and TLS over a socket the
probe owns (`exporter.probes.http.ByteStream`), with the kernel's arrival stamps.

TLS runs through `ssl.MemoryBIO`s over the connected socket, so the probe owns the socket
outright: no transports, no background TLS shutdown keeping descriptors open, and the
handshake fails exactly where the peer misbehaved (reset, EOF, silence, garbage).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time

from exporter.probes.network import sock_recv_stamped, stamp_arrivals

#: Bytes asked of a socket per read.
RECV_CHUNK = 64 * 1024


class Reader:
    """Reads of a probe's socket, with the kernel's arrival stamps when `stamped`: how long
    the newest data read sat in the kernel before the event loop came to read it. That wait
    is the exporter's lateness, not the peer's, and `lag()` lets a phase leave it out."""

    def __init__(self, sock: socket.socket, *, stamped: bool = False) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()
        self._stamped = stamped and stamp_arrivals(sock)
        self._read_at = 0.0  # perf_counter seconds of the newest stamped read with data
        self._arrived = 0.0  # perf_counter seconds when that data arrived, by its stamp

    async def _read(self, max_bytes: int) -> bytes:
        if not self._stamped:
            return await self._loop.sock_recv(self._sock, max_bytes)
        data, waited = await sock_recv_stamped(self._sock, max_bytes)
        if waited is not None:
            self._read_at = time.perf_counter()
            self._arrived = self._read_at - waited
        return data

    def lag(self, since: float) -> float:
        """`unread_time` of the newest data read, for a phase that began at `since`."""
        return unread_time(read_at=self._read_at, arrived=self._arrived, since=since)


def unread_time(*, read_at: float, arrived: float, since: float) -> float:
    """Seconds data sat in the kernel unread, for a phase that began at `since`: from its
    arrival (or `since`, when it arrived earlier) to its read; 0.0 when it was read before
    the phase began (not the phase's data). All on one clock (perf_counter seconds)."""
    if read_at <= since:
        return 0.0
    return read_at - max(arrived, since)


class SocketStream(Reader):
    """Plain TCP as a `ByteStream` (exporter.probes.http)."""

    async def send(self, data: bytes) -> None:
        await self._loop.sock_sendall(self._sock, data)

    async def recv(self, max_bytes: int) -> bytes:
        return await self._read(max_bytes)


class TlsStream(Reader):
    """TLS client over a connected non-blocking socket, through memory BIOs.

    The socket stays the caller's: closing it ends the stream. Reads treat a close without
    close_notify like a clean close (as `suppress_ragged_eofs` does): HTTP framing, checked
    by h11, tells a cut body from a complete one.
    """

    def __init__(
        self,
        sock: socket.socket,
        ctx: ssl.SSLContext,
        server_hostname: str,
        *,
        stamped: bool = False,
    ) -> None:
        super().__init__(sock, stamped=stamped)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        # An IP literal as server_hostname: CPython sends no SNI and checks the IP SANs.
        self.ssl_object = ctx.wrap_bio(self._in, self._out, server_hostname=server_hostname)

    async def _flush(self) -> None:
        data = self._out.read()
        if data:
            await self._loop.sock_sendall(self._sock, data)

    async def _fill(self) -> None:
        data = await self._read(RECV_CHUNK)
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()

    def _send_alert(self) -> None:
        """Best effort, never blocking: let the peer see our alert (e.g. bad certificate)."""
        data = self._out.read()
        if data:
            with contextlib.suppress(OSError):
                self._sock.send(data)

    async def handshake(self) -> None:
        while True:
            try:
                self.ssl_object.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except ssl.SSLError:
                self._send_alert()
                raise
        await self._flush()  # TLS 1.3: our Finished

    async def send(self, data: bytes) -> None:
        self.ssl_object.write(data)
        await self._flush()

    async def recv(self, max_bytes: int) -> bytes:
        while True:
            try:
                return self.ssl_object.read(max_bytes)
            except ssl.SSLWantReadError:
                await self._flush()  # e.g. a key update answer
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
