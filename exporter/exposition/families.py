"""The metric families of one scrape, as prometheus_client objects: a pure function of
immutable inputs (a store snapshot, the scheduler's stats, the reload status). Names, types
and labels are a contract: docs/metrics.md."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from exporter import __version__
from exporter.config.matrix import RESOLVER_CHECK_SERVICE
from exporter.config.model import PhaseHistograms
from exporter.exposition.store import Snapshot
from exporter.model.judgement import BLOCKED, VERDICTS
from exporter.model.observation import (
    ENDPOINT_LABEL_NAMES,
    LABEL_NAMES,
    RESULT_SUCCESS,
    Observation,
    PathOutcome,
)
from exporter.model.stats import Histogram, SchedulerStats


@dataclass(frozen=True, slots=True, kw_only=True)
class ReloadStatus:
    """The outcome of the last config (re)load."""

    successful: bool
    #: Wall clock (unix seconds) of the last successful load; the startup load counts.
    last_success_timestamp: float


PHASE_LABELS: tuple[str, ...] = (*LABEL_NAMES, "phase")
ENDPOINT_PHASE_LABELS: tuple[str, ...] = (*ENDPOINT_LABEL_NAMES, "phase")
RESULT_LABELS: tuple[str, ...] = (*LABEL_NAMES, "result")
VERDICT_LABELS: tuple[str, ...] = (*LABEL_NAMES, "verdict")


def le_text(bound: float) -> str:
    """A bucket bound as the `le` label value (Go's float formatting, as Prometheus expects)."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _histogram_buckets(hist: Histogram) -> list[tuple[str, float]]:
    return [(le_text(bound), float(n)) for bound, n in hist.cumulative()]


@dataclass(frozen=True, slots=True, kw_only=True)
class TupleFamilies:
    """The families with one series per tuple."""

    success: GaugeMetricFamily
    duration: GaugeMetricFamily
    phase_hist: HistogramMetricFamily
    probes: CounterMetricFamily
    timestamp: GaugeMetricFamily
    not_after: GaugeMetricFamily
    verdict: GaugeMetricFamily
    blocked: GaugeMetricFamily
    throughput: GaugeMetricFamily
    tcp_rtt: GaugeMetricFamily
    interference_hops: GaugeMetricFamily

    def all(self) -> list[Metric]:
        """In exposition order."""
        return [getattr(self, name) for name in self.__slots__]


_PHASE_HIST_HELP: dict[PhaseHistograms, str] = {
    PhaseHistograms.TUPLE: "Durations of the phases of every probe of the tuple.",
    PhaseHistograms.ENDPOINT: "Durations of the phases of every probe of the endpoint through "
    "the network, over its resolvers and IP families.",
    PhaseHistograms.NONE: "Durations of the phases of every probe; none kept "
    "(metrics.phase_histograms: none).",
}


def tuple_families(
    phase_histograms: PhaseHistograms = PhaseHistograms.TUPLE,
) -> TupleFamilies:
    """The families with one series per tuple, empty. The phase histograms are per tuple or,
    as `phase_histograms` says, per endpoint and network (labels without resolver and
    family), or absent (the family without samples)."""
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
        _PHASE_HIST_HELP[phase_histograms],
        labels=ENDPOINT_PHASE_LABELS
        if phase_histograms is PhaseHistograms.ENDPOINT
        else PHASE_LABELS,
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
    throughput, tcp_rtt, interference_hops = _path_gauges()
    return TupleFamilies(
        success=success,
        duration=duration,
        phase_hist=phase_hist,
        probes=probes,
        timestamp=timestamp,
        not_after=not_after,
        verdict=verdict,
        blocked=blocked,
        throughput=throughput,
        tcp_rtt=tcp_rtt,
        interference_hops=interference_hops,
    )


def _path_gauges() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    """The per-tuple gauges of what the path did: throughput, handshake RTT, interference."""
    throughput = GaugeMetricFamily(
        "messaging_probe_throughput_bytes_per_second",
        "Throughput of the throughput check of the last completed probe: body bytes over the "
        "time from the request sent to the last byte (or to the deadline, when cut).",
        labels=LABEL_NAMES,
    )
    tcp_rtt = GaugeMetricFamily(
        "messaging_probe_tcp_rtt_seconds",
        "The kernel's round-trip time (TCP_INFO) of the TCP handshake of the last completed "
        "probe: the path alone, without the exporter's own scheduling delay. Absent through "
        "a proxy and when the last probe connected nothing.",
        labels=LABEL_NAMES,
    )
    interference_hops = GaugeMetricFamily(
        "messaging_probe_interference_hops",
        "Hops from the exporter to where localisation put the interference with the last "
        "completed probe (1 = the first router): an answer from a hop before the destination, "
        "or a drop at a hop other traffic passes. Absent when none was found (the probe passed, "
        "the failure was the destination's own, or localisation could not tell); the hop's "
        "address is on /probes.",
        labels=LABEL_NAMES,
    )
    return throughput, tcp_rtt, interference_hops


def interference_hop(obs: Observation) -> int | None:
    """The hop localisation put `obs`'s failing exchange's interference at, if it did."""
    path = obs.path
    if path is None or path.outcome not in (
        PathOutcome.BEFORE_DESTINATION,
        PathOutcome.DROPPED,
    ):
        return None
    return path.hop


def families(
    snapshot: Snapshot,
    stats: SchedulerStats,
    reload: ReloadStatus,
    *,
    version: str = __version__,
) -> list[Metric]:
    """Every metric family of one scrape, from immutable inputs."""
    per_tuple = tuple_families(snapshot.phase_histograms)
    success, duration, phase_hist = per_tuple.success, per_tuple.duration, per_tuple.phase_hist
    probes, timestamp, not_after = per_tuple.probes, per_tuple.timestamp, per_tuple.not_after
    verdict, blocked, throughput = per_tuple.verdict, per_tuple.blocked, per_tuple.throughput
    tcp_rtt, interference = per_tuple.tcp_rtt, per_tuple.interference_hops
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
        obs = None if series.kept is None else series.kept.bare
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
            if obs.tcp_rtt is not None:
                tcp_rtt.add_metric(labels, obs.tcp_rtt)
            hop = interference_hop(obs)
            if hop is not None:
                interference.add_metric(labels, float(hop))
        for phase, hist in series.phases.items():
            phase_hist.add_metric(
                [*labels, phase.value], buckets=_histogram_buckets(hist), sum_value=hist.sum
            )
        if series.results or obs is not None:
            results = dict(series.results)
            results.setdefault(RESULT_SUCCESS, 0)
            for result in sorted(results, key=lambda r: (r != RESULT_SUCCESS, r)):
                probes.add_metric([*labels, result], float(results[result]))
    for endpoint, phases in snapshot.endpoint_phases.items():
        if endpoint.service == RESOLVER_CHECK_SERVICE:
            continue
        for phase, hist in phases.items():
            phase_hist.add_metric(
                [*endpoint.labels(), phase.value],
                buckets=_histogram_buckets(hist),
                sum_value=hist.sum,
            )

    return [*per_tuple.all(), *global_families(snapshot, stats, reload, networks, version=version)]


def global_families(
    snapshot: Snapshot,
    stats: SchedulerStats,
    reload: ReloadStatus,
    networks: set[str],
    *,
    version: str = __version__,
) -> list[Metric]:
    """The families that are not per tuple: networks, services, resolvers and the exporter
    itself."""
    return [
        *network_families(snapshot, networks),
        *service_families(snapshot, networks),
        *resolver_families(snapshot, networks),
        *exporter_families(stats, reload, version=version),
    ]


def _per_network(
    name: str, documentation: str, values: Mapping[str, float], networks: set[str]
) -> Metric:
    """A gauge labelled by network, one sample per network probed, in name order."""
    family = GaugeMetricFamily(name, documentation, labels=("network",))
    for network, value in sorted(values.items()):
        if network in networks:
            family.add_metric([network], value)
    return family


def network_families(snapshot: Snapshot, networks: set[str]) -> list[Metric]:
    """Per network probed: up, set-up error, UDP up, down since when."""
    judgement = snapshot.judgement
    setup = judgement.network_setup
    return [
        _per_network(
            "messaging_network_up",
            "Whether any canary succeeded on the network in the last round (without canaries: "
            "any probe).",
            {n: 1.0 if up else 0.0 for n, up in judgement.network_up.items()},
            networks,
        ),
        _per_network(
            "messaging_network_setup_error",
            "1 when the exporter cannot use the network as configured (its namespace, "
            "interface or source address is gone, or its proxy fails): a set-up error, not a "
            "shutdown.",
            {n: 1.0 if n in setup else 0.0 for n in set(judgement.network_up) | set(setup)},
            networks,
        ),
        _per_network(
            "messaging_network_udp_up",
            "Whether any UDP canary (a public STUN server) answered on the network in the last "
            "round; 0: no UDP works there, so no call can (absent without UDP canaries).",
            {n: 1.0 if up else 0.0 for n, up in judgement.network_udp.items()},
            networks,
        ),
        _per_network(
            "messaging_network_down_since_timestamp_seconds",
            "Wall clock time of the first round that judged the network down (a shutdown or a "
            "dead uplink), unix seconds; absent while the network is up.",
            snapshot.network_down_since,
            networks,
        ),
    ]


def resolver_families(snapshot: Snapshot, networks: set[str]) -> list[Metric]:
    """Per network and resolver: up, and intercepted."""
    judgement = snapshot.judgement
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
    return [resolver_up, intercepted]


def exporter_families(
    stats: SchedulerStats, reload: ReloadStatus, *, version: str = __version__
) -> list[Metric]:
    """The exporter's own: build, reloads, the scheduler's figures."""
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


def service_families(
    snapshot: Snapshot, networks: set[str]
) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    """The service-level answer (exporter.judge.summary): per service and network judged, blocked
    or not; each blocking method present now; since when it has been blocked. Labels are
    config names and verdict values only (bounded)."""
    blocked = GaugeMetricFamily(
        "messaging_service_blocked",
        "1 when any tuple of the service on the network was judged blocked in the last round, "
        "else 0; one series per service and network judged (not the canaries).",
        labels=("service", "network"),
    )
    method = GaugeMetricFamily(
        "messaging_service_blocked_method",
        "1 for each blocking verdict (method) of the service's tuples on the network in the "
        "last round; absent for the methods not seen.",
        labels=("service", "network", "method"),
    )
    since = GaugeMetricFamily(
        "messaging_service_blocked_since_timestamp_seconds",
        "Wall clock time of the first round that found the service blocked on the network, "
        "unix seconds; absent while it is not blocked.",
        labels=("service", "network"),
    )
    for (service, network), state in snapshot.services.items():
        if network not in networks:
            continue
        blocked.add_metric([service, network], 1.0 if state.blocked else 0.0)
        for verdict in state.methods:
            method.add_metric([service, network, verdict.value], 1.0)
    for (service, network), started in snapshot.service_blocked_since.items():
        cell = snapshot.services.get((service, network))
        if network in networks and cell is not None and cell.blocked:
            since.add_metric([service, network], started)
    return blocked, method, since


#: prometheus_client's renderer of a registry in one exposition format.
