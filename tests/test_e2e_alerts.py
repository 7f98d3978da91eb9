"""The shipped monitoring, end to end, in the censorship lab: the exporter in the vantage
namespace, a real Prometheus scraping it every second with the shipped rule files (only their
`for:` shortened), a real Alertmanager with the shipped routing (only the receiver URLs and the
group timings changed) and a webhook receiver in this test.

- A block turned on in the lab is delivered as "blocked" with the right service, network and
  method; turned off, as resolved.
- A network taken down is delivered as "network down", and nothing is ever "blocked" on it.
- Every query of every dashboard panel and every recording rule runs on that Prometheus and
  returns data.

Prometheus, Alertmanager and the webhook's listening socket all live in the vantage namespace
(on its 127.0.0.1); the test reaches them with sockets created there.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
import pytest_asyncio
import yaml
from aiohttp import web

from exporter.probes.network import namespace
from tests import monitoring
from tests.lab.topology import STUN_PUBLIC, Lab, Rule

pytest_plugins = ("tests.lab.conftest_plugin",)
# Each test waits on the pipeline a few times (WAIT each at most): more than the suite's 120 s.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

NETWORKS = ("clean", "censor", "dnsint")
#: The network the test takes down: nothing is blocked on it before.
CUT = "dnsint"
#: What every `for:` of the shipped rules becomes: a few rounds (interval 3s), as the shipped
#: values are a few rounds of the default 60s. It must outlast a transition: the round in which
#: a network goes down (or comes back) can judge the tuples probed after the cut `tcp_blocked`,
#: since a canary probed before it succeeded; `for:` is what damps that one round.
FOR = "10s"
#: A bound for every wait on the pipeline (probe round + scrape + `for` + group_wait, a few
#: times over); the expected path takes 10-20 seconds.
WAIT = 60.0

#: whatsapp/chat (13.248.0.20:5222) is clean everywhere in the lab; this blocks it on `censor`.
CHAT_RESET = Rule(
    "isp-censor",
    "e2e-ip-reset",
    "forward",
    "ip daddr 13.248.0.20 tcp dport 5222 reject with tcp reset",
)


def exporter_config(lab: Lab) -> dict[str, Any]:
    """Few tuples, a short interval: telegram/dc is IP-blocked on censor all along (the lab's
    own rule), signal/storage is an outage, messenger/web-tls is HTTPS through two resolvers
    (certificates, DNS), whatsapp/chat is clean until the test blocks it. `nobody` is a silent
    resolver: intercepted on dnsint."""
    ca = str(lab.ca_file)
    r = lab.resolvers
    doh = r["google-doh"]

    def https(host: str) -> dict[str, Any]:
        return {"host": host, "port": 443, "checks": ["dns", "tcp", "tls", "http"],
                "tls": {"ca_file": ca}}  # fmt: skip

    return {
        "interval": "3s",
        "timeout": "2s",
        "resolvers": {
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
        "canaries": {
            "example": https("example.lab"),
            # a UDP canary (a public STUN look-alike): the calls panel has a stun row
            "stun": {"address": STUN_PUBLIC["stun.l.google.lab"], "port": 3478, "checks": ["stun"]},
        },
        "services": {
            "telegram": {"endpoints": {"dc": {"address": "91.108.56.100", "port": 443}}},
            "whatsapp": {"endpoints": {"chat": {"address": "13.248.0.20", "port": 5222}}},
            "messenger": {"endpoints": {"web-tls": https("edge.messenger.lab")}},
            "signal": {"endpoints": {"storage": {"address": "76.223.0.99", "port": 443}}},
        },
    }


def free_port(lab: Lab) -> int:
    """A port free on the vantage namespace's loopback (nothing else binds there meanwhile)."""
    with namespace(lab.vantage):
        sock = socket.socket()
    with sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- the webhook receiver --------------------------------------------------------------------


