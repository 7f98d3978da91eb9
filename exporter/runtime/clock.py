"""Time, passed in: the scheduler asks a `Clock` instead of the `time` module, so tests can
drive it with a fake clock and never wait for real.

Two readings with different jobs: `monotonic()` for scheduling and durations (never jumps),
`time()` (wall clock, unix seconds) only for what is shown to people and to Prometheus.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """A pending `Clock.call_later`."""

    def cancel(self) -> object:
        """Drop the call if it has not happened yet (no effect after it has)."""
        ...


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

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call `callback` on the event loop after `seconds` of `monotonic()` time: a wait
        that something else usually ends first (a probe's safety limit, the dispatcher's
        sleep) costs a timer, not a task of its own."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.time`, `asyncio.sleep`, the loop's timers
    (`time.monotonic` too)."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), callback)
