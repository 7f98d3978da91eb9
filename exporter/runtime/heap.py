"""Free memory of the C heap given back to the operating system, once a minute.

Much of what the exporter allocates per probe lives outside CPython's small-object arenas:
deflated text pieces, response bodies, TLS buffers, the chunks of a scrape. glibc's malloc
keeps what is freed for later reuse, and with a matrix replacing every tuple's state each
interval, the heap ends up holding tens of megabytes of free, fragmented chunks at 10,000
tuples (the figures are in docs/benchmarks.md). `malloc_trim` returns the free pages (the
middle of the heap too, since glibc 2.8) without moving anything, in milliseconds.

Only glibc has `malloc_trim`; elsewhere (musl, macOS) `trimmer()` is None and nothing runs.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from exporter.runtime.clock import Clock

#: Seconds between two trims.
HEAP_TRIM_INTERVAL = 60.0

#: Gives free heap memory back to the OS; returns whether any was.
Trim = Callable[[], bool]


def trimmer() -> Trim | None:
    """glibc's `malloc_trim(0)`, or None where the C library has none."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):
        return None
    malloc_trim.argtypes = [ctypes.c_size_t]
    malloc_trim.restype = ctypes.c_int

    def trim() -> bool:
        return bool(malloc_trim(0))

    return trim


async def trims(clock: Clock, trim: Trim, every: float = HEAP_TRIM_INTERVAL) -> None:
    """`trim()` every `every` seconds, until cancelled."""
    while True:
        await clock.sleep(every)
        trim()
