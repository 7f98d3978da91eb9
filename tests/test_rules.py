"""The shipped Prometheus rules: `promtool check rules` clean, `promtool test rules` passing,
and every alert unit-tested both firing and not firing, with severity, summary, description,
`for:` and a runbook in docs/alerts.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests import monitoring


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    assert path is not None, "promtool is missing: apt-get install prometheus"
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_check_rules_is_clean() -> None:
    files = [str(p) for p in monitoring.rule_files()]
    assert files
    proc = promtool("check", "rules", "--lint=all", "--lint-fatal", *files)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "SUCCESS" in output
    assert "failed" not in output.lower(), output
    assert "warning" not in output.lower(), output


def test_promtool_test_rules_passes() -> None:
    files = [str(p) for p in monitoring.rule_test_files()]
    assert files
    proc = promtool("test", "rules", *files)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert output.count("SUCCESS") == len(files), output


def _alert_tests() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in monitoring.rule_test_files():
        data = yaml.safe_load(path.read_text())
        for rule_file in data["rule_files"]:
            assert (path.parent / rule_file).resolve() in [
                p.resolve() for p in monitoring.rule_files()
            ], f"{path.name} tests {rule_file}, not a shipped rule file"
        for group in data["tests"]:
            cases.extend(group.get("alert_rule_test", []))
    return cases


ALERTS = [rule["alert"] for rule in monitoring.alerting_rules()]


def test_the_required_alerts_exist() -> None:
    assert set(ALERTS) >= {
        "MessagingServiceBlocked",
        "MessagingServiceBlockedCrossVantage",
        "MessagingDnsTampered",
        "MessagingResolverIntercepted",
        "MessagingServiceDown",
        "MessagingNetworkDown",
        "MessagingNetworkSetupError",
        "MessagingProbesStale",
        "MessagingExporterDown",
        "MessagingExporterAbsent",
        "MessagingExporterConfigReloadFailed",
        "MessagingLatencyAboveBaseline",
        "MessagingCertificateExpiringSoon",
    }
    assert len(ALERTS) == len(set(ALERTS))


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_is_tested_firing_and_not_firing(alert: str) -> None:
    cases = [c for c in _alert_tests() if c["alertname"] == alert]
    assert any(c.get("exp_alerts") for c in cases), f"{alert}: no test where it fires"
    assert any(not c.get("exp_alerts") for c in cases), f"{alert}: no test where it does not"


@pytest.mark.parametrize("rule", monitoring.alerting_rules(), ids=ALERTS)
def test_every_alert_has_severity_annotations_for_and_a_runbook(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert rule.get("labels", {}).get("severity") in ("critical", "warning"), name
    annotations = rule.get("annotations", {})
    assert annotations.get("summary"), name
    assert annotations.get("description"), name
    assert rule.get("for"), f"{name}: no `for:` to damp flaps"
    anchor = name.lower()
    assert annotations.get("runbook") == f"docs/alerts.md#{anchor}"
    headings = re.findall(r"^#+\s+(\S+)\s*$", monitoring.ALERTS_DOC.read_text(), re.MULTILINE)
    assert name in headings, f"docs/alerts.md has no runbook section `### {name}`"


@pytest.mark.parametrize(
    ("alert", "reads"),
    [
        # the exporter's service-level answer, made of the verdicts (exporter/judge/summary.py)
        (
            "MessagingServiceBlocked",
            {"messaging_service_blocked_method", "messaging_service_blocked"},
        ),
        (
            "MessagingServiceBlockedCrossVantage",
            {"messaging_probe_verdict", "messaging_probe_blocked"},
        ),
    ],
)
def test_blocked_relies_on_the_verdicts_never_on_success(alert: str, reads: set[str]) -> None:
    # An outage or a dead network fails every probe too: only the verdicts tell them apart.
    (rule,) = [r for r in monitoring.alerting_rules() if r["alert"] == alert]
    records = {r["record"]: r["expr"] for r in monitoring.recording_rules()}
    names, seen = monitoring.metric_names(rule["expr"]), set()
    while names & (records.keys() - seen):  # what the recording rules it reads read
        name = sorted(names & (records.keys() - seen))[0]
        seen.add(name)
        names = (names - {name}) | monitoring.metric_names(records[name])
    assert names == reads


def test_every_recording_rule_is_unit_tested() -> None:
    tested = " ".join(
        test.get("expr", "")
        for path in monitoring.rule_test_files()
        for group in yaml.safe_load(path.read_text())["tests"]
        for test in group.get("promql_expr_test", [])
    )
    alert_exprs = " ".join(r["expr"] for r in monitoring.alerting_rules())
    for rule in monitoring.recording_rules():
        assert rule["record"] in tested or rule["record"] in alert_exprs, rule["record"]


def test_shortening_for_changes_nothing_else() -> None:
    # What tests/test_e2e_alerts.py does to the shipped rules.
    for path in monitoring.rule_files():
        original = yaml.safe_load(path.read_text())
        text, count = monitoring.shorten_for(path.read_text(), "2s")
        shortened = yaml.safe_load(text)
        durations = ("for", "keep_firing_for")
        rules = [r for g in original["groups"] for r in g["rules"]]
        assert count == sum(1 for r in rules for d in durations if d in r)
        for rule in rules:
            for duration in durations:
                if duration in rule:
                    rule[duration] = "2s"
        assert shortened == original


def test_the_cross_vantage_alert_compares_vantage_points_on_service_and_endpoint() -> None:
    # Network and resolver names are each exporter's own: the join must not use them, and it
    # must keep the vantage point apart (its own other networks are no control).
    (rule,) = [
        r
        for r in monitoring.alerting_rules()
        if r["alert"] == "MessagingServiceBlockedCrossVantage"
    ]
    expr = " ".join(rule["expr"].split())
    assert "and on (service, endpoint, vantage)" in expr
    records = {r["record"]: " ".join(r["expr"].split()) for r in monitoring.recording_rules()}
    assert "by (service, endpoint, vantage)" in records["messaging:probe_ok:vantage"]
    assert "on (service, endpoint) group_right ()" in records["messaging:probe_ok:other_vantages"]
