"""When CPython's cyclic garbage collector makes its full passes.

A full pass scans every object the collector tracks, with the event loop stalled meanwhile
(a large matrix tracks hundreds of thousands: stalls of a tenth of a second and more,
docs/benchmarks.md). CPython starts one whenever a quarter of the long-lived objects are new
since the last, which a matrix replacing each tuple's observation, series and histograms
every interval reaches every few seconds. That state is acyclic (immutable trees, freed by
reference counting the moment they are replaced), and the young generations, which stay
automatic, collect the cycles that die young (a failed probe's exception and its frames).
So while the exporter runs,
automatic full passes are off and one runs every `FULL_PASS_INTERVAL`: a stall every ten
minutes instead of several a minute, and a cycle that lived long enough to reach the old
generation is freed within ten minutes of dying.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from exporter.runtime.clock import Clock

#: Seconds between two full passes.
FULL_PASS_INTERVAL = 600.0
#: The third threshold: full passes CPython would start on its own after this many collections
#: of the middle generation, i.e. never in practice (hours at a full probe rate).
_NEVER = 1_000_000


@contextmanager
def full_passes_off() -> Iterator[None]:
    """Automatic full passes off within; the young generations' thresholds unchanged. The
    thresholds are the process's: restored on exit."""
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, max(old, _NEVER))
    try:
        yield
    finally:
        gc.set_threshold(young, middle, old)


async def full_passes(clock: Clock, every: float = FULL_PASS_INTERVAL) -> None:
    """A full pass every `every` seconds, until cancelled."""
    while True:
        await clock.sleep(every)
        gc.collect()
