"""Every private name of dnspython and aioquic the probes use, and nowhere else.

Both libraries are used below their public API in a few places; each is listed here with
what it is for and why no public name does it. `tests/test_compat.py` checks every one of
`PRIVATE_NAMES` against the installed versions, so an upgrade that removes or renames one
fails there, by name, not as a probe that quietly measures less.

dnspython:
- `dns._asyncbackend.StreamSocket`: the base class of dnspython's async stream socket
  interface. `dns.asyncquery.tcp()` accepts a `sock=` of that type; the probes subclass it
  to hand dnspython sockets made by the network's `Dialer` (netns, interface, source
  address, proxy), bounded in size (`exporter.probes.dns.sockets`).
- `dns.quic._asyncio.AsyncioQuicManager`: the QUIC connection factory behind DoQ and DoH3.
  `dns.quic` re-exports it only implicitly (mypy strict refuses that import); it is made
  here so that trust (`QuicConfiguration`) and the source address are the probe's.
- `dns.quic._common.UnexpectedEOF`: what a DoQ exchange raises when its connection ended
  with no close event (an ICMP error on the socket); not re-exported.
- `AsyncQuicConnection._connection`: the aioquic `QuicConnection` inside dnspython's, the
  only way to read why a DoQ / DoH3 handshake failed (dnspython reports a bare EOF).

aioquic (`QuicConnection`):
- `_close_event`: the CONNECTION_CLOSE that ends the connection, set the moment it is sent
  or received; aioquic raises its public `ConnectionTerminated` only after the closing
  period (3 PTO), so reading it names a failure when it happens;
- `_close_pending`: whether that close is ours and not yet sent (a local close, e.g. a
  certificate we rejected) rather than the peer's;
- `_version`: the QUIC version negotiated (no public accessor).

The accessors degrade rather than raise when a name is gone (failures are then reported
later or less precisely); the test is what makes the loss loud.
"""

from __future__ import annotations

from typing import Any, Final

import aioquic
import dns._asyncbackend
import dns.version
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated
from dns.quic._asyncio import AsyncioQuicManager
from dns.quic._common import UnexpectedEOF

__all__ = [
    "PRIVATE_NAMES",
    "AsyncioQuicManager",
    "StreamSocket",
    "UnexpectedEOF",
    "close_is_local",
    "inner_quic",
    "pending_close",
    "quic_version",
]

StreamSocket = dns._asyncbackend.StreamSocket

#: Private attribute of dnspython's QUIC connection holding aioquic's `QuicConnection`.
DNSPYTHON_INNER_CONNECTION: Final = "_connection"
#: Private attributes of aioquic's `QuicConnection` (see the module docstring).
AIOQUIC_CLOSE_EVENT: Final = "_close_event"
AIOQUIC_CLOSE_PENDING: Final = "_close_pending"
AIOQUIC_VERSION: Final = "_version"

#: (library, installed version, where the name lives, the name): module attributes are
#: looked up on the module, instance attributes on a fresh instance (tests/test_compat.py).
PRIVATE_NAMES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("dnspython", dns.version.version, "dns._asyncbackend", "StreamSocket"),
    ("dnspython", dns.version.version, "dns.quic._asyncio", "AsyncioQuicManager"),
    ("dnspython", dns.version.version, "dns.quic._common", "UnexpectedEOF"),
    (
        "dnspython",
        dns.version.version,
        "dns.quic._asyncio.AsyncioQuicConnection()",
        DNSPYTHON_INNER_CONNECTION,
    ),
    ("aioquic", aioquic.__version__, "aioquic.QuicConnection()", AIOQUIC_CLOSE_EVENT),
    ("aioquic", aioquic.__version__, "aioquic.QuicConnection()", AIOQUIC_CLOSE_PENDING),
    ("aioquic", aioquic.__version__, "aioquic.QuicConnection()", AIOQUIC_VERSION),
)


def inner_quic(connection: Any) -> QuicConnection | None:
    """The aioquic connection inside a dnspython QUIC connection, or None."""
    quic = getattr(connection, DNSPYTHON_INNER_CONNECTION, None)
    return quic if isinstance(quic, QuicConnection) else None


def pending_close(quic: QuicConnection | None) -> ConnectionTerminated | None:
    """The close that ends `quic` (sent or received), as soon as it exists; None while the
    connection is open (or if aioquic no longer keeps it there)."""
    event = getattr(quic, AIOQUIC_CLOSE_EVENT, None)
    return event if isinstance(event, ConnectionTerminated) else None


def close_is_local(quic: QuicConnection) -> bool:
    """Whether the pending close is ours, not yet sent (right after the input that caused
    it), rather than one the peer sent."""
    return bool(getattr(quic, AIOQUIC_CLOSE_PENDING, False))


def quic_version(quic: QuicConnection) -> int | None:
    """The QUIC version in use (after the handshake), or None when unknown."""
    version = getattr(quic, AIOQUIC_VERSION, None)
    return version if isinstance(version, int) else None
