"""What every DNS transport shares: the call's context, its trace, and the bounds.

A transport is `async (Call, message) -> reply`: it opens its sockets on `call.cleanup`
(closed by `exporter.probes.dns` outside the time budget), honours `call.deadline`, and
records what an observation reports on `call.trace`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import dns.entropy
import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from exporter.config.model import Resolver
from exporter.probes.network import Dialer
from exporter.probes.tls import TlsContexts

#: Largest reply read over TCP, DoT (its 2-byte length prefix included) and DoH, bytes. A
#: DNS message may reach 65,535 bytes, but dnspython parses ~13,000 records a second on one
#: core: a hostile resolver's 64 KB of 4,000 A records would hold the event loop, and every
#: other probe, for 0.3 s per query. 16 KiB (~1,000 records, ~75 ms at worst) is far above
#: any answer a messaging service's name gets (tests/test_hostile.py).
MAX_STREAM_REPLY = 16 * 1024
#: EDNS0 UDP payload size advertised (the DNS flag day 2020 value: no IP fragmentation).
#: A UDP reply larger than the query advertised (512 bytes without EDNS) breaks RFC 6891
#: and is refused unparsed (`dns_bad_response`), for the reason of `MAX_STREAM_REPLY`.
EDNS_PAYLOAD = 1232


class DohError(dns.exception.DNSException):
    """The DoH server answered, but not with a DNS message (non-2xx, wrong type, too big).

    A `DNSException`, so `errors.classify` files it under `dns_bad_response`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated


def bad_response(message: str) -> dns.query.BadResponse:
    """dnspython's "not a response to the query" error, with our text."""
    return dns.query.BadResponse(message)  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated


@dataclass(slots=True)
class Trace:
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
class Call:
    """One exchange's context, handed to the transport functions."""

    resolver: Resolver
    dialer: Dialer
    contexts: TlsContexts
    cleanup: contextlib.AsyncExitStack
    trace: Trace
    deadline: float  # loop.time() at which the whole exchange gives up
    resolv_conf: str | None
    #: The query's wire form when it was made from a template (`address_query`): the UDP
    #: transport sends it as is instead of encoding the message again.
    wire: bytes | None = None


#: A transport: send the message to `call.resolver`, return its reply (raising on failure).
Transport = Callable[[Call, dns.message.Message], Awaitable[dns.message.Message]]


def endpoint_url(scheme: str, address: str, port: int) -> str:
    """`scheme://address:port`, the IPv6 address bracketed."""
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{port}"


def address_of(resolver: Resolver) -> str:
    """The resolver's address; ValueError for a resolver that has none."""
    if not resolver.address:
        raise ValueError(f"resolver {resolver.name!r} ({resolver.type}) has no address")
    return resolver.address


@functools.lru_cache(maxsize=4096)
def _template(qname: str, rdtype: dns.rdatatype.RdataType) -> tuple[dns.message.Message, bytes]:
    """The A/AAAA query of a name, with ID 0, and its wire form: built once per name and
    type (every round asks the same few hundred questions)."""
    message = dns.message.make_query(qname, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
    message.id = 0
    return message, message.to_wire()


def address_query(qname: str, rdtype: dns.rdatatype.RdataType) -> tuple[dns.message.Message, bytes]:
    """A fresh query for `qname`/`rdtype` with its own random ID, and its wire form: the
    template's (`_template`) with the ID in its first two bytes, as `to_wire()` would write
    it. The message shares the template's sections, which nothing here changes; a transport
    may still set its ID (DoQ sets 0). Saves building and encoding the query each time
    (docs/benchmarks.md, "DNS at the wire")."""
    template, wire = _template(qname, rdtype)
    message = copy.copy(template)
    message.id = dns.entropy.random_16()
    return message, message.id.to_bytes(2, "big") + wire[2:]
