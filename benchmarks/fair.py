"""A fair benchmark: blackbox_exporter driven as its users drive it (a real Prometheus scraping
`/probe`), beside messaging-exporter, on real servers: unbound answering the targets' names and
nginx with TLS 1.2 and 1.3, RSA and ECDSA certificates. Offline: every packet stays in
127.0.0.0/8 (unbound refuses every name outside the local zone, so it never recurses).

    sudo .venv/bin/python -m benchmarks.fair --markdown                # the full run
    sudo .venv/bin/python -m benchmarks.fair --quick --markdown        # the smoke test's

Four rows, each a turn of `--window` seconds after a warm-up; the turns rotate their order
every alternation (`--alternations`), so the machine's drift falls on every row alike:

- `blackbox (Prometheus)`: Debian's `prometheus` scraping blackbox_exporter's `/probe` for
  every target once per `--interval` (the usual relabelling: `__param_target`, `instance`,
  `__address__`); probes and successes are counted from Prometheus's own `up` and
  `probe_success` samples in the window.
- `blackbox (threaded loop)`: a plain driver in a process of its own, threads with keep-alive
  `http.client` connections, each target once per interval spread evenly (this file's
  `--threaded-driver`).
- `blackbox (aiohttp load.py)`: `benchmarks/load.py`, the driver of `benchmarks/bench.py`.
- `exporter`: `python -m exporter` on a config of the same targets at the same rate (one `udp`
  resolver, unbound; endpoints https with the test CA), scraped once per interval as a
  Prometheus server asks (OpenMetrics, gzip), that scrape counted in its CPU.

CPU is each process's own (/proc/<pid>/stat utime+stime, all threads) over the window, per
probe done in the window: blackbox_exporter's never includes its driver's (Prometheus's and the
drivers' are reported beside it), nor nginx's and unbound's (reported too: the same work on
the targets' side is a check that every row did the same probes). Probe rate: `--tuples`
targets every `--interval` seconds (1,000 every 10 s = 100 probes/s). With `--wait-load` the
run first waits (up to `--wait-max` s, polling every 10 s) for the 1-minute load average to
fall below it, and runs anyway if it never does (the JSON says which).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import queue
import random
import re
import shlex
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import dns.asyncquery
import dns.exception
import dns.message
import trustme

from benchmarks.bench import (
    ROOT,
    Blackbox,
    Exporter,
    Lab,
    _start,
    _stop,
    blackbox_targets,
    cpu_seconds,
    exporter_config,
    machine,
    report,
)
from benchmarks.targets import BODY, HTTPS_PORT, ZONE

NGINX = "/usr/sbin/nginx"
UNBOUND = "/usr/sbin/unbound"
PROMETHEUS = "/usr/bin/prometheus"
#: The servers' (key, protocol), in turn over the HTTPS addresses: hN.bench.test is address
#: N mod 8, so every variant gets a quarter of the targets.
VARIANTS = (("rsa", "TLSv1.2"), ("rsa", "TLSv1.3"), ("ecdsa", "TLSv1.2"), ("ecdsa", "TLSv1.3"))
SIDES = ("blackbox-prometheus", "blackbox-threaded", "blackbox-aiohttp", "exporter")
DASH = "\N{EN DASH}"  # of a range in the markdown
LABELS = {
    "blackbox-prometheus": "blackbox (Prometheus)",
    "blackbox-threaded": "blackbox (threaded loop)",
    "blackbox-aiohttp": "blackbox (aiohttp load.py)",
    "exporter": "exporter",
    "baseline": "exporter (baseline)",
}
#: Every row a run can have: the sides, and the `--baseline` tree's exporter.
ROWS = (*SIDES, "baseline")


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def _cpu(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(pid)
    return total


def _version(argv: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    return "absent"


# ---- the targets: unbound and nginx


def certificates(directory: Path) -> None:
    """A test CA (`ca.pem`, what both sides verify against) and a certificate for
    `*.bench.test` of each key type (`rsa.pem`, `ecdsa.pem`, key and chain in one file)."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    for name, key_type in (("rsa", trustme.KeyType.RSA), ("ecdsa", trustme.KeyType.ECDSA)):
        leaf = ca.issue_cert(f"*.{ZONE}", key_type=key_type)
        path = directory / f"{name}.pem"
        path.write_bytes(b"")
        for blob in (leaf.private_key_pem, *leaf.cert_chain_pems):
            blob.write_to_path(str(path), append=True)


