"""The store: per tuple, the last observation, counters of results and histograms of phases.

Phase histograms are kept per tuple, per endpoint and network, or not at all, as
`metrics.phase_histograms` says (`Store.set_phase_histograms`).

Plain Python, not prometheus_client metric objects: the collector renders a snapshot on every
scrape, and a tuple removed by a reload must vanish from /metrics, which is simplest when the
series are just data.

Copy-on-write: the value kept per tuple (`Series`) is immutable and `record()` replaces it
whole, so `snapshot()` is a shallow copy of one dict. A scrape never waits on a probe and a
snapshot never changes under its reader. Everything runs on one event loop; no locks.

Invariant: a series exists for a key once a probe of it was recorded, and until `retain()`
drops it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from exporter.config.model import PhaseHistograms
from exporter.exposition.compact import Kept
from exporter.model.judgement import EMPTY_JUDGEMENT, Cell, Judgement, ServiceState
from exporter.model.observation import EndpointKey, Observation, Phase, TupleKey
from exporter.model.stats import Histogram

#: Upper bounds (seconds) of the phase histograms: from 5 ms (a LAN or a nearby anycast
#: node) to 30 s (beyond any sane probe timeout); see docs/metrics.md for the reasoning.
PHASE_BUCKETS: tuple[float, ...] = (
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
)


#: One empty read-only mapping shared by every series that has nothing in a field (no copy
#: can change it): at 10,000 tuples, a few hundred bytes each is megabytes.
_EMPTY: Mapping[Any, Any] = MappingProxyType({})


def _empty_results() -> Mapping[str, int]:
    return _EMPTY


def _empty_phases() -> Mapping[Phase, Histogram]:
    return _EMPTY


def _empty_endpoint_phases() -> Mapping[EndpointKey, Mapping[Phase, Histogram]]:
    return _EMPTY


def _empty_since() -> Mapping[str, float]:
    return _EMPTY


def _empty_services() -> Mapping[Cell, ServiceState]:
    return _EMPTY


def _empty_blocked_since() -> Mapping[Cell, float]:
    return _EMPTY


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """Everything kept for one tuple. Immutable; the store swaps in a new one per change."""

    key: TupleKey
    #: The last completed probe, as kept (exporter.exposition.compact).
    kept: Kept | None = None
    #: Probes per result (`success` or an ErrorKind value); only results that occurred.
    results: Mapping[str, int] = field(default_factory=_empty_results)
    #: Duration histograms of the phases that ran at least once; empty unless histograms
    #: are kept per tuple.
    phases: Mapping[Phase, Histogram] = field(default_factory=_empty_phases)

    @property
    def last(self) -> Observation | None:
        """The last completed probe, whole (rebuilt at each read: keep it to reuse it)."""
        return None if self.kept is None else self.kept.observation()

    @property
    def judged(self) -> Observation | None:
        """The last completed probe as a round's judgement reads it: whole but for its log
        lines (rebuilt at each read)."""
        return None if self.kept is None else self.kept.observation(log=False)

    @property
    def finished(self) -> float | None:
        """When the last completed probe finished (unix seconds), without rebuilding it."""
        return None if self.kept is None else self.kept.bare.finished


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """An immutable view of the store at one instant, keyed and ordered by TupleKey."""

    series: Mapping[TupleKey, Series]
    #: The judgement of the last completed round (verdicts, network and resolver health).
    judgement: Judgement = EMPTY_JUDGEMENT
    #: Per network judged down: unix time of the first round of the outage (exporter.judge.history).
    network_down_since: Mapping[str, float] = field(default_factory=_empty_since)
    #: Per (service, network) of `judgement`, sorted: blocked or not, and by which methods
    #: (exporter.judge.summary); always made from `judgement`, so the two agree.
    services: Mapping[Cell, ServiceState] = field(default_factory=_empty_services)
    #: Per (service, network) blocked now: unix time of the first round of the block
    #: (exporter.judge.history.Blocks).
    service_blocked_since: Mapping[Cell, float] = field(default_factory=_empty_blocked_since)
    #: What the phase histograms cover; per endpoint, they are in `endpoint_phases`.
    phase_histograms: PhaseHistograms = PhaseHistograms.TUPLE
    #: Per endpoint and network, in key order: the duration histograms of the phases of
    #: every probe of its tuples. Empty unless histograms are kept per endpoint.
    endpoint_phases: Mapping[EndpointKey, Mapping[Phase, Histogram]] = field(
        default_factory=_empty_endpoint_phases
    )
    #: Changes whenever keys come or go (of `series` or `endpoint_phases`) or a series
    #: changes without a listener hearing of it (`Store.set_phase_histograms`): a view kept
    #: current by `Store.subscribe` is complete while it stays the same.
    generation: int = 0

    def __len__(self) -> int:
        return len(self.series)

    def get(self, key: TupleKey) -> Series | None:
        return self.series.get(key)


class Store:
    """Per-tuple results of the probes; see the module docstring for the invariants."""

    __slots__ = (
        "_blocked_since",
        "_buckets",
        "_down_since",
        "_endpoints",
        "_endpoints_sorted",
        "_generation",
        "_judgement",
        "_listeners",
        "_phase_histograms",
        "_series",
        "_services",
        "_sorted",
    )

    def __init__(
        self,
        *,
        buckets: tuple[float, ...] = PHASE_BUCKETS,
        phase_histograms: PhaseHistograms = PhaseHistograms.TUPLE,
    ) -> None:
        if list(buckets) != sorted(set(buckets)):
            raise ValueError("histogram buckets must be strictly increasing")
        self._buckets = buckets
        self._phase_histograms = phase_histograms
        #: Histograms per endpoint and network (`PhaseHistograms.ENDPOINT` only); in key
        #: order whenever `_endpoints_sorted`.
        self._endpoints: dict[EndpointKey, Mapping[Phase, Histogram]] = {}
        self._endpoints_sorted = True
        self._generation = 0
        #: In key order whenever `_sorted`: a new key unsorts it, `snapshot()` sorts it again.
        self._series: dict[TupleKey, Series] = {}
        self._sorted = True
        self._judgement = EMPTY_JUDGEMENT
        self._down_since: Mapping[str, float] = _empty_since()
        self._services: Mapping[Cell, ServiceState] = _empty_services()
        self._blocked_since: Mapping[Cell, float] = _empty_blocked_since()
        self._listeners: list[Callable[[Series], None]] = []

    def subscribe(self, listener: Callable[[Series], None]) -> None:
        """Call `listener` with the tuple's new series after each `record()`, on the caller's
        stack: lets a view keep what it derives current as probes finish (the collector's kept
        text) instead of rebuilding it all when asked (`endpoint_phases()` gives the tuple's
        endpoint histograms, when kept). A listener must not raise."""
        self._listeners.append(listener)

    def record(self, obs: Observation) -> None:
        """Count one finished probe and make it the tuple's last observation."""
        old = self._series.get(obs.key) or self._new(obs.key)
        results = dict(old.results)
        results[obs.result] = results.get(obs.result, 0) + 1
        phases = old.phases
        if self._phase_histograms is PhaseHistograms.TUPLE:
            phases = self._observed(phases, obs)
        elif self._phase_histograms is PhaseHistograms.ENDPOINT:
            endpoint = EndpointKey.of(obs.key)
            kept = self._endpoints.get(endpoint)
            if kept is None:
                self._endpoints_sorted = False
                self._generation += 1
            self._endpoints[endpoint] = self._observed(kept or _empty_phases(), obs)
        series = self._series[obs.key] = replace(
            old, kept=Kept.of(obs), results=MappingProxyType(results), phases=phases
        )
        for listener in self._listeners:
            listener(series)

    def _observed(
        self, phases: Mapping[Phase, Histogram], obs: Observation
    ) -> Mapping[Phase, Histogram]:
        """`phases` with the observation's phase durations added, in phase order."""
        out = dict(phases)
        for phase, seconds in obs.phases.items():
            hist = out.get(phase) or Histogram.empty(self._buckets)
            out[phase] = hist.observe(max(0.0, seconds))
        return MappingProxyType(dict(sorted(out.items(), key=_phase_order)))

    def endpoint_phases(self, key: TupleKey) -> Mapping[Phase, Histogram] | None:
        """The histograms of the tuple's endpoint and network, when kept per endpoint."""
        return self._endpoints.get(EndpointKey.of(key))

    def set_phase_histograms(self, phase_histograms: PhaseHistograms) -> None:
        """Keep the phase histograms as `phase_histograms` says from now on. A change drops
        every histogram kept so far: they start again from zero under the new labels (which
        Prometheus takes as new series)."""
        if phase_histograms is self._phase_histograms:
            return
        self._phase_histograms = phase_histograms
        self._endpoints.clear()
        self._endpoints_sorted = True
        self._generation += 1
        for key, series in self._series.items():
            if series.phases:
                self._series[key] = replace(series, phases=_empty_phases())

    def set_judgement(self, judgement: Judgement) -> None:
        """Replace the judgement of the last round (made by `verdict.judge()`), with the
        service-level states it carries."""
        self._judgement = judgement
        self._services = judgement.services

    @property
    def services(self) -> Mapping[Cell, ServiceState]:
        """The service-level states of the last judgement."""
        return self._services

    def set_network_down_since(self, down_since: Mapping[str, float]) -> None:
        """Replace the outages in progress: network -> unix time it was first judged down."""
        self._down_since = MappingProxyType(dict(down_since))

    def set_service_blocked_since(self, blocked_since: Mapping[Cell, float]) -> None:
        """Replace the blocks in progress: (service, network) -> unix time of the first
        round that found the service blocked there (`history.Blocks.blocked_since`)."""
        self._blocked_since = MappingProxyType(dict(blocked_since))

    def retain(self, keys: Iterable[TupleKey]) -> None:
        """Drop every series whose key is not in `keys` (tuples removed by a reload)."""
        keep = set(keys)
        gone = [k for k in self._series if k not in keep]
        for key in gone:
            del self._series[key]
        endpoints = {EndpointKey.of(k) for k in keep}
        gone_endpoints = [e for e in self._endpoints if e not in endpoints]
        for endpoint in gone_endpoints:
            del self._endpoints[endpoint]
        if gone or gone_endpoints:
            self._generation += 1

    def _new(self, key: TupleKey) -> Series:
        self._sorted = False
        self._generation += 1
        return Series(key=key)

    def snapshot(self) -> Snapshot:
        """The current state; later `record()`s do not change it. O(number of tuples): a copy,
        sorted again only after new keys (sorting 10,000 keys costs ~60 ms)."""
        if not self._sorted:
            self._series = dict(sorted(self._series.items()))
            self._sorted = True
        if not self._endpoints_sorted:
            self._endpoints = dict(sorted(self._endpoints.items()))
            self._endpoints_sorted = True
        return Snapshot(
            series=MappingProxyType(dict(self._series)),
            judgement=self._judgement,
            network_down_since=self._down_since,
            services=self._services,
            service_blocked_since=self._blocked_since,
            phase_histograms=self._phase_histograms,
            endpoint_phases=MappingProxyType(dict(self._endpoints)),
            generation=self._generation,
        )

    def __len__(self) -> int:
        return len(self._series)


_PHASE_INDEX = {p: i for i, p in enumerate(Phase)}


def _phase_order(item: tuple[Phase, Histogram]) -> int:
    return _PHASE_INDEX[item[0]]
