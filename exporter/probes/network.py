"""The network seam: every socket a probe opens is made here, so a probe never knows how.

A `Dialer` turns one configured `Network` into sockets: created inside its Linux network
namespace (`netns`), bound to its interface (SO_BINDTODEVICE) and source address, and, for a
proxy network, tunnelled through SOCKS. Probes and resolvers ask for a connected TCP socket or
an unconnected UDP socket and do the rest (TLS, DNS, HTTP) themselves.

Invariants:
- every socket returned is non-blocking and fresh (never pooled): a reset by a middlebox is
  never hidden by a reused connection;
- a proxy network never hands out UDP sockets (`ProxyUnsupported`): traffic never leaks past
  the proxy;
- namespace switching happens synchronously around `socket()` on the calling thread, and a
  socket keeps the namespace it was created in.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import ipaddress
import os
import platform
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from socksio import socks4, socks5

from exporter.config.model import Network, Proxy
from exporter.probes.errors import NetworkSetupError, ProxyFailure, ProxyUnsupported

CLONE_NEWNET = 0x40000000
#: Offset and size of `tcpi_rtt` (microseconds, u32) in Linux's `struct tcp_info`
#: (include/uapi/linux/tcp.h: 8 bytes of u8 fields, then u32s; rtt is the 16th u32).
_TCPI_RTT = struct.Struct("=I")
_TCPI_RTT_OFFSET = 68
_TCP_INFO_LEN = 104  # the kernel copies min(asked, its own size)
#: SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) of asm-generic/socket.h, which Python's socket module
#: does not name. Architectures that number it otherwise (alpha, mips, parisc, sparc, ...) go
#: without arrival stamps.
_SO_TIMESTAMPNS = 35
_STAMPED_MACHINES = frozenset({"x86_64", "aarch64", "arm64", "armv7l", "armv6l", "i686", "riscv64"})
#: Whether this machine can stamp arrivals at all: decided once, not per socket.
_STAMPS_POSSIBLE = sys.platform == "linux" and platform.machine() in _STAMPED_MACHINES
_TIMESPEC = struct.Struct("@ll")  # struct timespec: seconds, nanoseconds (CLOCK_REALTIME)
_ANCILLARY_SIZE = socket.CMSG_SPACE(_TIMESPEC.size)
NETNS_RUN_DIR = "/run/netns"


def _libc_setns() -> ctypes._CFuncPtr:  # type: ignore[name-defined]  # ctypes' private type
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.setns
    fn.argtypes = (ctypes.c_int, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


def _setns(fd: int) -> None:
    # os.setns exists from Python 3.12; on 3.11 call libc directly.
    setns = getattr(os, "setns", None)
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    if _libc_setns()(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def namespace(name: str | None) -> Iterator[None]:
    """Run the body with this thread inside network namespace `name` (as `ip netns` names it).

    Only synchronous code may run inside: an `await` would let other tasks create sockets in
    the wrong namespace.
    """
    if name is None:
        yield
        return
    path = os.path.join(NETNS_RUN_DIR, name)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetworkSetupError(exc.errno, f"network namespace {name!r}: {exc.strerror}") from exc
    try:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                _setns(target)
            except OSError as exc:
                raise NetworkSetupError(
                    exc.errno, f"network namespace {name!r}: cannot enter: {exc.strerror}"
                ) from exc
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)
    finally:
        os.close(target)


def family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupProblem:
    """Why a network cannot be used as configured: `key` is the network's option at fault
    (`netns`, `interface` or `source_address`), `message` says what is wrong with it."""

    key: str
    message: str

    def line(self, network: str) -> str:
        """The config-error form, e.g. `networks.wg0.interface: no such interface "wg0"`."""
        return f"networks.{network}.{self.key}: {self.message}"


def setup_problem(network: Network) -> SetupProblem | None:
    """What keeps `network` from being used on this host now, or None when its namespace,
    interface and source address all exist. A local check: no packet leaves the machine
    (entering a namespace, looking an interface up, binding an address). A proxy is not
    dialled: a proxy that is down shows in the probes (`proxy_error`).

    `check`, start-up and reload refuse a config whose network fails this; while running, a
    network that stops passing it (a VPN going away) is a set-up error, not a shutdown."""
    where = f' in network namespace "{network.netns}"' if network.netns else ""
    try:
        with namespace(network.netns):
            if network.interface:
                try:
                    socket.if_nametoindex(network.interface)
                except OSError:
                    return SetupProblem(
                        key="interface", message=f'no such interface "{network.interface}"{where}'
                    )
            if network.source_address:
                address = network.source_address
                probe = socket.socket(family_of(address), socket.SOCK_DGRAM)
                try:
                    probe.bind((address, 0))
                except OSError as exc:
                    why = (
                        "is not an address of this host"
                        if exc.errno == errno.EADDRNOTAVAIL
                        else f"cannot be bound: {exc.strerror}"
                    )
                    return SetupProblem(key="source_address", message=f"{address} {why}{where}")
                finally:
                    probe.close()
    except NetworkSetupError as exc:
        missing = exc.errno == errno.ENOENT
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        return SetupProblem(
            key="netns",
            message=f'no such network namespace "{network.netns}"'
            if missing
            else f'cannot enter network namespace "{network.netns}": {why}',
        )
    return None


class Dialer:
    """Opens sockets the way one `Network` says. Stateless between calls; cheap to build."""

    def __init__(self, network: Network) -> None:
        self.network = network

    @property
    def name(self) -> str:
        return self.network.name

    def describe(self) -> str:
        """A one-line description for logs and pages (proxy credentials redacted)."""
        parts = []
        n = self.network
        if n.netns:
            parts.append(f"netns={n.netns}")
        if n.interface:
            parts.append(f"interface={n.interface}")
        if n.source_address:
            parts.append(f"source={n.source_address}")
        if n.proxy:
            parts.append(f"proxy={n.proxy.redacted_url}")
        return " ".join(parts) or "default route"

    def make_socket(self, family: socket.AddressFamily, kind: socket.SocketKind) -> socket.socket:
        """A fresh non-blocking socket in the network's namespace, bound as configured."""
        n = self.network
        with namespace(n.netns):
            sock = socket.socket(family, kind)
        try:
            sock.setblocking(False)
            if n.interface:
                try:
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_BINDTODEVICE, n.interface.encode() + b"\0"
                    )
                except OSError as exc:
                    raise NetworkSetupError(
                        exc.errno, f"interface {n.interface!r}: {exc.strerror}"
                    ) from exc
            if n.source_address:
                if family_of(n.source_address) != family:
                    raise NetworkSetupError(
                        errno.EAFNOSUPPORT,
                        f"source address {n.source_address} cannot reach an IPv"
                        f"{6 if family == socket.AF_INET6 else 4} destination",
                    )
                try:
                    sock.bind((n.source_address, 0))
                except OSError as exc:
                    raise NetworkSetupError(
                        exc.errno, f"source address {n.source_address}: {exc.strerror}"
                    ) from exc
        except BaseException:
            sock.close()
            raise
        return sock

    def udp_socket(self, family: socket.AddressFamily) -> socket.socket:
        if self.network.proxy is not None:
            raise ProxyUnsupported(
                errno.EPROTONOSUPPORT,
                f"network {self.name!r} goes through a SOCKS proxy, which carries TCP only",
            )
        return self.make_socket(family, socket.SOCK_DGRAM)

    def handshake_rtt(self, sock: socket.socket) -> float | None:
        """The kernel's round-trip time of a just-connected socket's handshake, seconds.

        Right after connect the kernel's smoothed RTT is the one sample the SYN/SYN-ACK gave,
        taken in the kernel when the SYN-ACK arrived: unlike a wall-clock connect phase it is
        not inflated by a busy event loop. None through a proxy (that RTT would be to the
        proxy), where TCP_INFO is missing (not Linux), or when the kernel took no sample.
        """
        tcp_info = getattr(socket, "TCP_INFO", None)
        if self.network.proxy is not None or tcp_info is None:
            return None
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, _TCP_INFO_LEN)
        except OSError:
            return None
        if len(info) < _TCPI_RTT_OFFSET + _TCPI_RTT.size:
            return None
        (micros,) = _TCPI_RTT.unpack_from(info, _TCPI_RTT_OFFSET)
        return micros / 1e6 if micros else None

    async def connect_tcp(self, address: str, port: int) -> socket.socket:
        """A connected TCP socket to address:port (through the proxy if any).

        The caller bounds the time (asyncio.timeout). Errors are OSErrors:
        ConnectionRefusedError, ConnectionResetError, NetworkSetupError, ProxyFailure, ...
        """
        loop = asyncio.get_running_loop()
        proxy = self.network.proxy
        target = (proxy.host, proxy.port) if proxy else (address, port)
        family = family_of(target[0]) if target[0] != "localhost" else socket.AF_INET
        host = "127.0.0.1" if target[0] == "localhost" else target[0]
        sock = self.make_socket(family, socket.SOCK_STREAM)
        try:
            try:
                await loop.sock_connect(sock, (host, target[1]))
            except OSError as exc:
                if proxy is None:
                    raise
                raise ProxyFailure(
                    f"cannot reach proxy {proxy.redacted_url}: {exc.strerror or exc}",
                    errno_=exc.errno,
                ) from exc
            if proxy is not None:
                await _socks_connect(loop, sock, proxy, address, port)
        except BaseException:
            sock.close()
            raise
        return sock


