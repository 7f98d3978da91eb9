"""Classic DNS: over UDP (resent while unanswered, TCP on truncation) and over TCP.

Every socket comes from the call's `Dialer`, is registered on the call's cleanup, and the
UDP one is *connected*, so the kernel drops datagrams from other sources and reports an
ICMP port unreachable as ECONNREFUSED instead of letting the query time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import dns.asyncquery
import dns.message

from exporter.probes.dns.call import Call, address_of, bad_response
from exporter.probes.dns.sockets import TcpStream
from exporter.probes.network import family_of, sock_recv_stamped, sock_send, stamp_arrivals

#: A UDP query with no reply is sent again (the same bytes, the same ID) after this fraction
#: of the time it was given, and at most `UDP_RESEND_MAX` seconds, up to `UDP_SENDS` sends in
#: all, like a stub resolver (glibc: `options timeout: attempts:`). Any of them may be
#: answered. One lost datagram (a 1 % loss costs ~2 % of exchanges) then costs one interval,
#: not the probe (docs/reliability.md, "Long run").
UDP_RESEND_FRACTION = 1 / 3
UDP_RESEND_MAX = 1.0
UDP_SENDS = 3
#: Bytes asked of the socket per read: any datagram, so that one larger than the query
#: advertised is seen whole and refused (not cut to size and parsed).
MAX_DATAGRAM = 65535


def resend_interval(seconds: float) -> float:
    """Seconds between the sends of a UDP query given `seconds` in all."""
    return max(min(seconds * UDP_RESEND_FRACTION, UDP_RESEND_MAX), 0.0)


async def udp(call: Call, message: dns.message.Message) -> dns.message.Message:
    """The `udp` transport: to the resolver's address and port."""
    address, port = address_of(call.resolver), call.resolver.port
    return await udp_then_tcp(call, message, address, port, call.deadline)


def _send_again(sock: socket.socket, wire: bytes) -> None:
    """A resend, best effort: a send that fails (ICMP unreachable reported on the socket, a
    full buffer) is skipped; the receive side reports what the socket says."""
    with contextlib.suppress(OSError):
        sock.send(wire)


async def udp_then_tcp(
    call: Call, message: dns.message.Message, address: str, port: int, deadline: float
) -> dns.message.Message:
    """UDP, and TCP to the same address and port when the reply is truncated (TC).

    The query is sent again, unchanged, while no reply has come (`resend_interval` of the
    time left until `deadline`, loop time), so a lost datagram is not a failed lookup.

    The exchange is dnspython's wire level over the dialer's own socket: the query's bytes
    as made (`address_query`), the reply parsed by `dns.message.from_wire` and matched by
    `Message.is_response`. The socket is connected, so the kernel delivers datagrams from the
    resolver's address and port only: the first datagram read is the reply, or the failure
    (docs/benchmarks.md, "DNS at the wire")."""
    loop = asyncio.get_running_loop()
    sock = call.dialer.udp_socket(family_of(address))
    call.cleanup.callback(sock.close)
    sock.connect((address, port))  # UDP: sets the peer (and its filter), never waits
    stamp_arrivals(sock)  # the reply's arrival, not the loop's wake-up, ends the exchange
    interval = resend_interval(deadline - loop.time())
    wire = call.wire if call.wire is not None else message.to_wire()
    # What the query advertised: EDNS payload, or DNS's 512 bytes without EDNS.
    max_reply = message.payload if message.edns >= 0 else 512
    resends: list[asyncio.TimerHandle] = []
    try:
        if call.trace.first_sent is None:  # a lookup's time starts at its first query
            call.trace.first_sent = time.monotonic()
        await sock_send(sock, wire)
        resends = [
            loop.call_later(interval * n, _send_again, sock, wire) for n in range(1, UDP_SENDS)
        ]
        data, waited = await sock_recv_stamped(sock, MAX_DATAGRAM)
        arrived = None if waited is None else time.monotonic() - waited
        if len(data) > max_reply:
            raise bad_response(
                f"UDP reply of {len(data)} bytes, larger than the {max_reply} bytes asked"
            )
        reply = dns.message.from_wire(data, raise_on_truncation=True)
        if not message.is_response(reply):
            raise bad_response("the reply does not answer the query")
        call.trace.arrived = arrived  # the accepted reply's arrival
        return reply
    except dns.message.Truncated as exc:
        partial = exc.message()  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
        if not message.is_response(partial):
            raise bad_response("truncated reply does not answer the query") from exc
    finally:
        for handle in resends:
            handle.cancel()
    sock.close()
    return await tcp_to(call, message, address, port)


async def tcp(call: Call, message: dns.message.Message) -> dns.message.Message:
    """The `tcp` transport: to the resolver's address and port."""
    return await tcp_to(call, message, address_of(call.resolver), call.resolver.port)


async def tcp_to(
    call: Call, message: dns.message.Message, address: str, port: int
) -> dns.message.Message:
    """One exchange over a fresh dialer TCP connection, the reply bounded by
    `MAX_STREAM_REPLY`."""
    sock = await call.dialer.connect_tcp(address, port)
    call.cleanup.callback(sock.close)
    return await dns.asyncquery.tcp(message, address, port=port, sock=TcpStream(sock))
