"""Censor devices that need userspace, run inside a censoring ISP's namespace.

nftables steers the flows here (`redirect` / `dnat` in the ISP's `dstnat` chain); the real
destination comes back from conntrack through SO_ORIGINAL_DST.

- `SniFilter`: reads the client's first bytes, extracts the SNI from the TLS ClientHello and,
  for a blocked name, resets the connection (SO_LINGER 0 → RST) both ways; otherwise it
  splices bytes to the original destination untouched. nftables cannot match a ClientHello
  (no string match, and the SNI sits at a variable offset), hence userspace. Optionally it puts
  (client, server, port) into the nft set `residual` with a timeout, which a `prefilter` rule
  answers with TCP resets: residual censorship as the GFW does it.
- `TlsInterceptor`: terminates TLS with a certificate for the requested name issued on the fly
  by a foreign CA (a Kazakhstan-2019-style interception), then relays the plaintext to the
  original destination over a new TLS connection.

Both start relaying to the real server as soon as a client connects, so a protocol where the
server speaks first still works through them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("lab.middlebox")

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h, level SOL_IP
#: A ClientHello larger than this is not parsed (treated as "no SNI": passed through).
MAX_HELLO = 64 * 1024
HELLO_TIMEOUT = 5.0


def original_destination(sock: Any) -> tuple[str, int]:
    """The (address, port) the client dialled before nftables rewrote it (IPv4)."""
    raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


# --- ClientHello parsing ---------------------------------------------------------------------


class NeedMore(Exception):
    """The buffer does not hold the whole ClientHello yet."""


class NotClientHello(ValueError):
    """The bytes are not a TLS ClientHello."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise NotClientHello("truncated ClientHello")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def number(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def vector(self, length_bytes: int) -> bytes:
        return self.take(self.number(length_bytes))

    @property
    def done(self) -> bool:
        return self.pos >= len(self.data)


