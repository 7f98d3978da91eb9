"""Throttling and a shutdown, with the exporter as a real process in the lab's vantage
namespace (the fixture approach of tests/test_lab_verdicts.py, on a small config with a short
interval):

- the censoring ISP polices what one HTTPS look-alike sends to a low rate with nftables
  (`limit rate over ... drop`): its throughput check is `throttled` on that network only, and
  nothing is throttled on the clean network or for a service the ISP leaves alone;
- the censoring ISP's uplink is then cut mid-test: the network is `network_down`, with
  `messaging_network_down_since_timestamp_seconds` set and kept while it lasts, and no
  blocked verdict on it; restored, the series is gone. Both changes are logged at warning.

Waits follow the exporter's "round judged" log lines, never sleeps. Everything changed in the
shared lab (the policer, the uplink) is restored in `finally`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.lab.topology import LARGE_PATH, Lab, police

pytest_plugins = ("tests.lab.conftest_plugin",)

NETWORKS = ("clean", "censor")
PORT = 10054  # inside the vantage namespace
POLICED = "13.248.0.30"  # media.whatsapp.lab
INTERVAL = 4.0
#: Rounds waited at most for a change to show (the round running when it happened may
#: still have seen the old state).
MAX_ROUNDS = 4

Metrics = dict[str, list[tuple[dict[str, str], float]]]


def config(lab: Lab) -> dict[str, Any]:
    tls = {"ca_file": str(lab.ca_file)}

    def https(host: str, address: str, **extra: Any) -> dict[str, Any]:
        return {"host": host, "address": address, "port": 443, "tls": tls, **extra}

    large = {"path": LARGE_PATH, "bytes": "1MiB"}
    return {
        "interval": f"{INTERVAL:g}s",
        "timeout": "3s",
        "networks": {
            name: {"source_address": lab.networks[name]["source_address"]} for name in NETWORKS
        },
        "canaries": {"example": https("example.lab", "93.184.216.34")},
        "services": {
            "whatsapp": {
                "endpoints": {"media": https("media.whatsapp.lab", POLICED, throughput=large)}
            },
            "telegram": {
                "endpoints": {"web": https("web.telegram.lab", "91.108.56.10", throughput=large)}
            },
        },
    }


def fetch(lab: Lab, path: str) -> str:
    code = (
        "import sys, urllib.request\n"
        "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())\n"
    )
    return lab.check_in("vantage", [sys.executable, "-c", code, f"http://127.0.0.1:{PORT}{path}"])


def scrape(lab: Lab) -> Metrics:
    out: Metrics = {}
    for family in text_string_to_metric_families(fetch(lab, "/metrics")):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


class Exporter:
    """The exporter process; counts the rounds its log says were judged."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.rounds = 0
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                if '"msg": "round judged"' in line:
                    self.rounds += 1
                self._changed.notify_all()

    def wait_round(self, after: int, timeout: float = 3 * INTERVAL) -> int:
        """Wait until a round later than round `after` is judged; the new count."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.rounds > after, timeout):
                pytest.fail(f"no round judged within {timeout:g}s; log:\n{self.tail()}")
            return self.rounds

    def tail(self) -> str:
        return "\n".join(self.lines[-30:])

    def records(self, msg: str) -> list[dict[str, Any]]:
        with self._changed:
            lines = list(self.lines)
        out = []
        for line in lines:
            if f'"msg": "{msg}"' in line:
                out.append(json.loads(line))
        return out

    def close(self) -> None:
        self._reader.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def exporter(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    path = Path(tmp_path_factory.mktemp("lab-throttle")) / "config.yaml"
    path.write_text(yaml.safe_dump(config(lab), sort_keys=False))
    with lab.technique(police(POLICED)):
        proc = lab.run_in(
            "vantage",
            [
                sys.executable,
                "-m",
                "exporter",
                f"--config.file={path}",
                f"--web.listen-address=127.0.0.1:{PORT}",
                "--log.format=json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        running = Exporter(proc)
        try:
            running.wait_round(0, timeout=4 * INTERVAL)
            yield running
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            running.close()


def per_tuple(metrics: Metrics, name: str) -> dict[tuple[str, str, str], float]:
    return {
        (labels["service"], labels["endpoint"], labels["network"]): value
        for labels, value in metrics.get(name, [])
        if labels["service"] != "canary"
    }


def verdicts(metrics: Metrics) -> dict[tuple[str, str, str], str]:
    return {
        (labels["service"], labels["endpoint"], labels["network"]): labels["verdict"]
        for labels, value in metrics["messaging_probe_verdict"]
        if value == 1.0
    }


def network_up(metrics: Metrics) -> dict[str, float]:
    return {labels["network"]: value for labels, value in metrics["messaging_network_up"]}


def down_since(metrics: Metrics) -> dict[str, float]:
    return {
        labels["network"]: value
        for labels, value in metrics.get("messaging_network_down_since_timestamp_seconds", [])
    }


def wait_for(lab: Lab, exporter: Exporter, done: Callable[[Metrics], bool]) -> Metrics:
    """Scrape after each judged round until `done` holds (at most MAX_ROUNDS rounds)."""
    rounds = exporter.rounds
    for _ in range(MAX_ROUNDS):
        rounds = exporter.wait_round(rounds)
        metrics = scrape(lab)
        if done(metrics):
            return metrics
    pytest.fail(f"not seen within {MAX_ROUNDS} rounds; log:\n{exporter.tail()}")


def test_the_policed_service_is_throttled_on_that_network_only(
    lab: Lab, exporter: Exporter
) -> None:
    metrics = scrape(lab)
    got = verdicts(metrics)
    assert got[("whatsapp", "media", "censor")] == "throttled", exporter.tail()
    assert got[("whatsapp", "media", "clean")] == "ok"
    assert got[("telegram", "web", "censor")] == "ok"  # the ISP leaves this one alone
    assert got[("telegram", "web", "clean")] == "ok"
    blocked = per_tuple(metrics, "messaging_probe_blocked")
    assert blocked == {
        ("whatsapp", "media", "censor"): 1.0,
        ("whatsapp", "media", "clean"): 0.0,
        ("telegram", "web", "censor"): 0.0,
        ("telegram", "web", "clean"): 0.0,
    }
    rates = per_tuple(metrics, "messaging_probe_throughput_bytes_per_second")
    assert set(rates) == set(blocked)
    assert rates[("whatsapp", "media", "censor")] < 0.05 * rates[("whatsapp", "media", "clean")]
    assert rates[("telegram", "web", "censor")] > 0.25 * rates[("telegram", "web", "clean")]
    # the evidence: the figures compared, on /probes
    detail = json.loads(
        fetch(
            lab,
            "/probes?service=whatsapp&endpoint=media&network=censor&resolver=none&family=4"
            "&format=json",
        )
    )
    assert detail["verdict"] == "throttled"
    assert detail["result"] == "success"  # slow, not failed
    assert "on network 'clean'" in detail["verdict_reason"]
    assert detail["verdict_reason"].startswith("throughput ")
    assert detail["throughput"]["url"].endswith(LARGE_PATH)
    assert detail["throughput"]["bytes_per_second"] > 0


def test_a_cut_uplink_is_network_down_never_blocked_and_clears_when_restored(
    lab: Lab, exporter: Exporter
) -> None:
    lab.set_internet_link("censor", up=False)
    try:
        down = wait_for(lab, exporter, lambda m: network_up(m).get("censor") == 0.0)
        assert network_up(down) == {"clean": 1.0, "censor": 0.0}
        since = down_since(down)
        assert set(since) == {"censor"}
        on_censor = {k: v for k, v in verdicts(down).items() if k[2] == "censor"}
        assert set(on_censor.values()) == {"network_down"}
        assert len(on_censor) == 3  # the canary too
        assert {
            k: v for k, v in per_tuple(down, "messaging_probe_blocked").items() if k[2] == "censor"
        } == {
            ("whatsapp", "media", "censor"): 0.0,
            ("telegram", "web", "censor"): 0.0,
        }
        # kept while it lasts: the next round says the same start
        exporter.wait_round(exporter.rounds)
        still = scrape(lab)
        assert network_up(still)["censor"] == 0.0
        assert down_since(still) == since
        [went] = exporter.records("network down")
        assert went["level"] == "warn"
        assert went["network"] == "censor"
    finally:
        lab.set_internet_link("censor", up=True)
    back = wait_for(lab, exporter, lambda m: network_up(m).get("censor") == 1.0)
    assert down_since(back) == {}
    assert "messaging_network_down_since_timestamp_seconds" not in back
    [returned] = exporter.records("network back up")
    assert returned["level"] == "warn"
    assert returned["network"] == "censor"
    assert returned["down_seconds"] >= INTERVAL
