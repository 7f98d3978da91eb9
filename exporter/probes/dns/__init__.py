"""Asking one configured resolver one question, through one network.

`query()` is what a probe calls: it never raises (bar cancellation) and turns every outcome
into a `DnsObservation`. `exchange()` is the lower level, raising, message-in/message-out
call that `query()` is built on, for questions that are not A/AAAA (identity TXT, CH class).

One module per transport, like dnspython's nameserver classes: `udp` (UDP and TCP), `dot`,
`doh`, `doq` (DoQ and DoH3), `system` (resolv.conf); `call` holds what they share and
`sockets` the dnspython socket adapters over the dialer's sockets.

Invariants:
- every socket comes from the `Dialer` (the network seam) — except DoQ's and DoH3's, which
  dnspython opens itself, so they honour only the network's source address (see
  docs/resolvers.md);
- nothing is cached or pooled: each call dials, handshakes and asks afresh, so a middlebox's
  reset or a poisoned answer is seen every time it happens;
- every message is built and parsed by dnspython; nothing here encodes DNS by hand;
- a call is bounded by `timeout` seconds (DoQ and DoH3 may add `QUIC_CLOSE_GRACE` to close
  politely), and every socket it opened is closed when it returns, fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from types import MappingProxyType

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from exporter.config.model import IdentityCheck, Resolver, ResolverType
from exporter.model.observation import DnsObservation, ErrorKind
from exporter.probes.dns import doh, doq, dot, system, udp
from exporter.probes.dns.call import (
    EDNS_PAYLOAD,
    MAX_STREAM_REPLY,
    Call,
    DohError,
    Trace,
    Transport,
    address_query,
    endpoint_url,
)
from exporter.probes.dns.doh import DOH_BODY_LIMIT
from exporter.probes.dns.doq import QUIC_CLOSE_GRACE, QuicCertificateError, QuicTlsError
from exporter.probes.dns.system import NETNS_ETC, RESOLV_CONF, resolv_conf_path
from exporter.probes.dns.udp import UDP_RESEND_FRACTION, UDP_RESEND_MAX, UDP_SENDS, resend_interval
from exporter.probes.errors import classify, describe
from exporter.probes.network import Dialer
from exporter.probes.tls import TlsContexts

__all__ = [
    "DOH_BODY_LIMIT",
    "EDNS_PAYLOAD",
    "MAX_STREAM_REPLY",
    "NETNS_ETC",
    "QUIC_CLOSE_GRACE",
    "RESOLV_CONF",
    "UDP_RESEND_FRACTION",
    "UDP_RESEND_MAX",
    "UDP_SENDS",
    "DohError",
    "QuicCertificateError",
    "QuicTlsError",
    "ask_identity",
    "exchange",
    "query",
    "resend_interval",
]

#: Longest CNAME chain followed inside an answer section.
MAX_CNAME_CHAIN = 16

_ADDRESS_TYPES = {"A": dns.rdatatype.A, "AAAA": dns.rdatatype.AAAA}
_RCODE_KIND = {
    dns.rcode.NXDOMAIN: ErrorKind.DNS_NXDOMAIN,
    dns.rcode.SERVFAIL: ErrorKind.DNS_SERVFAIL,
    dns.rcode.REFUSED: ErrorKind.DNS_REFUSED,
}

_TRANSPORTS: Mapping[ResolverType, Transport] = MappingProxyType(
    {
        ResolverType.SYSTEM: system.system,
        ResolverType.UDP: udp.udp,
        ResolverType.TCP: udp.tcp,
        ResolverType.DOT: dot.dot,
        ResolverType.DOH: doh.doh,
        ResolverType.DOQ: doq.doq,
        ResolverType.DOH3: doq.doh3,
    }
)


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
    trace = Trace(server=_server_label(resolver, resolv_conf, dialer))
    try:
        rdtype = _ADDRESS_TYPES.get(qtype.upper())
        if rdtype is None:
            raise ValueError(f"query() asks for A or AAAA, not {qtype!r}; use exchange()")
        message, wire = address_query(qname, rdtype)
        response = await _bounded_exchange(
            resolver,
            dialer,
            message,
            contexts=contexts,
            timeout=timeout,
            resolv_conf=resolv_conf,
            trace=trace,
            wire=wire,
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return _failed(qname, qtype, trace, exc)
    return _observe(qname, qtype, message, response, trace)


def _failed(qname: str, qtype: str, trace: Trace, exc: Exception) -> DnsObservation:
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
    trace = Trace(server=_server_label(resolver, resolv_conf, dialer))
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
    trace = Trace(server=_server_label(resolver, resolv_conf, dialer))
    return await _bounded_exchange(
        resolver,
        dialer,
        message,
        contexts=contexts,
        timeout=timeout,
        resolv_conf=resolv_conf,
        trace=trace,
    )


async def _bounded_exchange(
    resolver: Resolver,
    dialer: Dialer,
    message: dns.message.Message,
    *,
    contexts: TlsContexts,
    timeout: float,  # noqa: ASYNC109  # the API's budget, applied with asyncio.timeout
    resolv_conf: str | None,
    trace: Trace,
    wire: bytes | None = None,
) -> dns.message.Message:
    """Run the resolver's transport under the `timeout` budget (`wire`: the message's wire
    form, when already made).


    Sockets are registered on an exit stack that unwinds *outside* the timeout scope: a reply
    that arrived in time is never lost to a slow close, and closing always happens, even on
    cancellation. `trace.finished` is stamped before the closes.
    """
    loop = asyncio.get_running_loop()
    trace.started = time.monotonic()
    async with contextlib.AsyncExitStack() as cleanup:
        call = Call(
            resolver=resolver,
            dialer=dialer,
            contexts=contexts,
            cleanup=cleanup,
            trace=trace,
            deadline=loop.time() + timeout,
            resolv_conf=resolv_conf,
            wire=wire,
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
    """The server an observation names."""
    if resolver.type in (ResolverType.DOH, ResolverType.DOH3):
        label = f"{resolver.type.value}://{resolver.url}"
    elif resolver.type is ResolverType.SYSTEM:
        label = f"system://{resolv_conf_path(resolv_conf, dialer)}"
    else:
        label = endpoint_url(resolver.type.value, resolver.address or "?", resolver.port)
    return label


def _observe(
    qname: str,
    qtype: str,
    message: dns.message.Message,
    response: dns.message.Message,
    trace: Trace,
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
            return tuple(rdata.address for rdata in rrset), tuple(cnames), rrset.ttl
        cname = response.get_rrset(response.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if cname is None or len(cname) == 0:
            break
        name = next(iter(cname)).target
        cnames.append(name.to_text(omit_final_dot=True))
        if name in seen:
            break  # a loop: report the chain, no address
        seen.add(name)
    return (), tuple(cnames), None
