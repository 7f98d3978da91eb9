"""The fleet examples (deploy/fleet/): promtool accepts the central and the agent configs, the
file_sd targets carry the vantage labels, and a real central Prometheus collects two exporters
on 127.0.0.1, one scraped over TLS with basic auth through file_sd, one pushed by a real
Prometheus agent with remote_write, each series labelled with its vantage point."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
import yaml

from tests.test_webconfig import (
    HASH,
    PASSWORD,
    Certs,
    free_port,
    running,
    tail,
    write_web_config,
)

REPO = Path(__file__).resolve().parent.parent
FLEET = REPO / "deploy" / "fleet"
RULES = REPO / "prometheus" / "rules"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found is not None, "promtool is missing: apt-get install prometheus"
    return subprocess.run(
        [found, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def central_config(tmp_path: Path) -> dict[str, Any]:
    """deploy/fleet/prometheus.yml with its files made local (same keys otherwise)."""
    config = yaml.safe_load((FLEET / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(RULES / "*.yml")]
    (job,) = config["scrape_configs"]
    placeholders = tmp_path / "placeholders"
    placeholders.mkdir(exist_ok=True)
    (placeholders / "ca.crt").write_text("")
    (placeholders / "password").write_text("x\n")
    job["tls_config"]["ca_file"] = str(placeholders / "ca.crt")
    job["basic_auth"]["password_file"] = str(placeholders / "password")
    job["file_sd_configs"][0]["files"] = [str(FLEET / "targets" / "*.yml")]
    return config


def test_promtool_checks_the_central_config(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(central_config(tmp_path)))
    proc = promtool("check", "config", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "messaging.rules.yml" in proc.stdout


def test_promtool_checks_the_agent_config(tmp_path: Path) -> None:
    config = yaml.safe_load((FLEET / "agent.yml").read_text())
    assert "rule_files" not in config  # an agent evaluates no rules
    (tmp_path / "password").write_text("x\n")
    config["remote_write"][0]["basic_auth"]["password_file"] = str(tmp_path / "password")
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(config))
    proc = promtool("check", "config", path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    labels = config["scrape_configs"][0]["static_configs"][0]["labels"]
    assert set(labels) == {"vantage", "country", "asn"}


def test_file_sd_targets_carry_the_vantage_labels() -> None:
    vantages = set()
    for path in sorted((FLEET / "targets").glob("*.yml")):
        groups = yaml.safe_load(path.read_text())
        assert isinstance(groups, list)
        for group in groups:
            assert set(group) == {"targets", "labels"}
            for target in group["targets"]:
                assert re.fullmatch(r"[a-z0-9.-]+:\d+", target), target
            labels = group["labels"]
            assert set(labels) == {"vantage", "country", "asn"}
            assert re.fullmatch(r"[A-Z]{2}", labels["country"])
            assert re.fullmatch(r"AS\d+", labels["asn"])
            assert labels["vantage"] not in vantages
            vantages.add(labels["vantage"])
    assert len(vantages) >= 2


# ---- a real central Prometheus, a real agent


@pytest.fixture
def fleet_certs(tmp_path: Path) -> Certs:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.crt"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    return Certs(tmp_path, ca)


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    prometheus = shutil.which("prometheus")
    assert prometheus is not None, "prometheus is missing: apt-get install prometheus"
    with log.open("wb") as out:
        return subprocess.Popen(
            [prometheus, *argv], stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def write_configs(
    d: Path, scraped_port: int, pushed_port: int, central_port: int
) -> tuple[Path, Path]:
    """The shipped central and agent configs, pointed at the exporters on 127.0.0.1."""
    central = central_config(d)
    central.pop("alerting")
    central["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    (job,) = central["scrape_configs"]
    job["scrape_timeout"] = "1s"
    job["tls_config"]["ca_file"] = str(d / "ca.crt")
    (d / "password").write_text(PASSWORD + "\n")
    job["basic_auth"]["password_file"] = str(d / "password")
    (d / "targets").mkdir()
    (d / "targets" / "local.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "targets": [f"127.0.0.1:{scraped_port}"],
                    "labels": {"vantage": "scraped", "country": "DE", "asn": "AS64500"},
                }
            ]
        )
    )
    job["file_sd_configs"][0]["files"] = [str(d / "targets" / "*.yml")]
    job["file_sd_configs"][0]["refresh_interval"] = "1s"
    central_path = d / "central.yml"
    central_path.write_text(yaml.safe_dump(central))

    agent = yaml.safe_load((FLEET / "agent.yml").read_text())
    agent["global"] = {"scrape_interval": "1s"}
    static = agent["scrape_configs"][0]["static_configs"][0]
    static["targets"] = [f"127.0.0.1:{pushed_port}"]
    static["labels"] = {"vantage": "pushed", "country": "IR", "asn": "AS64501"}
    (remote,) = agent["remote_write"]
    remote.pop("basic_auth")  # the test's central Prometheus takes writes without auth
    remote["url"] = f"http://127.0.0.1:{central_port}/api/v1/write"
    remote["queue_config"]["batch_send_deadline"] = "1s"
    agent_path = d / "agent.yml"
    agent_path.write_text(yaml.safe_dump(agent))
    return central_path, agent_path


async def test_a_central_prometheus_collects_scraped_and_pushed_vantages(
    fleet_certs: Certs, tmp_path_factory: pytest.TempPathFactory
) -> None:
    d = fleet_certs.dir
    pushed_dir = tmp_path_factory.mktemp("pushed")
    (pushed_dir / "web.yml").write_text("")
    secured = write_web_config(fleet_certs, users={"prometheus": HASH})
    async with (
        running(d, secured) as (_, scraped_port),
        running(pushed_dir, pushed_dir / "web.yml") as (_, pushed_port),
    ):
        central_port, agent_port = free_port(), free_port()
        central_path, agent_path = await asyncio.to_thread(
            write_configs, d, scraped_port, pushed_port, central_port
        )
        logs = {"central": d / "central.log", "agent": d / "agent.log"}
        procs = {
            "central": start(
                [
                    f"--config.file={central_path}",
                    f"--storage.tsdb.path={d / 'central-data'}",
                    f"--web.listen-address=127.0.0.1:{central_port}",
                    "--web.enable-remote-write-receiver",
                ],
                logs["central"],
            ),
            "agent": start(
                [
                    "--enable-feature=agent",
                    f"--config.file={agent_path}",
                    f"--storage.agent.path={d / 'agent-data'}",
                    f"--web.listen-address=127.0.0.1:{agent_port}",
                ],
                logs["agent"],
            ),
        }
        try:
            query = 'count by (vantage, country, asn) (up{job="messaging-exporter"} == 1)'
            deadline = time.monotonic() + 45
            found: set[tuple[str, str, str]] = set()
            want = {("scraped", "DE", "AS64500"), ("pushed", "IR", "AS64501")}
            async with aiohttp.ClientSession() as session:
                while found != want:
                    for name, proc in procs.items():
                        assert proc.poll() is None, f"{name} exited:\n{tail(logs[name])}"
                    assert time.monotonic() < deadline, (
                        f"found only {found}\n{tail(logs['central'])}\n{tail(logs['agent'])}"
                    )
                    await asyncio.sleep(0.5)
                    try:
                        async with session.get(
                            f"http://127.0.0.1:{central_port}/api/v1/query",
                            params={"query": query},
                        ) as resp:
                            body = await resp.json()
                    except aiohttp.ClientError:
                        continue
                    found = {
                        (r["metric"]["vantage"], r["metric"]["country"], r["metric"]["asn"])
                        for r in body["data"]["result"]
                    }
        finally:
            for proc in procs.values():
                await asyncio.to_thread(stop, proc)
