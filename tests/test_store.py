"""The store: counters, histograms, retention and snapshots that never change."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from exporter.config.model import PhaseHistograms
from exporter.exposition.store import PHASE_BUCKETS, Store
from exporter.model.observation import EndpointKey, ErrorKind, Observation, Phase, TupleKey
from exporter.model.stats import Histogram
from tests.fakes.observations import judged
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
    assert series.last == second
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
    # Kept sorted: new records of known keys, then new keys.
    store.record(make_observation(key("a"), error=ErrorKind.TIMEOUT))
    assert [k.endpoint for k in store.snapshot().series] == ["a", "b", "c"]
    store.record(make_observation(key("bb")))
    store.record(make_observation(key("0")))
    store.record(make_observation(key("b")))
    assert [k.endpoint for k in store.snapshot().series] == ["0", "a", "b", "bb", "c"]


def test_retain_drops_other_tuples() -> None:
    store = Store()
    for name in ("a", "b", "c"):
        store.record(make_observation(key(name)))
    store.retain([key("a"), key("c"), key("never-seen")])
    assert [k.endpoint for k in store.snapshot().series] == ["a", "c"]
    assert len(store) == 2


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
    assert len(seen) == 2


def through(network: str, resolver: str = "google", family: int = 4) -> TupleKey:
    return TupleKey(
        service="telegram", endpoint="web", network=network, resolver=resolver, family=family
    )


def test_histograms_per_endpoint_sum_the_resolvers_and_families_of_a_network() -> None:
    store = Store(phase_histograms=PhaseHistograms.ENDPOINT)
    store.record(make_observation(through("direct", "google", 4), total=0.2))
    store.record(make_observation(through("direct", "quad9", 6), total=3.0))
    store.record(make_observation(through("vpn"), total=0.2))
    snap = store.snapshot()
    assert snap.phase_histograms is PhaseHistograms.ENDPOINT
    direct = EndpointKey(service="telegram", endpoint="web", network="direct")
    vpn = EndpointKey(service="telegram", endpoint="web", network="vpn")
    assert list(snap.endpoint_phases) == [direct, vpn]
    total = snap.endpoint_phases[direct][Phase.TOTAL]
    assert total.count == 2
    assert total.sum == pytest.approx(3.2)
    assert snap.endpoint_phases[vpn][Phase.TOTAL].count == 1
    assert list(snap.endpoint_phases[direct]) == [
        Phase.DNS,
        Phase.CONNECT,
        Phase.TLS,
        Phase.HTTP,
        Phase.TOTAL,
    ]
    # Nothing per tuple: the point of the option is memory and text per tuple.
    assert all(not s.phases for s in snap.series.values())
    # Results stay per tuple.
    assert snap.series[through("direct", "quad9", 6)].results == {"success": 1}
    assert store.endpoint_phases(through("direct", "quad9", 6)) is snap.endpoint_phases[direct]


def test_no_histograms_at_all_with_none() -> None:
    store = Store(phase_histograms=PhaseHistograms.NONE)
    store.record(make_observation(key()))
    snap = store.snapshot()
    assert not snap.endpoint_phases
    assert not snap.series[key()].phases
    assert snap.series[key()].last is not None
    assert store.endpoint_phases(key()) is None


def test_retain_keeps_an_endpoint_histogram_while_any_of_its_tuples_remains() -> None:
    store = Store(phase_histograms=PhaseHistograms.ENDPOINT)
    store.record(make_observation(through("direct", "google")))
    store.record(make_observation(through("direct", "quad9")))
    store.record(make_observation(through("vpn")))
    store.retain([through("direct", "quad9")])
    snap = store.snapshot()
    assert [e.network for e in snap.endpoint_phases] == ["direct"]
    assert snap.endpoint_phases[EndpointKey.of(through("direct"))][Phase.TOTAL].count == 2


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (PhaseHistograms.TUPLE, PhaseHistograms.ENDPOINT),
        (PhaseHistograms.ENDPOINT, PhaseHistograms.TUPLE),
        (PhaseHistograms.TUPLE, PhaseHistograms.NONE),
        (PhaseHistograms.ENDPOINT, PhaseHistograms.NONE),
    ],
)
def test_changing_what_histograms_cover_starts_them_again(
    before: PhaseHistograms, after: PhaseHistograms
) -> None:
    store = Store(phase_histograms=before)
    store.record(make_observation(key()))
    store.set_phase_histograms(after)
    snap = store.snapshot()
    assert not snap.endpoint_phases
    assert not snap.series[key()].phases
    assert snap.series[key()].results == {"success": 1}  # the counters stay
    store.record(make_observation(key()))
    snap = store.snapshot()
    per_tuple = snap.series[key()].phases
    per_endpoint = snap.endpoint_phases.get(EndpointKey.of(key()), {})
    counts = {
        PhaseHistograms.TUPLE: (1, 0),
        PhaseHistograms.ENDPOINT: (0, 1),
        PhaseHistograms.NONE: (0, 0),
    }[after]
    assert (
        per_tuple[Phase.TOTAL].count if per_tuple else 0,
        per_endpoint[Phase.TOTAL].count if per_endpoint else 0,
    ) == counts


def test_setting_the_same_histograms_keeps_them() -> None:
    store = Store(phase_histograms=PhaseHistograms.ENDPOINT)
    store.record(make_observation(key()))
    store.set_phase_histograms(PhaseHistograms.ENDPOINT)
    assert store.snapshot().endpoint_phases[EndpointKey.of(key())][Phase.TOTAL].count == 1


def test_the_service_states_follow_the_judgement_and_the_blocks_are_kept() -> None:
    """A snapshot's service-level states are made of its judgement (never out of step), and
    the starts of the blocks in progress are what the app last set."""

    from exporter.model.judgement import EMPTY_JUDGEMENT, Finding, Verdict

    store = Store()
    key = TupleKey(service="telegram", endpoint="web", network="censor", resolver="isp", family=4)
    assert store.snapshot().services == {}
    store.set_judgement(judged({key: Finding(verdict=Verdict.TLS_BLOCKED, reason="")}))
    store.set_service_blocked_since({("telegram", "censor"): 1_700_000_000.0})
    before = store.snapshot()
    assert before.services["telegram", "censor"].methods == (Verdict.TLS_BLOCKED,)
    assert store.services is before.services
    assert before.service_blocked_since == {("telegram", "censor"): 1_700_000_000.0}
    store.set_judgement(EMPTY_JUDGEMENT)
    store.set_service_blocked_since({})
    assert store.snapshot().services == {}
    assert before.service_blocked_since == {("telegram", "censor"): 1_700_000_000.0}  # kept
