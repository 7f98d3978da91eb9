"""TTL-limited exchanges from inside a lab namespace, with plain sockets: what came back to a
packet sent with a TTL too small to reach its destination (DOMAIN.md, "Finding the interfering
hop"; OONI ts-037 tlsmiddlebox, Censored Planet's CenTrace).

Every socket is created inside the namespace, bound to the source address that selects the
uplink (policy routing), with `IP_RECVERR` so that ICMP errors land on its error queue:
a `struct sock_extended_err` (`=IBBBBII`: errno, origin, type, code, pad, info, data) then
the offender's `sockaddr_in`. What one TTL gets back is a `Step`:

- a UDP datagram to port 33434+TTL (`trace`): time-exceeded from a router, port-unreachable
  from the destination itself, or silence;
- a SYN (`syn`, a non-blocking connect): EHOSTUNREACH at once with the router's
  time-exceeded on the error queue, ECONNREFUSED on a reset (nothing queued), connected on a
  SYN-ACK, or silence;
- a payload (`exchange`) sent on a connection made at full TTL, with `IP_TTL` lowered before
  the send: an answer, a reset, a close, or EHOSTUNREACH when the segment expired (reported by
  SO_ERROR after the first retransmission, ~0.2 s; nothing is queued for an established
  connection), or silence.

Steps of one call run at once, one socket per TTL; every ICMP error of the lab comes back
(`icmp_ratemask=0`). These are the lab's own checks: the exporter has its own implementation
(exporter.probes.path).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import select
import socket
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from exporter.probes.network import namespace

#: linux/in.h; Python does not name it.
IP_RECVERR = 11
#: linux/errqueue.h: `sock_extended_err`, and the origin of an ICMP error.
EXTENDED_ERR = struct.Struct("=IBBBBII")
SO_EE_ORIGIN_ICMP = 2
ICMP_UNREACHABLE = 3
ICMP_PORT_UNREACHABLE = 3
ICMP_TIME_EXCEEDED = 11
#: traceroute's first port: the datagram of TTL t goes to TRACE_PORT + t.
TRACE_PORT = 33434
#: Seconds a set of steps waits for its answers (a segment's first retransmission is after
#: ~0.2 s; an ICMP error or a SYN-ACK over veth takes well under a millisecond).
WAIT = 0.6


class Kind(enum.Enum):
    EXPIRED = "expired"  # time-exceeded from a router (or EHOSTUNREACH for a segment)
    REACHED = "reached"  # port-unreachable from the destination: the trace got there
    UNREACHABLE = "unreachable"  # another ICMP destination-unreachable
    CONNECTED = "connected"  # a SYN-ACK: something listens there
    REFUSED = "refused"  # a reset in answer to the SYN
    ANSWER = "answer"  # data came back
    RESET = "reset"  # a reset after the payload
    CLOSED = "closed"  # a FIN without data
    SILENCE = "silence"  # nothing within the wait
    NO_CONNECTION = "no-connection"  # the full-TTL connection an exchange needs failed


@dataclass(frozen=True, slots=True)
class Icmp:
    """One entry of a socket's error queue."""

    errno: int
    origin: int
    type: int
    code: int
    offender: str | None


@dataclass(frozen=True, slots=True)
class Step:
    """What the packet sent with `ttl` got back; `sender` is the ICMP error's offender."""

    ttl: int
    kind: Kind
    sender: str | None = None
    data: bytes = b""
    #: SO_ERROR when the socket failed (EHOSTUNREACH, ECONNREFUSED, ...), else 0.
    error: int = 0
    #: Everything that was on the error queue.
    queued: tuple[Icmp, ...] = field(default=())

    @property
    def short(self) -> tuple[str, str | None]:
        """(kind, sender): what a test compares."""
        return (self.kind.value, self.sender)


def queued_errors(sock: socket.socket) -> tuple[Icmp, ...]:
    """Drain the socket's error queue (`recvmsg(..., MSG_ERRQUEUE)`)."""
    found = []
    timeout = sock.gettimeout()
    sock.setblocking(False)  # with a timeout, Python would first wait for readability
    while True:
        try:
            _data, ancillary, _flags, _address = sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            break
        for level, kind, raw in ancillary:
            if (level, kind) != (socket.SOL_IP, IP_RECVERR) or len(raw) < EXTENDED_ERR.size:
                continue
            ee_errno, origin, icmp_type, code, _pad, _info, _data = EXTENDED_ERR.unpack_from(raw)
            offender = None
            rest = raw[EXTENDED_ERR.size :]
            if len(rest) >= 8 and struct.unpack_from("=H", rest)[0] == socket.AF_INET:
                offender = socket.inet_ntoa(rest[4:8])
            found.append(Icmp(ee_errno, origin, icmp_type, code, offender))
    sock.settimeout(timeout)
    return tuple(found)


def _from_icmp(ttl: int, error: int, queued: tuple[Icmp, ...]) -> Step:
    icmp = next((i for i in queued if i.origin == SO_EE_ORIGIN_ICMP), None)
    if icmp is None:
        kind = Kind.EXPIRED if error == errno.EHOSTUNREACH else Kind.UNREACHABLE
        return Step(ttl, kind, error=error, queued=queued)
    if icmp.type == ICMP_TIME_EXCEEDED:
        kind = Kind.EXPIRED
    elif (icmp.type, icmp.code) == (ICMP_UNREACHABLE, ICMP_PORT_UNREACHABLE):
        kind = Kind.REACHED
    else:
        kind = Kind.UNREACHABLE
    return Step(ttl, kind, icmp.offender, error=error, queued=queued)


