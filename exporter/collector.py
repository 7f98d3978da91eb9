"""The Prometheus view of the store and the scheduler: fresh metric families per scrape.

Rendering is a pure function of immutable inputs (`families()`): a store snapshot, the
scheduler's stats and the reload status. `Collector` only fetches those three per scrape, so a
tuple dropped from the store vanishes from /metrics at the next scrape, and a scrape never
waits on a probe.

Metric names, types and labels are a contract: see docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from exporter import __version__
from exporter.matrix import RESOLVER_CHECK_SERVICE
from exporter.model import LABEL_NAMES, RESULT_SUCCESS
from exporter.scheduler import SchedulerStats
from exporter.store import Histogram, Snapshot, Store
from exporter.verdict import BLOCKED, VERDICTS


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadStatus:
    """The outcome of the last config (re)load."""

    successful: bool
    #: Wall clock (unix seconds) of the last successful load; the startup load counts.
    last_success_timestamp: float


PHASE_LABELS: tuple[str, ...] = (*LABEL_NAMES, "phase")
RESULT_LABELS: tuple[str, ...] = (*LABEL_NAMES, "result")
VERDICT_LABELS: tuple[str, ...] = (*LABEL_NAMES, "verdict")


def _le(bound: float) -> str:
    """A bucket bound as the `le` label value (Go's float formatting, as Prometheus expects)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _histogram_buckets(hist: Histogram) -> list[tuple[str, float]]:
    return [(_le(bound), float(n)) for bound, n in hist.cumulative()]


def families(
    snapshot: Snapshot,
    stats: SchedulerStats,
    reload: ReloadStatus,
    *,
    version: str = __version__,
) -> list[Metric]:
    """Every metric family of one scrape, from immutable inputs."""
    success = GaugeMetricFamily(
        "messaging_probe_success",
        "Whether the last completed probe of the tuple succeeded (1) or failed (0).",
        labels=LABEL_NAMES,
    )
    duration = GaugeMetricFamily(
        "messaging_probe_duration_seconds",
        "Duration of each phase of the last completed probe; only phases that ran.",
        labels=PHASE_LABELS,
    )
    phase_hist = HistogramMetricFamily(
        "messaging_probe_phase_seconds",
        "Durations of the phases of every probe of the tuple.",
        labels=PHASE_LABELS,
    )
    probes = CounterMetricFamily(
        "messaging_probes_total",
        "Completed probes by result: success or the kind of error; "
        "success is always present, error kinds once they occurred.",
        labels=RESULT_LABELS,
    )
    timestamp = GaugeMetricFamily(
        "messaging_probe_timestamp_seconds",
        "Wall clock time the last completed probe of the tuple finished, unix seconds.",
        labels=LABEL_NAMES,
    )
    not_after = GaugeMetricFamily(
        "messaging_tls_cert_not_after_timestamp_seconds",
        "NotAfter of the certificate of the last probe whose TLS handshake completed, "
        "unix seconds.",
        labels=LABEL_NAMES,
    )
    verdict = GaugeMetricFamily(
        "messaging_probe_verdict",
        "Judgement of the tuple in the last round, one-hot over every verdict "
        "(see docs/verdicts.md).",
        labels=VERDICT_LABELS,
    )
    blocked = GaugeMetricFamily(
        "messaging_probe_blocked",
        "1 when the last round judged the tuple blocked "
        f"({', '.join(v.value for v in VERDICTS if v in BLOCKED)}), else 0.",
        labels=LABEL_NAMES,
    )
    throughput = GaugeMetricFamily(
        "messaging_probe_throughput_bytes_per_second",
        "Throughput of the throughput check of the last completed probe: body bytes over the "
        "time from the request sent to the last byte (or to the deadline, when cut).",
        labels=LABEL_NAMES,
    )
    judgement = snapshot.judgement
    networks: set[str] = set()
    for key, series in snapshot.series.items():
        if key.service == RESOLVER_CHECK_SERVICE:
            continue  # interception questions: exported as messaging_resolver_intercepted
        networks.add(key.network)
        labels = list(key.labels())
        finding = judgement.findings.get(key)
        if finding is not None:
            for value in VERDICTS:
                verdict.add_metric([*labels, value.value], 1.0 if value is finding.verdict else 0.0)
            blocked.add_metric(labels, 1.0 if finding.blocked else 0.0)
        obs = series.last
        if obs is not None:
            success.add_metric(labels, 1.0 if obs.success else 0.0)
            for phase, seconds in obs.phases.items():
                duration.add_metric([*labels, phase.value], seconds)
            timestamp.add_metric(labels, obs.finished)
            cert_not_after = obs.cert_not_after
            if cert_not_after is not None:
                not_after.add_metric(labels, cert_not_after)
            if obs.throughput is not None and obs.throughput.bytes_per_second is not None:
                throughput.add_metric(labels, obs.throughput.bytes_per_second)
        for phase, hist in series.phases.items():
            phase_hist.add_metric(
                [*labels, phase.value], buckets=_histogram_buckets(hist), sum_value=hist.sum
            )
        if series.results or obs is not None:
            results = dict(series.results)
            results.setdefault(RESULT_SUCCESS, 0)
            for result in sorted(results, key=lambda r: (r != RESULT_SUCCESS, r)):
                probes.add_metric([*labels, result], float(results[result]))

    network_up = GaugeMetricFamily(
        "messaging_network_up",
        "Whether any canary succeeded on the network in the last round (without canaries: "
        "any probe).",
        labels=("network",),
    )
    for network, up in sorted(judgement.network_up.items()):
        if network in networks:
            network_up.add_metric([network], 1.0 if up else 0.0)
    down_since = GaugeMetricFamily(
        "messaging_network_down_since_timestamp_seconds",
        "Wall clock time of the first round that judged the network down (a shutdown or a "
        "dead uplink), unix seconds; absent while the network is up.",
        labels=("network",),
    )
    for network, since in sorted(snapshot.network_down_since.items()):
        if network in networks:
            down_since.add_metric([network], since)
    resolver_up = GaugeMetricFamily(
        "messaging_resolver_up",
        "Whether the resolver answered a canary question through the network in the last "
        "round (without canaries: any question).",
        labels=("network", "resolver"),
    )
    for (network, resolver), up in sorted(judgement.resolver_up.items()):
        if network in networks:
            resolver_up.add_metric([network, resolver], 1.0 if up else 0.0)
    intercepted = GaugeMetricFamily(
        "messaging_resolver_intercepted",
        "1 when another server answered in the resolver's place on the network: its identity "
        "query got a foreign answer, or an address running no DNS (silent) answered.",
        labels=("network", "resolver"),
    )
    for (network, resolver), flag in sorted(judgement.resolver_intercepted.items()):
        intercepted.add_metric([network, resolver], 1.0 if flag else 0.0)

    build_info = GaugeMetricFamily(
        "messaging_exporter_build_info",
        "Always 1; the version of the exporter as a label.",
        labels=("version",),
    )
    build_info.add_metric([version], 1.0)
    lag_hist = HistogramMetricFamily(
        "messaging_exporter_probe_start_lag_seconds",
        "How late each probe started after its scheduled slot (monotonic clock).",
    )
    lag_hist.add_metric(
        [], buckets=_histogram_buckets(stats.start_lag), sum_value=stats.start_lag.sum
    )
    return [
        success,
        duration,
        phase_hist,
        probes,
        timestamp,
        not_after,
        verdict,
        blocked,
        throughput,
        network_up,
        down_since,
        resolver_up,
        intercepted,
        build_info,
        GaugeMetricFamily(
            "messaging_exporter_config_last_reload_successful",
            "Whether the last configuration load or reload succeeded (1) or failed (0).",
            value=1.0 if reload.successful else 0.0,
        ),
        GaugeMetricFamily(
            "messaging_exporter_config_last_reload_success_timestamp_seconds",
            "Wall clock time of the last successful configuration load, unix seconds.",
            value=reload.last_success_timestamp,
        ),
        GaugeMetricFamily(
            "messaging_exporter_round_lag_seconds",
            "Largest start lag of any probe of the last completed round.",
            value=stats.round_lag_seconds,
        ),
        lag_hist,
        GaugeMetricFamily(
            "messaging_exporter_probes_in_flight",
            "Probes running now.",
            value=float(stats.in_flight),
        ),
        CounterMetricFamily(
            "messaging_exporter_probes_skipped_total",
            "Probe slots skipped because the previous probe of the tuple was still running.",
            value=float(stats.skipped_total),
        ),
        CounterMetricFamily(
            "messaging_exporter_rounds_total",
            "Completed rounds (passes over every tuple of the matrix).",
            value=float(stats.rounds_total),
        ),
        GaugeMetricFamily(
            "messaging_exporter_probe_interval_seconds",
            "The configured interval: every tuple is probed once per interval.",
            value=stats.interval_seconds,
        ),
        GaugeMetricFamily(
            "messaging_exporter_asyncio_tasks",
            "asyncio tasks alive in the exporter's event loop; growth across rounds is a leak.",
            value=float(stats.tasks),
        ),
        GaugeMetricFamily(
            "messaging_exporter_targets",
            "Tuples in the probe matrix (endpoints x networks x resolvers x families).",
            value=float(stats.targets),
        ),
    ]


class Collector:
    """A prometheus_client collector over a store, the scheduler's stats and reload status.

    Register it on your own `CollectorRegistry` (never the global one).
    """

    def __init__(
        self,
        *,
        store: Store,
        scheduler_stats: Callable[[], SchedulerStats],
        reload_status: Callable[[], ReloadStatus],
        version: str = __version__,
    ) -> None:
        self._store = store
        self._stats = scheduler_stats
        self._reload = reload_status
        self._version = version

    def collect(self) -> Iterable[Metric]:
        return families(
            self._store.snapshot(), self._stats(), self._reload(), version=self._version
        )

    def describe(self) -> Iterable[Metric]:
        """The families without samples: lets the registry know our names (`name[]=`)."""
        described: list[Metric] = []
        for family in self.collect():
            family.samples = []
            described.append(family)
        return described
