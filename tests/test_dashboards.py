"""The Grafana dashboards and provisioning files, and the metric contract of everything shipped
for Prometheus: every metric name a dashboard or a rule uses exists in a real scrape of the
exporter (and in docs/metrics.md), with the labels and label values it matches on. Renaming a
metric or a label in exporter/ fails here.

tests/test_e2e_alerts.py runs every one of these queries on a real Prometheus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.model.judgement import VERDICTS
from exporter.model.observation import LABEL_NAMES, ErrorKind, Phase
from tests import monitoring
from tests.conftest import AppFactory
from tests.fakes.clock import FakeClock

#: The dashboards and their uids: stable, links and bookmarks depend on them.
UIDS = {
    "messaging-overview.json": "messaging-overview",
    "messaging-service.json": "messaging-service",
    "messaging-exporter-health.json": "messaging-exporter-health",
    "messaging-fleet.json": "messaging-fleet",
}
#: Recording rules with one series per vantage point (they group `by (..., vantage)`): they
#: have no `instance` label, so a query of them is narrowed by vantage only.
PER_VANTAGE = frozenset({"messaging:probe_ok:vantage", "messaging:probe_ok:other_vantages"})
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}

#: Every kind of series: a canary (and a UDP one), a silent resolver (interception), host and
#: address endpoints, and a failing tuple (error kinds in messaging_probes_total): dc1 is refused on
#: `other` only, so it is judged tcp_blocked there (it connects on `direct`) and the
#: service-level series of a blocked service (messaging_service_blocked_*) are in the scrape.
CONTRACT_YAML = """\
interval: 60s
timeout: 5s
resolvers:
  local: {type: udp, address: 127.0.0.1, port: 5353}
  nobody: {type: udp, address: 127.0.0.2, silent: true}
networks:
  direct: {}
  other: {}
canaries:
  example: {host: example.example, port: 443}
  stun: {host: stun.example, port: 3478, checks: [dns, stun]}
services:
  telegram:
    endpoints:
      web: {host: web.telegram.example, port: 443, checks: [dns, tcp, tls, http]}
      dc1: {address: 127.0.0.1, port: 443, checks: [tcp]}
"""


# --- a real scrape ---------------------------------------------------------------------------


@pytest.fixture(params=["tuple", "endpoint"])
async def scrape(
    make_app: AppFactory, clock: FakeClock, request: pytest.FixtureRequest
) -> dict[str, set[str]]:
    """Sample name -> the label names it carries, from /metrics of an App after one round;
    with the phase histograms per tuple (the default) and per endpoint (fewer labels)."""
    app, _ = make_app(
        CONTRACT_YAML + f"metrics: {{phase_histograms: {request.param}}}\n",
        error=lambda t: (
            ErrorKind.REFUSED if (t.key.endpoint, t.key.network) == ("dc1", "other") else None
        ),
        duration=lambda t: 0.2,
    )
    addresses = await app.start()
    try:
        await clock.run_until(lambda: app.scheduler.ready, limit=120.0)
        port = addresses[0][1]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as resp,
        ):
            assert resp.status == 200
            text = await resp.text()
    finally:
        await app.stop()
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


# --- everything that queries Prometheus -----------------------------------------------------


def shipped_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every dashboard panel, dashboard variable and rule."""
    for path in monitoring.dashboard_files():
        dashboard = monitoring.load_dashboard(path)
        for query in monitoring.panel_queries(dashboard):
            yield query.name, query.expr
        for variable in monitoring.variables(dashboard):
            if variable["type"] == "query":
                selector, _ = monitoring.parse_label_values(monitoring.variable_query(variable))
                if selector:
                    yield f"{dashboard['uid']} / variable {variable['name']}", selector
    for rule in monitoring.load_rules():
        yield f"rule {rule.get('record') or rule.get('alert')}", rule["expr"]


def _family(name: str, documented: set[str]) -> str | None:
    for suffix in ("", "_bucket", "_count", "_sum"):
        if suffix and not name.endswith(suffix):
            continue
        base = name[: len(name) - len(suffix)] if suffix else name
        if base in documented:
            return base
    return None


