"""The exporter as a real process in the lab's vantage namespace: one round through four
uplinks (clean, censoring, DNS-intercepting, dead), then every verdict asserted on a real
scrape of /metrics — the negatives included: nothing blocked on the clean network, an outage
is `down` everywhere, a dead uplink is `network_down`, never blocked.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.lab.topology import Lab

pytest_plugins = ("tests.lab.conftest_plugin",)

NETWORKS = ("clean", "censor", "dnsint", "dead")
PORT = 10053  # inside the vantage namespace: nothing else listens there


def lab_config(lab: Lab) -> dict[str, Any]:
    """The exporter's config for the lab: every uplink selected by source address."""
    ca = str(lab.ca_file)
    tls = {"ca_file": ca}
    r = lab.resolvers
    doh = r["google-doh"]

    def https(host: str, **extra: Any) -> dict[str, Any]:
        return {"host": host, "port": 443, "checks": ["dns", "tcp", "tls", "http"], "tls": tls,
                **extra}  # fmt: skip

    return {
        # The lab's regulator has its own blockpage; a real deployment adds its local ones
        # the same way (the shipped list covers documented national blockpages).
        "blockpage_patterns": [r"(?i)blocked by order of the Lab Telecommunications"],
        "interval": "30s",
        "timeout": "4s",
        "concurrency": 64,
        "resolvers": {
            # The censoring ISP's own resolver: reachable only through `censor` (and DNATed to
            # the liar of `dnsint` there); elsewhere it answers nothing.
            "isp": {"type": "udp", "address": r["isp"]["censor"]["address"]},
            "google": {"type": "udp", "address": r["google"]["address"]},
            "google-doh": {
                "type": "doh",
                "url": doh["url"],
                "address": doh["address"],
                "tls": {"ca_file": ca},
            },
            "nobody": {"type": "udp", "address": r["silent"]["address"], "silent": True},
        },
        "networks": {
            name: {"source_address": lab.networks[name]["source_address"]} for name in NETWORKS
        },
        "canaries": {"example": https("example.lab")},
        "services": {
            "telegram": {
                "endpoints": {
                    "web": https("web.telegram.lab"),
                    "dc": {
                        "address": "91.108.56.100",
                        "port": 443,
                        "checks": ["tcp", "http"],
                        "http": {"method": "POST", "expect_status": ["2xx", "3xx", "4xx", "5xx"]},
                    },
                    "dc2": {"address": "91.108.56.101", "port": 443, "checks": ["tcp"]},
                }
            },
            "whatsapp": {
                "endpoints": {
                    "web": https("web.whatsapp.lab", control_sni="static.whatsapp.lab"),
                    "media": https("media.whatsapp.lab"),
                    "chat": {"host": "chat.whatsapp.lab", "port": 5222, "checks": ["dns", "tcp"]},
                }
            },
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
                    "chat": https("chat.signal.lab"),
                    "storage": https("storage.signal.lab"),
                }
            },
        },
    }


def fetch(lab: Lab, path: str) -> str:
    """GET a page of the exporter from inside the vantage namespace."""
    code = (
        "import sys, urllib.request\n"
        "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n"
    )
    return lab.check_in("vantage", [sys.executable, "-c", code, f"http://127.0.0.1:{PORT}{path}"])


