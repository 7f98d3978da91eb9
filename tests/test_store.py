"""The store: counters, histograms, retention and snapshots that never change."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from exporter.model import ErrorKind, Observation, Phase, TupleKey
from exporter.store import PHASE_BUCKETS, Histogram, Store
from tests.fakes.prober import make_observation


def key(endpoint: str = "web", family: int = 4) -> TupleKey:
    return TupleKey(
        service="telegram", endpoint=endpoint, network="direct", resolver="google", family=family
    )


def test_buckets_are_the_documented_ones() -> None:
    assert PHASE_BUCKETS == (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def test_histogram_observe_and_cumulative() -> None:
    h = Histogram.empty((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 2.0, 3.0):
        h = h.observe(v)
    assert h.counts == (2, 1, 2)  # 0.1 itself falls in le=0.1
    assert h.count == 5
    assert h.sum == pytest.approx(5.65)
    assert h.cumulative() == ((0.1, 2), (1.0, 3), (float("inf"), 5))


def test_record_counts_results_and_keeps_the_last_observation() -> None:
    store = Store()
    first = make_observation(key(), total=0.2)
    second = make_observation(key(), error=ErrorKind.TIMEOUT, total=3.0)
    store.record(first)
    store.record(second)
    series = store.snapshot().get(key())
    assert series is not None
    assert series.last is second
    assert series.results == {"success": 1, "timeout": 1}
    total = series.phases[Phase.TOTAL]
    assert total.count == 2
    assert total.sum == pytest.approx(3.2)
    # 0.2 -> le=0.25 (index 5), 3.0 -> le=5 (index 9)
    assert total.counts[5] == 1
    assert total.counts[9] == 1
    # Phases only present once they ran: the failed probe had no TLS phase.
    assert series.phases[Phase.TLS].count == 1
    assert list(series.phases) == [Phase.DNS, Phase.CONNECT, Phase.TLS, Phase.HTTP, Phase.TOTAL]


def test_snapshot_is_immutable_and_unaffected_by_later_records() -> None:
    store = Store()
    store.record(make_observation(key()))
    snap = store.snapshot()
    store.record(make_observation(key(), error=ErrorKind.REFUSED))
    store.record(make_observation(key("other")))
    series = snap.get(key())
    assert series is not None
    assert series.results == {"success": 1}
    assert len(snap) == 1
    with pytest.raises(TypeError):
        snap.series[key("x")] = series  # type: ignore[index]  # asserting it is read-only
    with pytest.raises(TypeError):
        series.results["success"] = 9  # type: ignore[index]  # same


def test_snapshot_is_sorted_by_key() -> None:
    store = Store()
    for name in ("c", "a", "b"):
        store.record(make_observation(key(name)))
    assert [k.endpoint for k in store.snapshot().series] == ["a", "b", "c"]
    # Kept sorted: new records of known keys, then new keys (by record and by annotate).
    store.record(make_observation(key("a"), error=ErrorKind.TIMEOUT))
    assert [k.endpoint for k in store.snapshot().series] == ["a", "b", "c"]
    store.record(make_observation(key("bb")))
    store.annotate(key("0"), "x", 1)
    store.record(make_observation(key("b")))
    assert [k.endpoint for k in store.snapshot().series] == ["0", "a", "b", "bb", "c"]


def test_retain_drops_other_tuples() -> None:
    store = Store()
    for name in ("a", "b", "c"):
        store.record(make_observation(key(name)))
    store.retain([key("a"), key("c"), key("never-seen")])
    assert [k.endpoint for k in store.snapshot().series] == ["a", "c"]
    assert len(store) == 2


def test_annotate_is_the_hook_for_later_judgements() -> None:
    store = Store()
    store.annotate(key(), "verdict", "ok")
    series = store.snapshot().get(key())
    assert series is not None
    assert series.last is None
    assert series.extra == {"verdict": "ok"}
    store.record(make_observation(key()))
    series = store.snapshot().get(key())
    assert series is not None
    assert series.extra == {"verdict": "ok"}
    store.retain([])
    assert store.snapshot().get(key()) is None


def test_negative_durations_are_clamped() -> None:
    store = Store()
    obs = Observation(
        key=key(), started=0.0, finished=0.0, phases=MappingProxyType({Phase.TOTAL: -0.001})
    )
    store.record(obs)
    series = store.snapshot().get(key())
    assert series is not None
    assert series.phases[Phase.TOTAL].counts[0] == 1


def test_buckets_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        Store(buckets=(1.0, 0.5))


def test_subscribers_see_each_new_series_after_record() -> None:
    store = Store()
    seen: list[tuple[int, int]] = []
    store.subscribe(lambda s: seen.append((len(store.snapshot().series), sum(s.results.values()))))
    store.record(make_observation(key()))
    store.record(make_observation(key(), error=ErrorKind.TIMEOUT))
    # Called after the store holds the new series, with it.
    assert seen == [(1, 1), (1, 2)]
    store.annotate(key(), "x", 1)  # only records are announced
    assert len(seen) == 2
