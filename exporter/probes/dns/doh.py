"""DNS over HTTPS (RFC 8484) on HTTP/1.1: one POST over TLS on a fresh dialer connection.

The HTTP/1.1 exchange is `exporter.probes.http.Roundtrip` (h11), the one the http check and
the throughput download use; what is DoH's own is its verdict on the reply (2xx, of type
`application/dns-message`, at most `DOH_BODY_LIMIT` bytes) and that a peer hanging up is an
EOF, not bad HTTP.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from dataclasses import dataclass

import dns.message
import h11

from exporter.config.model import Resolver
from exporter.probes.dns.call import MAX_STREAM_REPLY, Call, DohError, bad_response
from exporter.probes.dns.dot import tls_connect
from exporter.probes.dns.sockets import HttpStream
from exporter.probes.http import ByteStream, PeerClosed, Roundtrip

DNS_MESSAGE = "application/dns-message"
#: Largest DoH reply body read, bytes.
DOH_BODY_LIMIT = MAX_STREAM_REPLY
#: Largest DoH response head (status line + headers), bytes: h11's default bound.
DOH_HEAD_LIMIT = 16 * 1024
USER_AGENT = "messaging-exporter"


@dataclass(frozen=True, slots=True)
class DohTarget:
    dial: str  # address dialled
    port: int
    authority: str  # Host header
    target: str  # request target (path and query)
    sni: str


def doh_target(resolver: Resolver) -> DohTarget:
    """Where a `doh` resolver's URL leads; the address dialled is `address`, or the URL's
    host when it is an IP literal (a name would need a resolver of its own)."""
    if not resolver.url:
        raise ValueError(f"resolver {resolver.name!r} (doh) has no url")
    parts = urllib.parse.urlsplit(resolver.url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"DoH url must be https://host/...: {resolver.url!r}")
    host = parts.hostname
    dial = resolver.address
    if dial is None:
        try:
            dial = str(ipaddress.ip_address(host))
        except ValueError:
            raise ValueError(
                f"resolver {resolver.name!r}: DoH url host {host!r} is a name; give `address`"
            ) from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return DohTarget(
        dial=dial,
        port=parts.port or resolver.port,
        authority=parts.netloc.rpartition("@")[2],
        target=target,
        sni=resolver.tls.server_name or resolver.server_name or host,
    )


async def doh(call: Call, message: dns.message.Message) -> dns.message.Message:
    """The `doh` transport: ALPN `http/1.1`, SNI the configured server name (else the
    URL's host)."""
    resolver = call.resolver
    where = doh_target(resolver)
    ctx = call.contexts.get(resolver.tls, ["http/1.1"])
    reader, writer = await tls_connect(call, where.dial, where.port, ctx, where.sni)
    body = await http_post(HttpStream(reader, writer), where, message.to_wire())
    response = dns.message.from_wire(body, keyring=message.keyring, request_mac=message.mac)
    if not message.is_response(response):
        raise bad_response("DoH reply does not answer the query")
    return response


class _DnsReply:
    """DoH's `ResponseReader`: the reply must be a 2xx `application/dns-message` of at most
    `DOH_BODY_LIMIT` bytes, else DohError."""

    def __init__(self) -> None:
        self.data = bytearray()

    def head(self, response: h11.Response) -> None:
        if not 200 <= response.status_code < 300:
            reason = response.reason.decode("latin-1", "replace")
            raise DohError(f"DoH server answered HTTP {response.status_code} {reason}".rstrip())
        ctype = dict(response.headers).get(b"content-type", b"").decode("latin-1")
        if ctype.split(";")[0].strip().lower() != DNS_MESSAGE:
            raise DohError(f"DoH reply is {ctype or 'untyped'!r}, not {DNS_MESSAGE}")

    def body(self, data: bytes) -> bool:
        self.data += data
        if len(self.data) > DOH_BODY_LIMIT:
            raise DohError(f"DoH reply body exceeds {DOH_BODY_LIMIT} bytes")
        return False  # the whole message is needed


async def http_post(stream: ByteStream, where: DohTarget, payload: bytes) -> bytes:
    """One HTTP/1.1 POST (RFC 8484); the body of a 2xx application/dns-message reply.

    Raises DohError for a reply that is not one, EOFError when the peer closes before its
    end, h11.RemoteProtocolError for bad HTTP, and the stream's errors."""
    request = h11.Request(
        method="POST",
        target=where.target,
        headers=[
            ("Host", where.authority),
            ("User-Agent", USER_AGENT),
            ("Accept", DNS_MESSAGE),
            ("Content-Type", DNS_MESSAGE),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
        ],
    )
    wire = Roundtrip(request, payload, max_head=DOH_HEAD_LIMIT)
    reply = _DnsReply()
    try:
        await wire.run(stream, reply)
    except (h11.RemoteProtocolError, PeerClosed) as exc:
        if not wire.eof:
            raise
        if not wire.head_done:
            raise EOFError("connection closed without an HTTP reply") from exc
        raise EOFError("connection closed before the end of the HTTP reply") from exc
    return bytes(reply.data)
