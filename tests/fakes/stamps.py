"""Waiting until the kernel stamps arrivals (SO_TIMESTAMPNS), for tests that need a stamp on
the first packet they read.

The kernel turns stamping on in deferred work once a socket asks for it, so a packet that
arrives right after the first request can come unstamped. `stamping_on()` keeps a socket
of its own asking (as the exporter's prober does while it runs) and returns once a datagram
it sends itself comes back stamped on arrival. Polling is the only way: the kernel signals
nothing.

A stamp alone does not tell: a UDP read of a datagram that arrived unstamped is stamped at the
read (TCP gets none). So the datagram is held in the kernel a few milliseconds before it is
read, and only a stamp at least that old counts (seen after the end-to-end tests: the first
TCP segment came unstamped although a UDP datagram had just come back "stamped").
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

from exporter.probes.network import stamp_age, stamp_arrivals

#: How long to wait for the kernel's deferred work, seconds.
STAMPING_WAIT = 5.0
#: How long each test datagram waits in the kernel before it is read, seconds.
HELD = 0.005


@contextlib.contextmanager
def stamping_on() -> Iterator[None]:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
    ):
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(1)
        assert stamp_arrivals(receiver), "no SO_TIMESTAMPNS on this machine"
        deadline = time.monotonic() + STAMPING_WAIT
        while True:
            sender.sendto(b"?", receiver.getsockname())
            time.sleep(HELD)  # the datagram waits in the kernel: nothing to await
            _data, ancillary, _flags, _address = receiver.recvmsg(16, 64)
            age = stamp_age(ancillary, time.time())
            if age is not None and age >= HELD * 0.9:  # stamped on arrival, not at the read
                break
            assert time.monotonic() < deadline, "the kernel never stamped an arrival"
        yield
