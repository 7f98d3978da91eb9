"""Time, passed in: the scheduler asks a `Clock` instead of the `time` module, so tests can
drive it with a fake clock and never wait for real.

Two readings with different jobs: `monotonic()` for scheduling and durations (never jumps),
`time()` (wall clock, unix seconds) only for what is shown to people and to Prometheus.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What the scheduler needs of time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def time(self) -> float:
        """Wall clock, unix seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after `seconds` of `monotonic()` time (at once when `seconds <= 0`)."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.time`, `asyncio.sleep`."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
