"""DNS over TLS (RFC 7858): one exchange over TLS on a fresh dialer TCP connection."""

from __future__ import annotations

import asyncio
import ssl

import dns.asyncquery
import dns.message

from exporter.probes.dns.call import Call, address_of
from exporter.probes.dns.sockets import TlsStream


async def tls_connect(
    call: Call, address: str, port: int, ctx: ssl.SSLContext, server_hostname: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TLS over a dialer TCP connection. The transport is aborted (not politely shut down:
    a peer that never sends close_notify would hold the socket for ssl_shutdown_timeout)."""
    sock = await call.dialer.connect_tcp(address, port)
    call.cleanup.callback(sock.close)  # after the abort below (LIFO); closing twice is a no-op
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=ctx, server_hostname=server_hostname
    )
    # Hold the writer (not just its transport) until cleanup: a StreamWriter collected while
    # its transport is open warns (ResourceWarning) and closes it politely.
    call.cleanup.callback(_abort, writer)
    return reader, writer


def _abort(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


async def dot(call: Call, message: dns.message.Message) -> dns.message.Message:
    """The `dot` transport: ALPN `dot`, SNI the configured server name (else the address)."""
    resolver = call.resolver
    address = address_of(resolver)
    sni = resolver.tls.server_name or resolver.server_name or address
    ctx = call.contexts.get(resolver.tls, ["dot"])
    reader, writer = await tls_connect(call, address, resolver.port, ctx, sni)
    return await dns.asyncquery.tcp(
        message, address, port=resolver.port, sock=TlsStream(reader, writer)
    )