def test_every_metric_used_exists_in_a_real_scrape_and_the_docs(
    scrape: dict[str, set[str]],
) -> None:
    recorded = {rule["record"] for rule in monitoring.recording_rules()}
    documented = monitoring.documented_metrics()
    missing = []
    used = set()
    for where, expr in shipped_queries():
        for name in monitoring.metric_names(expr):
            used.add(name)
            if name.startswith("messaging:"):
                if name not in recorded:
                    missing.append(f"{where}: {name} is not a recording rule")
            elif name in monitoring.SCRAPE_SERIES:
                continue
            elif name not in scrape:
                missing.append(f"{where}: {name} is not in the exporter's /metrics")
            elif _family(name, documented) is None:
                missing.append(f"{where}: {name} is not in docs/metrics.md")
    assert not missing, "\n".join(missing)
    # The check reads what it should: the queries cover the exporter's main families.
    assert used >= {
        "messaging_probe_verdict",
        "messaging_probe_blocked",
        "messaging_probe_success",
        "messaging_probe_phase_seconds_bucket",
        "messaging_tls_cert_not_after_timestamp_seconds",
        "messaging_resolver_intercepted",
        "messaging_exporter_rounds_total",
        "messaging_service_blocked",
        "messaging_service_blocked_method",
        "up",
    }


def _matches_absent(op: str, value: str) -> bool:
    """Whether a matcher accepts a series without the label (PromQL compares the empty string)
    whatever a Grafana variable in it is set to: it is taken as one name, `x`."""
    value = re.sub(r"\$\{?\w+\}?", "x", value)
    if op in ("=", "!="):
        return (value == "") is (op == "=")
    return (re.fullmatch(value, "") is not None) is (op == "=~")


@pytest.mark.parametrize(
    ("op", "value", "absent"),
    [
        ("=~", "$resolver", False),
        ("=~", "$resolver|", True),
        ("=~", "${resolver}|", True),
        ("=", "", True),
        ("=", "google", False),
        ("!~", "$resolver", True),
    ],
)
def test_a_matcher_on_an_absent_label(op: str, value: str, absent: bool) -> None:
    assert _matches_absent(op, value) is absent


def test_every_label_matched_exists_with_that_value(scrape: dict[str, set[str]]) -> None:
    """Every label a query matches on exists on the series it selects; a per-tuple label the
    series lacks (resolver and family of histograms per endpoint) only with a matcher that
    also takes a series without it."""
    closed = {
        "verdict": {v.value for v in VERDICTS},
        "phase": {p.value for p in Phase},
    }
    problems = []
    for where, expr in shipped_queries():
        for selector in monitoring.selectors(expr):
            labels = scrape.get(selector.metric)
            if labels is None:
                continue  # recorded or scrape series; names are checked above
            for label, op, value in selector.matchers:
                if label not in labels | monitoring.TARGET_LABELS and not (
                    label in LABEL_NAMES and _matches_absent(op, value)
                ):
                    problems.append(f"{where}: {selector.metric} has no label {label!r}")
                allowed = closed.get(label)
                literal = monitoring.alternatives(op, value)
                if allowed and literal is not None and not set(literal) <= allowed:
                    problems.append(f"{where}: {label}{op}{value!r}: not in {sorted(allowed)}")
    assert not problems, "\n".join(problems)


def test_the_contract_check_catches_a_renamed_metric(scrape: dict[str, set[str]]) -> None:
    expr = 'sum by (le) (rate(messaging_probe_phase_second_bucket{phase="tls"}[5m]))'
    assert monitoring.metric_names(expr) == {"messaging_probe_phase_second_bucket"}
    assert "messaging_probe_phase_second_bucket" not in scrape


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (le) (rate(a_bucket{x="y"}[5m])) / on (job) group_left () b', {"a_bucket", "b"}),
        ('label_replace(m, "method", "$1", "verdict", "(.+)")', {"m"}),
        ("max without (endpoint, resolver) (x == 1) and ignoring (verdict) y", {"x", "y"}),
        ("time() - a > bool on (job, instance) group_left () 3 * c:d:e", {"a", "c:d:e"}),
        ('count(m{n=~"$network"} == 0) or vector(0)', {"m"}),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert monitoring.metric_names(expr) == names


