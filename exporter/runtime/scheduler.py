"""The scheduler: every `interval`, every tuple of the matrix is probed once, spread out.

Rounds. Round n starts at `start(n) = start(n-1) + interval` (monotonic clock) and each tuple
has a stable offset in [0, interval): evenly spaced by its index in the matrix plus a random
jitter of at most half the gap to its neighbour (from an injected `random.Random`), so a round
is never a burst and offsets stay distinct and ordered. A tuple is dispatched at
`start(n) + offset`.

Limits. Probes run concurrently under one `asyncio.Semaphore(config.concurrency)`. A tuple
never overlaps its own previous probe: if that one is still running (or still waiting for the
semaphore) at the next slot, the slot is skipped and counted. Each prober call is bounded by an
outer safety timeout of `safety_limit(config)` seconds measured on the injected
clock; when it fires the call is cancelled (not awaited) and the tuple gets a TIMEOUT
observation, so one stuck probe cannot stall anything.

Lag. Start lag = monotonic time the prober is called (after the semaphore) minus the slot's
scheduled time; kept as a histogram and, per round, as the maximum. A round is complete when
all its slots were dispatched or skipped and every probe it started has finished.

Ready. True once every tuple of the current matrix has completed a probe (at start: when the
first round is done); latched, so a reload that adds tuples does not make the exporter unready.

Reload. `update()` swaps the matrix: a tuple with the same key and equal config objects keeps
its offset and any running probe; a changed one is replaced (running probe cancelled, its result
discarded, offset and store counters kept); a new one joins the current round if its slot is
still ahead, else the next; a removed one is cancelled and dropped from the store. A changed
interval re-spreads every offset and sets the length of the round in progress. A changed
concurrency applies to probes dispatched from then on (probes already waiting hold on to the
old semaphore).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from exporter.config.matrix import Target
from exporter.config.model import Config
from exporter.exposition.store import Store
from exporter.model.observation import LABEL_NAMES, ErrorKind, Observation, Phase, TupleKey
from exporter.model.stats import Histogram, SchedulerStats
from exporter.runtime.clock import Clock
from exporter.runtime.logs import fields, observation_fields

#: Seconds added to `config.timeout` for the outer safety timeout around each prober call:
#: the prober enforces `timeout` itself; this only catches a prober that hangs.
SAFETY_MARGIN = 5.0

#: The random jitter of an offset is at most this fraction of the gap between two tuples.
JITTER_FRACTION = 0.5

#: Upper bounds (seconds) of `messaging_exporter_probe_start_lag_seconds`: normally a few ms;
#: seconds mean the concurrency limit or the event loop is saturated.
LAG_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class ProberLike(Protocol):
    """What the scheduler needs of `exporter.probes.probe.Prober`.

    `probe` enforces `config.timeout` itself and returns an Observation, never raises (except
    CancelledError); the scheduler still guards against both failures.
    """

    async def probe(self, target: Target) -> Observation: ...

    async def aclose(self) -> None: ...


def _end(future: asyncio.Future[None]) -> None:
    """End a wait on `future` (the first of its enders wins)."""
    if not future.done():
        future.set_result(None)


def safety_limit(config: Config) -> float:
    """Seconds one prober call may take before the scheduler gives up on it: the probe's
    `timeout`, the localisation that may follow a failure, and `SAFETY_MARGIN`."""
    limit = config.timeout + SAFETY_MARGIN
    if config.localisation.enabled:
        limit += config.localisation.timeout
    return limit


@dataclass(slots=True, kw_only=True, eq=False)
class _Entry:
    """A tuple in the schedule. Mutable: `offset`/`seq` change when the interval does.
    Compared and hashed by identity: a replaced tuple is a new entry."""

    target: Target
    offset: float  # seconds after the round's start
    seq: int  # identifies the current (offset) of this entry in a round's heap
    last_round: int = 0  # number of the last round that dispatched or skipped this entry
    task: asyncio.Task[None] | None = None  # the running probe's; None once it finished


@dataclass(slots=True, kw_only=True, eq=False)
class _Round:
    number: int
    start: float  # monotonic
    interval: float
    pending: set[_Entry] = field(default_factory=set)  # probes started and not finished
    dispatched: bool = False  # every slot of the round was dispatched or skipped
    max_lag: float = 0.0
    done: bool = False


class Scheduler:
    """Runs the probes of a matrix on time; see the module docstring for the rules.

    `run()` is the dispatcher: run it as a task and cancel that task to stop (it cancels the
    probes in flight and waits for them). The prober is not owned: after replacing it with
    `update(..., prober=new)`, await `released(old)` before closing the old one.
    """

    def __init__(
        self,
        *,
        config: Config,
        targets: Sequence[Target],
        prober: ProberLike,
        store: Store,
        clock: Clock,
        rng: random.Random,
        logger: logging.Logger | None = None,
        on_round: Callable[[], None] | None = None,
    ) -> None:
        self._config = config
        #: Called after every completed round (and after `probe_all`): judges the round.
        self._on_round = on_round
        self._prober = prober
        self._store = store
        self._clock = clock
        self._rng = rng
        self._log = logger or logging.getLogger("exporter.runtime.scheduler")
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._seq = itertools.count()
        self._entries: dict[TupleKey, _Entry] = {}
        n = len(targets)
        for i, target in enumerate(targets):
            self._entries[target.key] = _Entry(
                target=target, offset=self._offset(i, n), seq=next(self._seq)
            )
        self._unprobed: set[TupleKey] = set(self._entries)
        self._ready = not self._entries
        # The round being dispatched, its heap of (offset, seq, key) and the dispatcher's sleep.
        self._round: _Round | None = None
        self._heap: list[tuple[float, int, TupleKey]] = []
        self._wake: asyncio.Future[None] | None = None
        self._running = False
        # Prober calls not yet ended (including abandoned ones), with the prober they use.
        self._calls: dict[asyncio.Task[Observation], ProberLike] = {}
        self._in_flight = 0
        self._skipped = 0
        self._rounds = 0
        self._last_round_number = 0
        self._round_lag = 0.0
        self._start_lag = Histogram.empty(LAG_BUCKETS)

    # ---- views

    @property
    def config(self) -> Config:
        return self._config

    @property
    def prober(self) -> ProberLike:
        return self._prober

    @property
    def ready(self) -> bool:
        return self._ready

    def targets(self) -> tuple[Target, ...]:
        """The current matrix, in key order."""
        return tuple(e.target for e in sorted(self._entries.values(), key=_entry_key))

    def target(self, key: TupleKey) -> Target | None:
        entry = self._entries.get(key)
        return entry.target if entry is not None else None

    def offsets(self) -> dict[TupleKey, float]:
        """Each tuple's offset in the round, seconds (for tests and debugging)."""
        return {k: e.offset for k, e in self._entries.items()}

    def stats(self) -> SchedulerStats:
        return SchedulerStats(
            ready=self._ready,
            targets=len(self._entries),
            in_flight=self._in_flight,
            skipped_total=self._skipped,
            rounds_total=self._rounds,
            round_lag_seconds=self._round_lag,
            start_lag=self._start_lag,
            interval_seconds=self._config.interval,
            tasks=_task_count(),
        )

    # ---- reload

    def update(
        self, config: Config, targets: Sequence[Target], prober: ProberLike | None = None
    ) -> None:
        """Swap in a new matrix (and optionally a new prober); see the module docstring."""
        interval_changed = config.interval != self._config.interval
        if config.concurrency != self._config.concurrency:
            self._semaphore = asyncio.Semaphore(config.concurrency)
        self._config = config
        if prober is not None:
            self._prober = prober
        n = len(targets)
        entries: dict[TupleKey, _Entry] = {}
        fresh: list[_Entry] = []  # entries whose slot in the current round must be (re)queued
        for i, target in enumerate(targets):
            old = self._entries.get(target.key)
            if old is not None and old.target == target:
                entry = old
                if interval_changed:
                    entry.offset = self._offset(i, n)
                    entry.seq = next(self._seq)
                    fresh.append(entry)
            else:
                offset = self._offset(i, n)
                last_round = 0
                if old is not None:
                    self._cancel(old)
                    if not interval_changed:
                        offset = old.offset
                    last_round = old.last_round
                entry = _Entry(
                    target=target, offset=offset, seq=next(self._seq), last_round=last_round
                )
                fresh.append(entry)
                if not self._ready:
                    self._unprobed.add(target.key)
            entries[target.key] = entry
        for key, old in self._entries.items():
            if key not in entries:
                self._cancel(old)
        self._entries = entries
        self._unprobed &= set(entries)
        self._store.retain(entries)
        self._check_ready()
        rnd = self._round
        if rnd is not None and interval_changed:
            rnd.interval = config.interval  # the current round ends on the new schedule
        if rnd is not None and not rnd.dispatched:
            now = self._clock.monotonic()
            for entry in fresh:
                if entry.last_round < rnd.number and rnd.start + entry.offset >= now:
                    heapq.heappush(self._heap, (entry.offset, entry.seq, entry.target.key))
        if self._wake is not None:
            _end(self._wake)  # the dispatcher re-reads the heap

    async def released(self, prober: ProberLike) -> None:
        """Return once no call of `prober` is running (abandoned ones included)."""
        calls = [t for t, p in self._calls.items() if p is prober]
        if calls:
            await asyncio.wait(calls)

    # ---- running

    async def run(self) -> None:
        """Dispatch rounds until cancelled."""
        if self._running:
            raise RuntimeError("the scheduler is already running")
        self._running = True
        start = self._clock.monotonic()
        number = 0
        try:
            while True:
                number += 1
                rnd = _Round(number=number, start=start, interval=self._config.interval)
                self._round = rnd
                self._heap = [(e.offset, e.seq, k) for k, e in self._entries.items()]
                heapq.heapify(self._heap)
                while self._heap:
                    offset, seq, key = self._heap[0]
                    entry = self._entries.get(key)
                    if entry is None or entry.seq != seq or entry.last_round >= number:
                        heapq.heappop(self._heap)  # removed, re-offset or already dispatched
                        continue
                    due = rnd.start + offset
                    if self._clock.monotonic() < due:
                        await self._sleep_until(due)
                        continue  # re-read the heap: an update may have changed it
                    heapq.heappop(self._heap)
                    self._dispatch(entry, due, rnd)
                rnd.dispatched = True
                self._maybe_complete(rnd)
                # rnd.interval may change while we sleep (a reload with a new interval).
                while self._clock.monotonic() < rnd.start + rnd.interval:
                    await self._sleep_until(rnd.start + rnd.interval)
                start = rnd.start + rnd.interval
        finally:
            self._round = None
            self._running = False
            await self._cancel_all()

    async def probe_all(self) -> tuple[Observation, ...]:
        """Probe every tuple once, now, not spread (for `once`); in matrix order.

        Honours the concurrency limit and the outer timeout and records into the store.
        """
        entries = sorted(self._entries.values(), key=_entry_key)

        async def one(entry: _Entry) -> Observation:
            async with self._semaphore:
                self._in_flight += 1
                try:
                    obs = await self._call(self._prober, entry.target)
                finally:
                    self._in_flight -= 1
            if self._entries.get(entry.target.key) is entry:
                self._complete(obs)
            return obs

        observations = await asyncio.gather(*(one(e) for e in entries))
        self._rounds += 1
        self._round_done()
        return tuple(observations)

    # ---- internals

    def _offset(self, index: int, count: int) -> float:
        interval = self._config.interval
        gap = interval / count
        return index * gap + self._rng.uniform(0.0, JITTER_FRACTION * gap)

    async def _sleep_until(self, deadline: float) -> None:
        """Sleep on the clock until `deadline`, or less if `update()` wakes the dispatcher."""
        wake = self._wake = asyncio.get_running_loop().create_future()
        timer = self._clock.call_later(deadline - self._clock.monotonic(), lambda: _end(wake))
        try:
            await wake
        finally:
            self._wake = None
            timer.cancel()

    def _dispatch(self, entry: _Entry, due: float, rnd: _Round) -> None:
        entry.last_round = rnd.number
        if entry.task is not None and not entry.task.done():
            self._skipped += 1
            self._log.warning(
                "probe skipped: the previous probe of this tuple is still running",
                extra=fields(**_labels(entry.target.key)),
            )
            return
        rnd.pending.add(entry)
        entry.task = asyncio.create_task(
            self._run_probe(entry, due, rnd), name=f"probe {'/'.join(entry.target.key.labels())}"
        )

    async def _run_probe(self, entry: _Entry, due: float, rnd: _Round) -> None:
        try:
            async with self._semaphore:
                started = self._clock.monotonic()
                lag = max(0.0, started - due)
                rnd.max_lag = max(rnd.max_lag, lag)
                self._start_lag = self._start_lag.observe(lag)
                self._in_flight += 1
                try:
                    obs = await self._call(self._prober, entry.target)
                finally:
                    self._in_flight -= 1
            if self._entries.get(entry.target.key) is entry:
                self._complete(obs)
        finally:
            rnd.pending.discard(entry)
            self._maybe_complete(rnd)
            if entry.task is asyncio.current_task():
                entry.task = None  # a finished task kept per tuple: ~350 B, 3.5 MB at 10,000

    async def _call(self, prober: ProberLike, target: Target) -> Observation:
        """One prober call under the outer safety timeout; always an Observation."""
        limit = safety_limit(self._config)
        started_wall = self._clock.time()
        started = self._clock.monotonic()
        call = asyncio.create_task(prober.probe(target))
        self._calls[call] = prober
        call.add_done_callback(self._call_ended)
        # Whichever ends `ended` first, the call or the safety timer: a future and a timer,
        # not a timer task raced with `asyncio.wait` (docs/benchmarks.md has the cost).
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def end(_: object = None) -> None:
            _end(ended)

        call.add_done_callback(end)
        timer = self._clock.call_later(limit, end)
        try:
            await ended
        except asyncio.CancelledError:
            call.cancel()
            raise
        finally:
            timer.cancel()
            call.remove_done_callback(end)
        elapsed = self._clock.monotonic() - started
        if call.done():
            if call.cancelled():
                return self._synthetic(
                    target, ErrorKind.OTHER, started_wall, elapsed, "probe cancelled itself"
                )
            exc = call.exception()
            if exc is None:
                return call.result()
            self._log.error(
                "prober raised instead of returning an observation",
                extra=fields(**_labels(target.key), error=repr(exc)),
            )
            return self._synthetic(
                target, ErrorKind.OTHER, started_wall, elapsed, f"prober raised: {exc!r}"
            )
        call.cancel()  # abandoned: `released()` still waits for it to end
        self._log.warning(
            "probe exceeded the safety timeout and was cancelled",
            extra=fields(**_labels(target.key), timeout_seconds=limit),
        )
        return self._synthetic(
            target,
            ErrorKind.TIMEOUT,
            started_wall,
            elapsed,
            f"probe still running after the safety timeout of {limit:g}s; cancelled",
        )

    def _call_ended(self, call: asyncio.Task[Observation]) -> None:
        self._calls.pop(call, None)
        if not call.cancelled():
            call.exception()  # retrieved: reported by _call, or the call was abandoned

    @staticmethod
    def _synthetic(
        target: Target, error: ErrorKind, started_wall: float, elapsed: float, message: str
    ) -> Observation:
        return Observation(
            key=target.key,
            started=started_wall,
            finished=started_wall + elapsed,
            error=error,
            phases=MappingProxyType({Phase.TOTAL: elapsed}),
            log=(message,),
        )

    def _complete(self, obs: Observation) -> None:
        self._store.record(obs)
        # Each probe at debug only: at info the exporter says what changed (a network down, a
        # service blocked, a set-up error, each round's counts), not every failure of a
        # round (a dead uplink would write one line per tuple per round).
        if self._log.isEnabledFor(logging.DEBUG):  # the fields cost more than the check
            message = "probe succeeded" if obs.success else "probe failed"
            self._log.debug(message, extra=fields(**observation_fields(obs)))
        if not self._ready:
            self._unprobed.discard(obs.key)
            self._check_ready()

    def _check_ready(self) -> None:
        if not self._ready and not self._unprobed:
            self._ready = True
            self._log.info("ready: every tuple was probed", extra=fields(tuples=len(self._entries)))

    def _maybe_complete(self, rnd: _Round) -> None:
        if rnd.done or not rnd.dispatched or rnd.pending:
            return
        rnd.done = True
        self._rounds += 1
        if rnd.number > self._last_round_number:
            self._last_round_number = rnd.number
            self._round_lag = rnd.max_lag
        self._round_done()

    def _round_done(self) -> None:
        if self._on_round is None:
            return
        try:
            self._on_round()
        except Exception:  # a bug in judging must not stop probing
            self._log.exception("judging the round failed")

    def _cancel(self, entry: _Entry) -> None:
        if entry.task is not None and not entry.task.done():
            entry.task.cancel()

    async def _cancel_all(self) -> None:
        tasks = [e.task for e in self._entries.values() if e.task is not None and not e.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


def _entry_key(entry: _Entry) -> TupleKey:
    return entry.target.key


def _labels(key: TupleKey) -> dict[str, object]:
    return dict(zip(LABEL_NAMES, key.labels(), strict=True))


def _task_count() -> int:
    """Tasks of the running event loop; 0 when called outside one (e.g. from a test)."""
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no running event loop
        return 0
