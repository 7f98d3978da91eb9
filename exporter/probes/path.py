"""Localisation: where on the path a failing exchange ends, from one uplink.

A reset, a SYN-ACK, a certificate or a page that comes back to a packet whose TTL was too
small to reach the destination did not come from the destination. Packets that stop at hop
k, while other traffic to the same address goes on past hop k, were dropped there. This is
the method of OONI's tlsmiddlebox test (ts-037) and Censored Planet's CenTrace.

How it is measured (facts checked on Linux 6.x in network namespaces, DOMAIN.md):
- a router checks and decrements the TTL before netfilter's FORWARD hook, so a filter on
  router k acts on packets sent with TTL >= k+1 and router k answers time-exceeded for TTL k;
  a transparent proxy on router k (a local socket) answers a SYN sent with TTL k itself;
- the trace: UDP datagrams to ports 33434+TTL with `IP_RECVERR` (IPv6: `IPV6_RECVERR`), an
  unprivileged traceroute: each ICMP error lands on the socket's error queue with its sender
  (time-exceeded from routers, port-unreachable from the destination, whose TTL is the
  destination's distance);
- the exchange again, one socket per TTL, all at once: a non-blocking connect with `IP_TTL`
  lowered fails at once with EHOSTUNREACH when the SYN expires (the router on the error
  queue), is refused on a reset, connects on a SYN-ACK, or stays silent; a ClientHello or an
  HTTP request (or MTProto's opening) is sent with the TTL lowered on a connection made at
  full TTL, and expires (EHOSTUNREACH after the first retransmission), is answered, reset or
  closed, or stays silent; a STUN request goes in one datagram with the TTL lowered, and
  expires, is answered, refused (ICMP unreachable) or stays silent;
- every socket comes from the network's `Dialer`: source address, interface and namespace
  apply. A proxy network cannot be localised (the proxy makes the connections).

`conclude` turns the steps into a `PathObservation` and is pure; the judgement
(exporter.judge.verdict) decides what the outcome means for a tuple. The steps are taken only
after a failure or a suspicious answer, within a budget the prober enforces
(`Localisation`: at most once per network, address and port per interval, under its own
concurrency limit, at most `max_hops`: `exporter.probes.localiser`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import ipaddress
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from exporter.model.observation import PathObservation, PathOutcome, Phase
from exporter.probes.network import Dialer, family_of

#: `IP_RECVERR` / `IPV6_RECVERR` (linux/in.h, linux/in6.h), which Python does not name.
IP_RECVERR = 11
IPV6_RECVERR = 25
#: `sock_extended_err` origins (linux/errqueue.h).
_ORIGIN_ICMP = 2
_ORIGIN_ICMP6 = 3
_EXTENDED_ERR = struct.Struct("=IBBBBII")
#: ICMP types and codes that matter here.
_ICMP_TIME_EXCEEDED = 11
_ICMP6_TIME_EXCEEDED = 3
_ICMP_UNREACHABLE = 3
_ICMP6_UNREACHABLE = 1
_ICMP_PORT_UNREACHABLE = 3
_ICMP6_PORT_UNREACHABLE = 4
#: The first destination port of the trace (traceroute's): one port per TTL, so that each
#: ICMP error names the TTL it answers.
TRACE_BASE_PORT = 33434
TRACE_PAYLOAD = b"messaging-exporter path trace"
#: Seconds one wave of steps waits for its answers: a SYN or a segment is retransmitted
#: once within it (1 s, and 0.2 s for data), in case an ICMP error arrived while the kernel
#: held the socket and became a soft error.
WAVE_SECONDS = 1.5


class Step(enum.Enum):
    """What one packet (or connection) sent with a given TTL got back."""

    #: Time-exceeded from a router: the packet died on the way, nothing before it acted.
    EXPIRED = "expired"
    #: The destination answered the trace (port unreachable from the destination itself).
    REACHED = "reached"
    #: A SYN-ACK: a listener (the destination, or a proxy on the path) accepted.
    SYN_ACK = "syn-ack"
    #: A TCP reset.
    RESET = "reset"
    #: An ICMP destination-unreachable from a router (a filter's reject, a dead route).
    UNREACHABLE = "unreachable"
    #: Data came back (a ServerHello, a certificate, an HTTP response).
    ANSWER = "answer"
    #: The peer closed the connection (FIN) without data.
    CLOSED = "closed"
    #: Nothing came back within the wave.
    SILENCE = "silence"
    #: The full-TTL connection the step needed could not be made.
    NO_CONNECTION = "no-connection"


@dataclass(frozen=True, slots=True)
class Result:
    """The step of one TTL and the sender of the ICMP error, when one came."""

    ttl: int
    step: Step
    sender: str | None = None


# --- the pure conclusion ------------------------------------------------------------------


def conclude(
    phase: Phase,
    destination: str,
    trace: Sequence[Result],
    exchange: Sequence[Result],
    *,
    probes: int = 0,
    duration: float = 0.0,
) -> PathObservation:
    """Where the exchange of `phase` ended, from the UDP `trace` to `destination` and the
    exchange's own steps (both by TTL, from 1). Pure.

    The exchange must expire at routers for every TTL below some t*, then behave the same
    way at every TTL from t* on (a filter on router k resets or drops everything from TTL
    k+1, a proxy answers from TTL k): anything uneven (a silent hop between expired ones, an
    answer then an expiry) is inconclusive. Then:
    - anything at the destination's own distance (the TTL at which the destination answered
      the trace): at the destination;
    - an answer at t* while other traffic to the address passes at least two hops beyond
      t*: before the destination. (Two, not one: a front-end that ends TCP one hop before
      the servers it forwards other traffic to is not a middlebox.)
    - silence at t* while other traffic passes as far, and router t* answers the trace (so
      it would have answered the exchange had it got there): dropped;
    - otherwise, inconclusive: the trace cannot bound the destination's distance.
    """
    routers = _routers(trace, exchange)
    reached = sorted(r.ttl for r in trace if r.step is Step.REACHED)
    distance = reached[0] if reached else None

    def observed(
        outcome: PathOutcome, detail: str, hop: int | None = None, answer: str | None = None
    ) -> PathObservation:
        return PathObservation(
            phase=phase,
            outcome=outcome,
            distance=distance,
            hop=hop,
            answer=answer,
            routers=routers,
            detail=detail,
            probes=probes,
            duration=duration,
        )

    steps = sorted(exchange, key=lambda r: r.ttl)
    uneven = _uneven(steps)
    if uneven is not None:
        return observed(PathOutcome.INCONCLUSIVE, uneven)
    first = next(r for r in steps if r.step is not Step.EXPIRED)
    outcome, detail = _placed(first, trace, routers, distance, destination)
    return observed(outcome, detail, first.ttl, first.step.value)


def _uneven(steps: Sequence[Result]) -> str | None:
    """Why the exchange's steps (sorted by TTL) say nothing, or None when they expired at
    routers up to some TTL and behaved the same way from there on."""
    if [r.ttl for r in steps] != list(range(1, len(steps) + 1)):
        return "the steps of the exchange are not contiguous"
    first = next((r for r in steps if r.step is not Step.EXPIRED), None)
    if first is None:
        return f"every step expired at a router up to TTL {len(steps)}"
    hop = first.ttl
    later = steps[hop - 1 :]
    if any(r.step is Step.NO_CONNECTION for r in later):
        return "a connection at full TTL could not be made"
    if any(r.step is Step.EXPIRED for r in later):
        return f"the exchange was answered at TTL {hop} but expired beyond"
    if any(_kind(r.step) != _kind(first.step) for r in later):
        return "the exchange got different answers at different TTLs"
    return None


def _placed(
    first: Result,
    trace: Sequence[Result],
    routers: tuple[str | None, ...],
    distance: int | None,
    destination: str,
) -> tuple[PathOutcome, str]:
    """Where an even exchange ended, first answered (or silent) at `first.ttl`: see
    `conclude`."""
    hop = first.ttl
    said = _said(first.step)
    if distance is not None and hop >= distance:
        return PathOutcome.AT_DESTINATION, f"{said} at TTL {hop}, the destination's own distance"
    where = _where(routers, hop)
    if not _passes(trace, hop + 1):
        why = (
            f"{said} from TTL {hop} on, and the trace to {destination} does not pass two hops "
            "beyond it"
        )
        if first.step is Step.SILENCE:
            why += " (a router that filters ICMP, or everything to the address is dropped)"
        return PathOutcome.INCONCLUSIVE, why
    if first.step is Step.SILENCE:
        if not any(r.ttl == hop and r.step is Step.EXPIRED for r in trace):
            return (
                PathOutcome.INCONCLUSIVE,
                f"silence from TTL {hop} on, but hop {hop} sends no ICMP to the trace either: "
                "a router that filters ICMP cannot be told from a drop",
            )
        return (
            PathOutcome.DROPPED,
            f"the exchange vanished after hop {hop - 1}{where}, while other traffic to "
            f"{destination} passes hop {hop + 1}",
        )
    farther = f"{distance} hops away" if distance is not None else f"beyond hop {hop + 1}"
    return (
        PathOutcome.BEFORE_DESTINATION,
        f"{said} at TTL {hop}{where}, while the destination is {farther}",
    )


def _kind(step: Step) -> str:
    """Steps that are the same behaviour of one middlebox (a reject shows as a reset for TCP
    and as an ICMP unreachable when the router sends one)."""
    return "refused" if step in (Step.RESET, Step.UNREACHABLE) else step.value


def _said(step: Step) -> str:
    return {
        Step.SYN_ACK: "a SYN-ACK came back",
        Step.RESET: "a reset came back",
        Step.UNREACHABLE: "an ICMP unreachable came back",
        Step.ANSWER: "an answer came back",
        Step.CLOSED: "the connection was closed",
        Step.SILENCE: "nothing came back",
        Step.REACHED: "the destination answered",
    }.get(step, step.value)


def _where(routers: Sequence[str | None], hop: int) -> str:
    """ " (hop k-1 is A, hop k is B)" with what the trace knows."""
    parts = []
    if hop > 1 and hop - 1 <= len(routers) and routers[hop - 2]:
        parts.append(f"hop {hop - 1} is {routers[hop - 2]}")
    if hop <= len(routers) and routers[hop - 1]:
        parts.append(f"hop {hop} is {routers[hop - 1]}")
    return f" ({', '.join(parts)})" if parts else ""


def _passes(trace: Sequence[Result], hop: int) -> bool:
    """Whether other traffic to the address gets at least to hop `hop`: a router answered the
    trace at TTL `hop` or beyond, or the destination answered it beyond `hop`."""
    return any(
        (r.step is Step.EXPIRED and r.ttl >= hop) or (r.step is Step.REACHED and r.ttl > hop)
        for r in trace
    )


def _routers(trace: Sequence[Result], exchange: Sequence[Result]) -> tuple[str | None, ...]:
    """Router addresses by TTL: from the trace's time-exceeded, else the exchange's."""
    found: dict[int, str] = {}
    for r in (*exchange, *trace):  # the trace's win: they are the same routers
        if r.step is Step.EXPIRED and r.sender is not None:
            found[r.ttl] = r.sender
    if not found:
        return ()
    return tuple(found.get(ttl) for ttl in range(1, max(found) + 1))


# --- the steps (I/O through the network's dialer) ---------------------------------------------


def _hop_limit(sock: socket.socket, family: socket.AddressFamily, ttl: int) -> None:
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)


@dataclass(frozen=True, slots=True)
class _Icmp:
    type: int
    code: int
    sender: str | None


def _queued_error(sock: socket.socket) -> _Icmp | None:
    """The ICMP error on the socket's error queue, if one is there (never blocks)."""
    try:
        _data, ancillary, _flags, _address = sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
    except OSError:
        return None
    for _level, _kind, payload in ancillary:
        if len(payload) < _EXTENDED_ERR.size:
            continue
        _errno, origin, icmp_type, code, _pad, _info, _data32 = _EXTENDED_ERR.unpack_from(payload)
        if origin not in (_ORIGIN_ICMP, _ORIGIN_ICMP6):
            continue
        return _Icmp(type=icmp_type, code=code, sender=_offender(payload[_EXTENDED_ERR.size :]))
    return None


