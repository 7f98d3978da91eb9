"""The shipped alertmanager.yml: `amtool check-config` clean, the routing tree sends each alert
where docs/alerts.md says, and a real Alertmanager (on 127.0.0.1, notifications held back)
applies the inhibitions: a network down mutes the alerts of that network from that exporter,
an exporter down mutes everything from that instance, a cross-vantage block mutes the plain
blocked alert of the same network and method."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from tests import monitoring


def amtool(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which("amtool")
    assert path is not None, "amtool is missing: apt-get install prometheus-alertmanager"
    return subprocess.run(
        [path, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "HOME": str(home)},  # no ~/.config/amtool of the machine
    )


def test_amtool_check_config_is_clean(tmp_path: Path) -> None:
    proc = amtool("check-config", str(monitoring.ALERTMANAGER_YML), home=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


ROUTES = [
    # severity and service: critical pages and reaches the service's followers
    ({"alertname": "MessagingServiceBlocked", "severity": "critical", "service": "telegram",
      "network": "censor", "method": "tcp_blocked"}, {"critical", "telegram"}),
    ({"alertname": "MessagingServiceBlocked", "severity": "critical", "service": "whatsapp",
      "network": "censor", "method": "tls_blocked"}, {"critical", "whatsapp"}),
    # a warning about a service: its followers and the warning channel
    ({"alertname": "MessagingServiceDown", "severity": "warning", "service": "signal"},
     {"signal", "warning"}),
    # the cross-vantage form: routed like any critical alert about a service
    ({"alertname": "MessagingServiceBlockedCrossVantage", "severity": "critical",
      "service": "signal", "endpoint": "cdn", "network": "mci", "vantage": "ir-tehran",
      "method": "tls_blocked"}, {"critical", "signal"}),
    # no service: by severity only
    ({"alertname": "MessagingNetworkDown", "severity": "critical", "network": "dead"},
     {"critical"}),
    ({"alertname": "MessagingDnsTampered", "severity": "warning", "network": "censor",
      "resolver": "isp"}, {"warning"}),
    # a service without a channel of its own (the canaries)
    ({"alertname": "MessagingServiceDown", "severity": "warning", "service": "canary"},
     {"warning"}),
    # the exporter's own health
    ({"alertname": "MessagingExporterDown", "severity": "critical"}, {"monitoring"}),
    ({"alertname": "MessagingProbesStale", "severity": "warning"}, {"monitoring"}),
]  # fmt: skip


@pytest.mark.parametrize(("labels", "receivers"), ROUTES, ids=[r[0]["alertname"] for r in ROUTES])
def test_routing(labels: dict[str, str], receivers: set[str], tmp_path: Path) -> None:
    proc = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={monitoring.ALERTMANAGER_YML}",
        *(f"{k}={v}" for k, v in labels.items()),
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(proc.stdout.strip().split(",")) == receivers


def test_every_receiver_is_reachable_and_has_a_way_out() -> None:
    config = yaml.safe_load(monitoring.ALERTMANAGER_YML.read_text())
    names = {r["name"] for r in config["receivers"]}

    def used(route: dict[str, Any]) -> set[str]:
        out = {route["receiver"]} if "receiver" in route else set()
        for child in route.get("routes", []):
            out |= used(child)
        return out

    assert used(config["route"]) == names
    for receiver in config["receivers"]:
        assert receiver.get("webhook_configs"), receiver["name"]
    text = monitoring.ALERTMANAGER_YML.read_text()
    assert "never be delivered ONLY through that messenger" in text


# --- inhibition, with a real Alertmanager ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest_asyncio.fixture
async def alertmanager(tmp_path: Path) -> AsyncIterator[str]:
    """The shipped config, with receivers pointed at the discard port on 127.0.0.1 and
    group_wait of an hour: nothing is notified while the test runs, nothing leaves loopback."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary is not None, "apt-get install prometheus-alertmanager"
    config = yaml.safe_load(monitoring.ALERTMANAGER_YML.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = "http://127.0.0.1:9/"
    config["route"]["group_wait"] = "1h"
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = _free_port()
    log = tmp_path / "alertmanager.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={path}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while True:
                assert proc.returncode is None, log.read_text()
                try:
                    async with http.get(f"{base}/-/ready") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "alertmanager not ready in 30 s"
                await asyncio.sleep(0.1)
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def alert(**labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {"job": "messaging-exporter", **labels},
        "annotations": {"summary": "test"},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }


SENT = {
    # vp1: dnsint is down
    "net-down": alert(alertname="MessagingNetworkDown", severity="critical", instance="vp1",
                      network="dnsint"),
    "blocked-on-down-net": alert(alertname="MessagingServiceBlocked", severity="critical",
                                 instance="vp1", network="dnsint", service="whatsapp",
                                 method="tcp_blocked"),
    "intercepted-on-down-net": alert(alertname="MessagingResolverIntercepted",
                                     severity="warning", instance="vp1", network="dnsint",
                                     resolver="nobody"),
    "blocked-elsewhere": alert(alertname="MessagingServiceBlocked", severity="critical",
                               instance="vp1", network="censor", service="whatsapp",
                               method="tls_blocked"),
    "service-down": alert(alertname="MessagingServiceDown", severity="warning", instance="vp1",
                          service="signal"),
    # vp2 also sees dnsint (its own network of that name) blocked: another vantage point
    "blocked-other-instance": alert(alertname="MessagingServiceBlocked", severity="critical",
                                    instance="vp2", network="dnsint", service="whatsapp",
                                    method="tcp_blocked"),
    # vp2: signal is blocked on mci by two methods; the SNI reset is reachable from another
    # vantage point (cross-vantage), the DNS lie is not contradicted anywhere.
    "cross-vantage": alert(alertname="MessagingServiceBlockedCrossVantage", severity="critical",
                           instance="vp2", network="mci", service="signal", endpoint="cdn",
                           vantage="ir-tehran", method="tls_blocked"),
    "blocked-confirmed": alert(alertname="MessagingServiceBlocked", severity="critical",
                               instance="vp2", network="mci", service="signal",
                               method="tls_blocked"),
    "blocked-other-method": alert(alertname="MessagingServiceBlocked", severity="critical",
                                  instance="vp2", network="mci", service="signal",
                                  method="dns_tampered"),
    "blocked-other-network": alert(alertname="MessagingServiceBlocked", severity="critical",
                                   instance="vp2", network="fixed", service="signal",
                                   method="tls_blocked"),
    # vp3 cannot be scraped
    "exporter-down": alert(alertname="MessagingExporterDown", severity="critical",
                           instance="vp3"),
    "vp3-blocked": alert(alertname="MessagingServiceBlocked", severity="critical",
                         instance="vp3", network="censor", service="telegram",
                         method="tcp_blocked"),
    "vp3-net-down": alert(alertname="MessagingNetworkDown", severity="critical", instance="vp3",
                          network="clean"),
    "vp3-stale": alert(alertname="MessagingProbesStale", severity="warning", instance="vp3"),
}  # fmt: skip
SUPPRESSED = {"blocked-on-down-net", "intercepted-on-down-net", "vp3-blocked", "vp3-net-down",
              "vp3-stale", "blocked-confirmed"}  # fmt: skip


async def test_inhibitions(alertmanager: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{alertmanager}/api/v2/alerts", json=list(SENT.values())) as resp:
            assert resp.status == 200, await resp.text()
        key = {
            tuple(sorted(a["labels"].items())): name for name, a in SENT.items()
        }  # labels -> name
        # The inhibitor takes the new alerts in asynchronously: ask until it has them all.
        deadline = time.monotonic() + 20
        while True:
            async with http.get(f"{alertmanager}/api/v2/alerts") as resp:
                assert resp.status == 200
                got = {
                    key[tuple(sorted(a["labels"].items()))]: a["status"] for a in await resp.json()
                }
            suppressed = {name for name, status in got.items() if status["state"] == "suppressed"}
            if got.keys() == SENT.keys() and suppressed == SUPPRESSED:
                break
            if time.monotonic() > deadline:
                assert got.keys() == SENT.keys()
                assert suppressed == SUPPRESSED, got
            await asyncio.sleep(0.1)
        for name in SUPPRESSED:
            assert got[name]["inhibitedBy"], name
            assert not got[name]["silencedBy"], name
        for name in SENT.keys() - SUPPRESSED:
            assert got[name]["state"] == "active", (name, got[name])