class Exporter:
    """The exporter process; `judged` is set when its log says a round was judged, and
    `wait_rounds` waits for more of them."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.judged = threading.Event()
        self.rounds = 0
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def wait_rounds(self, count: int, timeout: float) -> bool:
        """Whether `count` rounds were judged (in all) within `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self.rounds >= count, timeout)

    def close(self) -> None:
        """After the process ended: the reader drains the pipe to EOF; then close it."""
        self._reader.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if '"msg": "round judged"' in line:
                with self._changed:
                    self.rounds += 1
                    self._changed.notify_all()
                self.judged.set()


@contextlib.contextmanager
def run_exporter(lab: Lab, directory: Path, **overrides: Any) -> Iterator[Exporter]:
    """The exporter in the vantage namespace on lab_config(lab) with `overrides`, once its
    first round is judged; stopped at the end."""
    config = directory / "config.yaml"
    config.write_text(yaml.safe_dump({**lab_config(lab), **overrides}, sort_keys=False))
    proc = lab.run_in(
        "vantage",
        [
            sys.executable,
            "-m",
            "exporter",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{PORT}",
            "--log.format=json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Exporter(proc)
    try:
        # One round is spread over the interval (30 s unless overridden) and each probe
        # takes at most its 4 s timeout (plus one retry budget inside it).
        if not running.judged.wait(60):
            pytest.fail("no round judged within 60 s; log:\n" + "\n".join(running.lines[-40:]))
        yield running
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        running.close()


@pytest.fixture(scope="module")
def exporter(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    with run_exporter(lab, tmp_path_factory.mktemp("lab-exporter")) as running:
        yield running


@pytest.fixture(scope="module")
def metrics(lab: Lab, exporter: Exporter) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = fetch(lab, "/metrics")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def verdict_of(
    metrics: dict[str, list[tuple[dict[str, str], float]]],
    service: str,
    endpoint: str,
    network: str,
    resolver: str,
) -> str:
    hot = [
        labels["verdict"]
        for labels, value in metrics["messaging_probe_verdict"]
        if value == 1.0
        and labels["service"] == service
        and labels["endpoint"] == endpoint
        and labels["network"] == network
        and labels["resolver"] == resolver
        and labels["family"] == "4"
    ]
    assert len(hot) == 1, (service, endpoint, network, resolver, hot)
    return hot[0]


# (service, endpoint, network, resolver) -> verdict: the lab's techniques, one by one.
EXPECTED = {
    # 1. a clean path
    ("telegram", "web", "clean", "google"): "ok",
    ("telegram", "web", "clean", "google-doh"): "ok",
    ("whatsapp", "chat", "clean", "google"): "ok",
    ("telegram", "dc", "clean", "none"): "ok",
    # 2. the censoring ISP's resolver lies: a bogon (Iran), a sinkhole (Turkey), NXDOMAIN
    ("telegram", "web", "censor", "isp"): "dns_tampered",
    ("whatsapp", "media", "censor", "isp"): "dns_tampered",
    ("signal", "chat", "censor", "isp"): "dns_tampered",
    #    ... while the same names through DoH (and honest 8.8.8.8) on that network are fine
    ("telegram", "web", "censor", "google-doh"): "ok",
    ("telegram", "web", "censor", "google"): "ok",
    ("signal", "chat", "censor", "google-doh"): "ok",
    # 3. transparent interception: every plain resolver lies on dnsint, DoH does not
    ("telegram", "web", "dnsint", "google"): "dns_tampered",
    ("telegram", "web", "dnsint", "isp"): "dns_tampered",
    ("telegram", "web", "dnsint", "google-doh"): "ok",
    # 4. IP blocking by reset and by drop, fine elsewhere
    ("telegram", "dc", "censor", "none"): "tcp_blocked",
    ("telegram", "dc2", "censor", "none"): "tcp_blocked",
    ("telegram", "dc", "dnsint", "none"): "ok",
    # 5. SNI filtering (control SNI passes) and a foreign-CA interceptor
    ("whatsapp", "web", "censor", "google"): "tls_blocked",
    ("whatsapp", "web", "censor", "google-doh"): "tls_blocked",
    ("whatsapp", "web", "clean", "google"): "ok",
    ("messenger", "api", "censor", "google"): "tls_mitm",
    ("messenger", "api", "clean", "google"): "ok",
    # 6. a blockpage
    ("messenger", "web", "censor", "google"): "http_blockpage",
    ("messenger", "web", "clean", "google"): "ok",
    # 7. an outage is down on every network, not blocked
    ("signal", "storage", "clean", "google"): "down",
    ("signal", "storage", "censor", "google"): "down",
    ("signal", "storage", "dnsint", "google-doh"): "down",
    # 8. a dead uplink is network_down; a resolver that answers nothing is dns_failed
    ("telegram", "web", "dead", "google"): "network_down",
    ("telegram", "dc", "dead", "none"): "network_down",
    ("telegram", "web", "clean", "isp"): "dns_failed",
}


@pytest.mark.parametrize(
    ("service", "endpoint", "network", "resolver"),
    list(EXPECTED),
    ids=["/".join(k) for k in EXPECTED],
)
def test_verdict(
    metrics: dict[str, list[tuple[dict[str, str], float]]],
    service: str,
    endpoint: str,
    network: str,
    resolver: str,
) -> None:
    got = verdict_of(metrics, service, endpoint, network, resolver)
    assert got == EXPECTED[(service, endpoint, network, resolver)]


def test_nothing_blocked_on_the_clean_network_or_for_an_outage(
    metrics: dict[str, list[tuple[dict[str, str], float]]],
) -> None:
    blocked = {
        (labels["service"], labels["endpoint"], labels["resolver"])
        for labels, value in metrics["messaging_probe_blocked"]
        if value == 1.0 and labels["network"] in ("clean", "dead")
    }
    assert blocked == set()
    storage = [
        value
        for labels, value in metrics["messaging_probe_blocked"]
        if labels["service"] == "signal" and labels["endpoint"] == "storage"
    ]
    assert storage
    assert set(storage) == {0.0}


def test_network_and_resolver_health(
    metrics: dict[str, list[tuple[dict[str, str], float]]],
) -> None:
    up = {labels["network"]: value for labels, value in metrics["messaging_network_up"]}
    assert up == {"clean": 1.0, "censor": 1.0, "dnsint": 1.0, "dead": 0.0}
    resolver_up = {
        (labels["network"], labels["resolver"]): value
        for labels, value in metrics["messaging_resolver_up"]
    }
    assert resolver_up[("clean", "google")] == 1.0
    assert resolver_up[("clean", "isp")] == 0.0  # the censor's resolver is unreachable here
    intercepted = {
        (labels["network"], labels["resolver"]): value
        for labels, value in metrics["messaging_resolver_intercepted"]
    }
    # Only an on-path injector answers at an address that runs no DNS.
    assert intercepted[("dnsint", "nobody")] == 1.0
    assert intercepted[("clean", "nobody")] == 0.0
    assert intercepted[("censor", "nobody")] == 0.0


def test_probe_detail_keeps_the_evidence(lab: Lab, exporter: Exporter) -> None:
    detail = json.loads(
        fetch(
            lab,
            "/probes?service=whatsapp&endpoint=web&network=censor&resolver=google&family=4"
            "&format=json",
        )
    )
    assert detail["verdict"] == "tls_blocked"
    assert detail["result"] == "reset"
    assert detail["control_tls"]["server_name"] == "static.whatsapp.lab"
    assert detail["control_tls"]["error"] is None
    assert "static.whatsapp.lab" in detail["verdict_reason"]
    mitm = json.loads(
        fetch(
            lab,
            "/probes?service=messenger&endpoint=api&network=censor&resolver=google&family=4"
            "&format=json",
        )
    )
    clean = json.loads(
        fetch(
            lab,
            "/probes?service=messenger&endpoint=api&network=clean&resolver=google&family=4"
            "&format=json",
        )
    )
    assert mitm["result"] == "cert_unknown_authority"
    # The interceptor's certificate, recorded by a second, unverified handshake.
    assert mitm["tls"]["certificate"]["verified"] is False
    assert clean["tls"]["certificate"]["verified"] is True
    assert mitm["tls"]["certificate"]["issuer"] != clean["tls"]["certificate"]["issuer"]
    assert mitm["tls"]["certificate"]["issuer"] in mitm["verdict_reason"]
