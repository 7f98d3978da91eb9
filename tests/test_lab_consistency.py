"""DNS consistency in the lab, end to end: the exporter as a real process in the vantage
namespace, one judged round, verdicts asserted on a real scrape of /metrics.

What it separates (no `expected_networks` anywhere, so only the controls decide):
- a server chaining to a private root (Signal-style) is `ok` when that root is added
  (`extra_ca_file`) and `down` everywhere without it, never blocked: the server presents its
  own certificate, for its own names, which is what a root the service moved to looks like
  when the endpoint's trust lacks it (docs/verdicts.md, rule 15; OONI's ts-029 saw Signal's
  root change make every measurement look blocked). The shipped config trusts Signal's
  roots for Signal's endpoints so that Signal is measured at all;
- geo-DNS, where the ISP resolver answers another real site of the service than the public
  ones (another /24), is `ok`: both sites complete a handshake verified for the name;
- a forged answer (another real server, whose certificate is for another name) and an
  injected foreign address (nothing serves the name there) are `dns_tampered`.

The helpers (process, scrape, verdict lookup) are tests/test_lab_verdicts.py's, reused as
they are: its config with this module's keys on top.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.lab.topology import (
    FORGED_HOST,
    GEO_HOST,
    INJECTED_HOST,
    Lab,
)
from tests.test_lab_verdicts import Exporter, fetch, run_exporter, verdict_of

pytest_plugins = ("tests.lab.conftest_plugin",)

NETWORKS = ("clean", "censor", "dnsint")
INTERVAL = "5s"
TIMEOUT = "2s"
#: The resolvers that answer on each network: an ISP's resolver only through its own uplink,
#: except on dnsint, where every plain query is DNATed to that ISP's liar.
ANSWERING = {
    "clean": ("isp-clean", "google", "google-doh"),
    "censor": ("isp-censor", "google", "google-doh"),
    "dnsint": ("isp-clean", "isp-censor", "google", "google-doh"),
}
SILENT_HERE = {("clean", "isp-censor"), ("censor", "isp-clean")}

Metrics = dict[str, list[tuple[dict[str, str], float]]]


def overrides(lab: Lab) -> dict[str, Any]:
    """This module's keys over test_lab_verdicts.lab_config: networks, resolvers, services."""
    tls = {"ca_file": str(lab.ca_file)}
    r = lab.resolvers
    doh = r["google-doh"]
    checks = ["dns", "tcp", "tls", "http"]

    def https(host: str, **extra: Any) -> dict[str, Any]:
        return {"host": host, "port": 443, "checks": checks, "tls": tls, **extra}

    cdsi = lab.endpoints["signal-cdsi"]["host"]
    return {
        "interval": INTERVAL,
        "timeout": TIMEOUT,
        "networks": {
            name: {"source_address": lab.networks[name]["source_address"]} for name in NETWORKS
        },
        "resolvers": {
            "isp-clean": {"type": "udp", "address": r["isp"]["clean"]["address"]},
            "isp-censor": {"type": "udp", "address": r["isp"]["censor"]["address"]},
            "google": {"type": "udp", "address": r["google"]["address"]},
            "google-doh": {
                "type": "doh",
                "url": doh["url"],
                "address": doh["address"],
                "tls": tls,
            },
        },
        "canaries": {"example": https("example.lab")},
        "services": {
            "signal": {
                "endpoints": {
                    # System roots plus the private root (an absolute path, used as given).
                    "cdsi-pinned": https(
                        cdsi, tls={"extra_ca_file": str(lab.private_root_file.resolve())}
                    ),
                    # System roots only: the private root is unknown.
                    "cdsi-public": {"host": cdsi, "port": 443, "checks": checks},
                }
            },
            "messenger": {"endpoints": {"geo": https(GEO_HOST)}},
            "telegram": {"endpoints": {"desktop": https(FORGED_HOST)}},
            "whatsapp": {"endpoints": {"updates": https(INJECTED_HOST)}},
        },
    }


