"""QUIC blocking in the lab: the censoring ISP drops UDP 443 to one HTTP/3 service
(`chat.messenger.lab`, technique `quic-drop`) and leaves TCP 443 to it, and every other
QUIC flow, alone.

First at the socket level (the `quic` check's own `QuicProbe` through the exporter's Dialer
in the vantage namespace), then with the exporter as a real process in the vantage
namespace (the fixture approach of tests/test_lab_verdicts.py, on a small config): the
service is `quic_blocked` on the censoring network and `ok` on the clean one, an HTTP/3
service the censor leaves alone is `ok` on both, and nothing is blocked on the clean network.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.model import HttpOptions, Network, TlsOptions
from exporter.model.observation import ErrorKind, QuicObservation
from exporter.probes.network import Dialer
from exporter.probes.quic import QuicProbe
from tests.lab.topology import QUIC_ADDRESS, Lab

pytest_plugins = ("tests.lab.conftest_plugin",)

NETWORKS = ("clean", "censor")
PORT = 10055  # inside the vantage namespace
INTERVAL = 5.0
TIMEOUT = 2.0
#: Seconds a socket-level check that should time out is given.
SHORT = 1.0

Metrics = dict[str, list[tuple[dict[str, str], float]]]


def dialer(lab: Lab, network: str) -> Dialer:
    net = lab.networks[network]
    return Dialer(Network(name=network, netns=lab.vantage, source_address=net["source_address"]))


async def quic(lab: Lab, network: str, endpoint: str, budget: float) -> QuicObservation:
    e = lab.endpoints[endpoint]
    probe = QuicProbe(
        dialer(lab, network),
        e["address"],
        e["port"],
        server_name=e["host"],
        tls=TlsOptions(ca_file=str(lab.ca_file)),
        http=HttpOptions(),
        authority=e["host"],
        user_agent="lab-test",
    )
    try:
        async with asyncio.timeout(budget):
            return await probe.run()
    except TimeoutError:
        return probe.observation(error=ErrorKind.TIMEOUT, detail="cut by the test")


# --- the technique at the socket level ---------------------------------------------------------


async def test_quic_drop_is_only_udp_443_to_one_address_on_censor(lab: Lab) -> None:
    chat = lab.endpoints["messenger-chat"]
    assert chat["address"] == QUIC_ADDRESS
    assert chat["expect"] == {
        "clean": "ok",
        "censor": "quic-drop",
        "dnsint": "ok",
        "dead": "unreachable",
    }
    assert chat["http3"]
    assert lab.endpoints["canary"]["http3"]
    for network in ("clean", "dnsint"):
        obs = await quic(lab, network, "messenger-chat", 3.0)
        assert obs.error is None, (network, obs.detail)
        assert (obs.alpn, obs.status) == ("h3", 200)
    t0 = time.perf_counter()
    dropped = await quic(lab, "censor", "messenger-chat", SHORT)
    assert dropped.error is ErrorKind.TIMEOUT  # silence: UDP has no reset
    assert not dropped.connected
    assert time.perf_counter() - t0 < SHORT + 0.5
    other = await quic(lab, "censor", "canary", 3.0)  # QUIC itself is not blocked there
    assert other.error is None, other.detail
    assert "udp dport 443 drop" in lab.nft("isp-censor", "list chain inet lab forward")


# --- the exporter ------------------------------------------------------------------------------


def config(lab: Lab) -> dict[str, Any]:
    tls = {"ca_file": str(lab.ca_file)}
    h3 = {"http3": True}
    return {
        "interval": f"{INTERVAL:g}s",
        "timeout": f"{TIMEOUT:g}s",
        "resolvers": {"google": {"type": "udp", "address": lab.resolvers["google"]["address"]}},
        "networks": {
            name: {"source_address": lab.networks[name]["source_address"]} for name in NETWORKS
        },
        "canaries": {"example": {"host": "example.lab", "port": 443, "tls": tls}},
        "services": {
            "messenger": {
                "endpoints": {
                    "chat": {"host": "chat.messenger.lab", "port": 443, "tls": tls, "quic": h3}
                }
            },
            # An HTTP/3 service the censor leaves alone: its QUIC works on both networks.
            "example": {
                "endpoints": {"web": {"host": "example.lab", "port": 443, "tls": tls, "quic": h3}}
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
    """The exporter process; `judged` is set when its log says a round was judged."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.judged = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if '"msg": "round judged"' in line:
                self.judged.set()

    def tail(self) -> str:
        return "\n".join(self.lines[-30:])

    def close(self) -> None:
        self._reader.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def exporter(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    path = Path(tmp_path_factory.mktemp("lab-quic")) / "config.yaml"
    path.write_text(yaml.safe_dump(config(lab), sort_keys=False))
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
        # The first round is spread over the interval; each probe takes at most its timeout.
        if not running.judged.wait(3 * INTERVAL + TIMEOUT):
            pytest.fail("no round judged in time; log:\n" + running.tail())
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
def metrics(lab: Lab, exporter: Exporter) -> Metrics:
    return scrape(lab)


def per_tuple(metrics: Metrics, name: str) -> dict[tuple[str, str, str], float]:
    return {
        (labels["service"], labels["endpoint"], labels["network"]): value
        for labels, value in metrics.get(name, [])
        if labels["family"] == "4"
    }


def verdicts(metrics: Metrics) -> dict[tuple[str, str, str], str]:
    return {
        (labels["service"], labels["endpoint"], labels["network"]): labels["verdict"]
        for labels, value in metrics["messaging_probe_verdict"]
        if value == 1.0
    }


def test_quic_drop_is_quic_blocked_on_censor_only(metrics: Metrics, exporter: Exporter) -> None:
    got = verdicts(metrics)
    assert got == {
        ("messenger", "chat", "censor"): "quic_blocked",
        ("messenger", "chat", "clean"): "ok",
        ("example", "web", "censor"): "ok",
        ("example", "web", "clean"): "ok",
        ("canary", "example", "censor"): "ok",
        ("canary", "example", "clean"): "ok",
    }, exporter.tail()
    blocked = per_tuple(metrics, "messaging_probe_blocked")
    assert blocked[("messenger", "chat", "censor")] == 1.0
    assert {k: v for k, v in blocked.items() if k[2] == "clean"} == {
        ("messenger", "chat", "clean"): 0.0,
        ("example", "web", "clean"): 0.0,
        ("canary", "example", "clean"): 0.0,
    }
    up = {labels["network"]: value for labels, value in metrics["messaging_network_up"]}
    assert up == {"clean": 1.0, "censor": 1.0}  # blocking QUIC is not a shutdown
    phases = {
        (labels["service"], labels["network"], labels["phase"])
        for labels, _ in metrics["messaging_probe_duration_seconds"]
    }
    assert ("messenger", "censor", "quic") in phases
    assert ("messenger", "clean", "quic") in phases


def test_the_evidence_is_on_probes(lab: Lab, exporter: Exporter) -> None:
    def detail(network: str) -> dict[str, Any]:
        query = f"service=messenger&endpoint=chat&network={network}&resolver=google&family=4"
        result: dict[str, Any] = json.loads(fetch(lab, f"/probes?{query}&format=json"))
        return result

    censor, clean = detail("censor"), detail("clean")
    assert censor["verdict"] == "quic_blocked"
    assert censor["result"] == "timeout"
    assert censor["failed_phase"] == "quic"
    assert censor["http"]["status"] == 200  # TCP+TLS+HTTP to the same address worked
    assert censor["quic"]["address"] == QUIC_ADDRESS
    assert censor["quic"]["error"] == "timeout"
    assert censor["quic"]["version"] is None
    assert "on network 'clean'" in censor["verdict_reason"]
    assert "TCP+TLS" in censor["verdict_reason"]
    assert clean["quic"]["error"] is None
    assert clean["quic"]["alpn"] == "h3"
    assert clean["quic"]["status"] == 200
    assert clean["quic"]["url"] == "https://chat.messenger.lab/"
