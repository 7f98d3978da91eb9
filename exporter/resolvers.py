"""Asking one configured resolver one question, through one network.

`query()` is what a probe calls: it never raises (bar cancellation) and turns every outcome
into a `DnsObservation`. `exchange()` is the lower level, raising, message-in/message-out
call that `query()` is built on, for questions that are not A/AAAA (identity TXT, CH class).

Invariants:
- every socket comes from the `Dialer` (the network seam) — except DoQ's and DoH3's, which
  dnspython opens itself, so they honour only the network's source address (see
  docs/resolvers.md);
- nothing is cached or pooled: each call dials, handshakes and asks afresh, so a middlebox's
  reset or a poisoned answer is seen every time it happens;
- every message is built and parsed by dnspython; nothing here encodes DNS by hand;
- a call is bounded by `timeout` seconds (DoQ and DoH3 may add `QUIC_CLOSE_GRACE` to close
  politely),
  and every socket it opened is closed when it returns, fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
import ssl
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import dns._asyncbackend
import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import h11
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated
from aioquic.quic.packet import QuicErrorCode
from aioquic.tls import AlertDescription
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from dns.quic._asyncio import AsyncioQuicManager  # re-exported by dns.quic, not explicitly
from dns.quic._common import UnexpectedEOF  # dnspython does not re-export it

from exporter.config import IdentityCheck, Resolver, ResolverType, TlsOptions
from exporter.errors import NetworkSetupError, classify, describe
from exporter.model import DnsObservation, ErrorKind
from exporter.network import (
    Dialer,
    family_of,
    sock_recvfrom_stamped,
    sock_sendto,
    stamp_arrivals,
)
from exporter.tls import TlsContexts

DNS_MESSAGE = "application/dns-message"
#: Largest reply read over TCP, DoT (its 2-byte length prefix included) and DoH, bytes. A
#: DNS message may reach 65,535 bytes, but dnspython parses ~13,000 records a second on one
#: core: a hostile resolver's 64 KB of 4,000 A records would hold the event loop, and every
#: other probe, for 0.3 s per query. 16 KiB (~1,000 records, ~75 ms at worst) is far above
#: any answer a messaging service's name gets (tests/test_hostile.py).
MAX_STREAM_REPLY = 16 * 1024
#: Largest DoH reply body read, bytes.
DOH_BODY_LIMIT = MAX_STREAM_REPLY
#: EDNS0 UDP payload size advertised (the DNS flag day 2020 value: no IP fragmentation).
#: A UDP reply larger than the query advertised (512 bytes without EDNS) breaks RFC 6891
#: and is refused unparsed (`dns_bad_response`), for the reason of `MAX_STREAM_REPLY`.
EDNS_PAYLOAD = 1232
#: A UDP query with no reply is sent again (the same bytes, the same ID) after this fraction
#: of the time it was given, and at most `UDP_RESEND_MAX` seconds, up to `UDP_SENDS` sends in
#: all, like a stub resolver (glibc: `options timeout: attempts:`). Any of them may be
#: answered. One lost datagram (a 1 % loss costs ~2 % of exchanges) then costs one interval,
#: not the probe (docs/reliability.md, "Long run").
UDP_RESEND_FRACTION = 1 / 3
UDP_RESEND_MAX = 1.0
UDP_SENDS = 3
#: Seconds a DoQ connection is given to send its CONNECTION_CLOSE before it is torn down.
QUIC_CLOSE_GRACE = 0.05
#: Longest CNAME chain followed inside an answer section.
MAX_CNAME_CHAIN = 16
#: Where the host's stub resolver configuration lives (and `ip netns exec`'s override).
RESOLV_CONF = "/etc/resolv.conf"
NETNS_ETC = "/etc/netns"
#: glibc moves on to the next nameserver on these rcodes; so does the system resolver here.
_NEXT_SERVER_RCODES = frozenset({dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED})

_ADDRESS_TYPES = {"A": dns.rdatatype.A, "AAAA": dns.rdatatype.AAAA}
_RCODE_KIND = {
    dns.rcode.NXDOMAIN: ErrorKind.DNS_NXDOMAIN,
    dns.rcode.SERVFAIL: ErrorKind.DNS_SERVFAIL,
    dns.rcode.REFUSED: ErrorKind.DNS_REFUSED,
}

# OpenSSL X509_V_ERR_* codes (x509_vfy.h), so a DoQ certificate failure reads, for
# errors.classify, exactly like the same failure over TLS-over-TCP.
_X509_UNSPECIFIED = 1
_X509_CERT_HAS_EXPIRED = 10
_X509_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
_X509_HOSTNAME_MISMATCH = 62


class DohError(dns.exception.DNSException):
    """The DoH server answered, but not with a DNS message (non-2xx, wrong type, too big).

    A `DNSException`, so `errors.classify` files it under `dns_bad_response`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated


