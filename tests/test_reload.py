"""Reload under load: the exporter as a real process probing 200 tuples every second on
loopback gets SIGHUP with a config that removes 50 tuples, adds 50 and changes one. The
counters and histograms of the tuples that stay keep counting from where they were (never
reset), the removed ones vanish from /metrics, the added ones appear; a bad config afterwards
keeps the running one (`messaging_exporter_config_last_reload_successful` 0, same series).

Only loopback: the probed server is a `tests.lab.servers` TCP sink on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import signal
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
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 30.0

Samples = dict[str, list[tuple[dict[str, str], float]]]
#: endpoint name -> (success count, total-phase histogram count)
Counts = dict[str, tuple[float, float]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(
    ports: tuple[int, int], endpoints: list[str], *, moved: str | None = None
) -> dict[str, Any]:
    """Every endpoint on the sink's first port; `moved` on its second (a changed config under
    the same labels)."""
    eps: dict[str, Any] = {
        name: {"address": "127.0.0.1", "port": ports[name == moved], "checks": ["tcp"]}
        for name in endpoints
    }
    return {
        "interval": "1s",
        "timeout": "1s",
        "concurrency": 64,
        "services": {"svc": {"endpoints": eps}},
    }


def wait_for(what: str, check: Callable[[], bool], deadline: float = DEADLINE) -> None:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > deadline:
            pytest.fail(f"not within {deadline:g} s: {what}")
        time.sleep(0.2)  # polling interval of a condition, not a synchronisation


@dataclass(slots=True, kw_only=True)
class Exporter:
    proc: subprocess.Popen[bytes]
    port: int
    path: Path
    sink_ports: tuple[int, int]

    def metrics(self) -> Samples:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        out: Samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return out

    def reload(self, cfg: dict[str, Any] | str) -> None:
        text = cfg if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False)
        self.path.write_text(text)
        self.proc.send_signal(signal.SIGHUP)


def gauge(m: Samples, name: str) -> float:
    [(_, v)] = m[name]
    return v


def counts(m: Samples) -> Counts:
    success = {
        labels["endpoint"]: v
        for labels, v in m.get("messaging_probes_total", [])
        if labels["result"] == "success"
    }
    hist = {
        labels["endpoint"]: v
        for labels, v in m.get("messaging_probe_phase_seconds_count", [])
        if labels["phase"] == "total"
    }
    assert set(success) == set(hist)
    return {name: (success[name], hist[name]) for name in success}


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Exporter]:
    sink_ports = (free_port(), free_port())
    spec = tmp_path / "sink.json"
    listeners = [{"kind": "tcp", "address": "127.0.0.1", "port": p} for p in sink_ports]
    spec.write_text(json.dumps({"listeners": listeners}))
    sink = subprocess.Popen(
        [sys.executable, "-m", "tests.lab.servers", f"--spec={spec}"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    proc: subprocess.Popen[bytes] | None = None
    log = (tmp_path / "exporter.log").open("w")
    try:
        assert sink.stdout is not None
        assert sink.stdout.readline().strip() == "ready"
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config(sink_ports, OLD), sort_keys=False))
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                f"--config.file={path}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.format=json",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        yield Exporter(proc=proc, port=port, path=path, sink_ports=sink_ports)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()
        sink.kill()
        sink.wait(10)
        for pipe in (sink.stdin, sink.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


OLD = [f"e{i:03d}" for i in range(200)]
REMOVED = OLD[150:]
KEPT = OLD[:150]
ADDED = [f"n{i:03d}" for i in range(50)]
CHANGED = "e000"  # kept, with another config under the same labels


def test_reload_under_load_keeps_counting(exporter: Exporter) -> None:
    seen: list[Samples] = []

    def scrape() -> Samples:
        try:
            m = exporter.metrics()
        except OSError:  # not listening yet
            return {}
        seen[:] = [m]
        return m

    def every_tuple_counted_twice() -> bool:
        c = counts(scrape())
        return set(c) == set(OLD) and all(s >= 2 for s, _ in c.values())

    wait_for("200 tuples probed twice", every_tuple_counted_twice)
    before = counts(seen[0])
    loaded_at = gauge(seen[0], "messaging_exporter_config_last_reload_success_timestamp_seconds")

    exporter.reload(config(exporter.sink_ports, KEPT + ADDED, moved=CHANGED))
    scrapes = 0
    last = before

    def reloaded_and_counting() -> bool:
        nonlocal scrapes, last
        m = scrape()
        if not m:
            return False
        c = counts(m)
        scrapes += 1
        # every scrape on the way: a kept tuple never goes below its previous value
        for name in KEPT:
            if name in c:
                assert c[name][0] >= last[name][0], (name, c[name], last[name])
                assert c[name][1] >= last[name][1], (name, c[name], last[name])
        last = {**last, **c}
        return (
            set(c) == set(KEPT) | set(ADDED)
            and all(c[name][0] > before[name][0] + 1 for name in KEPT)
            and all(c[name][0] >= 1 for name in ADDED)
        )

    wait_for("removed tuples gone, added ones counted, kept ones counting", reloaded_and_counting)
    after = seen[0]
    assert gauge(after, "messaging_exporter_config_last_reload_successful") == 1.0
    assert gauge(after, "messaging_exporter_config_last_reload_success_timestamp_seconds") > (
        loaded_at
    )
    assert gauge(after, "messaging_exporter_targets") == len(KEPT) + len(ADDED)
    assert gauge(after, "messaging_exporter_asyncio_tasks") >= 2  # the scheduler, a handler
    names = {labels.get("endpoint") for samples in after.values() for labels, _ in samples}
    assert not names & set(REMOVED)  # from every family, not only the counters
    c = counts(after)
    # the moved tuple kept its counters too (a changed config under the same labels)
    assert c[CHANGED][0] > before[CHANGED][0]
    # nothing failed on the way: the in-flight probes of the reload were not counted as errors
    failed = [
        (labels["endpoint"], labels["result"], v)
        for labels, v in after["messaging_probes_total"]
        if labels["result"] != "success" and v > 0
    ]
    assert failed == []

    # A bad config: the running one stays, its series keep counting.
    exporter.reload("nonsense: [")

    def refused() -> bool:
        m = scrape()
        return bool(m) and gauge(m, "messaging_exporter_config_last_reload_successful") == 0.0

    wait_for("the bad reload reported", refused)
    bad = counts(seen[0])
    assert set(bad) == set(KEPT) | set(ADDED)

    def still_counting() -> bool:
        c = counts(scrape())
        return set(c) == set(bad) and all(c[name][0] > bad[name][0] for name in c)

    wait_for("the old config still probing every tuple", still_counting)
    assert exporter.proc.poll() is None
    print(f"reload under load: {scrapes} scrapes across the reload, none saw a reset")
