"""Faults during a run: the exporter as a real process keeps serving through them, says what
happened on /metrics, and recovers by itself (same PID, no restart).

Topology (namespaces named `mxf-xxxx-*` with a random per-run prefix, so runs never clash):

    exporter ns V ── vd ── (default path) ──┐
                 ── va ── (network `iface`) ─┤  server ns S: 91.108.56.100:443 (tcp sink)
    probe ns P   ── pp ── (network `ns`) ────┘               91.108.56.53:53  (DNS, tcp+udp)
    microsocks in V on 127.0.0.1:1080 (network `socks`, out through vd)

The addresses in S are globally routable on purpose (a private answer would be judged a DNS
lie); no namespace here has a route anywhere else, so nothing leaves the test's namespaces.
Every fault is one test, in file order, sharing one exporter process: before (all `ok`), the
fault (the right network or resolver goes bad, the rest stays `ok`, /-/healthy 200), the repair
(all `ok` again, same PID). Waits poll /metrics with a deadline; nothing sleeps as a
synchronisation.

The wall clock jumping: the host clock is never changed. `test_wall_clock_jump_in_a_real_process`
runs the exporter under Debian's libfaketime (LD_PRELOAD), its wall clock moved at run time
through a timestamp file while its monotonic clock stays real; `test_wall_clock_jump_does_not_
move_the_schedule` does the same at the scheduler level on FakeClock, deterministically.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.loader import load
from exporter.probes.network import namespace
from exporter.runtime.app import App, Settings
from tests.conftest import CONFIG_YAML
from tests.fakes.clock import FakeClock
from tests.fakes.prober import factory

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "91.108.56.100"
DNS = "91.108.56.53"
NAME = "svc.fault.test"
PORT = 10053  # the exporter's, inside V
SOCKS_PORT = 1080  # microsocks, inside V
NETWORKS = ("plain", "iface", "ns", "socks")
ENDPOINTS = ("direct", "web")
DEADLINE = 20.0  # seconds any state change may take (interval 1 s, timeout 1 s)

Samples = dict[str, list[tuple[dict[str, str], float]]]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@dataclass(frozen=True, slots=True, kw_only=True)
class Names:
    exporter: str
    server: str
    probe: str


def make_iface(n: Names) -> None:
    """The veth pair of network `iface` (`va` in V) and its route, as at the start."""
    ip(
        "-n",
        n.exporter,
        "link",
        "add",
        "va",
        "type",
        "veth",
        "peer",
        "name",
        "sa",
        "netns",
        n.server,
    )
    ip("-n", n.exporter, "addr", "add", "10.77.1.1/24", "dev", "va")
    ip("-n", n.server, "addr", "add", "10.77.1.2/24", "dev", "sa")
    ip("-n", n.exporter, "link", "set", "va", "up")
    ip("-n", n.server, "link", "set", "sa", "up")
    route = ("91.108.56.0/24", "via", "10.77.1.2", "dev", "va", "metric", "100")
    ip("-n", n.exporter, "route", "add", *route)


def make_probe_ns(n: Names) -> None:
    """The probe namespace P of network `ns`, its veth to S and its default route."""
    ip("netns", "add", n.probe)
    ip("-n", n.probe, "link", "set", "lo", "up")
    ip("-n", n.probe, "link", "add", "pp", "type", "veth", "peer", "name", "sp", "netns", n.server)
    ip("-n", n.probe, "addr", "add", "10.77.2.1/24", "dev", "pp")
    ip("-n", n.server, "addr", "add", "10.77.2.2/24", "dev", "sp")
    ip("-n", n.probe, "link", "set", "pp", "up")
    ip("-n", n.server, "link", "set", "sp", "up")
    ip("-n", n.probe, "route", "add", "default", "via", "10.77.2.2")


def build(n: Names) -> None:
    for ns in (n.exporter, n.server):
        ip("netns", "add", ns)
        ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", n.server, "addr", "add", f"{SERVICE}/32", "dev", "lo")
    ip("-n", n.server, "addr", "add", f"{DNS}/32", "dev", "lo")
    ip(
        "-n",
        n.exporter,
        "link",
        "add",
        "vd",
        "type",
        "veth",
        "peer",
        "name",
        "sd",
        "netns",
        n.server,
    )
    ip("-n", n.exporter, "addr", "add", "10.77.3.1/24", "dev", "vd")
    ip("-n", n.server, "addr", "add", "10.77.3.2/24", "dev", "sd")
    ip("-n", n.exporter, "link", "set", "vd", "up")
    ip("-n", n.server, "link", "set", "sd", "up")
    ip("-n", n.exporter, "route", "add", "91.108.56.0/24", "via", "10.77.3.2", "dev", "vd")
    make_iface(n)
    make_probe_ns(n)


class Servers:
    """A `python -m tests.lab.servers` process in a namespace; ends on stdin EOF or kill."""

    def __init__(self, ns: str, spec: Path) -> None:
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                ns,
                sys.executable,
                "-m",
                "tests.lab.servers",
                f"--spec={spec}",
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until bound ("ready") or exited ("")
        if line.strip() != "ready":
            self.kill()
            pytest.fail(f"the servers of {spec.name} did not start")

    def kill(self) -> None:
        """SIGKILL: a crash, no goodbye to open connections."""
        self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def connect_in(ns: str, port: int, timeout: float = 5.0) -> socket.socket:
    with namespace(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


class NsConnection(http.client.HTTPConnection):
    """HTTP to 127.0.0.1 inside a namespace (the socket is made there)."""

    def __init__(self, ns: str, port: int) -> None:
        super().__init__("127.0.0.1", port, timeout=10)
        self.ns = ns

    def connect(self) -> None:
        self.sock = connect_in(self.ns, self.port)


def wait_for(what: str, check: Callable[[], bool], deadline: float = DEADLINE) -> float:
    """Poll `check` until true; returns the seconds it took (fails after `deadline`)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > deadline:
            pytest.fail(f"not within {deadline:g} s: {what}")
        time.sleep(0.2)  # polling interval of a condition, not a synchronisation
    return time.monotonic() - start