def _bad_response(message: str) -> dns.query.BadResponse:
    """dnspython's "not a response to the query" error, with our text."""
    return dns.query.BadResponse(message)  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated


class QuicCertificateError(ssl.SSLCertVerificationError):
    """A DoQ certificate check failed. aioquic reports it as text; this carries the matching
    OpenSSL `verify_code` so `errors.classify` tells expired / unknown CA / wrong name apart."""

    def __init__(self, verify_code: int, message: str) -> None:
        super().__init__(verify_code, message)  # (errno, strerror): str() is the message
        self.verify_code = verify_code
        self.verify_message = message


class QuicTlsError(ssl.SSLError):
    """The DoQ handshake failed on a TLS alert other than a certificate check (`tls_error`)."""


# --- public API ----------------------------------------------------------------------------


async def query(
    resolver: Resolver,
    dialer: Dialer,
    qname: str,
    qtype: str,
    *,
    contexts: TlsContexts,
    timeout: float,  # noqa: ASYNC109  # the API's budget, applied with asyncio.timeout
    resolv_conf: str | None = None,
) -> DnsObservation:
    """Ask `resolver`, through `dialer`'s network, for the `qtype` ("A" / "AAAA") of `qname`.

    Never raises except `CancelledError`: a failure is an observation with `error` set.
    `duration` (seconds, monotonic) runs from the first socket to the reply or the failure;
    `server` names where the question went (for `system`, the nameserver that answered or
    was tried last). `timeout` is in seconds and bounds the whole call.
    """
    trace = _Trace(server=_server_label(resolver, resolv_conf, dialer))
    try:
        rdtype = _ADDRESS_TYPES.get(qtype.upper())
        if rdtype is None:
            raise ValueError(f"query() asks for A or AAAA, not {qtype!r}; use exchange()")
        message = dns.message.make_query(qname, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
        response = await _bounded_exchange(
            resolver,
            dialer,
            message,
            contexts=contexts,
            timeout=timeout,
            resolv_conf=resolv_conf,
            trace=trace,
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return _failed(qname, qtype, trace, exc)
    return _observe(qname, qtype, message, response, trace)


def _failed(qname: str, qtype: str, trace: _Trace, exc: Exception) -> DnsObservation:
    """The observation of a question that got no usable reply."""
    return DnsObservation(
        qname=qname,
        qtype=qtype,
        server=trace.server,
        error=classify(exc),
        detail=describe(exc),
        duration=trace.elapsed(),
        overhead=trace.overhead(),
    )


async def ask_identity(
    resolver: Resolver,
    dialer: Dialer,
    check: IdentityCheck,
    *,
    contexts: TlsContexts,
    timeout: float,  # noqa: ASYNC109  # the API's budget, applied with asyncio.timeout
    resolv_conf: str | None = None,
) -> DnsObservation:
    """Ask the resolver who it is (e.g. `id.server CH TXT`); never raises but CancelledError.

    `answers` holds the TXT strings (decoded, joined per record) or the addresses asked for,
    so the judgement can match them against `check.expect`. `rcode` is set whenever anything
    replied: for a silent or intercepted resolver that is the evidence itself.
    """
    trace = _Trace(server=_server_label(resolver, resolv_conf, dialer))
    try:
        rdtype = dns.rdatatype.from_text(check.qtype)
        rdclass = dns.rdataclass.from_text(check.qclass)
        message = dns.message.make_query(check.qname, rdtype, rdclass)
        response = await _bounded_exchange(
            resolver,
            dialer,
            message,
            contexts=contexts,
            timeout=timeout,
            resolv_conf=resolv_conf,
            trace=trace,
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return _failed(check.qname, check.qtype, trace, exc)
    answers: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype != rdtype:
            continue
        for rdata in rrset:
            if rdtype == dns.rdatatype.TXT:
                answers.append(b"".join(rdata.strings).decode("utf-8", errors="replace"))
            else:
                answers.append(rdata.to_text())
    rcode = dns.rcode.to_text(response.rcode())
    return DnsObservation(
        qname=check.qname,
        qtype=check.qtype,
        server=trace.server,
        rcode=rcode,
        answers=tuple(answers[:16]),
        duration=trace.elapsed(),
        overhead=trace.overhead(),
    )


async def exchange(
    resolver: Resolver,
    dialer: Dialer,
    message: dns.message.Message,
    *,
    contexts: TlsContexts,
    timeout: float,  # noqa: ASYNC109  # the API's budget, applied with asyncio.timeout
    resolv_conf: str | None = None,
) -> dns.message.Message:
    """Send `message` to `resolver` through `dialer`'s network and return the reply.

    Raises what the transport raised (`errors.classify` names it): OSErrors, ssl errors,
    `TimeoutError` after `timeout` seconds, `dns.exception.DNSException` for a reply that is
    malformed or not a response to `message` (`DohError` for a DoH reply that is not DNS).
    The reply's rcode is not judged. DoQ sets `message.id` to 0, as RFC 9250 requires.
    """
    trace = _Trace(server=_server_label(resolver, resolv_conf, dialer))
    return await _bounded_exchange(
        resolver,
        dialer,
        message,
        contexts=contexts,
        timeout=timeout,
        resolv_conf=resolv_conf,
        trace=trace,
    )


# --- plumbing ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Trace:
    """What `query()` reports even when the exchange fails: where it went and how long."""

    server: str
    started: float = 0.0  # time.monotonic()
    finished: float | None = None
    #: Monotonic times of the first UDP query sent (to any server) and of the accepted UDP
    #: reply's arrival (from the kernel's stamp): the network's part of the exchange.
    first_sent: float | None = None
    arrived: float | None = None

    def _whole(self) -> float:
        if not self.started:
            return 0.0
        end = self.finished if self.finished is not None else time.monotonic()
        return max(end - self.started, 0.0)

    def elapsed(self) -> float:
        """Seconds of the exchange: from the query sent to the reply's arrival when the
        kernel stamped it (UDP), else from the start until the reply was read. A stamp that
        does not fall inside the exchange (a wall clock that jumped) is not used."""
        sent, arrived = self.first_sent, self.arrived
        if sent is not None and arrived is not None and self.started:
            end = self.finished if self.finished is not None else time.monotonic()
            if self.started <= sent <= arrived <= end:
                return arrived - sent
        return self._whole()

    def overhead(self) -> float:
        """Seconds of the exchange that `elapsed()` leaves out: the exporter's own time."""
        return max(self._whole() - self.elapsed(), 0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Call:
    """One exchange's context, handed to the transport functions."""

    resolver: Resolver
    dialer: Dialer
    contexts: TlsContexts
    cleanup: contextlib.AsyncExitStack
    trace: _Trace
    deadline: float  # loop.time() at which the whole exchange gives up
    resolv_conf: str | None


async def _bounded_exchange(
    resolver: Resolver,
    dialer: Dialer,
    message: dns.message.Message,
    *,
    contexts: TlsContexts,
    timeout: float,  # noqa: ASYNC109  # the API's budget, applied with asyncio.timeout
    resolv_conf: str | None,
    trace: _Trace,
) -> dns.message.Message:
    """Run the resolver's transport under the `timeout` budget.

    Sockets are registered on an exit stack that unwinds *outside* the timeout scope: a reply
    that arrived in time is never lost to a slow close, and closing always happens, even on
    cancellation. `trace.finished` is stamped before the closes.
    """
    loop = asyncio.get_running_loop()
    trace.started = time.monotonic()
    async with contextlib.AsyncExitStack() as cleanup:
        call = _Call(
            resolver=resolver,
            dialer=dialer,
            contexts=contexts,
            cleanup=cleanup,
            trace=trace,
            deadline=loop.time() + timeout,
            resolv_conf=resolv_conf,
        )
        try:
            async with asyncio.timeout(timeout) as scope:
                try:
                    return await _TRANSPORTS[resolver.type](call, message)
                finally:
                    trace.finished = time.monotonic()
        except TimeoutError as exc:
            if scope.expired():
                raise TimeoutError(f"no reply within {timeout:g} s") from exc
            raise
    raise AssertionError("unreachable")  # pragma: no cover  # mypy: the stack may swallow


def _server_label(resolver: Resolver, resolv_conf: str | None, dialer: Dialer) -> str:
    """The server an observation names; interned, as every tuple's last observation keeps
    one and a resolver serves many tuples."""
    if resolver.type in (ResolverType.DOH, ResolverType.DOH3):
        label = f"{resolver.type.value}://{resolver.url}"
    elif resolver.type is ResolverType.SYSTEM:
        label = f"system://{_resolv_conf_path(resolv_conf, dialer)}"
    else:
        label = _endpoint_url(resolver.type.value, resolver.address or "?", resolver.port)
    return sys.intern(label)


def _endpoint_url(scheme: str, address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}"


def _address(resolver: Resolver) -> str:
    if not resolver.address:
        raise ValueError(f"resolver {resolver.name!r} ({resolver.type}) has no address")
    return resolver.address


def _observe(
    qname: str,
    qtype: str,
    message: dns.message.Message,
    response: dns.message.Message,
    trace: _Trace,
) -> DnsObservation:
    """The facts of a reply: addresses (following CNAMEs), the rcode and its error kind."""
    question = message.question[0]
    answers, cnames, ttl = _addresses(response, question.name, question.rdtype)
    rcode = response.rcode()
    rcode_text = dns.rcode.to_text(rcode)
    error: ErrorKind | None = None
    detail: str | None = None
    if rcode == dns.rcode.NOERROR:
        if not answers:
            error = ErrorKind.DNS_NO_ANSWER
            detail = f"NOERROR without any {qtype.upper()} record"
    else:
        error = _RCODE_KIND.get(rcode, ErrorKind.DNS_BAD_RESPONSE)
        detail = f"rcode {rcode_text}"
    return DnsObservation(
        qname=qname,
        qtype=qtype,
        server=trace.server,
        rcode=rcode_text,
        answers=answers,
        cnames=cnames,
        ttl=ttl,
        error=error,
        detail=detail,
        duration=trace.elapsed(),
        overhead=trace.overhead(),
    )


def _addresses(
    response: dns.message.Message, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> tuple[tuple[str, ...], tuple[str, ...], int | None]:
    """(addresses in reply order, CNAME targets in chain order, TTL of the address rrset),
    looking only inside the answer section."""
    cnames: list[str] = []
    seen = {name}
    for _hop in range(MAX_CNAME_CHAIN + 1):
        rrset = response.get_rrset(response.answer, name, dns.rdataclass.IN, rdtype)
        if rrset is not None:
            # Interned: each tuple keeps its last answers, and many tuples get the same ones.
            return tuple(sys.intern(rdata.address) for rdata in rrset), tuple(cnames), rrset.ttl
        cname = response.get_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None or len(cname) == 0:
            break
        name = next(iter(cname)).target
        cnames.append(name.to_text(omit_final_dot=True))
        if name in seen:
            break  # a loop: report the chain, no address
        seen.add(name)
    return (), tuple(cnames), None


# --- socket adapters (dnspython's async socket interface over the dialer's sockets) --------


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


class _DatagramSocket(dns._asyncbackend.DatagramSocket):
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
            raise _bad_response(
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
        raise _bad_response(f"reply larger than {MAX_STREAM_REPLY} bytes")
    return received


class _StreamSocket(dns._asyncbackend.StreamSocket):
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


class _TlsStream(dns._asyncbackend.StreamSocket):
    """An asyncio TLS stream (over a dialer socket) as dnspython's `StreamSocket`."""

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


# --- transports ----------------------------------------------------------------------------


async def _udp(call: _Call, message: dns.message.Message) -> dns.message.Message:
    address, port = _address(call.resolver), call.resolver.port
    return await _udp_then_tcp(call, message, address, port, call.deadline)


def resend_interval(seconds: float) -> float:
    """Seconds between the sends of a UDP query given `seconds` in all."""
    return max(min(seconds * UDP_RESEND_FRACTION, UDP_RESEND_MAX), 0.0)


async def _resend(sock: socket.socket, wire: bytes, interval: float) -> None:
    """Send `wire` again every `interval` seconds, `UDP_SENDS - 1` times, until cancelled.
    Best effort: a send that fails (ICMP unreachable reported on the socket, a full buffer)
    is skipped; the receive side reports what the socket says."""
    for _ in range(UDP_SENDS - 1):
        await asyncio.sleep(interval)
        with contextlib.suppress(OSError):
            sock.send(wire)


async def _udp_then_tcp(
    call: _Call, message: dns.message.Message, address: str, port: int, deadline: float
) -> dns.message.Message:
    """UDP, and TCP to the same address and port when the reply is truncated (TC).

    The query is sent again, unchanged, while no reply has come (`resend_interval` of the
    time left until `deadline`, loop time), so a lost datagram is not a failed lookup."""
    loop = asyncio.get_running_loop()
    sock = call.dialer.udp_socket(family_of(address))
    call.cleanup.callback(sock.close)
    # Connected: the kernel then drops datagrams from other sources and reports ICMP
    # port-unreachable as ECONNREFUSED instead of letting the query time out.
    await loop.sock_connect(sock, (address, port))
    stamp_arrivals(sock)  # the reply's arrival, not the loop's wake-up, ends the exchange
    interval = resend_interval(deadline - loop.time())
    resender = asyncio.create_task(_resend(sock, message.to_wire(), interval))
    # What the query advertised: EDNS payload, or DNS's 512 bytes without EDNS.
    datagrams = _DatagramSocket(sock, max_reply=message.payload if message.edns >= 0 else 512)
    try:
        reply = await dns.asyncquery.udp(
            message,
            address,
            port=port,
            sock=datagrams,
            ignore_unexpected=True,
            raise_on_truncation=True,
        )
        call.trace.arrived = datagrams.arrived  # the accepted reply: the last datagram read
        return reply
    except dns.message.Truncated as exc:
        partial = exc.message()  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
        if not message.is_response(partial):
            raise _bad_response("truncated reply does not answer the query") from exc
    finally:
        if call.trace.first_sent is None:
            call.trace.first_sent = datagrams.sent  # a lookup's time starts at its first query
        resender.cancel()
        await asyncio.wait([resender])  # never raises: a cancellation of ours propagates
    sock.close()
    return await _tcp_to(call, message, address, port)


async def _tcp(call: _Call, message: dns.message.Message) -> dns.message.Message:
    return await _tcp_to(call, message, _address(call.resolver), call.resolver.port)


async def _tcp_to(
    call: _Call, message: dns.message.Message, address: str, port: int
) -> dns.message.Message:
    sock = await call.dialer.connect_tcp(address, port)
    call.cleanup.callback(sock.close)
    return await dns.asyncquery.tcp(message, address, port=port, sock=_StreamSocket(sock))


async def _tls_connect(
    call: _Call, address: str, port: int, ctx: ssl.SSLContext, server_hostname: str
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


async def _dot(call: _Call, message: dns.message.Message) -> dns.message.Message:
    resolver = call.resolver
    address = _address(resolver)
    sni = resolver.tls.server_name or resolver.server_name or address
    ctx = call.contexts.get(resolver.tls, ["dot"])
    reader, writer = await _tls_connect(call, address, resolver.port, ctx, sni)
    return await dns.asyncquery.tcp(
        message, address, port=resolver.port, sock=_TlsStream(reader, writer)
    )


@dataclass(frozen=True, slots=True)
class _DohTarget:
    dial: str  # address dialled
    port: int
    authority: str  # Host header
    target: str  # request target (path and query)
    sni: str


def _doh_target(resolver: Resolver) -> _DohTarget:
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
    return _DohTarget(
        dial=dial,
        port=parts.port or resolver.port,
        authority=parts.netloc.rpartition("@")[2],
        target=target,
        sni=resolver.tls.server_name or resolver.server_name or host,
    )


async def _doh(call: _Call, message: dns.message.Message) -> dns.message.Message:
    resolver = call.resolver
    where = _doh_target(resolver)
    ctx = call.contexts.get(resolver.tls, ["http/1.1"])
    reader, writer = await _tls_connect(call, where.dial, where.port, ctx, where.sni)
    body = await _http_post(reader, writer, where, message.to_wire())
    response = dns.message.from_wire(body, keyring=message.keyring, request_mac=message.mac)
    if not message.is_response(response):
        raise _bad_response("DoH reply does not answer the query")
    return response


async def _http_post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, where: _DohTarget, payload: bytes
) -> bytes:
    """One HTTP/1.1 POST (RFC 8484) with h11; the body of a 2xx application/dns-message reply."""
    conn = h11.Connection(our_role=h11.CLIENT)
    request = h11.Request(
        method="POST",
        target=where.target,
        headers=[
            ("Host", where.authority),
            ("User-Agent", "messaging-exporter"),
            ("Accept", DNS_MESSAGE),
            ("Content-Type", DNS_MESSAGE),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
        ],
    )
    writer.write(
        b"".join(
            conn.send(event) or b""
            for event in (request, h11.Data(data=payload), h11.EndOfMessage())
        )
    )
    await writer.drain()
    body = bytearray()
    eof = False
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            if eof:  # the peer hung up mid-reply: that is an EOF, not bad HTTP
                raise EOFError("connection closed before the end of the HTTP reply") from exc
            raise
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            if not data:
                if conn.their_state is h11.SEND_RESPONSE:
                    raise EOFError("connection closed without an HTTP reply")
                eof = True
            conn.receive_data(data)
        elif isinstance(event, h11.Response):
            if not 200 <= event.status_code < 300:
                reason = event.reason.decode("latin-1", "replace")
                raise DohError(f"DoH server answered HTTP {event.status_code} {reason}".rstrip())
            ctype = dict(event.headers).get(b"content-type", b"").decode("latin-1")
            if ctype.split(";")[0].strip().lower() != DNS_MESSAGE:
                raise DohError(f"DoH reply is {ctype or 'untyped'!r}, not {DNS_MESSAGE}")
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > DOH_BODY_LIMIT:
                raise DohError(f"DoH reply body exceeds {DOH_BODY_LIMIT} bytes")
        elif isinstance(event, h11.EndOfMessage):
            return bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            raise EOFError("connection closed before the end of the HTTP reply")
        elif event is h11.PAUSED:  # only after a complete reply, which returned above
            raise DohError("HTTP exchange stalled")
        # InformationalResponse (1xx): skip, the final response follows.


async def _doq(call: _Call, message: dns.message.Message) -> dns.message.Message:
    address = _address(call.resolver)
    connection = _quic_connection(call, address, "doq")
    try:
        return await dns.asyncquery.quic(
            message, address, port=call.resolver.port, connection=connection
        )
    except Exception as exc:
        failure = _quic_failure(connection, exc)
        if failure is None:
            raise
        raise failure from exc


async def _doh3(call: _Call, message: dns.message.Message) -> dns.message.Message:
    """DoH over HTTP/3 (RFC 8484 on RFC 9114): a POST of the query to the URL, by dnspython,
    on a QUIC connection made here so that trust and the source address are ours."""
    resolver = call.resolver
    address = _address(resolver)
    if resolver.url is None:
        raise ValueError(f"resolver {resolver.name!r} (doh3) has no url")
    connection = _quic_connection(call, address, "h3")
    try:
        return await dns.asyncquery.https(
            message,
            resolver.url,
            client=connection,
            bootstrap_address=address,
            http_version=dns.query.HTTPVersion.H3,
        )
    except Exception as exc:
        failure = _quic_failure(connection, exc)
        if failure is not None:
            raise failure from exc
        if isinstance(exc, ValueError | SyntaxError):  # dnspython's verdict on the :status
            raise DohError(f"DoH3 reply: {str(exc)[:200]}") from exc
        raise


def _quic_connection(call: _Call, address: str, alpn: str) -> Any:
    """A dnspython QUIC connection to the resolver (DoQ: ALPN `doq`; DoH3: `h3`), closed by
    the call's cleanup. dnspython opens the UDP socket itself: only a source address can be
    honoured (the loader refuses interface, netns and proxy networks for these types)."""
    resolver, network = call.resolver, call.dialer.network
    what = "DoQ" if alpn == "doq" else "DoH3"
    if network.interface or network.netns or network.proxy:
        raise NetworkSetupError(
            errno.EPROTONOSUPPORT,
            f"network {network.name!r}: {what} opens its own UDP socket and can honour only a "
            "source address, not an interface, namespace or proxy",
        )
    # dnspython would swallow a bind failure of its socket; try the dialer's first so a bad
    # source address reads `network_setup`, not a failed handshake.
    call.dialer.udp_socket(family_of(address)).close()
    sni = resolver.tls.server_name or resolver.server_name or address
    manager = AsyncioQuicManager(  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
        conf=_quic_configuration(resolver.tls, sni, alpn), h3=alpn == "h3"
    )
    connection = manager.connect(
        address, resolver.port, network.source_address, 0, want_session_ticket=False
    )  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
    call.cleanup.push_async_callback(_close_quic, connection)
    return connection


def _quic_configuration(options: TlsOptions, server_name: str, alpn: str) -> QuicConfiguration:
    """A fresh client configuration (no session ticket, no token: every handshake is full).

    Trust mirrors `exporter.tls.build_context`: `ca_file` replaces the roots, `extra_ca_file`
    adds to the system roots (OpenSSL's default paths, certifi where there are none). aioquic
    loads `cafile`, `capath` and `cadata` together, so no combined bundle file is needed.
    """
    conf = QuicConfiguration(
        is_client=True,
        alpn_protocols=[alpn],
        server_name=server_name,
        verify_mode=ssl.CERT_NONE if options.insecure_skip_verify else ssl.CERT_REQUIRED,
    )
    if options.ca_file:
        conf.load_verify_locations(cafile=options.ca_file)
        return conf
    paths = ssl.get_default_verify_paths()
    cafile, capath = paths.cafile, paths.capath
    if cafile is None and capath is None:
        import certifi  # aioquic's own fallback; it depends on certifi

        cafile = certifi.where()
    cadata = _pem_bundle(options.extra_ca_file) if options.extra_ca_file else None
    conf.load_verify_locations(cafile=cafile, capath=capath, cadata=cadata)
    return conf


def _pem_bundle(path: str) -> bytes:
    """The certificates of a PEM file, re-encoded one after the other (aioquic's `cadata`
    parser wants bare, newline-terminated blocks)."""
    with open(path, "rb") as f:
        certs = x509.load_pem_x509_certificates(f.read())
    return b"".join(cert.public_bytes(Encoding.PEM) for cert in certs)


def _quic_failure(connection: Any, exc: Exception) -> Exception | None:
    """What really ended a DoQ exchange, as an exception `errors.classify` understands.

    dnspython reports a failed handshake as a bare "unexpected EOF"; the reason is in the
    aioquic connection's close event. Both attributes are private (dnspython's `_connection`,
    aioquic's `_close_event`), hence the defensive getattr: should they move, the original
    exception stands and the tests of this module fail loudly.
    """
    quic = getattr(connection, "_connection", None)
    event = getattr(quic, "_close_event", None)
    if isinstance(event, ConnectionTerminated):
        code, reason = event.error_code, event.reason_phrase
        if QuicErrorCode.CRYPTO_ERROR <= code <= QuicErrorCode.CRYPTO_ERROR + 0xFF:
            alert = code - QuicErrorCode.CRYPTO_ERROR
            return _tls_alert_error(alert, reason)
        if code == QuicErrorCode.CONNECTION_REFUSED:
            return ConnectionRefusedError(errno.ECONNREFUSED, f"QUIC CONNECTION_REFUSED {reason}")
        if isinstance(exc, dns.exception.Timeout | TimeoutError):
            return None
        return ConnectionResetError(
            errno.ECONNRESET, f"QUIC connection closed (error 0x{code:x}) {reason}".rstrip()
        )
    if isinstance(exc, UnexpectedEOF):
        # No close event, yet the connection ended: dnspython's receiver stopped on a socket
        # error, which on a connected UDP socket is an ICMP unreachable (the errno is lost).
        return ConnectionRefusedError(
            errno.ECONNREFUSED,
            "DoQ socket failed before the handshake (ICMP port or host unreachable)",
        )
    return None


def _tls_alert_error(alert: int, reason: str) -> Exception:
    text = reason or f"TLS alert {alert}"
    if alert == AlertDescription.certificate_expired:
        return QuicCertificateError(_X509_CERT_HAS_EXPIRED, text)
    if alert in (
        AlertDescription.bad_certificate,
        AlertDescription.unknown_ca,
        AlertDescription.certificate_unknown,
        AlertDescription.unsupported_certificate,
    ):
        lowered = reason.lower()
        if "doesn't match" in lowered or "hostname" in lowered:
            return QuicCertificateError(_X509_HOSTNAME_MISMATCH, text)
        if alert == AlertDescription.unknown_ca or any(
            needle in lowered for needle in ("issuer", "self-signed", "self signed", "untrusted")
        ):
            return QuicCertificateError(_X509_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, text)
        return QuicCertificateError(_X509_UNSPECIFIED, text)
    return QuicTlsError(alert, f"TLS alert {alert}: {text}")


async def _close_quic(connection: Any) -> None:
    """Close a DoQ connection: `QUIC_CLOSE_GRACE` seconds to send CONNECTION_CLOSE, then it
    is cut. dnspython's close() survives being cancelled (it then tears down its tasks and
    socket), so the wait_for never leaks them. A failing close must not hide the reply or
    the error of the exchange, so it is swallowed."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.close(), QUIC_CLOSE_GRACE)


def _resolv_conf_path(resolv_conf: str | None, dialer: Dialer) -> str:
    """The file `ip netns exec` would bind over /etc/resolv.conf, else the host's."""
    if resolv_conf:
        return resolv_conf
    netns = dialer.network.netns
    if netns:
        candidate = os.path.join(NETNS_ETC, netns, "resolv.conf")
        if os.path.exists(candidate):
            return candidate
    return RESOLV_CONF


def _nameservers(path: str) -> list[str]:
    """Nameserver addresses of a resolv.conf (dnspython parses it; it only reads the file)."""
    try:
        parsed = dns.resolver.Resolver(filename=path, configure=True)
    except dns.resolver.NoResolverConfiguration as exc:
        raise NetworkSetupError(errno.ENOENT, f"{path}: {exc}") from exc
    return [str(ns) for ns in parsed.nameservers]


async def _system(call: _Call, message: dns.message.Message) -> dns.message.Message:
    """Each resolv.conf nameserver in turn (UDP, TCP on truncation) until one answers, like
    glibc: the next one is tried on no reply or SERVFAIL / NOTIMP / REFUSED. The budget left
    is shared evenly among the nameservers not yet tried."""
    loop = asyncio.get_running_loop()
    path = _resolv_conf_path(call.resolv_conf, call.dialer)
    nameservers = _nameservers(path)
    last_reply: tuple[str, dns.message.Message] | None = None  # (server, SERVFAIL-ish reply)
    last_error: Exception | None = None
    for index, nameserver in enumerate(nameservers):
        server = call.trace.server = _endpoint_url("udp", nameserver, call.resolver.port)
        call.trace.arrived = None  # only the reply returned ends the exchange
        share = (call.deadline - loop.time()) / (len(nameservers) - index)
        scope = asyncio.timeout(share)
        try:
            async with contextlib.AsyncExitStack() as attempt_cleanup:
                attempt = _Call(
                    resolver=call.resolver,
                    dialer=call.dialer,
                    contexts=call.contexts,
                    cleanup=attempt_cleanup,
                    trace=call.trace,
                    deadline=call.deadline,
                    resolv_conf=call.resolv_conf,
                )
                async with scope:
                    reply = await _udp_then_tcp(
                        attempt, message, nameserver, call.resolver.port, loop.time() + share
                    )
        except Exception as exc:
            if isinstance(exc, TimeoutError) and scope.expired():
                exc = TimeoutError(f"no reply from {server} within {share:.3g} s")
            last_error = exc
            continue
        if reply.rcode() in _NEXT_SERVER_RCODES and index < len(nameservers) - 1:
            last_reply = (server, reply)
            continue
        return reply
    if last_reply is not None:
        call.trace.server, reply = last_reply
        call.trace.arrived = None  # later servers' tries came after it: the time stays whole
        return reply
    assert last_error is not None  # _nameservers() never returns an empty list
    raise last_error


_TRANSPORTS: Mapping[
    ResolverType, Callable[[_Call, dns.message.Message], Awaitable[dns.message.Message]]
] = MappingProxyType(
    {
        ResolverType.SYSTEM: _system,
        ResolverType.UDP: _udp,
        ResolverType.TCP: _tcp,
        ResolverType.DOT: _dot,
        ResolverType.DOH: _doh,
        ResolverType.DOQ: _doq,
        ResolverType.DOH3: _doh3,
    }
)