@dataclass
class Notification:
    path: str  # which receiver: the path of its shipped URL
    body: dict[str, Any]


@dataclass
class Webhook:
    """Records every notification Alertmanager POSTs; `wait_for` waits on a condition."""

    notifications: list[Notification] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        async with self.changed:
            self.notifications.append(Notification(request.path, body))
            self.changed.notify_all()
        return web.Response(text="ok")

    def alerts(self, since: int = 0) -> Iterator[tuple[Notification, dict[str, Any]]]:
        for note in self.notifications[since:]:
            for alert in note.body["alerts"]:
                yield note, alert

    async def wait_for(
        self, predicate: Callable[[Notification, dict[str, Any]], bool], *, since: int = 0
    ) -> tuple[Notification, dict[str, Any]]:
        def found() -> tuple[Notification, dict[str, Any]] | None:
            return next(((n, a) for n, a in self.alerts(since) if predicate(n, a)), None)

        async with self.changed:
            try:
                hit = await asyncio.wait_for(self.changed.wait_for(found), WAIT)
            except TimeoutError:
                seen = [(n.path, a["status"], a["labels"]) for n, a in self.alerts(since)]
                pytest.fail(f"no such notification within {WAIT} s; received: {seen}")
        assert hit is not None
        return hit


def matches(status: str, **labels: str) -> Callable[[Notification, dict[str, Any]], bool]:
    def predicate(_: Notification, alert: dict[str, Any]) -> bool:
        return alert["status"] == status and all(
            alert["labels"].get(k) == v for k, v in labels.items()
        )

    return predicate


# --- the stack -------------------------------------------------------------------------------


@dataclass
class Stack:
    lab: Lab
    prometheus: str  # base URL, inside the vantage namespace
    alertmanager: str
    exporter_instance: str
    webhook: Webhook
    logs: dict[str, Path]

    def tail(self) -> str:
        parts = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {name} ({path}):\n" + "\n".join(text.splitlines()[-15:]))
        return "\n".join(parts)

    async def get(self, url: str, *params: tuple[str, str], **named: str) -> Any:
        query = urlencode([*params, *named.items()])
        status, body = await http_get(self.lab.vantage, f"{url}?{query}" if query else url)
        assert status == 200, f"{url} {params} {named}: {status} {body}"
        return json.loads(body)

    async def query(self, expr: str) -> list[dict[str, Any]]:
        body = await self.get(f"{self.prometheus}/api/v1/query", query=expr)
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def query_range(self, expr: str, seconds: float) -> list[dict[str, Any]]:
        end = time.time()
        body = await self.get(
            f"{self.prometheus}/api/v1/query_range",
            query=expr,
            start=f"{end - seconds:.3f}",
            end=f"{end:.3f}",
            step="2",
        )
        assert body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def label_values(self, label: str, selector: str | None) -> list[str]:
        params = {"start": f"{time.time() - 300:.3f}"}
        if selector:
            params["match[]"] = selector
        body = await self.get(f"{self.prometheus}/api/v1/label/{label}/values", **params)
        assert body["status"] == "success", (label, selector, body)
        values: list[str] = body["data"]
        return values

    async def until(self, expr: str, what: str) -> list[dict[str, Any]]:
        """Poll Prometheus until `expr` has a result (readiness: there is no event to await)."""
        deadline = time.monotonic() + WAIT
        while True:
            result = await self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: `{expr}` still empty after {WAIT} s\n{self.tail()}")
            await asyncio.sleep(0.5)


def _terminate(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def prometheus_config(exporter_port: int, alertmanager_port: int, rules: Path) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules / "*.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            {
                "job_name": "messaging-exporter",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{exporter_port}"], "labels": {"vantage": "lab"}}
                ],
            }
        ],
    }