def nginx_config(lab: Lab) -> Path:
    d = lab.directory
    body = BODY.decode().replace("\n", "\\n")
    servers = []
    for i, address in enumerate(lab.https):
        key, protocol = VARIANTS[i % len(VARIANTS)]
        servers.append(
            f"""    server {{
        listen {address}:{HTTPS_PORT} ssl backlog=1024;
        ssl_certificate {d / key}.pem;
        ssl_certificate_key {d / key}.pem;
        ssl_protocols {protocol};
        location / {{ default_type text/plain; return 200 "{body}"; }}
    }}"""
        )
    temp = "\n".join(
        f"    {kind}_temp_path {d / 'nginx-tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = f"""daemon off;
worker_processes 1;
pid {d / "nginx.pid"};
error_log {d / "nginx-error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
{temp}
{chr(10).join(servers)}
}}
"""
    (d / "nginx-tmp").mkdir(exist_ok=True)
    path = d / "nginx.conf"
    path.write_text(text)
    return path


def unbound_config(lab: Lab, n: int) -> Path:
    """unbound on the lab's DNS address, authoritative for the targets' names (a static local
    zone: hN.bench.test A the address N mod 8, NODATA for other types) and refusing every
    other name, so that it never sends a query anywhere."""
    lines = [
        "server:",
        f"    interface: {lab.dns}",
        "    port: 53",
        "    do-ip6: no",
        "    access-control: 127.0.0.0/8 allow",
        '    username: ""',
        '    chroot: ""',
        f'    directory: "{lab.directory}"',
        '    pidfile: ""',
        "    use-syslog: no",
        '    logfile: ""',
        "    verbosity: 0",
        "    num-threads: 1",
        '    module-config: "iterator"',
        "    do-not-query-localhost: yes",
        '    local-zone: "." refuse',
        f'    local-zone: "{ZONE}." static',
    ]
    lines += [
        f'    local-data: "h{i}.{ZONE}. 60 IN A {lab.https[i % len(lab.https)]}"' for i in range(n)
    ]
    lines += ["remote-control:", "    control-enable: no"]
    path = lab.directory / "unbound.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


class Servers:
    """nginx (a master and one worker) and unbound, for the whole run."""

    def __init__(self, lab: Lab, n: int) -> None:
        self.lab = lab
        self.n = n
        self.nginx: Any = None
        self.unbound: Any = None

    async def __aenter__(self) -> Servers:
        certificates(self.lab.directory)
        pin = ["taskset", "-c", "0"] if self.lab.pin else []
        self.unbound = await _start(
            [*pin, UNBOUND, "-d", "-c", str(unbound_config(self.lab, self.n))]
        )
        conf = nginx_config(self.lab)
        self.nginx = await _start(
            [*pin, NGINX, "-p", str(self.lab.directory), "-c", str(conf), "-e", "stderr"]
        )
        try:
            await self._wait()
        except BaseException:
            await self.__aexit__()  # no server left behind when one did not start
            raise
        return self

    async def _wait(self) -> None:
        """Until unbound answers a target's name and nginx answers on every address."""
        ctx = ssl.create_default_context(cafile=str(self.lab.directory / "ca.pem"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for proc, name in ((self.unbound, "unbound"), (self.nginx, "nginx")):
                if proc.returncode is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}")
            try:
                addresses = [await self._resolve(f"h{i}.{ZONE}") for i in range(len(VARIANTS))]
                for i, address in enumerate(addresses):
                    reader, writer = await asyncio.open_connection(
                        address, HTTPS_PORT, ssl=ctx, server_hostname=f"h{i}.{ZONE}"
                    )
                    writer.write(f"GET / HTTP/1.1\r\nHost: h{i}.{ZONE}\r\n\r\n".encode())
                    status = await asyncio.wait_for(reader.readline(), 5)
                    writer.close()
                    if b" 200 " not in status:
                        raise RuntimeError(f"nginx answered {status!r}")
                return
            except (OSError, TimeoutError, dns.exception.DNSException):
                await asyncio.sleep(0.2)
        raise RuntimeError("unbound or nginx did not start")

    async def _resolve(self, name: str) -> str:
        query = dns.message.make_query(name, "A")
        reply = await dns.asyncquery.udp(query, self.lab.dns, timeout=0.5)
        return str(reply.answer[0][0])

    async def __aexit__(self, *exc: object) -> None:
        for proc in (self.nginx, self.unbound):
            if proc is not None:
                await _stop(proc)

    def nginx_pids(self) -> list[int]:
        return [int(self.nginx.pid), *_children(int(self.nginx.pid))]

    @property
    def unbound_pid(self) -> int:
        return int(self.unbound.pid)


# ---- the threaded driver (a process of its own: `--threaded-driver SPEC`)


def threaded_drive(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target once per interval, spread evenly, handed by this thread to `threads`
    workers that each keep one HTTP/1.1 connection to blackbox_exporter."""
    url = urllib.parse.urlsplit(spec["url"])
    targets: list[str] = spec["targets"]
    interval, duration = float(spec["interval"]), float(spec["duration"])
    jobs: queue.Queue[str | None] = queue.Queue()
    results: list[dict[str, Any]] = []

    def connect() -> http.client.HTTPConnection:
        return http.client.HTTPConnection(url.hostname or "", url.port, timeout=interval + 10)

    def work() -> None:
        conn = connect()
        while (target := jobs.get()) is not None:
            query = urllib.parse.urlencode({"module": spec["module"], "target": target})
            try:
                conn.request("GET", f"{url.path}?{query}")
                response = conn.getresponse()
                text = response.read().decode()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = connect()
                results.append({"t": time.time(), "error": repr(exc)})
                continue
            success = re.search(r"^probe_success 1$", text, re.MULTILINE) is not None
            results.append({"t": time.time(), "success": 1.0 if success else 0.0})
        conn.close()

    workers = [threading.Thread(target=work) for _ in range(int(spec["threads"]))]
    for worker in workers:
        worker.start()
    gap = interval / len(targets)
    start = time.monotonic()
    i = 0
    while i * gap < duration:
        time.sleep(max(0.0, start + i * gap - time.monotonic()))
        jobs.put(targets[i % len(targets)])
        i += 1
    for _ in workers:
        jobs.put(None)
    for worker in workers:
        worker.join()
    return results


# ---- the drivers of blackbox_exporter


class Prometheus:
    """Debian's prometheus scraping blackbox_exporter's /probe for every target."""

    def __init__(self, lab: Lab, urls: list[str], interval: float, turn: int) -> None:
        self.lab = lab
        self.urls = urls
        self.interval = interval
        self.directory = lab.directory / f"prometheus-{turn}"
        self.listen = f"{lab.base}.4:9090"
        self.proc: Any = None

    def config(self) -> Path:
        self.directory.mkdir()
        timeout = min(5.0, self.interval)
        config = {
            "global": {"scrape_interval": f"{self.interval:g}s", "scrape_timeout": f"{timeout:g}s"},
            "scrape_configs": [
                {
                    "job_name": "blackbox",
                    "metrics_path": "/probe",
                    "params": {"module": ["http"]},
                    "static_configs": [{"targets": self.urls}],
                    "relabel_configs": [
                        {"source_labels": ["__address__"], "target_label": "__param_target"},
                        {"source_labels": ["__param_target"], "target_label": "instance"},
                        {"target_label": "__address__", "replacement": self.lab.blackbox_listen},
                    ],
                }
            ],
        }
        path = self.directory / "prometheus.yml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        return path

    async def __aenter__(self) -> Prometheus:
        argv = [
            PROMETHEUS,
            f"--config.file={self.config()}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address={self.listen}",
            "--log.level=error",
        ]
        if self.lab.pin:
            argv = ["taskset", "-c", "0", *argv]
        self.proc = await _start(argv)
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            await self._wait_ready()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _wait_ready(self) -> None:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with self.session.get(f"http://{self.listen}/-/ready") as r:
                    if r.status == 200:
                        return
            if self.proc.returncode is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}")
            await asyncio.sleep(0.1)
        raise RuntimeError("prometheus did not start")

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        await _stop(self.proc)
        shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    async def query(self, expr: str, at: float) -> float:
        params = {"query": expr, "time": f"{at:.3f}"}
        async with self.session.get(f"http://{self.listen}/api/v1/query", params=params) as r:
            data = await r.json()
        result = data["data"]["result"]
        return float(result[0]["value"][1]) if result else 0.0

    async def wait_scraped(self, n: int, limit: float) -> None:
        """Until every one of the `n` targets was scraped once."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if await self.query('count(up{job="blackbox"})', time.time()) >= n:
                return
            await asyncio.sleep(0.5)
        raise RuntimeError("prometheus did not scrape every target in time")

    async def count(self, t0: float, t1: float) -> tuple[float, float]:
        """(scrapes, successful probes) with a timestamp in (t0, t1], from Prometheus's own
        samples: `up` has one per scrape, failed or not."""
        await asyncio.sleep(min(self.interval, 5.0) + 1.0)  # scrapes begun before t1 land
        span = f"{round((t1 - t0) * 1000)}ms"
        scrapes = await self.query(f'sum(count_over_time(up{{job="blackbox"}}[{span}]))', t1)
        good = await self.query(f'sum(sum_over_time(probe_success{{job="blackbox"}}[{span}]))', t1)
        return scrapes, good


def _spec(lab: Lab, urls: list[str], interval: float, duration: float) -> dict[str, Any]:
    return {
        "url": f"http://{lab.blackbox_listen}/probe",
        "module": "http",
        "targets": urls,
        "interval": interval,
        "duration": duration,
        "threads": 16,
    }


async def _threaded(lab: Lab, urls: list[str], interval: float, duration: float) -> Any:
    path = lab.directory / "threaded.json"
    path.write_text(json.dumps(_spec(lab, urls, interval, duration)))
    argv = [lab.python, "-m", "benchmarks.fair", "--threaded-driver", str(path)]
    if lab.pin:
        argv = ["taskset", "-c", "0", *argv]
    return await _start(argv, stdout=subprocess.PIPE)


# ---- one turn of a side


def _row(
    side: str, cpu: float, wall: float, probes: float, successes: float, **others: float
) -> dict[str, Any]:
    per = 1000 / probes if probes else float("nan")
    return {
        "side": side,
        "cpu_seconds": cpu,
        "wall": wall,
        "probes": probes,
        "successes": successes,
        "cpu_ms_per_probe": cpu * per,
        "probes_per_second": probes / wall,
        **{f"{k}_ms_per_probe": v * per for k, v in others.items()},
        "loadavg": os.getloadavg()[0],
    }


def _settle(args: argparse.Namespace) -> float:
    """Seconds of warm-up left once every target was probed once (which takes an interval)."""
    return max(1.0, args.warmup - args.interval)


async def blackbox_turn(
    side: str, lab: Lab, servers: Servers, args: argparse.Namespace, turn: int
) -> dict[str, Any]:
    urls = blackbox_targets(args.tuples, 0)
    async with contextlib.AsyncExitStack() as stack:
        bb = await stack.enter_async_context(Blackbox(lab))
        duration = args.warmup + args.window
        prom: Prometheus | None = None
        driver: Any = None
        if side == "blackbox-prometheus":
            prom = await stack.enter_async_context(Prometheus(lab, urls, args.interval, turn))
            driver_pid = prom.pid
        elif side == "blackbox-threaded":
            driver = await _threaded(lab, urls, args.interval, duration)
            driver_pid = int(driver.pid)
        else:
            driver = await bb.drive(urls, args.interval, duration)  # benchmarks/load.py
            driver_pid = int(driver.pid)
        if prom is not None:  # its targets come some seconds after its start
            await prom.wait_scraped(len(urls), args.interval * 3 + 30)
            await asyncio.sleep(_settle(args))
        else:
            await asyncio.sleep(args.warmup)
        pids = {"driver": [driver_pid], "nginx": servers.nginx_pids()}
        pids["unbound"] = [servers.unbound_pid]
        t0, c0 = time.time(), cpu_seconds(bb.pid)
        o0 = {k: _cpu(v) for k, v in pids.items()}
        await asyncio.sleep(args.window)
        t1, c1 = time.time(), cpu_seconds(bb.pid)
        o1 = {k: _cpu(v) for k, v in pids.items()}
        if prom is not None:
            probes, successes = await prom.count(t0, t1)
        else:
            out, _ = await driver.communicate()
            inside = [r for r in json.loads(out)["results"] if t0 <= r["t"] < t1]
            probes = len(inside)
            successes = sum(1 for r in inside if r.get("success") == 1.0)
    others = {k: o1[k] - o0[k] for k in o0}
    return {"turn": turn, **_row(side, c1 - c0, t1 - t0, probes, successes, **others)}


async def exporter_turn(
    lab: Lab, servers: Servers, args: argparse.Namespace, turn: int, *, side: str = "exporter"
) -> dict[str, Any]:
    """As `benchmarks.bench.exporter_window`, with the servers' CPU over the same window; the
    `baseline` side runs the exporter of the `--baseline` tree."""
    config = exporter_config(lab, args.tuples, args.interval, 0)
    code = Path(args.baseline) if side == "baseline" else None
    python = shlex.split(args.baseline_python or "") if side == "baseline" else []
    async with Exporter(lab, config, pin=False, code=code, python=python) as ex:
        await ex.wait_ready(args.interval * 3 + 30)
        await asyncio.sleep(_settle(args))
        pids = {"nginx": servers.nginx_pids(), "unbound": [servers.unbound_pid]}
        o0 = {k: _cpu(v) for k, v in pids.items()}
        m0 = await ex.self_metrics()
        end = m0["t"] + args.window
        next_scrape = m0["t"] + args.interval
        while (now := time.monotonic()) < end:
            if now >= next_scrape:
                await ex.scrape()  # as a Prometheus server asks (OpenMetrics, gzip)
                next_scrape += args.interval
            await asyncio.sleep(max(0.0, min(next_scrape, end) - time.monotonic()))
        m1 = await ex.self_metrics()
        o1 = {k: _cpu(v) for k, v in pids.items()}
    others = {k: o1[k] - o0[k] for k in o0}
    return {
        "turn": turn,
        **_row(
            side,
            m1["cpu"] - m0["cpu"],
            m1["t"] - m0["t"],
            m1["probes"] - m0["probes"],
            m1["successes"] - m0["successes"],
            **others,
        ),
    }


# ---- the run


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ROWS:
        mine = [r for r in rows if r["side"] == side and r["probes"]]
        if not mine:
            continue
        s: dict[str, Any] = {
            "turns": len(mine),
            "probes": sum(r["probes"] for r in mine),
            "success_ratio": sum(r["successes"] for r in mine) / sum(r["probes"] for r in mine),
        }
        for key in ("cpu_ms_per_probe", "probes_per_second", "driver_ms_per_probe"):
            if key in mine[0]:
                s[key] = _stats([r[key] for r in mine])
        s["targets_ms_per_probe"] = _stats(
            [r["nginx_ms_per_probe"] + r["unbound_ms_per_probe"] for r in mine]
        )
        out[side] = s
    if "exporter" in out:
        ex = out["exporter"]["cpu_ms_per_probe"]["median"]
        for side in (*SIDES[:3], "baseline"):
            if side in out:
                out[side]["exporter_ratio"] = ex / out[side]["cpu_ms_per_probe"]["median"]
                # the same ratio turn by turn (the exporter's turn beside this side's)
                paired = [
                    e["cpu_ms_per_probe"] / b["cpu_ms_per_probe"]
                    for e in rows
                    if e["side"] == "exporter"
                    for b in rows
                    if b["side"] == side and b["turn"] == e["turn"] and b["probes"]
                ]
                out[side]["exporter_ratio_by_turn"] = _stats(paired)
    return out


def wait_for_quiet(limit: float, patience: float) -> dict[str, Any]:
    """Poll the 1-minute load average every 10 s until it is below `limit`."""
    start = time.monotonic()
    seen = [os.getloadavg()[0]]
    while seen[-1] >= limit and time.monotonic() - start < patience:
        time.sleep(10)
        seen.append(os.getloadavg()[0])
    return {
        "limit": limit,
        "waited_s": round(time.monotonic() - start),
        "reached": seen[-1] < limit,
        "loadavg_at_start": seen[-1],
    }


async def _turn(
    side: str, lab: Lab, servers: Servers, args: argparse.Namespace, turn: int
) -> dict[str, Any]:
    """One turn of a side; a side that fails to start is tried again (up to 3 times, 30 s
    apart): on a shared working tree the exporter's code may be caught halfway through an
    edit."""
    for attempt in range(4):
        try:
            if side in ("exporter", "baseline"):
                return await exporter_turn(lab, servers, args, turn, side=side)
            return await blackbox_turn(side, lab, servers, args, turn)
        except RuntimeError as exc:
            if attempt == 3:
                raise
            print(f"{side}: {exc}; again in 30 s", file=sys.stderr, flush=True)
            await asyncio.sleep(30)
    raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def _lab(args: argparse.Namespace) -> AsyncIterator[Lab]:
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    with tempfile.TemporaryDirectory(prefix="mx-fair-") as tmp:
        # 127.78.x: away from benchmarks.bench's 127.77.x, so both can run at once
        yield Lab(
            directory=Path(tmp),
            base=f"127.78.{random.randrange(1, 255)}",
            python=sys.executable,
            pin=pin,
        )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"argv": sys.argv[1:]}
    if args.wait_load:
        results["quiet"] = await asyncio.to_thread(wait_for_quiet, args.wait_load, args.wait_max)
    results["machine"] = {
        **machine(),
        "nginx": _version([NGINX, "-v"]),
        "unbound": _version([UNBOUND, "-V"]),
        "prometheus": _version([PROMETHEUS, "--version"]),
        "openssl": _version(["openssl", "version"]),
    }
    results["started"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    rows: list[dict[str, Any]] = []
    async with _lab(args) as lab, Servers(lab, args.tuples) as servers:
        results.update(pinned=lab.pin, tuples=args.tuples, interval=args.interval)
        results.update(window=args.window, warmup=args.warmup, variants=VARIANTS)
        results.update(alternations=args.alternations, sides=list(args.sides))
        if args.baseline is not None:
            python = args.baseline_python or sys.executable
            results["baseline"] = {"tree": args.baseline, "python": python}
        sides = args.sides
        for turn in range(args.alternations):
            order = sides[turn % len(sides) :] + sides[: turn % len(sides)]
            for side in order:
                row = await _turn(side, lab, servers, args, turn)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results["rows"] = rows
    results["loadavg_during"] = _stats([r["loadavg"] for r in rows])
    results["summary"] = summarise(rows)
    return results


def _cell(s: dict[str, float], digits: int = 3) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}{DASH}{s['max']:.{digits}f})"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    load = results["loadavg_during"]
    out = [
        f"Machine: {m['nproc']} cores, {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, "
        f"{m['openssl']}; {m['blackbox_exporter']}; {m['prometheus']}; {m['nginx']}; "
        f"{m['unbound']}. {results['started']} to {results['finished']}; 1-minute load average "
        f"{m['loadavg_at_start'][0]:.2f} at the start, {load['min']:.2f}{DASH}{load['max']:.2f} at "
        f"the turns' ends (median {load['median']:.2f}).",
        "",
        f"{results['tuples']} targets every {results['interval']:g} s, "
        f"{results['alternations']} alternations of {results['window']:g} s turns; "
        "medians over the turns, the range in parentheses:",
        "",
        "| side | CPU ms per probe | probes/s | success | exporter ÷ this (turn by turn) | "
        "driver CPU ms per probe (not counted) | nginx + unbound ms per probe |",
        "|---|---|---|---|---|---|---|",
    ]
    for side in ROWS:
        s = results["summary"].get(side)
        if s is None:
            continue
        ratio = ""
        if "exporter_ratio" in s:
            by_turn = s["exporter_ratio_by_turn"]
            ratio = (
                f"**{s['exporter_ratio']:.2f}** ({by_turn['min']:.2f}{DASH}{by_turn['max']:.2f})"
            )
        driver = _cell(s["driver_ms_per_probe"]) if "driver_ms_per_probe" in s else ""
        out.append(
            f"| {LABELS[side]} | {_cell(s['cpu_ms_per_probe'])} | "
            f"{s['probes_per_second']['median']:.1f} | {s['success_ratio']:.1%} | {ratio} | "
            f"{driver} | {_cell(s['targets_ms_per_probe'])} |"
        )
    if "baseline" in results:
        b = results["baseline"]
        out += ["", f"{LABELS['baseline']}: the exporter of `{b['tree']}`, run by `{b['python']}`."]
    return "\n".join(out) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tuples", type=int, default=1000, help="targets (and the exporter's tuples)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between two probes")
    p.add_argument("--window", type=float, default=30.0, help="seconds measured per turn")
    p.add_argument("--warmup", type=float, default=12.0, help="seconds before measuring")
    p.add_argument("--alternations", type=int, default=5)
    p.add_argument("--wait-load", type=float, default=0.6, help="0: do not wait")
    p.add_argument("--wait-max", type=float, default=1200.0)
    p.add_argument("--no-pin", action="store_true", help="do not pin the servers and drivers")
    p.add_argument("--quick", action="store_true", help="a few seconds, tiny (the smoke test)")
    p.add_argument("--out", help="write the JSON results here")
    p.add_argument("--markdown", action="store_true", help="print a markdown table too")
    p.add_argument(
        "--sides",
        default=",".join(SIDES),
        help=f"comma-separated, of {', '.join(SIDES)} (default: all)",
    )
    p.add_argument(
        "--baseline",
        metavar="DIR",
        help="also run the exporter of this checkout (a `git worktree` of other code), "
        "alternated with this one: an A/B of a change",
    )
    p.add_argument(
        "--baseline-python",
        metavar="COMMAND",
        help="the interpreter command of the baseline side (default: this one), e.g. "
        "'chroot /opt/trixie env PYTHONPATH=/work/main /opt/venv/bin/python' for the same "
        "code on another distribution's Python and OpenSSL",
    )
    p.add_argument("--threaded-driver", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sides = tuple(s.strip() for s in args.sides.split(",") if s.strip())
    unknown = sorted(set(sides) - set(SIDES))
    if unknown or not sides:
        p.error(f"--sides: {', '.join(unknown) or 'none'}: not of {', '.join(SIDES)}")
    if args.baseline is None and args.baseline_python:
        args.baseline = str(ROOT)  # this code, on the other interpreter
    if args.baseline is not None:
        if not (Path(args.baseline) / "exporter" / "__main__.py").is_file():
            p.error(f"--baseline: {args.baseline} holds no exporter/__main__.py")
        sides = (*sides, "baseline")
    args.sides = sides
    if args.quick:
        args.tuples, args.interval, args.window, args.warmup = 20, 1.0, 2.0, 1.5
        args.alternations, args.wait_load = 1, 0.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threaded_driver:
        spec = json.loads(Path(args.threaded_driver).read_text())
        json.dump({"results": threaded_drive(spec)}, sys.stdout)
        return 0
    for program in (NGINX, UNBOUND, PROMETHEUS, "/usr/bin/prometheus-blackbox-exporter"):
        if not os.access(program, os.X_OK):
            print(f"benchmarks.fair: {program} is not installed", file=sys.stderr)
            return 2
    if os.geteuid() != 0:
        print("benchmarks.fair: run as root (port 53, mount namespaces)", file=sys.stderr)
        return 2
    report(asyncio.run(run(args)), out=args.out, table=markdown if args.markdown else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
