"""The collector: names, types and labels are the contract (docs/metrics.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from exporter import __version__
from exporter.config.model import PhaseHistograms
from exporter.exposition.collector import Collector, ReloadStatus, negotiate
from exporter.exposition.store import Store
from exporter.model.observation import (
    ErrorKind,
    Observation,
    PathObservation,
    PathOutcome,
    Phase,
    TupleKey,
)
from exporter.model.stats import Histogram, SchedulerStats
from exporter.runtime.scheduler import LAG_BUCKETS
from tests.fakes.observations import judged
from tests.fakes.prober import CERT_NOT_AFTER, make_observation

KEY = TupleKey(service="telegram", endpoint="web", network="direct", resolver="google", family=4)
LABELS = {
    "service": "telegram",
    "endpoint": "web",
    "network": "direct",
    "resolver": "google",
    "family": "4",
}


def stats(**overrides: object) -> SchedulerStats:
    values: dict[str, object] = {
        "ready": True,
        "targets": 3,
        "in_flight": 2,
        "skipped_total": 5,
        "rounds_total": 7,
        "round_lag_seconds": 0.25,
        "start_lag": Histogram.empty(LAG_BUCKETS).observe(0.002).observe(0.3),
    }
    values.update(overrides)
    return SchedulerStats(**values)  # type: ignore[arg-type]  # test helper


def setup(store: Store, reload: ReloadStatus | None = None) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    status = reload or ReloadStatus(successful=True, last_success_timestamp=1_700_000_000.0)
    registry.register(Collector(store=store, scheduler_stats=stats, reload_status=lambda: status))
    return registry


def registered(store: Store) -> tuple[Collector, CollectorRegistry]:
    """A collector over `store` and a registry holding it."""
    status = ReloadStatus(successful=True, last_success_timestamp=1_700_000_000.0)
    collector = Collector(store=store, scheduler_stats=stats, reload_status=lambda: status)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return collector, registry


def test_per_tuple_metrics() -> None:
    store = Store()
    store.record(make_observation(KEY, total=0.2, started=1_700_000_100.0))
    r = setup(store)
    assert r.get_sample_value("messaging_probe_success", LABELS) == 1.0
    assert (
        r.get_sample_value("messaging_probe_duration_seconds", {**LABELS, "phase": "total"}) == 0.2
    )
    for phase in ("dns", "connect", "tls", "http"):
        assert r.get_sample_value("messaging_probe_duration_seconds", {**LABELS, "phase": phase})
    assert (
        r.get_sample_value(
            "messaging_probe_phase_seconds_bucket", {**LABELS, "phase": "total", "le": "0.25"}
        )
        == 1.0
    )
    assert (
        r.get_sample_value(
            "messaging_probe_phase_seconds_bucket", {**LABELS, "phase": "total", "le": "0.1"}
        )
        == 0.0
    )
    assert (
        r.get_sample_value(
            "messaging_probe_phase_seconds_bucket", {**LABELS, "phase": "total", "le": "+Inf"}
        )
        == 1.0
    )
    assert r.get_sample_value("messaging_probe_phase_seconds_count", {**LABELS, "phase": "total"})
    assert r.get_sample_value("messaging_probes_total", {**LABELS, "result": "success"}) == 1.0
    assert r.get_sample_value("messaging_probe_timestamp_seconds", LABELS) == 1_700_000_100.2
    assert (
        r.get_sample_value("messaging_tls_cert_not_after_timestamp_seconds", LABELS)
        == CERT_NOT_AFTER
    )
    # the kernel's handshake RTT of the connection that counted
    assert r.get_sample_value("messaging_probe_tcp_rtt_seconds", LABELS) == 0.2 * 0.1


def localised(obs: Observation, outcome: PathOutcome = PathOutcome.DROPPED) -> Observation:
    """`obs` with localisation's finding: `outcome` at hop 2 of a 4-hop path."""
    return dataclasses.replace(
        obs,
        path=PathObservation(
            phase=Phase.CONNECT,
            outcome=outcome,
            distance=4,
            hop=2,
            answer="silence",
            routers=("10.0.0.1", "10.0.1.1", "10.0.2.1"),
            detail="silence from TTL 2",
        ),
    )


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (PathOutcome.DROPPED, 2.0),
        (PathOutcome.BEFORE_DESTINATION, 2.0),
        (PathOutcome.AT_DESTINATION, None),
        (PathOutcome.INCONCLUSIVE, None),
    ],
)
def test_the_interfering_hop_is_a_number_never_an_address(
    outcome: PathOutcome, expected: float | None
) -> None:
    store = Store()
    store.record(localised(make_observation(KEY, error=ErrorKind.TIMEOUT), outcome))
    r = setup(store)
    assert r.get_sample_value("messaging_probe_interference_hops", LABELS) == expected
    text = generate_latest(r).decode()
    assert "10.0.1.1" not in text
    store.record(make_observation(KEY))  # passed, not localised: gone
    assert r.get_sample_value("messaging_probe_interference_hops", LABELS) is None