# --- dashboard structure ---------------------------------------------------------------------


@pytest.fixture(params=sorted(UIDS))
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    path = monitoring.DASHBOARDS_DIR / request.param
    assert path.exists(), f"{path} is missing"
    return monitoring.load_dashboard(path)


def test_the_dashboards_and_their_uids_are_stable() -> None:
    found = {p.name: monitoring.load_dashboard(p)["uid"] for p in monitoring.dashboard_files()}
    assert found == UIDS
    titles = [monitoring.load_dashboard(p)["title"] for p in monitoring.dashboard_files()]
    assert len(set(titles)) == len(titles)


def test_no_import_inputs(dashboard: dict[str, Any]) -> None:
    # ${DS_...} inputs only work through the import UI; provisioning leaves them unresolved.
    text = json.dumps(dashboard)
    assert "__inputs" not in dashboard
    assert "__requires" not in dashboard
    assert "${DS_" not in text
    assert "$DS_" not in text
    assert dashboard.get("id") is None  # provisioning assigns the id
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])


def test_datasource_variable_everywhere(dashboard: dict[str, Any]) -> None:
    variables = monitoring.variables(dashboard)
    ds = [v for v in variables if v["type"] == "datasource"]
    assert [(v["name"], v["query"]) for v in ds] == [("datasource", "prometheus")]
    for variable in variables:
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]
    for panel in monitoring.iter_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
            assert target["refId"], panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_vantage_points_can_be_selected_and_compared(dashboard: dict[str, Any]) -> None:
    by_name = {v["name"]: v for v in monitoring.variables(dashboard)}
    vantage, instance = by_name["vantage"], by_name["instance"]
    assert monitoring.variable_query(vantage) == (
        "label_values(messaging_exporter_build_info, vantage)"
    )
    assert "messaging_exporter_build_info" in monitoring.variable_query(instance)
    for variable in (vantage, instance):
        # "All" matches a missing label too: dashboards work without a vantage label.
        assert variable["includeAll"], variable["name"]
        assert variable["multi"], variable["name"]
        assert variable["allValue"] == ".*", variable["name"]
    # Every series a panel selects is narrowed to the selected exporters.
    for query in monitoring.panel_queries(dashboard):
        for selector in monitoring.selectors(query.expr):
            matchers = {(label, op, value) for label, op, value in selector.matchers}
            if selector.metric not in PER_VANTAGE:
                assert ("instance", "=~", "$instance") in matchers, (query.name, selector)
            assert ("vantage", "=~", "$vantage") in matchers, (query.name, selector)


def test_the_per_vantage_rules_have_no_instance_label() -> None:
    """Why PER_VANTAGE may skip the instance matcher: the rules aggregate it away (a matcher
    on it would empty the panel as soon as one instance is selected)."""
    records = {r["record"]: r["expr"] for r in monitoring.recording_rules()}
    assert set(records) >= PER_VANTAGE
    for name in PER_VANTAGE:
        assert re.search(r"\bby \(service, endpoint(, vantage)?\)", records[name]), name
        assert "instance" not in records[name], name


def test_variables_and_layout(dashboard: dict[str, Any]) -> None:
    names = {v["name"] for v in monitoring.variables(dashboard)}
    used: set[str] = set()
    for query in monitoring.panel_queries(dashboard):
        used |= set(re.findall(r"\$\{?(\w+)", query.expr))
    for variable in monitoring.variables(dashboard):
        used |= set(re.findall(r"\$\{?(\w+)", monitoring.variable_query(variable)))
    assert used - BUILTIN_VARIABLES <= names, used - BUILTIN_VARIABLES - names
    ids = [p["id"] for p in monitoring.iter_panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in monitoring.iter_panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] > 0, panel["title"]
        if panel.get("repeat"):
            assert panel["repeat"] in names, panel["title"]
    assert dashboard["schemaVersion"] >= 36
    assert "messaging-exporter" in dashboard["tags"]


