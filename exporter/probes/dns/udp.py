"""Classic DNS: over UDP (resent while unanswered, TCP on truncation) and over TCP.

Every socket comes from the call's `Dialer`, is registered on the call's cleanup, and the
UDP one is *connected*, so the kernel drops datagrams from other sources and reports an
ICMP port unreachable as ECONNREFUSED instead of letting the query time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import dns.asyncquery
import dns.inet
import dns.message

from exporter.probes.dns.call import Call, address_of, bad_response
from exporter.probes.dns.sockets import Datagrams, TcpStream
from exporter.probes.network import family_of, stamp_arrivals

#: A UDP query with no reply is sent again (the same bytes, the same ID) after this fraction
#: of the time it was given, and at most `UDP_RESEND_MAX` seconds, up to `UDP_SENDS` sends in
#: all, like a stub resolver (glibc: `options timeout: attempts:`). Any of them may be
#: answered. One lost datagram (a 1 % loss costs ~2 % of exchanges) then costs one interval,
#: not the probe (docs/reliability.md, "Long run").
UDP_RESEND_FRACTION = 1 / 3
UDP_RESEND_MAX = 1.0
UDP_SENDS = 3


def resend_interval(seconds: float) -> float:
    """Seconds between the sends of a UDP query given `seconds` in all."""
    return max(min(seconds * UDP_RESEND_FRACTION, UDP_RESEND_MAX), 0.0)


async def udp(call: Call, message: dns.message.Message) -> dns.message.Message:
    """The `udp` transport: to the resolver's address and port."""
    address, port = address_of(call.resolver), call.resolver.port
    return await udp_then_tcp(call, message, address, port, call.deadline)


async def _resend(sock: socket.socket, wire: bytes, interval: float) -> None:
    """Send `wire` again every `interval` seconds, `UDP_SENDS - 1` times, until cancelled.
    Best effort: a send that fails (ICMP unreachable reported on the socket, a full buffer)
    is skipped; the receive side reports what the socket says."""
    for _ in range(UDP_SENDS - 1):
        await asyncio.sleep(interval)
        with contextlib.suppress(OSError):
            sock.send(wire)


async def udp_then_tcp(
    call: Call, message: dns.message.Message, address: str, port: int, deadline: float
) -> dns.message.Message:
    """UDP, and TCP to the same address and port when the reply is truncated (TC).

    The query is sent again, unchanged, while no reply has come (`resend_interval` of the
    time left until `deadline`, loop time), so a lost datagram is not a failed lookup."""
    loop = asyncio.get_running_loop()
    sock = call.dialer.udp_socket(family_of(address))
    call.cleanup.callback(sock.close)
    await loop.sock_connect(sock, (address, port))
    stamp_arrivals(sock)  # the reply's arrival, not the loop's wake-up, ends the exchange
    interval = resend_interval(deadline - loop.time())
    wire = call.wire if call.wire is not None else message.to_wire()
    # What the query advertised: EDNS payload, or DNS's 512 bytes without EDNS.
    datagrams = Datagrams(sock, max_reply=message.payload if message.edns >= 0 else 512)
    resender: asyncio.Task[None] | None = None
    try:
        # The wire form as made (encoded once) and dnspython's receive side: what
        # dns.asyncquery.udp does, without encoding the query again.
        # As the kernel names the peer (IPv6: a 4-tuple), for the source check.
        destination = dns.inet.low_level_address_tuple((address, port), sock.family)
        await datagrams.sendto(wire, destination, None)
        resender = asyncio.create_task(_resend(sock, wire, interval))
        received = await dns.asyncquery.receive_udp(
            datagrams,
            destination,
            ignore_unexpected=True,
            raise_on_truncation=True,
            query=message,
        )
        reply: dns.message.Message = received[0]
        if not message.is_response(reply):
            raise bad_response("the reply does not answer the query")
        call.trace.arrived = datagrams.arrived  # the accepted reply: the last datagram read
        return reply
    except dns.message.Truncated as exc:
        partial = exc.message()  # type: ignore[no-untyped-call]  # dnspython leaves it unannotated
        if not message.is_response(partial):
            raise bad_response("truncated reply does not answer the query") from exc
    finally:
        if call.trace.first_sent is None:
            call.trace.first_sent = datagrams.sent  # a lookup's time starts at its first query
        if resender is not None:
            resender.cancel()
            await asyncio.wait([resender])  # never raises: a cancellation of ours propagates
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