@contextlib.contextmanager
def _sockets(
    netns: str, source: str, kind: socket.SocketKind, ttls: Iterable[int] | None
) -> Iterator[dict[int, socket.socket]]:
    """One socket per TTL (None: full TTL for all, set later), made in `netns` and bound to
    `source`, with IP_RECVERR."""
    socks: dict[int, socket.socket] = {}
    try:
        with namespace(netns):
            for ttl in ttls or ():
                sock = socket.socket(socket.AF_INET, kind)
                socks[ttl] = sock
                sock.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
                sock.setsockopt(socket.SOL_IP, socket.IP_TTL, ttl)
                sock.bind((source, 0))
                sock.setblocking(False)
        yield socks
    finally:
        for sock in socks.values():
            sock.close()


def _wait(socks: dict[int, socket.socket], events: int, seconds: float) -> dict[int, int]:
    """Poll until every socket had an event or `seconds` passed: TTL → the first events."""
    poller = select.poll()
    by_fd = {sock.fileno(): ttl for ttl, sock in socks.items()}
    for fd in by_fd:
        poller.register(fd, events)
    seen: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    while len(seen) < len(socks):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for fd, happened in poller.poll(remaining * 1000):
            seen[by_fd[fd]] = happened
            poller.unregister(fd)
    return seen


def trace(
    netns: str, source: str, address: str, ttls: Sequence[int] = range(1, 7), wait: float = WAIT
) -> list[Step]:
    """A UDP datagram to `address`, port TRACE_PORT + t, with TTL t for each t at once."""
    with _sockets(netns, source, socket.SOCK_DGRAM, ttls) as socks:
        for ttl, sock in socks.items():
            sock.connect((address, TRACE_PORT + ttl))
            with contextlib.suppress(OSError):  # an error queued already: read below
                sock.send(b"lab trace")
        seen = _wait(socks, select.POLLERR, wait)
        steps = []
        for ttl, sock in socks.items():
            if ttl not in seen:
                steps.append(Step(ttl, Kind.SILENCE, queued=queued_errors(sock)))
                continue
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            steps.append(_from_icmp(ttl, error, queued_errors(sock)))
        return steps


def syn(
    netns: str,
    source: str,
    address: str,
    port: int,
    ttls: Sequence[int] = range(1, 5),
    wait: float = WAIT,
) -> list[Step]:
    """A non-blocking connect to address:port with TTL t for each t at once."""
    with _sockets(netns, source, socket.SOCK_STREAM, ttls) as socks:
        early: dict[int, int] = {}
        for ttl, sock in socks.items():
            code = sock.connect_ex((address, port))
            if code not in (0, errno.EINPROGRESS):
                early[ttl] = code
        waiting = {t: s for t, s in socks.items() if t not in early}
        seen = _wait(waiting, select.POLLOUT | select.POLLERR, wait)
        steps = []
        for ttl, sock in socks.items():
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or early.get(ttl, 0)
            queued = queued_errors(sock)
            if ttl not in early and ttl not in seen:
                steps.append(Step(ttl, Kind.SILENCE, queued=queued))
            elif queued or error in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                steps.append(_from_icmp(ttl, error, queued))
            elif error == errno.ECONNREFUSED:
                steps.append(Step(ttl, Kind.REFUSED, error=error))
            elif error == 0:
                steps.append(Step(ttl, Kind.CONNECTED))
            else:
                steps.append(Step(ttl, Kind.UNREACHABLE, error=error))
        return steps


def exchange(
    netns: str,
    source: str,
    address: str,
    port: int,
    payload: bytes,
    ttls: Sequence[int] = range(1, 5),
    wait: float = 2 * WAIT,
    connect_timeout: float = 2.0,
) -> list[Step]:
    """For each t at once: connect at full TTL, lower IP_TTL to t, send `payload` and see
    what comes back (the first read)."""
    with _sockets(netns, source, socket.SOCK_STREAM, ttls) as socks:
        for sock in socks.values():
            sock.setsockopt(socket.SOL_IP, socket.IP_TTL, 64)
            sock.connect_ex((address, port))
        connected = _wait(socks, select.POLLOUT | select.POLLERR, connect_timeout)
        ready = {}
        for ttl, sock in socks.items():
            if ttl in connected and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                ready[ttl] = sock
        for ttl, sock in ready.items():
            sock.setsockopt(socket.SOL_IP, socket.IP_TTL, ttl)
            sock.send(payload)
        seen = _wait(ready, select.POLLIN | select.POLLERR, wait)
        steps = []
        for ttl, sock in socks.items():
            if ttl not in ready:
                steps.append(Step(ttl, Kind.NO_CONNECTION))
            elif ttl not in seen:
                steps.append(Step(ttl, Kind.SILENCE, queued=queued_errors(sock)))
            else:
                steps.append(_read(ttl, sock))
        return steps


def _read(ttl: int, sock: socket.socket, quiet: float = 0.2) -> Step:
    """The step of a socket that became readable or failed: what came back, until the peer
    closes or stays quiet for `quiet` seconds."""
    queued = queued_errors(sock)
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        return Step(ttl, Kind.RESET, error=errno.ECONNRESET, queued=queued)
    except OSError as exc:
        return _from_icmp(ttl, exc.errno or 0, queued)
    if not data:
        return Step(ttl, Kind.CLOSED, queued=queued)
    while select.select([sock], [], [], quiet)[0]:
        try:
            more = sock.recv(65536)
        except OSError:
            break
        if not more:
            break
        data += more
    return Step(ttl, Kind.ANSWER, data=data, queued=queued)