class Exporter:
    def __init__(self, n: Names, config: Path, log: Path) -> None:
        self.ns = n.exporter
        self.log_path = log
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                n.exporter,
                sys.executable,
                "-m",
                "exporter",
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{PORT}",
                "--log.format=json",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

        def listening() -> bool:
            if not self.alive():
                pytest.fail(f"the exporter exited with {self.proc.returncode}; see {log}")
            try:
                return self.get("/-/healthy")[0] == 200
            except OSError:
                return False

        wait_for("the exporter listening", listening, 30)

    def get(self, path: str) -> tuple[int, str]:
        conn = NsConnection(self.ns, PORT)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def metrics(self) -> Samples:
        status, text = self.get("/metrics")
        assert status == 200
        out: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def logged(self, msg: str, **fields: str) -> list[dict[str, Any]]:
        """The JSON log records so far with message `msg` and these fields."""
        self.log.flush()
        records = []
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("msg") == msg and all(record.get(k) == v for k, v in fields.items()):
                    records.append(record)
        return records

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@dataclass(slots=True, kw_only=True)
class Run:
    names: Names
    exporter: Exporter
    dns: Servers
    dns_spec: Path
    socks: subprocess.Popen[bytes]


def start_socks(ns: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("microsocks")
    if binary is None:
        pytest.fail("Debian's microsocks is required (apt-get install microsocks; .ci/run does)")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, binary, "-i", "127.0.0.1", "-p", str(SOCKS_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"microsocks exited with {proc.returncode}")
        try:
            connect_in(ns, SOCKS_PORT, 1.0).close()
        except OSError:
            return False
        return True

    wait_for("microsocks listening", listening, 10)
    return proc


def stop_proc(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def config(n: Names) -> dict[str, Any]:
    return {
        "interval": "1s",
        "timeout": "1s",
        "concurrency": 16,
        # tcp: a UDP resolver cannot go through the SOCKS proxy
        "resolvers": {"r1": {"type": "tcp", "address": DNS}},
        "networks": {
            "plain": {},
            "iface": {"interface": "va"},
            "ns": {"netns": n.probe},
            "socks": {"proxy": f"socks5://127.0.0.1:{SOCKS_PORT}"},
        },
        "services": {
            "svc": {
                "endpoints": {
                    "direct": {"address": SERVICE, "port": 443, "checks": ["tcp"]},
                    "web": {"host": NAME, "port": 443, "checks": ["dns", "tcp"]},
                }
            }
        },
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the fault tests need root and iproute2's `ip` (CI runs as root)")
    directory = tmp_path_factory.mktemp("faults")
    prefix = f"mxf-{secrets.token_hex(2)}-"
    n = Names(exporter=f"{prefix}v", server=f"{prefix}s", probe=f"{prefix}p")
    started: list[Callable[[], None]] = []
    try:
        build(n)
        ca = trustme.CA()
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        ca.private_key_pem.write_to_path(str(directory / "ca.key"))
        service_spec = directory / "service.json"
        service_spec.write_text(
            json.dumps({"listeners": [{"kind": "tcp", "address": SERVICE, "port": 443}]})
        )
        dns_spec = directory / "dns.json"
        dns_item = {
            "kind": "dns",
            "address": DNS,
            "zone": {NAME: SERVICE},
            "transports": ["udp", "tcp"],
            "ca": {"cert": str(directory / "ca.pem"), "key": str(directory / "ca.key")},
        }
        dns_spec.write_text(json.dumps({"listeners": [dns_item]}))
        service = Servers(n.server, service_spec)
        started.append(service.kill)
        dns = Servers(n.server, dns_spec)
        started.append(lambda: dns.kill())  # until `state` holds it
        socks = start_socks(n.exporter)
        started.append(lambda: stop_proc(socks))
        path = directory / "config.yaml"
        path.write_text(yaml.safe_dump(config(n), sort_keys=False))
        exporter = Exporter(n, path, directory / "exporter.log")
        state = Run(names=n, exporter=exporter, dns=dns, dns_spec=dns_spec, socks=socks)
        # From here the tests replace `state.dns` and `state.socks` when they restart them.
        started[1:] = [lambda: state.dns.kill(), lambda: stop_proc(state.socks), exporter.stop]
        yield state
    finally:
        for stop in reversed(started):
            with contextlib.suppress(Exception):
                stop()
        for ns in (n.probe, n.exporter, n.server):
            subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)


# --- reading the metrics ---------------------------------------------------------------------


def value(m: Samples, name: str, **labels: str) -> float | None:
    for sample_labels, v in m.get(name, []):
        if all(sample_labels.get(k) == want for k, want in labels.items()):
            return v
    return None


def verdicts(m: Samples) -> dict[tuple[str, str], str]:
    """(network, endpoint) -> the verdict that is 1."""
    out: dict[tuple[str, str], str] = {}
    for labels, v in m.get("messaging_probe_verdict", []):
        if v == 1.0:
            out[(labels["network"], labels["endpoint"])] = labels["verdict"]
    return out


def results(m: Samples, network: str, endpoint: str) -> dict[str, float]:
    return {
        labels["result"]: v
        for labels, v in m.get("messaging_probes_total", [])
        if labels["network"] == network and labels["endpoint"] == endpoint
    }


def all_ok(m: Samples) -> bool:
    v = verdicts(m)
    return len(v) == len(NETWORKS) * len(ENDPOINTS) and set(v.values()) == {"ok"}


def expect_all_ok(run: Run, what: str) -> Samples:
    got: list[Samples] = []

    def check() -> bool:
        got[:] = [run.exporter.metrics()]
        return all_ok(got[0])

    took = wait_for(f"every tuple ok {what}", check)
    print(f"every tuple ok {what}: {took:.1f} s")  # the figures of docs/reliability.md
    assert run.exporter.alive()
    return got[0]


def faulted(
    run: Run, what: str, check: Callable[[Samples], bool], deadline: float = DEADLINE
) -> tuple[Samples, float]:
    got: list[Samples] = []

    def poll() -> bool:
        got[:] = [run.exporter.metrics()]
        return check(got[0])

    took = wait_for(what, poll, deadline)
    print(f"{what}: {took:.1f} s")
    status, _ = run.exporter.get("/-/healthy")
    assert status == 200
    assert run.exporter.alive()  # the same process all along: nothing restarted it
    return got[0], took


def others_ok(m: Samples, bad_network: str) -> bool:
    return all(
        verdict == "ok" for (network, _), verdict in verdicts(m).items() if network != bad_network
    )


def setup_error(m: Samples, network: str) -> bool:
    """The network is unusable as configured: its own state, never a shutdown."""
    v = verdicts(m)
    return (
        v.get((network, "direct")) == "setup_error"
        and v.get((network, "web")) == "setup_error"
        and value(m, "messaging_network_setup_error", network=network) == 1.0
        and value(m, "messaging_network_up", network=network) is None
        and value(m, "messaging_network_down_since_timestamp_seconds", network=network) is None
        and others_ok(m, network)
    )


def assert_setup_logged(run: Run, network: str, cause: str) -> None:
    """One warning naming the cause when it broke, one when it was usable again; never a
    "network down"."""
    broke = run.exporter.logged("network set-up error", network=network)
    assert len(broke) == 1, broke
    assert cause in broke[0]["error"], broke[0]
    assert run.exporter.logged("network down", network=network) == []


# --- the faults, in file order on one exporter --------------------------------------------------


def test_resolver_killed_and_restarted(run: Run) -> None:
    before = expect_all_ok(run, "before the resolver is killed")
    assert all(
        value(before, "messaging_resolver_up", network=net, resolver="r1") == 1.0
        for net in NETWORKS
    )
    run.dns.kill()

    def dns_failed(m: Samples) -> bool:
        v = verdicts(m)
        return all(
            v.get((net, "web")) == "dns_failed"
            and v.get((net, "direct")) == "ok"
            and value(m, "messaging_resolver_up", network=net, resolver="r1") == 0.0
            and value(m, "messaging_network_up", network=net) == 1.0
            for net in NETWORKS
        )

    during, _ = faulted(run, "web tuples dns_failed and resolver_up 0 on every network", dns_failed)
    for net in NETWORKS:
        # nothing listens on the resolver's port any more: the TCP query is refused
        kinds = results(during, net, "web")
        assert kinds.get("refused", 0) > 0, (net, kinds)
    run.dns = Servers(run.names.server, run.dns_spec)
    after = expect_all_ok(run, "after the resolver came back")
    assert all(
        value(after, "messaging_resolver_up", network=net, resolver="r1") == 1.0 for net in NETWORKS
    )


def test_interface_deleted_and_recreated(run: Run) -> None:
    expect_all_ok(run, "before the interface is deleted")
    ip("-n", run.names.exporter, "link", "del", "va")
    # The host check after a round sees the interface gone at once; the probes of the next
    # rounds fail with network_setup.
    faulted(
        run,
        "network iface a set-up error, the others ok, its probes failing",
        lambda m: (
            setup_error(m, "iface") and results(m, "iface", "direct").get("network_setup", 0) > 0
        ),
    )
    make_iface(run.names)
    after = expect_all_ok(run, "after the interface came back")
    assert value(after, "messaging_network_setup_error", network="iface") == 0.0
    assert_setup_logged(run, "iface", 'networks.iface.interface: no such interface "va"')
    assert len(run.exporter.logged("network set-up error cleared", network="iface")) == 1


def test_socks_proxy_killed_and_restarted(run: Run) -> None:
    expect_all_ok(run, "before the proxy is killed")
    stop_proc(run.socks)
    during, _ = faulted(
        run, "network socks a set-up error, the others ok", lambda m: setup_error(m, "socks")
    )
    assert results(during, "socks", "direct").get("proxy_error", 0) > 0
    run.socks = start_socks(run.names.exporter)
    expect_all_ok(run, "after the proxy came back")
    assert_setup_logged(run, "socks", "proxy_error")


def test_probe_namespace_deleted_and_recreated(run: Run) -> None:
    expect_all_ok(run, "before the namespace is deleted")
    ip("netns", "delete", run.names.probe)
    faulted(
        run,
        "network ns a set-up error, the others ok, its probes failing",
        lambda m: setup_error(m, "ns") and results(m, "ns", "direct").get("network_setup", 0) > 0,
    )
    make_probe_ns(run.names)
    expect_all_ok(run, "after the namespace came back (reopened by name)")
    assert_setup_logged(
        run, "ns", f'networks.ns.netns: no such network namespace "{run.names.probe}"'
    )


# --- the wall clock jumping --------------------------------------------------------------------


async def test_wall_clock_jump_does_not_move_the_schedule(tmp_path: Path) -> None:
    """Rounds follow the monotonic clock: a wall clock jumping an hour back, then a day
    forward, neither stalls the rounds nor bursts them; timestamps follow the wall clock."""
    clock = FakeClock()
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_YAML)
    make, _ = factory(clock=clock, duration=lambda t: 0.5)
    app = App(
        settings=Settings(config_file=str(path), listen_host="127.0.0.1", listen_port=0),
        config=load(path),
        prober_factory=make,
        clock=clock,
        rng=random.Random(5),
    )
    await app.start()
    try:
        await clock.advance(60.0)
        assert app.scheduler.stats().rounds_total == 1
        calls_per_round = 3
        probes = app.store.snapshot()
        counted = sum(sum(s.results.values()) for s in probes.series.values())
        assert counted == calls_per_round

        clock.jump_wall(-3600.0)
        await clock.advance(60.0)
        assert app.scheduler.stats().rounds_total == 2  # not stalled for an hour
        clock.jump_wall(+86400.0)
        await clock.advance(60.0)
        assert app.scheduler.stats().rounds_total == 3  # not a day of rounds at once
        snapshot = app.store.snapshot()
        assert sum(sum(s.results.values()) for s in snapshot.series.values()) == 3 * calls_per_round
        assert app.scheduler.stats().skipped_total == 0
        stamps = [s.last.finished for s in snapshot.series.values() if s.last is not None]
        # the last round ran after the day-forward jump: its timestamps say so
        assert all(stamp > clock.time() - 60.0 for stamp in stamps)
    finally:
        await app.stop()


LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def test_wall_clock_jump_in_a_real_process(tmp_path: Path) -> None:
    """The exporter's wall clock jumps an hour back, then a day forward (libfaketime; the
    monotonic clock is left real): rounds go on one per second, never stalled nor in a burst,
    and the probe timestamps follow the wall clock."""
    if not LIBFAKETIME.exists():
        pytest.fail(f"{LIBFAKETIME} is required (apt-get install faketime; scripts/test.sh does)")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)  # the kernel completes the handshakes: a real TCP peer
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    path = tmp_path / "config.yaml"
    endpoint = {"address": "127.0.0.1", "port": listener.getsockname()[1], "checks": ["tcp"]}
    cfg = {
        "interval": "1s",
        "timeout": "1s",
        "services": {"svc": {"endpoints": {"a": endpoint, "b": endpoint}}},
    }
    path.write_text(yaml.safe_dump(cfg))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",  # re-read the file: the jump happens at run time
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    log = (tmp_path / "exporter.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            f"--config.file={path}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    got: list[Samples] = []

    def scrape() -> Samples:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        out: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        got[:] = [out]
        return out

    def rounds() -> float:
        return value(got[0], "messaging_exporter_rounds_total") or 0.0

    def stamps_near(shift: float) -> bool:
        """Both tuples' last probe timestamps within 30 s of the real time + shift."""
        try:
            m = scrape()
        except OSError:
            return False
        stamps = [v for _, v in m.get("messaging_probe_timestamp_seconds", [])]
        return len(stamps) == 2 and all(abs(s - time.time() - shift) < 30 for s in stamps)

    try:
        wait_for("the exporter probing, timestamps on the real clock", lambda: stamps_near(0))
        for label, shift in (("an hour back", -3600.0), ("a day forward", 86400.0)):
            offset.write_text(f"{shift:+.0f}\n")
            wait_for(f"timestamps {label}", functools.partial(stamps_near, shift))
            before, t0 = rounds(), time.monotonic()

            def three_more(before: float = before) -> bool:
                scrape()
                return rounds() >= before + 3

            wait_for(f"3 more rounds after the jump {label}", three_more, 10)
            elapsed = time.monotonic() - t0
            # one round per interval (1 s): neither stalled (above) nor a burst of rounds
            assert rounds() - before <= elapsed + 2, (label, rounds() - before, elapsed)
            assert value(got[0], "messaging_exporter_probes_skipped_total") == 0.0
            assert all(v == 1.0 for _, v in got[0]["messaging_probe_success"])
            print(f"wall clock {label}: {rounds() - before:g} rounds in {elapsed:.1f} s")
        assert proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        listener.close()