def alertmanager_config(webhook_port: int) -> dict[str, Any]:
    """The shipped config with every receiver URL pointed at the webhook (its path kept, so the
    test sees which receiver was chosen) and the group timings shortened: nothing else."""
    config: dict[str, Any] = yaml.safe_load(monitoring.ALERTMANAGER_YML.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            url = urlsplit(hook["url"])
            hook["url"] = urlunsplit(("http", f"127.0.0.1:{webhook_port}", url.path, url.query, ""))

    def shorten(route: dict[str, Any]) -> None:
        for key, value in (
            ("group_wait", "1s"),
            ("group_interval", "1s"),
            ("repeat_interval", "1m"),
        ):
            if key in route:
                route[key] = value
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    return config


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    directory = Path(tmp_path_factory.mktemp("e2e-alerts"))
    ports = {name: free_port(lab) for name in ("exporter", "prometheus", "alertmanager")}
    logs = {name: directory / f"{name}.log" for name in ("exporter", "prometheus", "alertmanager")}

    # The webhook: its listening socket is made inside the vantage namespace.
    webhook = Webhook()
    app = web.Application()
    app.router.add_post("/{tail:.*}", webhook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    with namespace(lab.vantage):
        listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    webhook_port = listener.getsockname()[1]
    await web.SockSite(runner, listener).start()

    # The shipped rules, only `for:` shortened.
    rules = directory / "rules"
    rules.mkdir()
    for path in monitoring.rule_files():
        text, replaced = monitoring.shorten_for(path.read_text(), FOR)
        assert replaced > 0
        (rules / path.name).write_text(text)

    exporter_yml = directory / "exporter.yml"
    exporter_yml.write_text(yaml.safe_dump(exporter_config(lab), sort_keys=False))
    prometheus_yml = directory / "prometheus.yml"
    prometheus_yml.write_text(
        yaml.safe_dump(prometheus_config(ports["exporter"], ports["alertmanager"], rules))
    )
    alertmanager_yml = directory / "alertmanager.yml"
    alertmanager_yml.write_text(yaml.safe_dump(alertmanager_config(webhook_port), sort_keys=False))

    argvs = {
        "exporter": [
            sys.executable,
            "-m",
            "exporter",
            f"--config.file={exporter_yml}",
            f"--web.listen-address=127.0.0.1:{ports['exporter']}",
            "--log.level=warn",
        ],
        "alertmanager": [
            shutil.which("prometheus-alertmanager") or "alertmanager",
            f"--config.file={alertmanager_yml}",
            f"--storage.path={directory / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        "prometheus": [
            "prometheus",
            f"--config.file={prometheus_yml}",
            f"--storage.tsdb.path={directory / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            "--log.level=warn",
        ],
    }
    procs: list[subprocess.Popen[Any]] = []
    try:
        for name, argv in argvs.items():
            with logs[name].open("wb") as log:
                procs.append(
                    lab.run_in("vantage", argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                )
        built = Stack(
            lab=lab,
            prometheus=f"http://127.0.0.1:{ports['prometheus']}",
            alertmanager=f"http://127.0.0.1:{ports['alertmanager']}",
            exporter_instance=f"127.0.0.1:{ports['exporter']}",
            webhook=webhook,
            logs=logs,
        )
        await _wait_ready(built, procs)
        yield built
    finally:
        for proc in reversed(procs):
            _terminate(proc)
        await runner.cleanup()


class _Connection(http.client.HTTPConnection):
    """HTTP to a loopback address of a lab namespace: the socket is made inside it."""

    def __init__(self, ns: str, host: str, port: int | None) -> None:
        super().__init__(host, port, timeout=20)
        self.ns = ns

    def connect(self) -> None:
        with namespace(self.ns):
            sock = socket.socket()
        sock.settimeout(self.timeout)
        try:
            sock.connect((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _get(ns: str, url: str) -> tuple[int, str]:
    parts = urlsplit(url)
    conn = _Connection(ns, parts.hostname or "127.0.0.1", parts.port)
    try:
        conn.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


async def http_get(ns: str, url: str) -> tuple[int, str]:
    """GET `url` from inside namespace `ns` (in a worker thread: the namespace switch is that
    thread's); (status, body)."""
    return await asyncio.to_thread(_get, ns, url)


async def _wait_ready(stack: Stack, procs: list[subprocess.Popen[Any]]) -> None:
    """Prometheus and Alertmanager answer /-/ready, and every network of the exporter has been
    judged, scraped, recorded."""
    deadline = time.monotonic() + WAIT
    for base in (stack.prometheus, stack.alertmanager):
        while True:
            dead = [p.args for p in procs if p.poll() is not None]
            assert not dead, f"exited: {dead}\n{stack.tail()}"
            with contextlib.suppress(OSError):
                status, _ = await http_get(stack.lab.vantage, f"{base}/-/ready")
                if status == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"{base} not ready\n{stack.tail()}")
            await asyncio.sleep(0.2)
    up = await stack.until(
        "count(messaging_network_up == 1) == 3 and on () count(messaging:probe_verdict:worst) > 0",
        "every network up and judged",
    )
    assert up


# --- the tests -------------------------------------------------------------------------------


async def test_a_block_is_notified_with_its_method_and_then_resolved(stack: Stack) -> None:
    # whatsapp/chat works on censor before the block (and was never notified as blocked).
    await stack.until(
        'messaging_probe_verdict{service="whatsapp",network="censor",verdict="ok"} == 1',
        "whatsapp/chat ok on censor",
    )
    blocked = {"alertname": "MessagingServiceBlocked", "service": "whatsapp", "network": "censor"}
    assert not any(matches("firing", **blocked)(n, a) for n, a in stack.webhook.alerts())
    start = len(stack.webhook.notifications)

    with stack.lab.technique(CHAT_RESET):
        note, alert = await stack.webhook.wait_for(matches("firing", **blocked), since=start)
        assert alert["labels"]["method"] == "tcp_blocked"
        assert alert["labels"]["severity"] == "critical"
        assert alert["labels"]["vantage"] == "lab"
        assert alert["labels"]["instance"] == stack.exporter_instance
        summary = alert["annotations"]["summary"]
        assert summary == "whatsapp is blocked on network censor (tcp_blocked)"
        # Routed by severity (critical) and by service (whatsapp): both receivers get it.
        paths = {note.path}
        while paths != {"/critical", "/service/whatsapp"}:
            other, _ = await stack.webhook.wait_for(
                lambda n, a: matches("firing", **blocked)(n, a) and n.path not in paths,
                since=start,
            )
            paths.add(other.path)
            assert paths <= {"/critical", "/service/whatsapp"}, paths
        resolved_from = len(stack.webhook.notifications)

    # The rule is gone: the next round connects, the alert resolves.
    _, alert = await stack.webhook.wait_for(matches("resolved", **blocked), since=resolved_from)
    assert alert["labels"]["method"] == "tcp_blocked"
    assert alert["endsAt"] >= alert["startsAt"]


async def test_a_network_down_is_notified_and_never_blocked(stack: Stack) -> None:
    down = {"alertname": "MessagingNetworkDown", "network": CUT}
    start = len(stack.webhook.notifications)
    try:
        stack.lab.set_internet_link(CUT, up=False)
        note, alert = await stack.webhook.wait_for(matches("firing", **down), since=start)
        assert alert["labels"]["severity"] == "critical"
        assert note.path == "/critical"
        # Every tuple on the cut network is network_down, none blocked.
        judged = await stack.until(
            f'messaging_probe_verdict{{network="{CUT}",verdict="network_down"}} == 1',
            "network_down verdicts",
        )
        assert {s["metric"]["service"] for s in judged} >= {"whatsapp", "telegram", "canary"}
        assert not await stack.query(f'messaging_probe_blocked{{network="{CUT}"}} == 1')
        # The inhibition: the interception alert of that network (firing all along: the
        # silent resolver answers on dnsint) is now suppressed by the network down.
        intercepted = await stack.get(
            f"{stack.alertmanager}/api/v2/alerts",
            ("filter", 'alertname="MessagingResolverIntercepted"'),
            ("filter", f'network="{CUT}"'),
        )
        assert intercepted, "MessagingResolverIntercepted should be active on the cut network"
        for item in intercepted:
            assert item["status"]["state"] == "suppressed", item
            assert item["status"]["inhibitedBy"], item
        resolved_from = len(stack.webhook.notifications)
    finally:
        stack.lab.set_internet_link(CUT, up=True)
    await stack.webhook.wait_for(matches("resolved", **down), since=resolved_from)

    # Never "blocked" on it: not notified, never firing in Prometheus.
    assert not [
        a["labels"]
        for _, a in stack.webhook.alerts()
        if a["labels"]["alertname"] == "MessagingServiceBlocked"
        and a["labels"].get("network") == CUT
    ]
    firing = await stack.query(
        "count_over_time(ALERTS{"
        f'alertname="MessagingServiceBlocked",alertstate="firing",network="{CUT}"'
        "}[10m])"
    )
    assert not firing, firing


#: Values of the dashboards' variables: ones that exist in this lab (`instance` is filled in
#: by the test). Includes-all variables get Grafana's all value (`.*`) on the overview.
SERVICE_DETAIL = {
    "service": "messenger",
    "endpoint": "web-tls",
    "network": "clean",
    "resolver": "google",
}
BUILTINS = {"__rate_interval": "15s", "__interval": "2s", "__range": "1m"}


async def test_every_dashboard_and_recording_rule_query_returns_data(stack: Stack) -> None:
    # Rate windows ($__rate_interval) need a few scrapes: wait until 20 s of them exist.
    await stack.until('count_over_time(up{job="messaging-exporter"}[20s]) >= 18', "20 s of scrapes")
    failures: list[str] = []
    checked = 0
    for path in monitoring.dashboard_files():
        dashboard = monitoring.load_dashboard(path)
        uid = dashboard["uid"]
        values: dict[str, str] = {
            **BUILTINS,
            "job": "messaging-exporter",
            "vantage": "lab",
            "instance": stack.exporter_instance,
        }
        if uid == "messaging-service":
            values |= SERVICE_DETAIL
        # Variables first, in order: each query with the values chosen before it.
        repeat_values: dict[str, list[str]] = {}
        for variable in monitoring.variables(dashboard):
            if variable["type"] != "query":
                continue
            name = variable["name"]
            selector, label = monitoring.parse_label_values(monitoring.variable_query(variable))
            found = await stack.label_values(
                label, monitoring.substitute(selector, values) if selector else None
            )
            checked += 1
            if not found:
                failures.append(f"{uid}: variable {name}: no values")
                continue
            repeat_values[name] = found
            values.setdefault(name, ".*" if variable.get("includeAll") else sorted(found)[0])
        for query in monitoring.panel_queries(dashboard):
            # A repeated panel is one panel per value of its variable.
            each = repeat_values.get(query.repeat, [values[query.repeat]]) if query.repeat else [""]
            for value in each:
                filled = values | ({query.repeat: value} if query.repeat else {})
                expr = monitoring.substitute(query.expr, filled)
                if query.instant:
                    result = await stack.query(expr)
                else:
                    result = await stack.query_range(expr, 60)
                checked += 1
                if not result:
                    failures.append(f"{query.name} ({value}): no data for {expr}")
    for rule in monitoring.recording_rules():
        for expr in (rule["expr"], rule["record"]):
            checked += 1
            if not await stack.query(expr):
                failures.append(f"recording rule {rule['record']}: no data for {expr}")
    for rule in monitoring.alerting_rules():
        await stack.query(rule["expr"])  # runs without error (firing or not)
    assert not failures, "\n".join(failures)
    assert checked > 60