@pytest.fixture(scope="module")
def exporter(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    directory = tmp_path_factory.mktemp("lab-consistency")
    with run_exporter(lab, directory, **overrides(lab)) as running:
        yield running


@pytest.fixture(scope="module")
def metrics(lab: Lab, exporter: Exporter) -> Metrics:
    out: Metrics = {}
    for family in text_string_to_metric_families(fetch(lab, "/metrics")):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def probe(lab: Lab, service: str, endpoint: str, network: str, resolver: str) -> dict[str, Any]:
    query = (
        f"service={service}&endpoint={endpoint}&network={network}&resolver={resolver}"
        "&family=4&format=json"
    )
    detail: dict[str, Any] = json.loads(fetch(lab, f"/probes?{query}"))
    return detail


def _cases() -> dict[tuple[str, str, str, str], str]:
    cases: dict[tuple[str, str, str, str], str] = {}
    for network, resolvers in ANSWERING.items():
        for resolver in resolvers:
            # A private root, added: fine through every resolver that answers.
            cases[("signal", "cdsi-pinned", network, resolver)] = "ok"
            # ... not added: the server's own certificate on a root the trust lacks.
            cases[("signal", "cdsi-public", network, resolver)] = "down"
    for network, resolver in sorted(SILENT_HERE):
        cases[("signal", "cdsi-pinned", network, resolver)] = "dns_failed"
    # Geo-DNS: the ISP resolvers' site and the public resolvers' site share no /24, and both
    # complete a handshake verified for the name.
    cases[("messenger", "geo", "clean", "isp-clean")] = "ok"
    cases[("messenger", "geo", "clean", "google-doh")] = "ok"
    cases[("messenger", "geo", "clean", "google")] = "ok"
    cases[("messenger", "geo", "censor", "isp-censor")] = "ok"
    cases[("messenger", "geo", "dnsint", "google")] = "ok"
    # A forged answer: the address of a real server for another name.
    cases[("telegram", "desktop", "censor", "isp-censor")] = "dns_tampered"
    cases[("telegram", "desktop", "dnsint", "google")] = "dns_tampered"
    cases[("telegram", "desktop", "censor", "google")] = "ok"
    cases[("telegram", "desktop", "dnsint", "google-doh")] = "ok"
    # An injected foreign address where nothing serves the name.
    cases[("whatsapp", "updates", "dnsint", "google")] = "dns_tampered"
    cases[("whatsapp", "updates", "dnsint", "isp-censor")] = "dns_tampered"
    cases[("whatsapp", "updates", "censor", "isp-censor")] = "dns_tampered"
    cases[("whatsapp", "updates", "dnsint", "google-doh")] = "ok"
    for resolver in ANSWERING["clean"]:
        cases[("telegram", "desktop", "clean", resolver)] = "ok"
        cases[("whatsapp", "updates", "clean", resolver)] = "ok"
    return cases


EXPECTED = _cases()


@pytest.mark.parametrize(
    ("service", "endpoint", "network", "resolver"),
    list(EXPECTED),
    ids=["/".join(k) for k in EXPECTED],
)
def test_verdict(
    metrics: Metrics, service: str, endpoint: str, network: str, resolver: str
) -> None:
    got = verdict_of(metrics, service, endpoint, network, resolver)
    assert got == EXPECTED[(service, endpoint, network, resolver)]


def test_nothing_blocked_on_the_clean_network(metrics: Metrics) -> None:
    """Geo-DNS, private roots that are configured and one that is not are never blocking on
    a clean path."""
    clean = [
        (labels["service"], labels["endpoint"], labels["resolver"], value)
        for labels, value in metrics["messaging_probe_blocked"]
        if labels["network"] == "clean"
    ]
    assert clean
    assert [c for c in clean if c[3] != 0.0] == []


def test_a_root_the_endpoint_lacks_is_down_with_its_evidence(lab: Lab, metrics: Metrics) -> None:
    """cdsi-public fails on the certificate everywhere: `down`, never blocked, the reason
    naming the presented certificate's issuer and SHA-256 (what a user compares with the
    real one) and the endpoint's roots as the likely cause."""
    public = [
        (labels, value)
        for labels, value in metrics["messaging_probe_blocked"]
        if labels["service"] == "signal"
        and labels["endpoint"] == "cdsi-public"
        and labels["resolver"] in ANSWERING[labels["network"]]
    ]
    assert {labels["network"] for labels, _ in public} == set(NETWORKS)
    assert {value for _, value in public} == {0.0}
    for network in NETWORKS:
        detail = probe(lab, "signal", "cdsi-public", network, "google")
        assert detail["verdict"] == "down", detail
        assert detail["result"] == "cert_unknown_authority", detail
        sha256 = detail["tls"]["certificate"]["sha256"]
        assert len(sha256) == 64, detail
        assert sha256 in detail["verdict_reason"], detail
        assert "does not trust" in detail["verdict_reason"], detail
        assert "extra_ca_file" in detail["verdict_reason"], detail


def test_geo_answers_are_two_real_sites_in_different_slash_24s(
    lab: Lab, exporter: Exporter
) -> None:
    """What makes the geo `ok` meaningful: the plain resolver really answered the ISP's site,
    the DoH resolver the public one, and each completed a handshake verified for the name."""
    geo = lab.endpoints["messenger-geo"]
    plain = probe(lab, "messenger", "geo", "clean", "isp-clean")
    doh = probe(lab, "messenger", "geo", "clean", "google-doh")
    assert plain["dns"]["answers"] == [geo["isp_address"]]
    assert doh["dns"]["answers"] == [geo["address"]]
    prefixes = {a.rsplit(".", 1)[0] for a in (geo["isp_address"], geo["address"])}
    assert len(prefixes) == 2
    for detail in (plain, doh):
        assert detail["tls"]["certificate"]["verified"] is True, detail
