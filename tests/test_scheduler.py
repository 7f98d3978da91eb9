"""The scheduler under a fake clock: no real waiting, every instant is exact."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import random
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from types import MappingProxyType

import pytest

from exporter.config.matrix import Target, expand
from exporter.config.model import Config, Service
from exporter.exposition.store import Store
from exporter.model.observation import ErrorKind, Phase, TupleKey
from exporter.runtime.scheduler import SAFETY_MARGIN, Scheduler, safety_limit
from tests.fakes.clock import FakeClock
from tests.fakes.prober import FakeProber, make_config


def build(
    config: Config, prober: FakeProber, clock: FakeClock, *, seed: int = 7
) -> tuple[Scheduler, Store]:
    store = Store()
    scheduler = Scheduler(
        config=config,
        targets=expand(config),
        prober=prober,
        store=store,
        clock=clock,
        rng=random.Random(seed),
    )
    return scheduler, store


@asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(scheduler.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.wait({task})


def starts(prober: FakeProber, key: TupleKey) -> list[float]:
    return [c.started for c in prober.calls if c.key == key]


async def test_probes_are_spread_over_the_interval(clock: FakeClock) -> None:
    config = make_config(endpoints=4, resolvers=("r1", "r2"), families=(4, 6), interval=60.0)
    prober = FakeProber(clock=clock, duration=lambda t: 0.01)
    scheduler, _ = build(config, prober, clock)
    t0 = clock.monotonic()
    async with running(scheduler):
        await clock.advance(59.999)
    assert len(prober.calls) == 16
    times = sorted(c.started for c in prober.calls)
    assert len(set(times)) == 16, "two tuples started at the same instant"
    assert all(t0 <= t < t0 + 60.0 for t in times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) > 60.0 / 16 * 0.4  # evenly spaced; jitter is at most half a gap
    # Offsets: index * gap + jitter in [0, gap/2).
    offsets = scheduler.offsets()
    for i, target in enumerate(expand(config)):
        assert i * 3.75 <= offsets[target.key] < i * 3.75 + 3.75 / 2


async def test_each_tuple_keeps_its_slot_round_after_round(clock: FakeClock) -> None:
    config = make_config(endpoints=3, interval=30.0)
    prober = FakeProber(clock=clock, duration=lambda t: 0.5)
    scheduler, _ = build(config, prober, clock)
    async with running(scheduler):
        await clock.advance(119.0)
    for target in expand(config):
        s = starts(prober, target.key)
        assert len(s) == 4
        assert [b - a for a, b in itertools.pairwise(s)] == pytest.approx([30.0] * 3)
    assert scheduler.stats().rounds_total == 4


async def test_jitter_comes_from_the_injected_rng(clock: FakeClock) -> None:
    config = make_config(endpoints=5)
    a, _ = build(config, FakeProber(clock=clock), clock, seed=1)
    b, _ = build(config, FakeProber(clock=clock), clock, seed=1)
    c, _ = build(config, FakeProber(clock=clock), clock, seed=2)
    assert a.offsets() == b.offsets()
    assert a.offsets() != c.offsets()


async def test_concurrency_limit_is_honoured(clock: FakeClock) -> None:
    config = make_config(endpoints=10, interval=10.0, timeout=8.0, concurrency=2)
    prober = FakeProber(clock=clock, duration=lambda t: 5.0)
    scheduler, _ = build(config, prober, clock)
    async with running(scheduler):
        await clock.advance(3.0)
        assert scheduler.stats().in_flight == 2
        await clock.advance(60.0)
    assert prober.max_running == 2
    assert prober.overlaps == []


async def test_start_lag_is_measured(clock: FakeClock) -> None:
    # One slot at a time: the second tuple waits for the first to finish.
    config = make_config(endpoints=2, interval=10.0, timeout=9.0, concurrency=1)
    prober = FakeProber(clock=clock, duration=lambda t: 8.0)
    scheduler, _ = build(config, prober, clock)
    t0 = clock.monotonic()
    first, second = (t.key for t in expand(config))
    offsets = scheduler.offsets()
    async with running(scheduler):
        await clock.run_until(lambda: scheduler.stats().rounds_total >= 1, limit=30.0, step=0.25)
        stats = scheduler.stats()
    expected_lag = (t0 + offsets[first] + 8.0) - (t0 + offsets[second])
    assert expected_lag > 0
    assert stats.round_lag_seconds == pytest.approx(expected_lag)
    assert starts(prober, second)[0] == pytest.approx(t0 + offsets[first] + 8.0)
    assert stats.start_lag.count >= 2
    assert stats.start_lag.sum >= expected_lag - 1e-9


async def test_a_tuple_never_overlaps_itself(clock: FakeClock) -> None:
    config = make_config(endpoints=1, interval=10.0, timeout=10.0)
    prober = FakeProber(clock=clock, duration=lambda t: 12.0)  # longer than the interval
    scheduler, store = build(config, prober, clock)
    (key,) = (t.key for t in expand(config))
    async with running(scheduler):
        await clock.advance(scheduler.offsets()[key] + 30.5)
    assert prober.overlaps == []
    s = starts(prober, key)
    # slots at o, o+10 (skipped: still running), o+20, o+30 (skipped)
    assert [b - a for a, b in itertools.pairwise(s)] == pytest.approx([20.0])
    assert scheduler.stats().skipped_total == 2
    series = store.snapshot().get(key)
    assert series is not None
    assert series.results == {"success": 1}


async def test_a_finished_probe_task_is_not_kept(clock: FakeClock) -> None:
    """Each tuple's probe runs in a task of its own; once finished, nothing keeps it (at
    10,000 tuples, kept tasks and their names weighed 3.5 MB)."""
    config = make_config(endpoints=3, interval=10.0)
    prober = FakeProber(clock=clock, duration=lambda t: 0.5)
    scheduler, _ = build(config, prober, clock)
    seen: list[weakref.ref[asyncio.Task[object]]] = []
    names: set[str] = set()
    async with running(scheduler):
        while scheduler.stats().rounds_total < 1:
            # A comprehension: no loop variable left holding the last task.
            probes = [t for t in asyncio.all_tasks() if t.get_name().startswith("probe ")]
            seen += (weakref.ref(t) for t in probes)
            names.update(t.get_name() for t in probes)
            del probes
            await clock.advance(0.25)
        assert len(names) == 3  # each tuple's task was seen running
        gc.collect()
        assert [r() for r in seen if r() is not None] == []


async def test_outer_timeout_turns_a_stuck_probe_into_a_timeout(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter")
    config = make_config(endpoints=2, interval=60.0, timeout=3.0)
    targets = expand(config)
    stuck = targets[0].key
    prober = FakeProber(clock=clock, duration=lambda t: 0.2, hang=lambda t: t.key == stuck)
    scheduler, store = build(config, prober, clock)
    t0 = clock.monotonic()
    limit = safety_limit(config)
    assert limit == 3.0 + config.localisation.timeout + SAFETY_MARGIN
    async with running(scheduler):
        offset = scheduler.offsets()[stuck]
        await clock.advance(offset + limit - 0.01)
        assert store.snapshot().get(stuck) is None
        await clock.advance(0.02)
        series = store.snapshot().get(stuck)
        assert series is not None
        assert series.last is not None
        assert series.last.error is ErrorKind.TIMEOUT
        assert series.last.phases[Phase.TOTAL] == pytest.approx(limit)
        assert "safety timeout" in series.last.log[0]
        assert prober.cancelled == 1
        # The other tuple is unaffected and the next round runs.
        await clock.advance(60.0)
    assert len(starts(prober, stuck)) == 2
    assert starts(prober, stuck)[1] == pytest.approx(t0 + offset + 60.0)
    other = store.snapshot().get(targets[1].key)
    assert other is not None
    assert other.last is not None
    assert other.last.success
    assert any(
        "safety timeout" in r.getMessage() and getattr(r, "fields", {}).get("endpoint") == "e0"
        for r in caplog.records
    )


async def test_a_prober_that_raises_yields_an_other_error(clock: FakeClock) -> None:
    config = make_config(endpoints=1, interval=10.0)
    prober = FakeProber(clock=clock, raises=lambda t: True)
    scheduler, store = build(config, prober, clock)
    async with running(scheduler):
        await clock.advance(10.0)
    (series,) = store.snapshot().series.values()
    assert series.last is not None
    assert series.last.error is ErrorKind.OTHER
    assert scheduler.ready


async def test_ready_once_every_tuple_completed_a_probe(clock: FakeClock) -> None:
    config = make_config(endpoints=5, interval=20.0)
    prober = FakeProber(clock=clock, duration=lambda t: 1.0)
    scheduler, store = build(config, prober, clock)
    offsets = sorted(scheduler.offsets().values())
    async with running(scheduler):
        await clock.advance(offsets[-1] + 0.99)
        assert len(store) == 4
        assert not scheduler.ready
        assert scheduler.stats().rounds_total == 0
        await clock.advance(0.02)
        assert scheduler.ready
        assert scheduler.stats().rounds_total == 1


async def test_empty_matrix_is_ready(clock: FakeClock) -> None:
    config = replace(make_config(), services=MappingProxyType({}))
    scheduler, _ = build(config, FakeProber(clock=clock), clock)
    assert scheduler.ready
    async with running(scheduler):
        await clock.advance(120.0)
    assert scheduler.stats().targets == 0


def _with_services(config: Config, services: dict[str, Service]) -> Config:
    return replace(config, services=MappingProxyType(services))


async def test_reload_adds_and_removes_tuples(clock: FakeClock) -> None:
    old = make_config(endpoints=4, interval=20.0)
    prober = FakeProber(clock=clock, duration=lambda t: 0.5)
    scheduler, store = build(old, prober, clock)
    async with running(scheduler):
        await clock.advance(20.0)
        assert len(store) == 4
        kept_offsets = scheduler.offsets()
        # Keep e0 and e1, drop e2 and e3, add a second service.
        svc = old.services["svc"]
        kept = Service(
            name="svc",
            endpoints=MappingProxyType({k: svc.endpoints[k] for k in ("e0", "e1")}),
        )
        extra = make_config(endpoints=2, services=("other",)).services["other"]
        new = _with_services(old, {"svc": kept, "other": extra})
        calls_before = len(prober.calls)
        scheduler.update(new, expand(new))
        assert {k.endpoint for k in store.snapshot().series} == {"e0", "e1"}
        assert scheduler.stats().targets == 4
        await clock.advance(40.0)
    new_keys = {t.key for t in expand(new)}
    probed_after = {c.key for c in prober.calls[calls_before:]}
    assert probed_after == new_keys
    assert set(store.snapshot().series) == new_keys
    for key in new_keys:
        if key.service == "svc":
            assert scheduler.offsets()[key] == kept_offsets[key]


async def test_reload_of_a_changed_tuple_replaces_it_but_keeps_counters(
    clock: FakeClock,
) -> None:
    old = make_config(endpoints=1, interval=20.0)
    prober = FakeProber(clock=clock, duration=lambda t: 5.0)
    scheduler, store = build(old, prober, clock)
    (key,) = (t.key for t in expand(old))
    offset = scheduler.offsets()[key]
    async with running(scheduler):
        await clock.advance(20.0)  # first probe done
        await clock.advance(offset + 1.0)  # second probe in flight
        assert prober.running == 1
        svc = old.services["svc"]
        changed = replace(svc.endpoints["e0"], port=8443)
        new = _with_services(
            old, {"svc": Service(name="svc", endpoints=MappingProxyType({"e0": changed}))}
        )
        scheduler.update(new, expand(new))
        await clock.settle()
        assert prober.cancelled == 1  # the probe of the old config stopped
        assert scheduler.offsets()[key] == offset  # same slot
        await clock.advance(25.0)
    target = scheduler.target(key)
    assert target is not None
    assert target.endpoint.port == 8443
    series = store.snapshot().get(key)
    assert series is not None
    assert series.results == {"success": 2}  # the first probe, then one of the new config


async def test_reload_swaps_the_prober_and_releases_the_old_one(clock: FakeClock) -> None:
    config = make_config(endpoints=2, interval=20.0)
    first = FakeProber(clock=clock, duration=lambda t: 4.0)
    second = FakeProber(clock=clock, duration=lambda t: 4.0)
    scheduler, _ = build(config, first, clock)
    offsets = sorted(scheduler.offsets().values())
    async with running(scheduler):
        await clock.advance(offsets[0] + 1.0)
        assert first.running == 1
        scheduler.update(config, expand(config), prober=second)
        assert scheduler.prober is second
        released = asyncio.create_task(scheduler.released(first))
        await clock.settle()
        assert not released.done()
        await clock.advance(3.5)
        assert released.done()
        await clock.advance(40.0)
    assert first.overlaps == []
    assert second.overlaps == []
    assert len(first.calls) == 1  # only the probe in flight at the swap
    assert len(second.calls) >= 3


async def test_reload_with_a_new_interval_respreads(clock: FakeClock) -> None:
    old = make_config(endpoints=4, interval=60.0)
    prober = FakeProber(clock=clock, duration=lambda t: 0.1)
    scheduler, _ = build(old, prober, clock)
    async with running(scheduler):
        await clock.advance(60.0)
        new = replace(old, interval=20.0)
        scheduler.update(new, expand(new))
        assert all(0 <= o < 20.0 for o in scheduler.offsets().values())
        n = len(prober.calls)
        await clock.advance(60.0)
    # every tuple probed in each of the 20 s rounds that followed (2 or 3 of them)
    per_key = {t.key: len(starts(prober, t.key)) for t in expand(new)}
    assert len(prober.calls) - n >= 8
    assert min(per_key.values()) >= 3


async def test_new_tuple_joins_the_current_round_when_its_slot_is_ahead(
    clock: FakeClock,
) -> None:
    old = make_config(endpoints=1, interval=60.0)
    prober = FakeProber(clock=clock, duration=lambda t: 0.1)
    scheduler, store = build(old, prober, clock)
    async with running(scheduler):
        await clock.advance(0.001)  # early in round 1: most slots are ahead
        new = make_config(endpoints=4, interval=60.0)
        scheduler.update(new, expand(new))
        await clock.advance(59.0)
        assert len(store) == 4
        assert scheduler.ready


async def test_concurrency_change_applies_to_new_probes(clock: FakeClock) -> None:
    old = make_config(endpoints=6, interval=6.0, timeout=5.0, concurrency=1)
    prober = FakeProber(clock=clock, duration=lambda t: 0.5)
    scheduler, _ = build(old, prober, clock)
    async with running(scheduler):
        await clock.advance(6.0)
        new = replace(old, concurrency=3)
        prober.duration = lambda t: 5.0
        scheduler.update(new, expand(new))
        await clock.advance(12.0)
    assert prober.max_running == 3


async def test_stopping_cancels_probes_in_flight(clock: FakeClock) -> None:
    config = make_config(endpoints=3, interval=3.0, timeout=10.0)
    prober = FakeProber(clock=clock, duration=lambda t: 30.0)
    scheduler, store = build(config, prober, clock)
    task = asyncio.create_task(scheduler.run())
    await clock.advance(3.0)
    assert prober.running == 3
    task.cancel()
    await asyncio.wait({task})
    assert task.cancelled()
    assert prober.running == 0
    assert prober.cancelled == 3
    assert len(store) == 0
    await scheduler.released(prober)


async def test_probe_all_probes_everything_at_once(clock: FakeClock) -> None:
    config = make_config(endpoints=5, concurrency=2)
    prober = FakeProber(clock=clock, duration=lambda t: 1.0, error=_fail_e3)
    scheduler, store = build(config, prober, clock)
    result = asyncio.create_task(scheduler.probe_all())
    await clock.advance(2.5)
    assert not result.done()
    await clock.advance(0.5)
    observations = result.result()
    assert [o.key for o in observations] == [t.key for t in expand(config)]
    assert [o.result for o in observations].count("refused") == 1
    assert prober.max_running == 2
    assert len(store) == 5
    assert scheduler.ready


def _fail_e3(target: Target) -> ErrorKind | None:
    return ErrorKind.REFUSED if target.key.endpoint == "e3" else None


async def test_failed_probes_are_logged_at_debug(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="exporter")
    config = make_config(endpoints=4, interval=10.0)
    prober = FakeProber(clock=clock, error=_fail_e3)
    scheduler, _ = build(config, prober, clock)
    async with running(scheduler):
        await clock.advance(10.0)
    failed = [r for r in caplog.records if r.getMessage() == "probe failed"]
    assert len(failed) == 1
    assert failed[0].levelno == logging.DEBUG
    assert getattr(failed[0], "fields", {}) == {
        "service": "svc",
        "endpoint": "e3",
        "network": "direct",
        "resolver": "r1",
        "family": "4",
        "result": "refused",
        "phase": "connect",
        "duration_seconds": 0.1,
        "detail": "made up",
    }
    ok = [r for r in caplog.records if r.getMessage() == "probe succeeded"]
    assert len(ok) == 3
    assert all(r.levelno == logging.DEBUG for r in ok)


async def test_run_twice_is_refused(clock: FakeClock) -> None:
    scheduler, _ = build(make_config(), FakeProber(clock=clock), clock)
    async with running(scheduler):
        await clock.settle()
        with pytest.raises(RuntimeError, match="already running"):
            await scheduler.run()


async def test_a_probe_in_flight_costs_two_tasks_and_no_timer_task(clock: FakeClock) -> None:
    """The safety limit and the dispatcher's sleep are timers on the clock, not tasks: while a
    probe runs, the only tasks are the dispatcher, the probe's and its prober call's."""
    config = make_config(endpoints=1, interval=60.0)
    prober = FakeProber(clock=clock, hang=lambda t: True)
    scheduler, _ = build(config, prober, clock)
    async with running(scheduler) as dispatcher:
        await clock.run_until(lambda: len(prober.calls) == 1, limit=60.0)
        tasks = asyncio.all_tasks() - {asyncio.current_task(), dispatcher}
        # typeshed types a coroutine without __qualname__, which every coroutine has
        assert sorted(t.get_coro().__qualname__ for t in tasks) == [  # type: ignore[union-attr]
            "FakeProber.probe",
            "Scheduler._run_probe",
        ]
        assert clock.sleepers == 2  # the safety limit and the dispatcher's wait for the next round