def test_phase_histograms_per_endpoint_leave_out_resolver_and_family() -> None:
    from exporter.config.matrix import RESOLVER_CHECK_SERVICE

    store = Store(phase_histograms=PhaseHistograms.ENDPOINT)
    r = setup(store)
    v6 = TupleKey(service="telegram", endpoint="web", network="direct", resolver="q", family=6)
    check = TupleKey(
        service=RESOLVER_CHECK_SERVICE, endpoint="q", network="direct", resolver="q", family=4
    )
    store.record(make_observation(KEY, total=0.2))
    store.record(make_observation(v6, total=3.0))
    store.record(make_observation(check))
    per_endpoint = {"service": "telegram", "endpoint": "web", "network": "direct"}
    total = {**per_endpoint, "phase": "total"}
    assert r.get_sample_value("messaging_probe_phase_seconds_count", total) == 2.0
    assert r.get_sample_value("messaging_probe_phase_seconds_sum", total) == pytest.approx(3.2)
    assert r.get_sample_value("messaging_probe_phase_seconds_bucket", {**total, "le": "0.25"}) == 1
    assert (
        r.get_sample_value("messaging_probe_phase_seconds_count", {**LABELS, "phase": "total"})
        is None
    )
    # The rest stays per tuple.
    assert (
        r.get_sample_value("messaging_probe_duration_seconds", {**LABELS, "phase": "total"}) == 0.2
    )
    hist = next(m for m in r.collect() if m.name == "messaging_probe_phase_seconds")
    assert {s.labels["service"] for s in hist.samples} == {"telegram"}  # no interception checks
    assert all("resolver" not in s.labels and "family" not in s.labels for s in hist.samples)


def test_no_phase_histograms_with_none() -> None:
    store = Store(phase_histograms=PhaseHistograms.NONE)
    r = setup(store)
    store.record(make_observation(KEY, total=0.2))
    hist = next(m for m in r.collect() if m.name == "messaging_probe_phase_seconds")
    assert hist.samples == []
    assert (
        r.get_sample_value("messaging_probe_duration_seconds", {**LABELS, "phase": "total"}) == 0.2
    )


def test_failed_probe() -> None:
    store = Store()
    store.record(make_observation(KEY))
    store.record(make_observation(KEY, error=ErrorKind.RESET))
    r = setup(store)
    assert r.get_sample_value("messaging_probe_success", LABELS) == 0.0
    assert r.get_sample_value("messaging_probes_total", {**LABELS, "result": "reset"}) == 1.0
    assert r.get_sample_value("messaging_probes_total", {**LABELS, "result": "success"}) == 1.0
    # only results that occurred (besides success)
    assert r.get_sample_value("messaging_probes_total", {**LABELS, "result": "timeout"}) is None
    # phases that did not run have no last-duration gauge, and no certificate expiry
    assert (
        r.get_sample_value("messaging_probe_duration_seconds", {**LABELS, "phase": "tls"}) is None
    )
    assert r.get_sample_value("messaging_tls_cert_not_after_timestamp_seconds", LABELS) is None
    assert r.get_sample_value("messaging_probe_tcp_rtt_seconds", LABELS) is None
    # ... but the histogram of TLS keeps the earlier probe
    assert (
        r.get_sample_value("messaging_probe_phase_seconds_count", {**LABELS, "phase": "tls"}) == 1.0
    )


