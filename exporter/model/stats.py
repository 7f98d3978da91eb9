"""The exporter's own figures, shared by the scheduler that keeps them and the collector that
exports them: an immutable histogram, and the scheduler's self-metrics at one instant."""

from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Histogram:
    """An immutable histogram: `counts[i]` observations fell in bucket i (not cumulative),
    the last count is the +Inf bucket, so `len(counts) == len(bounds) + 1`."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    sum: float = 0.0

    @classmethod
    def empty(cls, bounds: tuple[float, ...]) -> Histogram:
        return cls(bounds=bounds, counts=(0,) * (len(bounds) + 1))

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observe(self, value: float) -> Histogram:
        """A new histogram with `value` added (a value equal to a bound falls in it: `le`)."""
        i = bisect.bisect_left(self.bounds, value)
        counts = (*self.counts[:i], self.counts[i] + 1, *self.counts[i + 1 :])
        return Histogram(bounds=self.bounds, counts=counts, sum=self.sum + value)

    def cumulative(self) -> tuple[tuple[float, int], ...]:
        """(upper bound, cumulative count) per bucket, ending with (+Inf, count)."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerStats:
    """The scheduler's self-metrics at one instant."""

    ready: bool
    targets: int  # tuples in the current matrix
    in_flight: int  # prober calls running now (holding the semaphore)
    skipped_total: int  # slots skipped because the tuple's previous probe still ran
    rounds_total: int  # completed rounds
    round_lag_seconds: float  # max start lag of the last completed round; 0 before one
    start_lag: Histogram  # start lag of every probe, seconds
    interval_seconds: float = 60.0  # the configured interval (alerts on stale probes use it)
    #: asyncio tasks alive in the event loop running the scheduler (probes, web handlers,
    #: retiring probers, ...): a leak shows as growth across rounds (tests/lab/longrun.py).
    tasks: int = 0