def _offender(raw: bytes) -> str | None:
    """The address of a `sockaddr_in` / `sockaddr_in6` (SO_EE_OFFENDER)."""
    if len(raw) < 2:
        return None
    family = struct.unpack_from("=H", raw)[0]
    if family == socket.AF_INET and len(raw) >= 8:
        return str(ipaddress.IPv4Address(raw[4:8]))
    if family == socket.AF_INET6 and len(raw) >= 24:
        return str(ipaddress.IPv6Address(raw[8:24]))
    return None


def _expired(icmp: _Icmp | None, family: socket.AddressFamily) -> bool:
    if icmp is None:
        return False
    return icmp.type == (_ICMP6_TIME_EXCEEDED if family == socket.AF_INET6 else _ICMP_TIME_EXCEEDED)


def _port_unreachable(icmp: _Icmp, family: socket.AddressFamily) -> bool:
    if family == socket.AF_INET6:
        return (icmp.type, icmp.code) == (_ICMP6_UNREACHABLE, _ICMP6_PORT_UNREACHABLE)
    return (icmp.type, icmp.code) == (_ICMP_UNREACHABLE, _ICMP_PORT_UNREACHABLE)


async def _readable(sock: socket.socket, seconds: float) -> bool:
    """Wait until `sock` is readable or has an error (epoll reports errors to readers)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    fd = sock.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        async with asyncio.timeout(seconds):
            await ready
        return True
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)


async def _trace_step(dialer: Dialer, address: str, ttl: int, seconds: float) -> Result:
    family = family_of(address)
    sock = dialer.udp_socket(family)
    try:
        _hop_limit(sock, family, ttl)
        sock.connect((address, TRACE_BASE_PORT + ttl))
        sock.send(TRACE_PAYLOAD)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not await _readable(sock, left):
                break
            icmp = _queued_error(sock)
            if icmp is None:
                with contextlib.suppress(OSError):
                    sock.recv(512)  # a reply from the port, or the error itself: drop it
                continue
            if _expired(icmp, family):
                return Result(ttl, Step.EXPIRED, icmp.sender)
            if icmp.sender == str(ipaddress.ip_address(address)):
                return Result(ttl, Step.REACHED, icmp.sender)
            return Result(ttl, Step.UNREACHABLE, icmp.sender)
        return Result(ttl, Step.SILENCE)
    finally:
        sock.close()


async def _syn_step(dialer: Dialer, address: str, port: int, ttl: int, seconds: float) -> Result:
    family = family_of(address)
    sock = dialer.make_socket(family, socket.SOCK_STREAM)
    loop = asyncio.get_running_loop()
    try:
        _hop_limit(sock, family, ttl)
        try:
            async with asyncio.timeout(seconds):
                await loop.sock_connect(sock, (address, port))
        except TimeoutError:
            return Result(ttl, Step.SILENCE)
        except OSError as exc:
            icmp = _queued_error(sock)
            if _expired(icmp, family):
                assert icmp is not None
                return Result(ttl, Step.EXPIRED, icmp.sender)
            if icmp is not None:
                return Result(ttl, Step.UNREACHABLE, icmp.sender)
            if exc.errno == errno.ECONNREFUSED:
                return Result(ttl, Step.RESET)
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return Result(ttl, Step.UNREACHABLE)
            return Result(ttl, Step.SILENCE)
        return Result(ttl, Step.SYN_ACK)
    finally:
        sock.close()


async def _payload_step(
    dialer: Dialer, address: str, port: int, payload: bytes, ttl: int, seconds: float
) -> Result:
    """`payload` sent with TTL `ttl` on a connection made at full TTL."""
    family = family_of(address)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(seconds):
            sock = await dialer.connect_tcp(address, port)
    except (OSError, TimeoutError):
        return Result(ttl, Step.NO_CONNECTION)
    try:
        _hop_limit(sock, family, ttl)
        try:
            async with asyncio.timeout(seconds):
                await loop.sock_sendall(sock, payload)
                data = await loop.sock_recv(sock, 1)
        except TimeoutError:
            return Result(ttl, Step.SILENCE)
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return Result(ttl, Step.EXPIRED)
            return Result(ttl, Step.RESET)
        return Result(ttl, Step.ANSWER if data else Step.CLOSED)
    finally:
        sock.close()


async def _datagram_step(
    dialer: Dialer, address: str, port: int, payload: bytes, ttl: int, seconds: float
) -> Result:
    """`payload` in one UDP datagram with TTL `ttl`: expired at a router, answered (a
    datagram back), refused (an ICMP unreachable; from the destination itself at its own
    distance), or silent."""
    family = family_of(address)
    sock = dialer.udp_socket(family)
    try:
        _hop_limit(sock, family, ttl)
        sock.connect((address, port))
        sock.send(payload)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not await _readable(sock, left):
                break
            icmp = _queued_error(sock)
            if icmp is None:
                try:
                    sock.recv(2048)
                except BlockingIOError:
                    continue
                except OSError:
                    continue  # the error was taken off the queue by a race: wait on
                return Result(ttl, Step.ANSWER)
            if _expired(icmp, family):
                return Result(ttl, Step.EXPIRED, icmp.sender)
            return Result(ttl, Step.UNREACHABLE, icmp.sender)
        return Result(ttl, Step.SILENCE)
    finally:
        sock.close()


async def _wave(
    make: Callable[[int], Awaitable[Result]], ttls: Sequence[int]
) -> tuple[list[Result], int]:
    """The steps of `ttls` at once, and silent ones again, once (an ICMP rate limit, a lost
    packet); the results by TTL and how many steps were sent."""
    results = {r.ttl: r for r in await asyncio.gather(*(make(t) for t in ttls))}
    silent = [t for t, r in results.items() if r.step is Step.SILENCE]
    for r in await asyncio.gather(*(make(t) for t in silent)):
        if r.step is not Step.SILENCE:
            results[r.ttl] = r
    return [results[t] for t in sorted(results)], len(ttls) + len(silent)


async def localise(
    dialer: Dialer,
    phase: Phase,
    address: str,
    port: int,
    *,
    payload: bytes = b"",
    max_hops: int = 30,
) -> PathObservation:
    """Trace the path to `address` and repeat the exchange of `phase` (CONNECT: the SYN;
    STUN: `payload`, the Binding request, in a datagram; TLS, HTTP or MTPROTO: `payload`, the
    ClientHello, the request or the opening, on a full-TTL connection) with TTL 1, 2, ...
    The caller bounds the time; a proxy network is inconclusive at once."""
    started = time.monotonic()
    if dialer.network.proxy is not None:
        return PathObservation(
            phase=phase,
            outcome=PathOutcome.INCONCLUSIVE,
            detail="the network goes through a proxy: no packet of ours leaves with our TTL",
        )
    trace, sent = await _wave(
        lambda ttl: _trace_step(dialer, address, ttl, WAVE_SECONDS), range(1, max_hops + 1)
    )
    reached = [r.ttl for r in trace if r.step is Step.REACHED]
    answered = [r.ttl for r in trace if r.step is not Step.SILENCE]
    if reached and reached[0] == 1:  # a neighbour (loopback, the same link): no path at all
        return PathObservation(
            phase=phase,
            outcome=PathOutcome.AT_DESTINATION,
            distance=1,
            hop=1,
            detail="the destination is the first hop: nothing stands between",
            probes=sent,
            duration=time.monotonic() - started,
        )
    # The exchange up to the destination, or one hop past the last that answered the trace.
    limit = min(max_hops, reached[0] if reached else (max(answered, default=0) + 1))
    if reached:
        trace = [r for r in trace if r.ttl <= reached[0]]
    ttls = range(1, max(limit, 1) + 1)
    if phase is Phase.CONNECT:
        exchange, spent = await _wave(
            lambda ttl: _syn_step(dialer, address, port, ttl, WAVE_SECONDS), ttls
        )
    elif phase is Phase.STUN:
        exchange, spent = await _wave(
            lambda ttl: _datagram_step(dialer, address, port, payload, ttl, WAVE_SECONDS), ttls
        )
    else:
        exchange, spent = await _wave(
            lambda ttl: _payload_step(dialer, address, port, payload, ttl, WAVE_SECONDS), ttls
        )
    return conclude(
        phase,
        address,
        trace,
        exchange,
        probes=sent + spent,
        duration=time.monotonic() - started,
    )