def test_success_counter_is_present_from_the_first_failure() -> None:
    store = Store()
    store.record(make_observation(KEY, error=ErrorKind.TIMEOUT))
    r = setup(store)
    assert r.get_sample_value("messaging_probes_total", {**LABELS, "result": "success"}) == 0.0


def test_self_metrics() -> None:
    r = setup(Store(), ReloadStatus(successful=False, last_success_timestamp=1_650_000_000.0))
    assert r.get_sample_value("messaging_exporter_build_info", {"version": __version__}) == 1.0
    assert r.get_sample_value("messaging_exporter_config_last_reload_successful") == 0.0
    assert (
        r.get_sample_value("messaging_exporter_config_last_reload_success_timestamp_seconds")
        == 1_650_000_000.0
    )
    assert r.get_sample_value("messaging_exporter_round_lag_seconds") == 0.25
    assert r.get_sample_value("messaging_exporter_probes_in_flight") == 2.0
    assert r.get_sample_value("messaging_exporter_probes_skipped_total") == 5.0
    assert r.get_sample_value("messaging_exporter_rounds_total") == 7.0
    assert r.get_sample_value("messaging_exporter_targets") == 3.0
    assert r.get_sample_value("messaging_exporter_probe_start_lag_seconds_count") == 2.0
    assert (
        r.get_sample_value("messaging_exporter_probe_start_lag_seconds_bucket", {"le": "0.005"})
        == 1.0
    )
    assert r.get_sample_value("up") is None


def test_removed_tuples_vanish_at_the_next_scrape() -> None:
    store = Store()
    other = TupleKey(service="signal", endpoint="chat", network="direct", resolver="none", family=6)
    store.record(make_observation(KEY))
    store.record(make_observation(other))
    r = setup(store)
    assert b'endpoint="chat"' in generate_latest(r)
    store.retain([KEY])
    text = generate_latest(r)
    assert b'endpoint="chat"' not in text
    assert b'endpoint="web"' in text


def test_exposition_formats() -> None:
    store = Store()
    store.record(make_observation(KEY))
    r = setup(store)
    text = generate_latest(r).decode()
    assert "# TYPE messaging_probes_total counter" in text
    assert "# TYPE messaging_probe_phase_seconds histogram" in text
    assert "# TYPE messaging_exporter_build_info gauge" in text
    generate: Callable[[CollectorRegistry], bytes] = openmetrics.generate_latest  # untyped upstream
    om = generate(r).decode()
    assert "# TYPE messaging_probes counter" in om
    assert om.endswith("# EOF\n")


def test_restricted_scrape_by_name() -> None:
    store = Store()
    store.record(make_observation(KEY))
    r = setup(store)
    restricted = r.restricted_registry(["messaging_probe_success"])
    text = generate_latest(restricted).decode()
    assert "messaging_probe_success{" in text
    assert "messaging_probes_total" not in text


def test_no_forbidden_labels() -> None:
    store = Store()
    store.record(make_observation(KEY, error=ErrorKind.TIMEOUT))
    store.record(make_observation(KEY))
    r = setup(store)
    allowed = {"service", "endpoint", "network", "resolver", "family", "phase", "result", "le"}
    allowed |= {"version"}
    for family in r.collect():
        for sample in family.samples:
            assert set(sample.labels) <= allowed, sample
            assert not sample.name.endswith("_total") or family.type == "counter"


