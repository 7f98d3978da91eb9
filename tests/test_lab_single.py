"""One uplink is enough, end to end: the exporter as a real process in the lab's vantage
namespace with a single network and nothing else to compare with (no second network, no
control SNI, no blockpage pattern), the services four router hops away.

Through the censoring ISP every technique gets its blocking verdict with the hop as the
evidence (an IP reset, a drop, a stalling transparent proxy, an SNI reset, an unknown
blockpage, a rogue CA), round after round; a real outage (no listener; a host gone) is
`down`. Through the clean ISP nothing is blocked. Through the censoring ISP with its router
sending no ICMP, localisation is inconclusive and the documented fallback holds: `down`, and
`/probes` says why (docs/verdicts.md, "One uplink is enough").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.lab.topology import (
    DC_DROP,
    DC_RESET,
    STALL_HOST,
    Lab,
    icmp_filter,
)
from tests.test_lab_verdicts import fetch, run_exporter, verdict_of

pytest_plugins = ("tests.lab.conftest_plugin",)

#: An address of the lab's internet where no host is (the service's host is gone): nothing
#: answers it, not even a refusal.
GONE = "76.223.0.98"
#: The first router (the ISP) is hop 1; the services answer the trace at TTL 4.
DISTANCE = 4

Metrics = dict[str, list[tuple[dict[str, str], float]]]


def single(lab: Lab, network: str) -> dict[str, Any]:
    """The overrides of test_lab_verdicts.lab_config for one uplink: `network` alone, an
    honest resolver, no blockpage fingerprint at all and no control SNI."""
    tls = {"ca_file": str(lab.ca_file)}
    checks = ["dns", "tcp", "tls", "http"]

    def https(host: str) -> dict[str, Any]:
        return {"host": host, "port": 443, "checks": checks, "tls": tls}

    return {
        "interval": "8s",
        "timeout": "3s",
        "blockpage_patterns": [],
        "blockpage_headers": {},
        "networks": {network: {"source_address": lab.networks[network]["source_address"]}},
        "resolvers": {"google": {"type": "udp", "address": lab.resolvers["google"]["address"]}},
        "canaries": {"example": https("example.lab")},
        "services": {
            "telegram": {
                "endpoints": {
                    "dc": {
                        "address": DC_RESET,
                        "port": 443,
                        "checks": ["tcp", "http"],
                        "http": {"method": "POST", "expect_status": ["2xx", "3xx", "4xx", "5xx"]},
                    },
                    "dc2": {"address": DC_DROP, "port": 443, "checks": ["tcp"]},
                    "core": https(STALL_HOST),
                }
            },
            "whatsapp": {"endpoints": {"web": https("web.whatsapp.lab")}},
            "messenger": {
                "endpoints": {
                    "web": {
                        "host": "edge.messenger.lab",
                        "port": 80,
                        "checks": ["dns", "tcp", "http"],
                    },
                    "api": https("api.messenger.lab"),
                }
            },
            "signal": {
                "endpoints": {
                    "storage": https("storage.signal.lab"),
                    "gone": {"address": GONE, "port": 443, "checks": ["tcp"]},
                }
            },
        },
    }


def scrape(lab: Lab) -> Metrics:
    out: Metrics = {}
    for family in text_string_to_metric_families(fetch(lab, "/metrics")):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def resolver_of(endpoint: str) -> str:
    return "none" if endpoint in ("dc", "dc2", "gone") else "google"


@dataclass(frozen=True)
class Seen:
    """What one run of the exporter showed: a scrape of /metrics, and the /probes detail of
    every tuple, taken while it ran."""

    metrics: Metrics
    details: dict[tuple[str, str], dict[str, Any]]


def observe(lab: Lab, directory: Path, overrides: dict[str, Any], rounds: int) -> Seen:
    """Run the exporter on `overrides` until `rounds` rounds are judged; what it showed."""
    with run_exporter(lab, directory, **overrides) as running:
        if not running.wait_rounds(rounds, 60):
            pytest.fail(f"not {rounds} rounds within 60 s; log:\n" + "\n".join(running.lines[-40:]))
        metrics = scrape(lab)
        network = next(iter(overrides["networks"]))
        details: dict[tuple[str, str], dict[str, Any]] = {}
        for service, body in overrides["services"].items():
            for endpoint in body["endpoints"]:
                query = (
                    f"service={service}&endpoint={endpoint}&network={network}"
                    f"&resolver={resolver_of(endpoint)}&family=4&format=json"
                )
                details[(service, endpoint)] = json.loads(fetch(lab, f"/probes?{query}"))
        return Seen(metrics=metrics, details=details)


@pytest.fixture(scope="module")
def censored(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Seen:
    """The censoring uplink alone, after its second judged round (the evidence must hold
    round after round, not only on the first)."""
    return observe(lab, tmp_path_factory.mktemp("single-censor"), single(lab, "censor"), 2)


@pytest.fixture(scope="module")
def clean(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Seen:
    return observe(lab, tmp_path_factory.mktemp("single-clean"), single(lab, "clean"), 2)


#: (service, endpoint) → (verdict, what came back at the interfering hop, that hop) on the
#: censoring uplink: the filter of the ISP (hop 1) acts from TTL 2, its proxies and
#: listeners answer at TTL 1 (docs/verdicts.md).
CENSORED = {
    ("telegram", "dc"): ("tcp_blocked", "reset", 2),
    ("telegram", "dc2"): ("tcp_blocked", "silence", 2),
    ("telegram", "core"): ("tls_blocked", "silence", 1),
    ("whatsapp", "web"): ("tls_blocked", "reset", 1),
    ("messenger", "web"): ("http_blockpage", "answer", 1),
}


@pytest.mark.parametrize(
    ("service", "endpoint"), list(CENSORED), ids=["/".join(k) for k in CENSORED]
)
def test_one_uplink_each_technique_is_blocking_with_the_hop(
    censored: Seen, service: str, endpoint: str
) -> None:
    verdict, answer, hop = CENSORED[(service, endpoint)]
    found = censored.details[(service, endpoint)]
    assert found["verdict"] == verdict, found["verdict_reason"]
    assert (
        verdict_of(censored.metrics, service, endpoint, "censor", resolver_of(endpoint)) == verdict
    )
    path = found["path"]
    assert path is not None, found["log"]
    assert (path["outcome"], path["answer"], path["hop"]) in {
        ("before_destination", answer, hop),
        ("dropped", answer, hop),
    }, path
    assert path["distance"] == DISTANCE, path
    assert f"hop {hop}" in found["verdict_reason"], found["verdict_reason"]
    if path["hop_address"] is not None:  # the router's address, on /probes and in the reason
        assert path["hop_address"] in found["verdict_reason"]
    hops = [
        value
        for labels, value in censored.metrics["messaging_probe_interference_hops"]
        if (labels["service"], labels["endpoint"]) == (service, endpoint)
    ]
    assert hops == [float(hop)]


def test_one_uplink_a_rogue_ca_is_interception_on_its_own(censored: Seen) -> None:
    """No control SNI and no other network: localisation places the certificate's sender
    before the destination, which tells the interceptor from a root the endpoint lacks (the
    server's own certificate, `down`; docs/verdicts.md, rules 15-16)."""
    assert verdict_of(censored.metrics, "messenger", "api", "censor", "google") == "tls_mitm"
    found = censored.details[("messenger", "api")]
    assert found["result"] == "cert_unknown_authority"
    assert "SHA-256" in found["verdict_reason"]
    assert "interference at hop" in found["verdict_reason"], found["verdict_reason"]


@pytest.mark.parametrize("endpoint", ["storage", "gone"])
def test_one_uplink_an_outage_is_down(censored: Seen, endpoint: str) -> None:
    """No listener (refused by the destination itself) and no host at all: the failure is
    the destination's, or nothing can place it; never blocked."""
    found = censored.details[("signal", endpoint)]
    assert found["verdict"] == "down", found["verdict_reason"]
    assert not any(
        labels["endpoint"] == endpoint
        for labels, _ in censored.metrics.get("messaging_probe_interference_hops", [])
    )
    path = found["path"]
    assert path is not None
    assert path["outcome"] in ("at_destination", "inconclusive"), path


def test_one_uplink_the_service_level_answer_names_the_methods(censored: Seen) -> None:
    blocked = {
        labels["service"]: value
        for labels, value in censored.metrics["messaging_service_blocked"]
        if labels["network"] == "censor"
    }
    assert blocked == {"telegram": 1.0, "whatsapp": 1.0, "messenger": 1.0, "signal": 0.0}
    methods = {
        (labels["service"], labels["method"])
        for labels, value in censored.metrics["messaging_service_blocked_method"]
        if value == 1.0
    }
    assert methods == {
        ("telegram", "tcp_blocked"),
        ("telegram", "tls_blocked"),
        ("whatsapp", "tls_blocked"),
        ("messenger", "http_blockpage"),
        ("messenger", "tls_mitm"),
    }


def test_one_clean_uplink_blocks_nothing(clean: Seen) -> None:
    judged = {
        (labels["service"], labels["endpoint"]): value
        for labels, value in clean.metrics["messaging_probe_blocked"]
    }
    assert len(judged) == 9  # every endpoint and the canary
    assert {k for k, v in judged.items() if v != 0.0} == set()
    assert not clean.metrics.get("messaging_probe_interference_hops")
    for (service, _), found in clean.details.items():
        expected = "down" if service == "signal" else "ok"
        assert found["verdict"] == expected, found["verdict_reason"]
    # The plain-HTTP page came from the destination's own distance: the service's. (Its
    # first answer was localised; once settled there, later probes are not, and carry no
    # path.)
    path = clean.details[("messenger", "web")]["path"]
    assert path is None or (path["outcome"], path["hop"]) == ("at_destination", DISTANCE), path


def test_one_uplink_without_icmp_falls_back_to_today_s_rules(lab: Lab, tmp_path: Path) -> None:
    """The censoring ISP's router sends no time-exceeded: the reset and the drop cannot be
    placed. With nothing else to compare with, the rules say `down` (the documented
    fallback) and the reason says localisation was inconclusive."""
    overrides = single(lab, "censor")
    telegram = overrides["services"]["telegram"]["endpoints"]
    overrides["services"] = {"telegram": {"endpoints": {k: telegram[k] for k in ("dc", "dc2")}}}
    with lab.technique(icmp_filter("isp-censor")):
        seen = observe(lab, tmp_path, overrides, 2)
    for endpoint in ("dc", "dc2"):
        found = seen.details[("telegram", endpoint)]
        assert found["verdict"] == "down", found["verdict_reason"]
        assert found["path"]["outcome"] == "inconclusive", found["path"]
        assert "localisation inconclusive" in found["verdict_reason"]
    assert not seen.metrics.get("messaging_probe_interference_hops")