def client_hello_sni(buffer: bytes) -> str | None:
    """The server_name (SNI) of the ClientHello at the start of `buffer`, None if it has none.

    Follows RFC 8446 §4.1.2 / RFC 6066 §3: TLS records (type 22, handshake) are reassembled
    until the handshake message (type 1, ClientHello) is complete; then version, random,
    session id, cipher suites and compression methods are skipped and the extensions walked
    for type 0 (server_name), whose first host_name entry is returned.

    Raises NeedMore when more bytes are needed, NotClientHello when it is not one.
    """
    handshake = b""
    pos = 0
    while True:
        if len(buffer) < pos + 5:
            raise NeedMore
        content_type, length = buffer[pos], int.from_bytes(buffer[pos + 3 : pos + 5], "big")
        if content_type != 22 or buffer[pos + 1] != 3:
            raise NotClientHello("not a TLS handshake record")
        if len(buffer) < pos + 5 + length:
            raise NeedMore
        handshake += buffer[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if len(handshake) >= 4:
            if handshake[0] != 1:
                raise NotClientHello("first handshake message is not a ClientHello")
            body_length = int.from_bytes(handshake[1:4], "big")
            if len(handshake) >= 4 + body_length:
                break
    hello = _Reader(handshake[4 : 4 + body_length])
    hello.take(2 + 32)  # legacy_version, random
    hello.vector(1)  # legacy_session_id
    hello.vector(2)  # cipher_suites
    hello.vector(1)  # legacy_compression_methods
    if hello.done:
        return None  # no extensions at all
    extensions = _Reader(hello.vector(2))
    while not extensions.done:
        ext_type = extensions.number(2)
        ext_data = extensions.vector(2)
        if ext_type != 0:
            continue
        names = _Reader(_Reader(ext_data).vector(2))
        while not names.done:
            name_type = names.number(1)
            name = names.vector(2)
            if name_type == 0:  # host_name
                return name.decode("ascii", errors="replace").lower().rstrip(".")
        return None
    return None


def name_matches(name: str, pattern: str) -> bool:
    """`pattern` is an exact name or `*.suffix` (any name under suffix, not suffix itself)."""
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


# --- relaying --------------------------------------------------------------------------------


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST rather than a FIN (SO_LINGER on, timeout 0)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, ssl.SSLError):
        writer.transport.abort()


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Copy both ways until both directions end (half-closes are forwarded)."""
    try:
        await asyncio.gather(_pump(a[0], b[1]), _pump(b[0], a[1]))
    finally:
        for writer in (a[1], b[1]):
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()


async def _drop(
    upstream: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
) -> None:
    """Abandon a pending upstream connection; reset it if it was already made."""
    upstream.cancel()
    try:
        _, up_writer = await upstream
    except (asyncio.CancelledError, OSError):
        return
    reset(up_writer)


# --- the SNI filter --------------------------------------------------------------------------


class SniFilter:
    """A transparent TCP proxy that resets flows whose ClientHello names a blocked host.

    `blocked`: name or `*.suffix` → residual seconds (0: no residual blocking).
    `residual_set`: the nft set (`inet lab residual`) that a `prefilter` rule resets.
    """

    def __init__(self, blocked: Mapping[str, float], residual_set: str | None = None) -> None:
        self.blocked = dict(blocked)
        self.residual_set = residual_set
        self.hits: list[tuple[str, str, int, str]] = []

    def verdict(self, sni: str | None) -> float | None:
        """None to let the flow through, else the residual seconds of the matching rule."""
        if sni is None:
            return None
        for pattern, residual in self.blocked.items():
            if name_matches(sni, pattern):
                return residual
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = writer.get_extra_info("peername")[0]
        dst, port = original_destination(writer.get_extra_info("socket"))
        upstream_task = asyncio.ensure_future(asyncio.open_connection(dst, port))
        buffer = b""
        sni: str | None = None
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                while True:
                    try:
                        sni = client_hello_sni(buffer)
                        break
                    except NeedMore:
                        if len(buffer) >= MAX_HELLO:
                            break
                        chunk = await reader.read(65536)
                        if not chunk:
                            break
                        buffer += chunk
        except (NotClientHello, TimeoutError):
            pass  # not TLS (or silent): fail open, like a real filter
        except OSError:
            writer.transport.abort()
            await _drop(upstream_task)
            return
        residual = self.verdict(sni)
        if residual is not None:
            assert sni is not None
            log.info("sni %s from %s to %s:%d: reset", sni, client, dst, port)
            self.hits.append((client, dst, port, sni))
            if residual > 0 and self.residual_set:
                await self._residual(client, dst, port, residual)
            reset(writer)
            await _drop(upstream_task)  # the server gets its RST too, as from the GFW
            return
        try:
            up_reader, up_writer = await upstream_task
        except OSError as exc:
            log.info("upstream %s:%d failed: %s", dst, port, exc)
            reset(writer)
            return
        up_writer.write(buffer)
        await splice((reader, writer), (up_reader, up_writer))

    async def _residual(self, client: str, dst: str, port: int, seconds: float) -> None:
        assert self.residual_set is not None
        element = f"{{ {client} . {dst} . {port} timeout {max(1, round(seconds * 1000))}ms }}"
        proc = await asyncio.create_subprocess_exec(
            "nft",
            "add",
            "element",
            *self.residual_set.split(),
            element,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate()
        if proc.returncode != 0:
            log.error("nft add element failed: %s", err.decode(errors="replace"))


# --- the TLS interceptor ---------------------------------------------------------------------


class TlsInterceptor:
    """Terminates TLS with a foreign-CA certificate minted for the requested SNI, then relays
    the plaintext to the original destination over a new (unverified) TLS connection."""

    def __init__(self, ca_cert: Path, ca_key: Path) -> None:
        import trustme  # the server side only: keep imports light for other processes

        self.ca = trustme.CA.from_pem(ca_cert.read_bytes(), ca_key.read_bytes())
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.names: dict[int, str] = {}
        self.default = self._context("intercepted.lab")
        self.default.sni_callback = self._on_sni

    def _context(self, name: str) -> ssl.SSLContext:
        ctx = self.contexts.get(name)
        if ctx is None:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert(name).configure_cert(ctx)
            self.contexts[name] = ctx
            self.names[id(ctx)] = name
        return ctx

    def _on_sni(self, ssl_obj: Any, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if server_name:
            ssl_obj.context = self._context(server_name.lower())
        return None

    @property
    def server_context(self) -> ssl.SSLContext:
        return self.default

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dst, port = original_destination(writer.get_extra_info("socket"))
        ssl_obj = writer.get_extra_info("ssl_object")
        name = self.names.get(id(ssl_obj.context)) if ssl_obj is not None else None
        sni = None if name in (None, "intercepted.lab") else name
        client_ctx = ssl.create_default_context()
        client_ctx.check_hostname = False
        client_ctx.verify_mode = ssl.CERT_NONE
        try:
            upstream = await asyncio.wait_for(
                asyncio.open_connection(dst, port, ssl=client_ctx, server_hostname=sni or dst),
                HELLO_TIMEOUT,
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            log.info("interceptor: upstream %s:%d failed: %s", dst, port, exc)
            writer.transport.abort()
            return
        log.info("intercepted %s for %s:%d", sni, dst, port)
        await splice((reader, writer), upstream)