def test_verdict_metrics_follow_the_judgement() -> None:
    from types import MappingProxyType

    from exporter.model.judgement import VERDICTS, Finding, Judgement, Verdict

    blocked_key = TupleKey(
        service="telegram", endpoint="web", network="censor", resolver="google", family=4
    )
    check_key = TupleKey(
        service="_resolver", endpoint="silent", network="censor", resolver="nobody", family=4
    )
    store = Store()
    for k in (KEY, blocked_key, check_key):
        store.record(make_observation(k))
    store.set_judgement(
        Judgement(
            findings=MappingProxyType(
                {
                    KEY: Finding(verdict=Verdict.OK, reason="fine"),
                    blocked_key: Finding(verdict=Verdict.TLS_BLOCKED, reason="reset"),
                }
            ),
            network_up=MappingProxyType({"direct": True, "censor": True, "gone": False}),
            resolver_up=MappingProxyType({("censor", "google"): True}),
            resolver_intercepted=MappingProxyType({("censor", "nobody"): True}),
        )
    )
    r = setup(store)
    blocked_labels = {**LABELS, "network": "censor"}
    for verdict in VERDICTS:
        expected = 1.0 if verdict is Verdict.TLS_BLOCKED else 0.0
        value = r.get_sample_value(
            "messaging_probe_verdict", {**blocked_labels, "verdict": verdict.value}
        )
        assert value == expected, verdict
    assert r.get_sample_value("messaging_probe_blocked", blocked_labels) == 1.0
    assert r.get_sample_value("messaging_probe_blocked", LABELS) == 0.0
    assert r.get_sample_value("messaging_probe_verdict", {**LABELS, "verdict": "ok"}) == 1.0
    assert r.get_sample_value("messaging_network_up", {"network": "censor"}) == 1.0
    # a network no tuple uses any more (removed by a reload) is not exported
    assert r.get_sample_value("messaging_network_up", {"network": "gone"}) is None
    assert (
        r.get_sample_value("messaging_resolver_up", {"network": "censor", "resolver": "google"})
        == 1.0
    )
    assert (
        r.get_sample_value(
            "messaging_resolver_intercepted", {"network": "censor", "resolver": "nobody"}
        )
        == 1.0
    )
    # resolver checks are not probe series
    check_labels = dict(zip(LABELS, check_key.labels(), strict=True))
    assert r.get_sample_value("messaging_probe_success", check_labels) is None
    assert r.get_sample_value("messaging_probe_success", blocked_labels) == 1.0


def test_service_metrics_answer_per_service_and_network() -> None:
    """messaging_service_blocked{service,network} for each service and network judged (not
    the canaries nor the resolver checks), one messaging_service_blocked_method per blocking
    verdict present now, and the start of each block in progress."""

    from exporter.model.judgement import Finding, Verdict

    def k(service: str, network: str, endpoint: str = "web", resolver: str = "google") -> TupleKey:
        return TupleKey(
            service=service, endpoint=endpoint, network=network, resolver=resolver, family=4
        )

    verdicts = {
        k("telegram", "censor"): Verdict.TLS_BLOCKED,
        k("telegram", "censor", "dc"): Verdict.TCP_BLOCKED,
        k("telegram", "censor", resolver="isp"): Verdict.TLS_BLOCKED,
        k("telegram", "direct"): Verdict.OK,
        k("signal", "censor"): Verdict.DOWN,
        k("canary", "censor", "example"): Verdict.HTTP_BLOCKPAGE,
        k("_resolver", "censor", "silent", "nobody"): Verdict.DNS_TAMPERED,
    }
    store = Store()
    for key in verdicts:
        store.record(make_observation(key))
    findings = {key: Finding(verdict=v, reason="") for key, v in verdicts.items()}
    store.set_judgement(judged(findings))
    store.set_service_blocked_since(
        {("telegram", "censor"): 1_700_000_000.0, ("signal", "censor"): 1_600_000_000.0}
    )
    r = setup(store)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in r.collect()
        if family.name.startswith("messaging_service_")
        for sample in family.samples
    }
    censor = (("network", "censor"), ("service", "telegram"))
    assert samples == {
        ("messaging_service_blocked", censor): 1.0,
        ("messaging_service_blocked", (("network", "direct"), ("service", "telegram"))): 0.0,
        ("messaging_service_blocked", (("network", "censor"), ("service", "signal"))): 0.0,
        ("messaging_service_blocked_method", (("method", "tcp_blocked"), *censor)): 1.0,
        ("messaging_service_blocked_method", (("method", "tls_blocked"), *censor)): 1.0,
        # only while blocked now: signal's stale start is not exported
        ("messaging_service_blocked_since_timestamp_seconds", censor): 1_700_000_000.0,
    }
    text = generate_latest(r).decode()
    assert "# TYPE messaging_service_blocked gauge" in text
    assert "# TYPE messaging_service_blocked_method gauge" in text
    assert "# TYPE messaging_service_blocked_since_timestamp_seconds gauge" in text
    # a reload that removed a network drops its series
    store.retain([key for key in verdicts if key.network == "direct"])
    assert r.get_sample_value("messaging_service_blocked", dict(censor)) is None


