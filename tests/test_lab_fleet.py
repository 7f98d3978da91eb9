"""A fleet in the censorship lab: three exporters (real processes, one config each) in three
vantage namespaces of their own, and one central Prometheus in the lab's internet namespace
that scrapes them through their ISPs, with the shipped fleet config (file_sd targets carrying
`vantage`, `country`, `asn`) and the shipped rule files (only their `for:` shortened).

One vantage is a customer of the censoring ISP, whose SNI filter resets the ClientHello for
web.whatsapp.lab; the other two are customers of the honest ISP. Each exporter has that one
network only, so its own control is the control SNI: the censored exporter judges
whatsapp/web `tls_blocked`, the clean ones `ok`. The cross-vantage alert
(MessagingServiceBlockedCrossVantage: blocked here, reachable from other vantage points) must
fire for the censored vantage only; an outage seen the same everywhere must not raise it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from exporter.probes.network import namespace
from tests import monitoring
from tests.lab.topology import OUTAGE_ADDRESS, SNI_ADDRESS, Lab

pytest_plugins = ("tests.lab.conftest_plugin",)

REPO = Path(__file__).resolve().parent.parent
FLEET = REPO / "deploy" / "fleet"
ALERT = "MessagingServiceBlockedCrossVantage"
#: (vantage label, ISP network of the lab, country, asn): one censored, two clean.
VANTAGES = (
    ("censored", "censor", "IR", "AS64501"),
    ("clean-a", "clean", "DE", "AS64502"),
    ("clean-b", "clean", "NL", "AS64503"),
)
CENSORED = "censored"
EXPORTER_PORT = 10053  # in each vantage namespace: nothing else listens there
#: What every `for:` of the shipped rules becomes: a few evaluations (every second) and a few
#: exporter rounds (every 2 s). Nothing changes during the test, so no transition to damp.
FOR = "5s"
#: A bound for every wait (startup, a round, a scrape, `for`); the expected path takes ~15 s.
WAIT = 45.0


def exporter_config(lab: Lab, vantage: dict[str, Any]) -> dict[str, Any]:
    """One network (the vantage's only uplink) and endpoints dialled by address, so no DNS is
    involved: whatsapp/web is SNI-filtered on the censoring ISP (its control SNI passes),
    signal/storage is an outage everywhere (nothing listens), messenger/web-tls is clean."""
    tls = {"ca_file": str(lab.ca_file)}

    def https(host: str, address: str, **extra: Any) -> dict[str, Any]:
        return {"host": host, "address": address, "port": 443, "checks": ["tcp", "tls", "http"],
                "tls": tls, **extra}  # fmt: skip

    return {
        "interval": "2s",
        "timeout": "1500ms",
        # The ISP's own resolver: the only one reachable from the vantage. Unused by the
        # endpoints, named so that nothing falls back to the host's resolv.conf.
        "resolvers": {"isp": {"type": "udp", "address": vantage["gateway"]}},
        "networks": {"uplink": {}},
        "canaries": {"example": https("example.lab", "93.184.216.34")},
        "services": {
            "whatsapp": {
                "endpoints": {
                    "web": https("web.whatsapp.lab", SNI_ADDRESS, control_sni="static.whatsapp.lab")
                }
            },
            "signal": {"endpoints": {"storage": {"address": OUTAGE_ADDRESS, "port": 443}}},
            "messenger": {"endpoints": {"web-tls": https("edge.messenger.lab", "157.240.0.35")}},
        },
    }


def central_config(rules: Path, targets: Path) -> dict[str, Any]:
    """deploy/fleet/prometheus.yml as shipped, but plain HTTP (TLS and basic auth are
    tests/test_fleet.py's), no Alertmanager (the test reads the alerts from Prometheus), and
    every interval one second."""
    config: dict[str, Any] = yaml.safe_load((FLEET / "prometheus.yml").read_text())
    config.pop("alerting")
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(rules / "*.yml")]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "messaging-exporter"
    for key in ("scheme", "tls_config", "basic_auth"):
        job.pop(key)
    job["scrape_timeout"] = "1s"
    (sd,) = job["file_sd_configs"]
    sd["files"] = [str(targets / "*.yml")]
    sd["refresh_interval"] = "1s"
    return config


def free_port(ns: str) -> int:
    """A port free on a lab namespace's loopback (nothing else binds there meanwhile)."""
    with namespace(ns):
        sock = socket.socket()
    with sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Fleet:
    lab: Lab
    ns: str  # where the central Prometheus runs (the lab's internet)
    port: int
    procs: dict[str, subprocess.Popen[Any]]
    logs: dict[str, Path]
    instances: dict[str, str]  # vantage -> instance label

    def tail(self) -> str:
        out = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace") if path.exists() else ""
            out.append(f"--- {name} (last lines)\n" + "\n".join(text.splitlines()[-15:]))
        return "\n".join(out)

    def request(self, path: str, **params: str) -> tuple[int, str]:
        """GET a path of Prometheus from inside its namespace: (status, body)."""
        with namespace(self.ns):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.sock = sock
        try:
            conn.request("GET", f"{path}?{urlencode(params)}" if params else path)
            resp = conn.getresponse()
            body = resp.read().decode()
        finally:
            conn.close()
        return resp.status, body

    def get(self, path: str, **params: str) -> Any:
        """GET a Prometheus API path; its `data`."""
        status, body = self.request(path, **params)
        assert status == 200, f"{path} {params}: {status} {body}"
        return json.loads(body)["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get("/api/v1/query", query=expr)["result"]
        return result

    def query_range(self, expr: str, seconds: int) -> list[dict[str, Any]]:
        end = time.time()
        result: list[dict[str, Any]] = self.get(
            "/api/v1/query_range",
            query=expr,
            start=f"{end - seconds:.3f}",
            end=f"{end:.3f}",
            step="1",
        )["result"]
        return result

    def alive(self) -> None:
        dead = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
        assert not dead, f"exited: {dead}\n{self.tail()}"

    def until(self, expr: str, what: str) -> list[dict[str, Any]]:
        """Poll Prometheus until `expr` has a result (readiness: there is no event to await)."""
        deadline = time.monotonic() + WAIT
        while True:
            self.alive()
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: `{expr}` still empty after {WAIT} s\n{self.tail()}")
            time.sleep(0.5)


def _terminate(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def fleet(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    prometheus = shutil.which("prometheus")
    assert prometheus is not None, "prometheus is missing: apt-get install prometheus"
    directory = Path(tmp_path_factory.mktemp("lab-fleet"))
    rules = directory / "rules"
    rules.mkdir()
    for path in monitoring.rule_files():
        text, replaced = monitoring.shorten_for(path.read_text(), FOR)
        assert replaced > 0
        (rules / path.name).write_text(text)
    targets = directory / "targets"
    targets.mkdir()

    procs: dict[str, subprocess.Popen[Any]] = {}
    logs: dict[str, Path] = {}
    instances: dict[str, str] = {}
    groups = []
    added: list[str] = []
    try:
        for name, network, country, asn in VANTAGES:
            vantage = lab.add_vantage(name, network)
            added.append(name)
            instance = f"{vantage['address']}:{EXPORTER_PORT}"
            instances[name] = instance
            groups.append({"targets": [instance], "labels": {"vantage": name, "country": country,
                                                             "asn": asn}})  # fmt: skip
            config = directory / f"exporter-{name}.yml"
            config.write_text(yaml.safe_dump(exporter_config(lab, vantage), sort_keys=False))
            logs[name] = directory / f"exporter-{name}.log"
            with logs[name].open("wb") as log:
                procs[name] = lab.run_in(
                    vantage["role"],
                    [
                        sys.executable,
                        "-m",
                        "exporter",
                        f"--config.file={config}",
                        f"--web.listen-address={instance}",
                        "--log.level=warn",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                )
        (targets / "vantages.yml").write_text(yaml.safe_dump(groups, sort_keys=False))
        central = directory / "prometheus.yml"
        central.write_text(yaml.safe_dump(central_config(rules, targets), sort_keys=False))
        port = free_port(lab.namespaces["internet"])
        logs["prometheus"] = directory / "prometheus.log"
        with logs["prometheus"].open("wb") as log:
            procs["prometheus"] = lab.run_in(
                "internet",
                [
                    prometheus,
                    f"--config.file={central}",
                    f"--storage.tsdb.path={directory / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        built = Fleet(lab, lab.namespaces["internet"], port, procs, logs, instances)
        deadline = time.monotonic() + WAIT
        while True:
            built.alive()
            with contextlib.suppress(OSError):
                if built.request("/-/ready")[0] == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus not ready after {WAIT} s\n{built.tail()}")
            time.sleep(0.2)
        # Every vantage scraped through its ISP and judged (its canary ok: the network is up).
        built.until(
            'count(count by (vantage) (messaging_probe_verdict{service="canary",verdict="ok"}'
            " == 1)) == 3",
            "every vantage scraped and judged",
        )
        yield built
    finally:
        for proc in procs.values():
            _terminate(proc)
        for name in added:
            lab.remove_vantage(name)


def test_the_cross_vantage_alert_fires_for_the_censored_vantage_only(fleet: Fleet) -> None:
    firing = fleet.until(
        f'ALERTS{{alertname="{ALERT}",alertstate="firing",vantage="{CENSORED}"}}',
        "the cross-vantage alert firing for the censored vantage",
    )
    (alert,) = [a["metric"] for a in firing]
    assert alert["service"] == "whatsapp"
    assert alert["endpoint"] == "web"
    assert alert["method"] == "tls_blocked"
    assert alert["network"] == "uplink"
    assert (alert["country"], alert["asn"]) == ("IR", "AS64501")
    assert alert["instance"] == fleet.instances[CENSORED]

    # The evidence behind it: the clean vantages reach the endpoint the censored one cannot.
    verdicts = {
        s["metric"]["vantage"]: s["metric"]["verdict"]
        for s in fleet.query(
            'messaging_probe_verdict{service="whatsapp",endpoint="web",family="4"} == 1'
        )
    }
    assert verdicts == {"censored": "tls_blocked", "clean-a": "ok", "clean-b": "ok"}
    others = fleet.query(
        'messaging:probe_ok:other_vantages{service="whatsapp",endpoint="web",vantage="censored"}'
    )
    assert [float(s["value"][1]) for s in others] == [2.0]

    # Nowhere else, in any state, at any time of the run: not for the clean vantages (they
    # had the same time, and judge the endpoint ok), not for the outage (down everywhere).
    elsewhere = fleet.query(
        f'count_over_time(ALERTS{{alertname="{ALERT}",vantage!="{CENSORED}"}}[10m])'
        f' or count_over_time(ALERTS{{alertname="{ALERT}",service!="whatsapp"}}[10m])'
    )
    assert not elsewhere, elsewhere
    storage = fleet.query('messaging_probe_verdict{service="signal",endpoint="storage"} == 1')
    assert {s["metric"]["vantage"]: s["metric"]["verdict"] for s in storage} == {
        name: "down" for name, *_ in VANTAGES
    }
    # Prometheus' own view of the active alerts agrees with the ALERTS series.
    active = [
        a["labels"]["vantage"]
        for a in fleet.get("/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == ALERT
    ]
    assert active == [CENSORED]


def test_the_fleet_dashboard_shows_the_vantage_points_side_by_side(fleet: Fleet) -> None:
    """Every query of the fleet dashboard, with Grafana's All values, on this Prometheus:
    each returns data, and the matrices say what the lab does."""
    board = monitoring.load_dashboard(monitoring.DASHBOARDS_DIR / "messaging-fleet.json")
    values = {"vantage": ".*", "instance": ".*", "service": ".*", "__rate_interval": "15s"}
    for variable in monitoring.variables(board):
        if variable["type"] == "query":
            selector, label = monitoring.parse_label_values(monitoring.variable_query(variable))
            assert selector is not None
            found = {
                s["metric"].get(label) for s in fleet.query(monitoring.substitute(selector, values))
            }
            assert found - {None}, variable["name"]
    results = {}
    for query in monitoring.panel_queries(board):
        expr = monitoring.substitute(query.expr, values)
        result = fleet.query(expr) if query.instant else fleet.query_range(expr, 30)
        assert result, f"{query.name}: no data for {expr}"
        results[query.panel] = result

    def cells(panel: str, row: str) -> dict[tuple[str, str], float]:
        return {
            (s["metric"][row], s["metric"]["vantage"]): float(s["value"][1]) for s in results[panel]
        }

    reach = cells("Reachable from each vantage point", "target")
    assert reach[("whatsapp/web", "censored")] == 0
    assert reach[("whatsapp/web", "clean-a")] == reach[("whatsapp/web", "clean-b")] == 1
    assert {v for (target, _), v in reach.items() if target == "messenger/web-tls"} == {1}
    assert {v for (target, _), v in reach.items() if target == "signal/storage"} == {0}
    others = cells("Other vantage points reaching it", "target")
    assert others[("whatsapp/web", "censored")] == 2
    assert others[("whatsapp/web", "clean-a")] == 1
    worst = cells("Worst verdict by vantage point", "service")
    # 8 tls_blocked at the censored vantage; 3 down (signal's outage) everywhere
    assert worst[("whatsapp", "censored")] == 8
    assert worst[("whatsapp", "clean-a")] == worst[("whatsapp", "clean-b")] == 0
    assert {worst[("signal", name)] for name, *_ in VANTAGES} == {3}
    vantages = {s["metric"]["vantage"] for s in results["Vantage points"]}
    assert vantages == {name for name, *_ in VANTAGES}