# SOCKS reply codes → the errno a direct connection would have seen, so the probe reports
# `refused` / `host_unreachable` for the far side rather than a proxy failure.
_SOCKS5_ERRNO = {
    socks5.SOCKS5ReplyCode.CONNECTION_REFUSED: errno.ECONNREFUSED,
    socks5.SOCKS5ReplyCode.HOST_UNREACHABLE: errno.EHOSTUNREACH,
    socks5.SOCKS5ReplyCode.NETWORK_UNREACHABLE: errno.ENETUNREACH,
    socks5.SOCKS5ReplyCode.TTL_EXPIRED: errno.ETIMEDOUT,
}


async def _recv_some(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    data = await loop.sock_recv(sock, 512)
    if not data:
        raise ProxyFailure("proxy closed the connection during the SOCKS handshake")
    return data


async def _socks_connect(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, proxy: Proxy, address: str, port: int
) -> None:
    """Ask the proxy to connect to address:port (an IP: names are resolved by the probe)."""
    try:
        if proxy.scheme == "socks4":
            conn4 = socks4.SOCKS4Connection(user_id=(proxy.username or "").encode())
            conn4.send(
                socks4.SOCKS4Request.from_address(socks4.SOCKS4Command.CONNECT, (address, port))
            )
            await loop.sock_sendall(sock, conn4.data_to_send())
            reply4 = conn4.receive_data(await _recv_some(loop, sock))
            if reply4.reply_code != socks4.SOCKS4ReplyCode.REQUEST_GRANTED:
                raise ProxyFailure(
                    f"SOCKS4 proxy refused: {reply4.reply_code.name}",
                    errno_=errno.ECONNREFUSED,
                    reached=True,
                )
            return
        conn = socks5.SOCKS5Connection()
        method = (
            socks5.SOCKS5AuthMethod.USERNAME_PASSWORD
            if proxy.username is not None
            else socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED
        )
        conn.send(socks5.SOCKS5AuthMethodsRequest([method]))
        await loop.sock_sendall(sock, conn.data_to_send())
        auth = conn.receive_data(await _recv_some(loop, sock))
        if not isinstance(auth, socks5.SOCKS5AuthReply) or auth.method != method:
            raise ProxyFailure("SOCKS5 proxy does not accept our authentication method")
        if method == socks5.SOCKS5AuthMethod.USERNAME_PASSWORD:
            conn.send(
                socks5.SOCKS5UsernamePasswordRequest(
                    (proxy.username or "").encode(), (proxy.password or "").encode()
                )
            )
            await loop.sock_sendall(sock, conn.data_to_send())
            userpass = conn.receive_data(await _recv_some(loop, sock))
            if not isinstance(userpass, socks5.SOCKS5UsernamePasswordReply) or not userpass.success:
                raise ProxyFailure("SOCKS5 proxy rejected the credentials")
        conn.send(
            socks5.SOCKS5CommandRequest.from_address(socks5.SOCKS5Command.CONNECT, (address, port))
        )
        await loop.sock_sendall(sock, conn.data_to_send())
        reply = conn.receive_data(await _recv_some(loop, sock))
        if not isinstance(reply, socks5.SOCKS5Reply):
            raise ProxyFailure("SOCKS5 proxy sent an unexpected reply")
        if reply.reply_code != socks5.SOCKS5ReplyCode.SUCCEEDED:
            raise ProxyFailure(
                f"SOCKS5 proxy could not connect: {reply.reply_code.name}",
                errno_=_SOCKS5_ERRNO.get(reply.reply_code),
                reached=True,
            )
    except ProxyFailure:
        raise
    except OSError as exc:
        raise ProxyFailure(f"SOCKS handshake failed: {exc.strerror or exc}") from exc
    except Exception as exc:  # socksio raises ProtocolError/ValueError on garbage
        raise ProxyFailure(f"SOCKS handshake failed: {exc}") from exc


async def _ready(sock: socket.socket, *, write: bool) -> None:
    """Wait until `sock` is readable (or writable), on any event loop."""
    loop = asyncio.get_running_loop()
    fd = sock.fileno()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    if write:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await waiter
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def sock_send(sock: socket.socket, data: bytes) -> int:
    """One datagram on a connected socket, waiting while the send buffer is full (on every
    loop: uvloop lacks the loop's datagram methods, uvloop 0.23)."""
    while True:
        try:
            return sock.send(data)
        except (BlockingIOError, InterruptedError):
            await _ready(sock, write=True)


def stamp_arrivals(sock: socket.socket) -> bool:
    """Ask the kernel to stamp each datagram or segment with its arrival time
    (SO_TIMESTAMPNS), for `sock_recvfrom_stamped` and `sock_recv_stamped`. False where it
    cannot: off Linux, on an architecture whose number for the option is not asm-generic's,
    or when the kernel refuses."""
    if not _STAMPS_POSSIBLE:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def stamping_keeper() -> socket.socket | None:
    """A socket that asks for arrival stamps and is never read, to keep open while probing.

    The kernel stamps arrivals only while some socket asks for it; it turns stamping on in
    deferred work when the first one asks and off when the last one closes. Without a socket
    that stays, the first reads after a quiet spell would come unstamped (and count the
    loop's lateness, as where stamps are unavailable). None where stamps are unavailable."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if not stamp_arrivals(sock):
        sock.close()
        return None
    return sock


def stamp_age(ancillary: list[tuple[int, int, bytes]], now: float) -> float | None:
    """Seconds since the kernel's arrival stamp in `ancillary` (wall clock `now`); None
    without a stamp, 0.0 for a stamp from the future (the wall clock stepped back)."""
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
            if len(payload) < _TIMESPEC.size:
                return None
            seconds, nanos = _TIMESPEC.unpack_from(payload)
            stamp = float(seconds) + float(nanos) / 1e9
            return max(now - stamp, 0.0)
    return None


async def sock_recvfrom_stamped(sock: socket.socket, size: int) -> tuple[bytes, Any, float | None]:
    """`loop.sock_recvfrom` on every loop (uvloop lacks it), and how long the datagram waited
    in the kernel before this read, seconds: the wall clock now minus its arrival stamp
    (`stamp_arrivals`). That wait is the event loop's lateness, not the network's; None
    without a stamp, 0.0 for a stamp from the future (the wall clock stepped back)."""
    while True:
        try:
            data, ancillary, _flags, address = sock.recvmsg(size, _ANCILLARY_SIZE)
        except (BlockingIOError, InterruptedError):
            await _ready(sock, write=False)
            continue
        return data, address, stamp_age(ancillary, time.time())


async def sock_recv_stamped(sock: socket.socket, size: int) -> tuple[bytes, float | None]:
    """`loop.sock_recv` on a stream or connected datagram socket, and how long the newest
    segment of what was read (or the datagram) waited in the kernel (as
    `sock_recvfrom_stamped`; TCP stamps each segment and reports the last one read). None
    without a stamp, e.g. at the end of the stream."""
    data, _address, waited = await sock_recvfrom_stamped(sock, size)
    return data, waited if data else None