#: What a Prometheus server (2.x, Debian's 2.42 included) sends: OpenMetrics first.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.mark.parametrize("expected", [False, True], ids=["unexpected", "expected"])
@pytest.mark.parametrize("phase_histograms", list(PhaseHistograms))
@pytest.mark.parametrize(
    "accept",
    [
        "",
        "text/plain;version=0.0.4",
        PROMETHEUS_ACCEPT,
        "application/openmetrics-text",
        "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    ],
)
def test_fast_text_is_byte_for_byte_prometheus_clients_across_changes(
    accept: str, phase_histograms: PhaseHistograms, expected: bool
) -> None:
    """`Collector.text()` keeps each tuple's text between scrapes; whatever changed (a new
    observation, a failure, a judgement, a removed tuple, what the phase histograms cover),
    it must equal what prometheus_client renders from `collect()` in the format it would
    choose for the Accept header, scrape after scrape. `expected`: the collector was told
    some of the keys ahead (a matrix's, `Collector.expect`), one of them never probed, the
    others not at all (placed by a scrape)."""
    from types import MappingProxyType

    from exporter.model.judgement import Finding, Judgement, Verdict

    store = Store(phase_histograms=phase_histograms)
    collector, registry = registered(store)
    odd = TupleKey(service='we"ird\\', endpoint="a\nb", network="n", resolver="r", family=6)
    other = TupleKey(service="signal", endpoint="chat", network="direct", resolver="g", family=4)
    sibling = TupleKey(service="telegram", endpoint="web", network="direct", resolver="q", family=6)

    chosen, fast = negotiate(accept)
    assert fast
    never = TupleKey(service="aaa", endpoint="first", network="direct", resolver="g", family=4)
    if expected:
        collector.expect([odd, never, KEY])

    def same() -> str:
        text = collector.text(chosen)
        assert text == chosen.encoder(registry)
        return text.decode()

    assert "messaging_probe_success{" not in same()  # empty store
    store.record(make_observation(KEY))
    store.record(make_observation(odd, total=1e-7))
    store.record(make_observation(sibling, total=2.0))
    first = same()
    assert 'service="we\\"ird\\\\"' in first
    assert same() == first  # nothing changed: the kept text
    store.record(localised(make_observation(KEY, error=ErrorKind.TIMEOUT, started=1_700_000_060.0)))
    store.record(make_observation(other, total=12345678.5))
    second = same()
    assert second != first
    assert "messaging_probe_interference_hops{" in second
    assert 'messaging_probes_total{endpoint="web",family="4",network="direct",' in second

    def judge(verdicts: dict[TupleKey, Verdict], reason: str) -> None:
        findings = {key: Finding(verdict=v, reason=reason) for key, v in verdicts.items()}
        store.set_judgement(
            Judgement(
                findings=MappingProxyType(findings),
                network_up=MappingProxyType({"direct": True, "n": False}),
                resolver_up=MappingProxyType({}),
                resolver_intercepted=MappingProxyType({}),
            )
        )

    judge({KEY: Verdict.OK, odd: Verdict.TLS_BLOCKED}, "the first round")
    judged = same()
    assert "messaging_probe_verdict{" in judged
    judge({KEY: Verdict.OK, odd: Verdict.TLS_BLOCKED}, "a new round, the same verdicts")
    assert same() == judged
    judge({KEY: Verdict.DNS_TAMPERED, odd: Verdict.TLS_BLOCKED}, "a new verdict")
    assert same() != judged
    judge({odd: Verdict.TLS_BLOCKED}, "a round that did not judge KEY")
    assert 'messaging_probe_blocked{endpoint="web",family="4"' not in same()
    judge({KEY: Verdict.DNS_TAMPERED, odd: Verdict.TLS_BLOCKED}, "judged again")
    assert 'messaging_probe_blocked{endpoint="web",family="4"' in same()
    before = same()
    store.record(make_observation(KEY, started=1_700_000_120.0))
    assert same() != before
    store.retain([other, sibling])
    third = same()
    assert 'endpoint="a\\nb"' not in third
    assert 'endpoint="chat"' in third
    for later in [p for p in PhaseHistograms if p is not phase_histograms]:  # by a reload
        store.set_phase_histograms(later)
        assert "messaging_probe_phase_seconds_bucket{" not in same()
        store.record(make_observation(sibling, started=1_700_000_180.0))
        assert ("messaging_probe_phase_seconds_bucket{" in same()) is (
            later is not PhaseHistograms.NONE
        )
        store.set_phase_histograms(phase_histograms)
        same()


async def test_metrics_handler_streams_text_and_gzip_and_falls_back_for_openmetrics() -> None:
    import gzip

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from exporter.exposition.collector import metrics_handler

    store = Store()
    for i in range(100):
        store.record(make_observation(TupleKey(**{**LABELS, "endpoint": f"e{i}", "family": 4})))
    collector, registry = registered(store)
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(collector, registry))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert "Content-Encoding" not in resp.headers
        assert await resp.read() == generate_latest(registry)
        resp = await client.get(
            "/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False
        )
        assert resp.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(await resp.read()) == generate_latest(registry)
        generate_om: Callable[[CollectorRegistry], bytes] = openmetrics.generate_latest
        resp = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert await resp.read() == generate_om(registry)
        # Formats the exposition does not render itself go through prometheus_client.
        resp = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=2.0.0"}
        )
        assert resp.headers["Content-Type"].startswith(
            "application/openmetrics-text; version=2.0.0"
        )
        assert (await resp.text()).endswith("# EOF\n")
        resp = await client.get("/metrics", params={"name[]": "messaging_probe_success"})
        text = await resp.text()
        assert "messaging_probe_success{" in text
        assert "messaging_probes_total" not in text