def test_overview_has_the_matrix_the_timeline_availability_and_blocked_tuples() -> None:
    board = monitoring.load_dashboard(monitoring.DASHBOARDS_DIR / "messaging-overview.json")
    panels = {p["title"]: p for p in monitoring.iter_panels(board)}
    matrix = panels["Verdict matrix: $instance"]
    assert matrix["type"] == "table"
    assert matrix["transformations"][0]["id"] == "groupingToMatrix"
    mapped = matrix["fieldConfig"]["defaults"]["mappings"][0]["options"]
    # every verdict of the exporter has its name and color (and there is one for a newer one)
    assert {m["text"] for m in mapped.values()} >= {v.value for v in VERDICTS}
    assert panels["Verdicts over time"]["type"] == "state-timeline"
    assert "messaging:probe_success" in panels["Availability over the range"]["targets"][0]["expr"]
    assert "messaging_probe_blocked" in panels["Blocked now"]["targets"][0]["expr"]
    # calls and Telegram's protocol: rows of their own, found by the phase their check runs
    calls = panels["Calls and Telegram's protocol"]
    (target,) = calls["targets"]
    assert monitoring.metric_names(target["expr"]) == {
        "messaging_probe_verdict",
        "messaging_probe_phase_seconds_count",
    }
    assert 'phase=~"stun|mtproto"' in target["expr"]
    shown = calls["fieldConfig"]["overrides"][0]["properties"][1]["value"][0]["options"]
    assert {"ok", "udp_blocked", "protocol_blocked", "udp_down"} <= set(shown)


def test_fleet_compares_vantage_points_side_by_side() -> None:
    board = monitoring.load_dashboard(monitoring.DASHBOARDS_DIR / "messaging-fleet.json")
    panels = {p["title"]: p for p in monitoring.iter_panels(board)}
    # matrices with one column per vantage point, from the fleet's recording rules
    for title, rule in (
        ("Reachable from each vantage point", "messaging:probe_ok:vantage"),
        ("Worst verdict by vantage point", "messaging:probe_verdict:worst"),
        ("Other vantage points reaching it", "messaging:probe_ok:other_vantages"),
    ):
        panel = panels[title]
        assert panel["type"] == "table", title
        (transformation,) = panel["transformations"]
        assert transformation["id"] == "groupingToMatrix", title
        assert transformation["options"]["columnField"] == "vantage", title
        (target,) = panel["targets"]
        assert monitoring.metric_names(target["expr"]) == {rule}, title
        assert target["instant"], title
    worst = panels["Worst verdict by vantage point"]["fieldConfig"]["defaults"]["mappings"]
    assert {m["text"] for m in worst[0]["options"].values()} >= {v.value for v in VERDICTS}
    reach = panels["Reachable from each vantage point"]["fieldConfig"]["defaults"]["mappings"]
    assert {k: m["text"] for k, m in reach[0]["options"].items()} == {
        "0": "not reachable",
        "1": "reachable",
    }
    timeline = panels["Reachability over time"]
    assert timeline["type"] == "state-timeline"
    assert "{{vantage}}" in timeline["targets"][0]["legendFormat"]


# --- provisioning ----------------------------------------------------------------------------


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def test_provisioning_files() -> None:
    datasources = _yaml(monitoring.PROVISIONING_DIR / "datasources" / "prometheus.yml")
    assert datasources["apiVersion"] == 1
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus"
    assert ds["access"] == "proxy"
    assert ds["url"].startswith("http")
    providers = _yaml(monitoring.PROVISIONING_DIR / "dashboards" / "messaging.yml")
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"].startswith("/")
    # docs/dashboards.md mounts grafana/dashboards/ at the provider's path.
    assert provider["options"]["path"] in (monitoring.REPO / "docs" / "dashboards.md").read_text()
