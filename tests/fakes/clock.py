"""A clock the test moves by hand: `sleep()` parks until `advance()` passes its deadline.

`advance(dt)` wakes sleepers one deadline at a time, in deadline order, setting the clock to
each deadline before waking it and letting the event loop run every task that became
runnable before moving on. No real time passes, so tests are deterministic and fast.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

#: Upper bound on event loop iterations `settle()` runs while work is still runnable.
MAX_SETTLE_ITERATIONS = 10_000


class FakeClock:
    def __init__(self, *, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._now = monotonic
        self._wall_offset = wall - monotonic
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    def jump_wall(self, seconds: float) -> None:
        """Move only the wall clock (`time()`), as an NTP step or an operator does; the
        monotonic clock and the sleepers are untouched."""
        self._wall_offset += seconds

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut  # cancelling the sleeper cancels fut; advance() skips it

    def call_later(self, seconds: float, callback: Callable[[], None]) -> asyncio.Future[None]:
        """A sleeper whose wake-up calls `callback`; cancelling the returned future drops it."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda f: None if f.cancelled() else callback())
        if seconds <= 0:
            fut.set_result(None)  # called on the loop's next turn, as a real timer would be
        else:
            heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        return fut

    @property
    def sleepers(self) -> int:
        """Sleepers still parked."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        live = [d for d, _, f in self._sleepers if not f.done()]
        return min(live) if live else None

    async def settle(self) -> None:
        """Run the event loop until no task is runnable (only sleepers and I/O are left)."""
        loop = asyncio.get_running_loop()
        for _ in range(MAX_SETTLE_ITERATIONS):
            await asyncio.sleep(0)
            # `_ready` is asyncio's private queue of runnable callbacks; empty means idle.
            if not getattr(loop, "_ready", ()):
                return
        raise RuntimeError("the event loop never became idle")

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, waking every sleeper whose deadline passes."""
        target = self._now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self._now = max(self._now, deadline)
            fut.set_result(None)
            await self.settle()
        self._now = max(self._now, target)
        await self.settle()

    async def run_until(
        self, predicate: Callable[[], bool], *, limit: float, step: float = 0.5
    ) -> None:
        """Advance in `step`s until `predicate()` holds; fail after `limit` fake seconds."""
        end = self._now + limit
        await self.settle()
        while not predicate():
            if self._now >= end:
                raise AssertionError(f"condition not met within {limit}s of fake time")
            await self.advance(step)
