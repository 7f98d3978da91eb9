"""Waiting until the kernel stamps arrivals (SO_TIMESTAMPNS), for tests that need a stamp on
the first packet they read.

The kernel turns stamping on in deferred work once a socket asks for it, so a packet that
arrives right after the first request can come unstamped. `stamping_on()` keeps a socket
of its own asking (as the exporter's prober does while it runs) and returns once a datagram
it sends itself comes back stamped. Polling is the only way: the kernel signals nothing.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

from exporter.network import stamp_age, stamp_arrivals

#: How long to wait for the kernel's deferred work, seconds.
STAMPING_WAIT = 5.0


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
            _data, ancillary, _flags, _address = receiver.recvmsg(16, 64)
            if stamp_age(ancillary, time.time()) is not None:
                break
            assert time.monotonic() < deadline, "the kernel never stamped an arrival"
            time.sleep(0.001)  # the kernel's work queue, not ours: nothing to await
        yield