async def test_a_prometheus_scrape_takes_the_kept_text_not_prometheus_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Prometheus asks for OpenMetrics first: that scrape must be rendered from the kept text
    (prometheus_client's `collect()` path costs seconds at 10,000 tuples, on the loop), gzip
    included, and equal what prometheus_client would send."""
    import gzip

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from exporter.exposition.collector import metrics_handler

    store = Store()
    for i in range(20):
        store.record(make_observation(TupleKey(**{**LABELS, "endpoint": f"e{i}", "family": 4})))
    collector, registry = registered(store)
    generate_om: Callable[[CollectorRegistry], bytes] = openmetrics.generate_latest
    expected = generate_om(registry)

    def refuse() -> None:
        raise AssertionError("collect() called: the scrape went through prometheus_client")

    monkeypatch.setattr(collector, "collect", refuse)
    app = web.Application()
    app.router.add_get("/metrics", metrics_handler(collector, registry))
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(
            "/metrics",
            headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"},
            auto_decompress=False,
        )
        assert resp.status == 200
        assert resp.headers["Content-Type"] == negotiate(PROMETHEUS_ACCEPT)[0].content_type
        assert resp.headers["Content-Encoding"] == "gzip"
        assert "Accept" in resp.headers["Vary"]
        assert gzip.decompress(await resp.read()) == expected


def test_a_tuple_is_rendered_as_its_probe_is_recorded_not_at_the_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A scrape deflates only the headers and the global families; each tuple's text was made
    when its probe was recorded, so a scrape costs the same after 1 or 1,000 new probes."""
    import exporter.exposition.text as collector_module

    calls: list[int] = []
    real = collector_module.deflate

    def counting(text: bytes) -> tuple[bytes, int, int]:
        calls.append(len(text))
        return real(text)

    monkeypatch.setattr(collector_module, "deflate", counting)
    store = Store()
    collector, registry = registered(store)
    collector.text()  # headers made once
    calls.clear()
    collector.text()
    per_scrape = len(calls)  # the global families only
    keys = [TupleKey(**{**LABELS, "endpoint": f"e{i}", "family": 4}) for i in range(50)]
    calls.clear()
    for k in keys:
        store.record(make_observation(k))
    assert len(calls) >= 50 * 4  # success, durations, histograms, counters, timestamp, ...
    calls.clear()
    text = collector.text()
    assert len(calls) == per_scrape
    assert text == generate_latest(registry)


def test_a_failure_to_render_does_not_fail_the_record(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import exporter.exposition.text as collector_module

    def broken(self: object, series: object) -> None:
        raise ValueError("a bug")

    store = Store()
    setup(store)
    monkeypatch.setattr(collector_module._TupleText, "update_counts", broken)
    store.record(make_observation(KEY))  # does not raise
    assert "rendering the metrics of" in caplog.text
    assert store.snapshot().series[KEY].last is not None


def test_a_tuple_expected_ahead_needs_no_new_layout_at_the_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the matrix's keys given ahead, a probe's pieces go straight to their place: no
    scrape lays the columns out again (which would hold every tuple's text twice); a key
    that was not expected still gets a place, at the next scrape."""
    import exporter.exposition.text as collector_module

    layouts: list[int] = []
    real = collector_module.Exposition._lay_out

    def counting(self: collector_module.Exposition, keys: Any) -> None:
        keys = list(keys)
        layouts.append(len(keys))
        real(self, keys)

    monkeypatch.setattr(collector_module.Exposition, "_lay_out", counting)
    store = Store()
    collector, registry = registered(store)
    keys = [TupleKey(**{**LABELS, "endpoint": f"e{i:03}", "family": 4}) for i in range(150)]
    collector.expect(reversed(keys))
    assert layouts == [150]
    for k in keys[::2]:
        store.record(make_observation(k))
    assert collector.text() == generate_latest(registry)
    for k in keys[1::2]:
        store.record(make_observation(k))
    assert collector.text() == generate_latest(registry)
    assert layouts == [150]
    stranger = TupleKey(**{**LABELS, "endpoint": "e0005", "family": 6})
    store.record(make_observation(stranger))
    assert collector.text() == generate_latest(registry)
    assert layouts == [150, 151]


def test_the_process_collectors_are_rendered_alike_by_both_renderers() -> None:
    """`process=` collectors (the process, the interpreter, its GC) come after the exporter's
    own families, in the fast text as in what prometheus_client renders from `collect()`."""
    from prometheus_client.metrics_core import GaugeMetricFamily

    class Fixed:
        def collect(self) -> list[GaugeMetricFamily]:
            return [GaugeMetricFamily("process_open_fds", "Number of open file descriptors.", 7.0)]

    store = Store()
    store.record(make_observation(KEY))
    status = ReloadStatus(successful=True, last_success_timestamp=1_700_000_000.0)
    collector = Collector(
        store=store, scheduler_stats=stats, reload_status=lambda: status, process=(Fixed(),)
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        chosen, fast = negotiate(accept)
        assert fast
        text = collector.text(chosen)
        assert text == chosen.encoder(registry)
        assert b"process_open_fds 7.0\n" in text
        assert text.index(b"messaging_exporter_build_info") < text.index(b"process_open_fds")
