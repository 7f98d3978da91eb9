"""The benchmark: messaging-exporter beside Debian's prometheus-blackbox-exporter, on the same
look-alike targets on loopback, in one run. Offline: every packet stays in 127.0.0.0/8.

    sudo .venv/bin/python -m benchmarks.bench            # the full run (docs/benchmarks.md)
    sudo .venv/bin/python -m benchmarks.bench --quick    # a small run (the smoke test's)

Parts (`--parts`, each optional):
- `cpu`: `--tuples` tuples at `--interval`; the two sides alternate (`--repeats` times each,
  exporter first) for `--window` seconds each after a warm-up. CPU seconds of the side's own
  process (/proc/<pid>/stat utime+stime, threads included; not the targets', not the load
  driver's) per 1,000 completed full probes. The exporter is scraped once per interval during
  its window, as Prometheus would, and that scrape counts in its CPU; blackbox_exporter's
  per-probe scrape is its probe.
- `sustain`: the exporter alone, pinned to one core (taskset; the targets on the other), for
  each size of `--sustain` at `--interval`: the largest round lag of `--sustain-rounds` rounds,
  the start-lag p99 (from its histogram), skipped slots and the core's utilisation.
- `timing`: `--timing-tuples` delayed tuples (half with a DNS answer delayed by `--delay-ms`,
  half with an HTTP response delayed as much) inside matrices of `--timing-low` tuples and of
  80 % of the largest sustained size; error = reported phase duration - delay, p50 and p99,
  for both sides.
- `memory`: the exporter at each size of `--memory` tuples, at the rate of 10,000 tuples per
  60 s: /metrics scrape time and size once every tuple was probed, and resident memory.

Results are printed as JSON (and written to `--out`), with a markdown table (`--markdown`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.targets import HTTPS_PORT, SLOW_PORT

ROOT = Path(__file__).resolve().parent.parent
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
#: How many HTTPS addresses the targets listen on (each a different 127.x address).
HTTPS_ADDRESSES = 8
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Probe rate of the issue's target: 10,000 tuples per 60 s.
TARGET_RATE = 10_000 / 60
#: The Accept header of a Prometheus server (2.x): OpenMetrics first.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, all its threads, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of the process, bytes."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass(frozen=True, slots=True, kw_only=True)
class Lab:
    """Addresses of one run: a random 127.77.X.0/24 so that runs do not collide."""

    directory: Path
    base: str
    python: str
    pin: bool
    loop: str = "asyncio"  # the exporter's event loop (MESSAGING_EXPORTER_LOOP)

    @property
    def dns(self) -> str:
        return f"{self.base}.1"

    @property
    def https(self) -> list[str]:
        return [f"{self.base}.{10 + i}" for i in range(HTTPS_ADDRESSES)]

    @property
    def exporter_listen(self) -> str:
        return f"{self.base}.2:10053"

    @property
    def blackbox_listen(self) -> str:
        return f"{self.base}.3:9115"


async def _start(
    argv: list[str],
    *,
    stdout: int | None = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
) -> Any:
    return await asyncio.create_subprocess_exec(
        *argv, stdout=stdout, stderr=subprocess.DEVNULL, cwd=cwd, env=env
    )


async def _stop(proc: Any) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def targets(lab: Lab, delay_ms: float, report: dict[str, Any]) -> AsyncIterator[None]:
    """Run the targets; on exit, `report["targets_hold_error"]` holds their own timing error
    (how much longer than the delay they held delayed answers), p50/p99 in ms."""
    argv = [
        lab.python, "-m", "benchmarks.targets", "--dir", str(lab.directory), "--dns", lab.dns,
        "--https", ",".join(lab.https), "--delay-ms", str(delay_ms),
    ]  # fmt: skip
    if lab.pin:
        argv = ["taskset", "-c", "0", *argv]
    proc = await _start(argv, stdout=subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line.startswith(b'{"ready"'):
            raise RuntimeError("the targets did not start")
        yield
    finally:
        await _stop(proc)
        with contextlib.suppress(ValueError, KeyError):
            holds = json.loads(await proc.stdout.read())["hold_errors"]
            report["targets_hold_error"] = {
                kind: {
                    "samples": len(v),
                    "p50_ms": percentile(v, 0.5) * 1000,
                    "p99_ms": percentile(v, 0.99) * 1000,
                }
                for kind, v in holds.items()
            }


def tuple_names(n: int, timing: int) -> tuple[list[str], list[str]]:
    """(hosts of the plain tuples, endpoints of the delayed ones: dslowN hosts and hN /slow)."""
    plain = [f"h{i}.bench.test" for i in range(max(0, n - timing))]
    delayed = [f"dslow{i}" for i in range(timing // 2)]
    delayed += [f"hslow{i}" for i in range(timing - timing // 2)]
    return plain, delayed


def exporter_config(
    lab: Lab,
    n: int,
    interval: float,
    timing: int,
    *,
    resolvers: int = 1,
    phase_histograms: str = "tuple",
) -> Path:
    """A config of `n` tuples: one network, IPv4, `resolvers` UDP resolvers (all the targets'
    DNS, under different names: a matrix of n / resolvers endpoints x resolvers, as a real
    one of many resolvers is) and the phase histograms as `phase_histograms` says."""
    if n % resolvers:
        raise ValueError(f"{n} tuples do not split evenly over {resolvers} resolvers")
    if timing and resolvers > 1:
        raise ValueError("delayed (timing) tuples need a matrix of one resolver")
    ca = lab.directory / "ca.pem"
    plain, delayed = tuple_names(n // resolvers, timing)
    names = ["bench"] if resolvers == 1 else [f"bench{i}" for i in range(resolvers)]
    # Always said: the default changed (tuple, then endpoint), and code from either side of
    # the change must render the same histograms.
    metrics = [f"metrics: {{phase_histograms: {phase_histograms}}}"]
    lines = [
        f"interval: {interval:g}s",
        f"timeout: {min(5.0, interval):g}s",
        "concurrency: 256",
        *metrics,
        "resolvers:",
        *(f"  {name}: {{type: udp, address: {lab.dns}}}" for name in names),
        "services:",
    ]
    common = f"port: {HTTPS_PORT}, tls: {{ca_file: {ca}}}"
    # The targets answer loopback addresses, bogons to the judgement (rule 4): said to be the
    # services' own, as a private deployment would, so that tuples are judged `ok` as a
    # real matrix mostly is, not `dns_tampered` (a shorter path and a reason kept per tuple).
    expected = f"    expected_networks: [{lab.base}.0/24]"
    if plain:
        lines += ["  bench:", expected, "    endpoints:"]
        lines += [f"      e{i}: {{host: {h}, {common}}}" for i, h in enumerate(plain)]
    if delayed:
        lines += ["  timing:", expected, "    endpoints:"]
        for name in delayed:
            if name.startswith("dslow"):
                lines.append(f"      {name}: {{host: {name}.bench.test, {common}}}")
            else:
                host = f"h{name.removeprefix('hslow')}.bench.test"
                slow = f"port: {SLOW_PORT}, tls: {{ca_file: {ca}}}, http: {{path: /slow}}"
                lines.append(f"      {name}: {{host: {host}, {slow}}}")
    path = lab.directory / f"exporter-{n}-{timing}-{resolvers}-{phase_histograms}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def blackbox_targets(n: int, timing: int) -> list[str]:
    plain, delayed = tuple_names(n, timing)
    urls = [f"https://{h}:{HTTPS_PORT}/" for h in plain]
    for name in delayed:
        if name.startswith("dslow"):
            urls.append(f"https://{name}.bench.test:{HTTPS_PORT}/")
        else:
            urls.append(f"https://h{name.removeprefix('hslow')}.bench.test:{SLOW_PORT}/slow")
    random.Random(7).shuffle(urls)  # delayed ones spread, as the exporter's offsets are
    return urls


# ---- the exporter side


class Exporter:
    """`python -m exporter` on `config`; for an A/B run, from the tree `code` (a checkout of
    other code) instead of this one, and with the interpreter command `python` instead of
    the lab's (e.g. one in a chroot of another distribution, for another OpenSSL)."""

    def __init__(
        self,
        lab: Lab,
        config: Path,
        *,
        pin: bool,
        code: Path | None = None,
        python: Sequence[str] = (),
    ) -> None:
        self.lab = lab
        self.config = config
        self.pin = pin
        self.code = code
        self.python = list(python) or [lab.python]
        self.proc: Any = None
        self.url = f"http://{lab.exporter_listen}"

    async def __aenter__(self) -> Exporter:
        argv = [
            *self.python,
            "-m",
            "exporter",
            f"--config.file={self.config}",
            f"--web.listen-address={self.lab.exporter_listen}",
            "--log.level=error",
        ]
        if self.pin:
            argv = ["taskset", "-c", "1", *argv]
        env = {**os.environ, "MESSAGING_EXPORTER_LOOP": self.lab.loop}
        self.proc = await _start(argv, env=env, cwd=self.code or ROOT)
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        for _ in range(600):
            with contextlib.suppress(aiohttp.ClientError):
                async with self.session.get(f"{self.url}/-/healthy") as r:
                    if r.status == 200:
                        return self
            if self.proc.returncode is not None:
                raise RuntimeError(f"the exporter exited with {self.proc.returncode}")
            await asyncio.sleep(0.2)
        raise RuntimeError("the exporter did not start")

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()
        await _stop(self.proc)

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    async def wait_ready(self, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            async with self.session.get(f"{self.url}/-/ready") as r:
                if r.status == 200:
                    return
            await asyncio.sleep(0.5)
        raise RuntimeError("the exporter did not probe every tuple in time")

    async def scrape(self, accept: str = PROMETHEUS_ACCEPT) -> tuple[str, float, int, int]:
        """(text, seconds, bytes, gzip bytes) of one /metrics scrape, by default as a Prometheus
        server asks it."""
        headers = {"Accept": accept, "Accept-Encoding": "gzip"}
        t0 = time.perf_counter()
        async with self.session.get(
            f"{self.url}/metrics", headers=headers, auto_decompress=False
        ) as r:
            raw = await r.read()
            seconds = time.perf_counter() - t0
            gzipped = r.headers.get("Content-Encoding") == "gzip"
        text = gzip.decompress(raw).decode() if gzipped else raw.decode()
        return text, seconds, len(text.encode()), len(raw) if gzipped else 0

    async def self_metrics(self) -> dict[str, Any]:
        """Counters of the exporter, and its CPU seconds read as the scrape came back (parsing
        a large scrape here takes seconds, which must not widen the window)."""
        text = (await self.scrape("text/plain;version=0.0.4"))[0]
        out: dict[str, Any] = {"cpu": cpu_seconds(self.pid), "t": time.monotonic()}
        out.update(probes=0.0, successes=0.0)
        out["lag_buckets"] = []
        wanted = "\n".join(
            line
            for line in text.splitlines()
            if line.startswith(
                ("messaging_probes_total", "messaging_exporter_", "# TYPE messaging_exporter_")
            )
        )
        for family in text_string_to_metric_families(wanted + "\n"):
            for s in family.samples:
                if s.name == "messaging_probes_total":
                    out["probes"] += s.value
                    if s.labels.get("result") == "success":
                        out["successes"] += s.value
                elif s.name == "messaging_exporter_probe_start_lag_seconds_bucket":
                    out["lag_buckets"].append((float(s.labels["le"]), s.value))
                elif s.name in (
                    "messaging_exporter_round_lag_seconds",
                    "messaging_exporter_rounds_total",
                    "messaging_exporter_probes_skipped_total",
                ):
                    out[s.name.removeprefix("messaging_exporter_")] = s.value
        return out

    async def timing_probes(self) -> list[dict[str, Any]]:
        async with self.session.get(
            f"{self.url}/probes", params={"service": "timing", "format": "json"}
        ) as r:
            return list((await r.json())["probes"])


def lag_p99(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> float:
    """The p99 start lag from the histogram's increase: the upper bound of its bucket."""
    diffs = [(le, n - dict(before).get(le, 0.0)) for le, n in sorted(after)]
    total = diffs[-1][1] if diffs else 0.0
    for le, n in diffs:
        if total and n >= 0.99 * total:
            return le
    return float("nan")


# ---- the blackbox side


class Blackbox:
    """blackbox_exporter in a mount namespace of its own where /etc/resolv.conf names the
    targets' DNS server: its http prober resolves with Go's resolver like any deployment."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.proc: Any = None
        self.url = f"http://{lab.blackbox_listen}"

    async def __aenter__(self) -> Blackbox:
        d = self.lab.directory
        modules = (ROOT / "benchmarks" / "blackbox.yml").read_text()
        (d / "blackbox.yml").write_text(modules.replace("CA_FILE", str(d / "ca.pem")))
        (d / "resolv.conf").write_text(f"nameserver {self.lab.dns}\noptions attempts:1\n")
        script = (
            f"mount --bind {d / 'resolv.conf'} /etc/resolv.conf && exec {BLACKBOX} "
            f"--config.file={d / 'blackbox.yml'} --web.listen-address={self.lab.blackbox_listen}"
        )
        self.proc = await _start(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        )
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/-/healthy") as r:
                        if r.status == 200:
                            return self
                if self.proc.returncode is not None:
                    raise RuntimeError(f"blackbox_exporter exited with {self.proc.returncode}")
                await asyncio.sleep(0.1)
        raise RuntimeError("blackbox_exporter did not start")

    async def __aexit__(self, *exc: object) -> None:
        await _stop(self.proc)

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    async def drive(self, urls: list[str], interval: float, duration: float) -> Any:
        """Start the load driver; returns the process (its stdout: JSON results)."""
        spec = {
            "url": f"{self.url}/probe",
            "module": "http",
            "targets": urls,
            "interval": interval,
            "duration": duration,
        }
        path = self.lab.directory / "load.json"
        path.write_text(json.dumps(spec))
        argv = [self.lab.python, "-m", "benchmarks.load", str(path)]
        if self.lab.pin:
            argv = ["taskset", "-c", "0", *argv]
        return await _start(argv, stdout=subprocess.PIPE)


async def blackbox_window(
    lab: Lab, urls: list[str], interval: float, warmup: float, window: float
) -> dict[str, Any]:
    """Drive blackbox_exporter for warmup + window seconds; CPU and probes in the window."""
    async with Blackbox(lab) as bb:
        load = await bb.drive(urls, interval, warmup + window)
        await asyncio.sleep(warmup)
        t0, cpu0 = time.time(), cpu_seconds(bb.pid)
        await asyncio.sleep(window)
        t1, cpu1 = time.time(), cpu_seconds(bb.pid)
        rss = rss_bytes(bb.pid)
        out, _ = await load.communicate()
    results = json.loads(out)["results"]
    inside = [r for r in results if t0 <= r["t"] < t1]
    return {
        "cpu_seconds": cpu1 - cpu0,
        "probes": len(inside),
        "successes": sum(1 for r in inside if r.get("success") == 1.0),
        "wall": t1 - t0,
        "rss_bytes": rss[0],
        "results": results,
    }


async def exporter_window(
    lab: Lab,
    n: int,
    interval: float,
    window: float,
    *,
    timing: int = 0,
    pin: bool = False,
    scrape_every: float | None = None,
) -> dict[str, Any]:
    """Run the exporter until ready, then measure `window` seconds."""
    config = exporter_config(lab, n, interval, timing)
    async with Exporter(lab, config, pin=pin) as ex:
        await ex.wait_ready(interval * 3 + 30)
        m0 = await ex.self_metrics()
        t0, cpu0 = m0["t"], m0["cpu"]
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        end = t0 + window
        next_scrape = t0 + (scrape_every or window)
        while (now := time.monotonic()) < end:
            if timing:
                for p in await ex.timing_probes():
                    seen[(p["endpoint"], p["finished"])] = p
            if scrape_every and now >= next_scrape:
                await ex.scrape()
                next_scrape += scrape_every
            await asyncio.sleep(min(1.0, interval / 4, max(0.0, end - time.monotonic())))
        m1 = await ex.self_metrics()
        cpu1, t1 = m1["cpu"], m1["t"]
        rss = rss_bytes(ex.pid)
    return {
        "cpu_seconds": cpu1 - cpu0,
        "wall": t1 - t0,
        "probes": m1["probes"] - m0["probes"],
        "successes": m1["successes"] - m0["successes"],
        "rounds": m1.get("rounds_total", 0) - m0.get("rounds_total", 0),
        "round_lag_seconds": m1.get("round_lag_seconds"),
        "start_lag_p99": lag_p99(m0["lag_buckets"], m1["lag_buckets"]),
        "skipped": m1.get("probes_skipped_total", 0) - m0.get("probes_skipped_total", 0),
        "rss_bytes": rss[0],
        "timing": list(seen.values()),
    }


# ---- the parts


async def part_cpu(lab: Lab, args: argparse.Namespace, have_bb: bool) -> dict[str, Any]:
    n, interval, window = args.tuples, args.interval, args.window
    rows: list[dict[str, Any]] = []
    urls = blackbox_targets(n, 0)
    for i in range(args.repeats):
        ex = await exporter_window(lab, n, interval, window, scrape_every=interval)
        ex.pop("timing")
        rows.append({"side": "exporter", "repeat": i, **ex})
        if have_bb:
            bb = await blackbox_window(lab, urls, interval, args.warmup, window)
            bb.pop("results")
            rows.append({"side": "blackbox", "repeat": i, **bb})
    out: dict[str, Any] = {"tuples": n, "interval": interval, "window": window, "rows": rows}
    for side in ("exporter", "blackbox"):
        mine = [r for r in rows if r["side"] == side]
        probes = sum(r["probes"] for r in mine)
        if probes:
            out[f"{side}_cpu_per_1000"] = 1000 * sum(r["cpu_seconds"] for r in mine) / probes
            out[f"{side}_success_ratio"] = sum(r["successes"] for r in mine) / probes
    if "blackbox_cpu_per_1000" in out and "exporter_cpu_per_1000" in out:
        out["ratio"] = out["exporter_cpu_per_1000"] / out["blackbox_cpu_per_1000"]
    return out


async def part_sustain(lab: Lab, args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    best = 0
    for n in args.sustain:
        window = args.interval * args.sustain_rounds
        r = await exporter_window(lab, n, args.interval, window, pin=True)
        r.pop("timing")
        ok = (
            r["round_lag_seconds"] is not None
            and r["round_lag_seconds"] < 1.0
            and r["skipped"] == 0
            and r["probes"] >= 0.95 * n * window / args.interval
        )
        rows.append(
            {
                "tuples": n,
                "per_60s": round(n * 60 / args.interval),
                "core_utilisation": r["cpu_seconds"] / r["wall"],
                "sustained": ok,
                **r,
            }
        )
        if ok:
            best = max(best, n)
        else:
            break  # larger matrices only lag more
    return {
        "interval": args.interval,
        "rows": rows,
        "largest": best,
        "largest_per_60s": round(best * 60 / args.interval),
    }


def _errors(values: list[float], delay: float) -> dict[str, float]:
    errs = [abs(v - delay) * 1000 for v in values]
    return {
        "samples": len(errs),
        "p50_ms": percentile(errs, 0.5),
        "p99_ms": percentile(errs, 0.99),
        "max_ms": max(errs) if errs else float("nan"),
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "samples": len(values),
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
    }


async def part_timing(
    lab: Lab, args: argparse.Namespace, have_bb: bool, loaded: int
) -> dict[str, Any]:
    delay = args.delay_ms / 1000
    rows = []
    for label, n in (("low", args.timing_low), ("80%", loaded)):
        if n < args.timing_tuples:
            continue
        window = args.interval * args.timing_rounds
        ex = await exporter_window(lab, n, args.interval, window, timing=args.timing_tuples)
        dns = [p["phases_ms"]["dns"] / 1000 for p in ex["timing"] if p["endpoint"][:5] == "dslow"]
        http = [
            p["phases_ms"]["http"] / 1000
            for p in ex["timing"]
            if p["endpoint"][:5] == "hslow" and "http" in p["phases_ms"]
        ]
        # Loopback's real round trip is tens of microseconds: what the wall-clock connect
        # phase holds beyond the kernel's RTT (TCP_INFO) is the event loop's wake-up.
        connect = [p["phases_ms"]["connect"] for p in ex["timing"] if "connect" in p["phases_ms"]]
        rtt = [p["tcp_rtt_ms"] for p in ex["timing"] if p["tcp_rtt_ms"] is not None]
        rows.append(
            {
                "side": "exporter",
                "load": label,
                "tuples": n,
                "dns": _errors(dns, delay),
                "http": _errors(http, delay),
                "connect_ms": _spread(connect),
                "kernel_rtt_ms": _spread(rtt),
            }
        )
        if have_bb:
            urls = blackbox_targets(n, args.timing_tuples)
            bb = await blackbox_window(lab, urls, args.interval, args.warmup, window)
            res = bb["results"]
            dns = [r["dns"] for r in res if "dslow" in r["target"] and "dns" in r]
            http = [r["processing"] for r in res if "/slow" in r["target"] and "processing" in r]
            rows.append(
                {
                    "side": "blackbox",
                    "load": label,
                    "tuples": n,
                    "dns": _errors(dns, delay),
                    "http": _errors(http, delay),
                }
            )
    return {"delay_ms": args.delay_ms, "rows": rows}


async def part_memory(lab: Lab, args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    for n in args.memory:
        interval = max(1.0, round(n / TARGET_RATE, 1))
        config = exporter_config(
            lab,
            n,
            interval,
            0,
            resolvers=args.memory_resolvers,
            phase_histograms=args.phase_histograms,
        )
        async with Exporter(lab, config, pin=False) as ex:
            await ex.wait_ready(interval * 2 + 60)
            times, size, gz = [], 0, 0
            for i in range(args.scrapes):
                if i:  # as Prometheus scrapes: probes change tuples between two scrapes
                    await asyncio.sleep(args.scrape_every)
                _, seconds, size, gz = await ex.scrape()
                times.append(seconds)
            rss, hwm = rss_bytes(ex.pid)
        rows.append(
            {
                "tuples": n,
                "interval": interval,
                "resolvers": args.memory_resolvers,
                "phase_histograms": args.phase_histograms,
                "scrape_p50_s": statistics.median(times),
                "scrape_max_s": max(times),
                "scrapes_s": times,
                "bytes": size,
                "gzip_bytes": gz,
                "rss_bytes": rss,
                "peak_rss_bytes": hwm,
            }
        )
    return {"rows": rows}


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([BLACKBOX, "--version"], capture_output=True, text=True, timeout=10)
        versions["blackbox_exporter"] = (out.stdout + out.stderr).split("\n")[0]
    try:
        import uvloop

        versions["uvloop"] = uvloop.__version__
    except ImportError:
        versions["uvloop"] = "absent (asyncio's own loop)"
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in load],
        **versions,
    }


def markdown(results: dict[str, Any]) -> str:
    out = []
    m = results["machine"]
    out.append(f"Exporter event loop: {results.get('loop', 'asyncio')}.")
    out.append(
        f"Machine: {m['nproc']} cores, {m['cpu']}, Linux {m['kernel']}, Python "
        f"{m['python']}, {m.get('blackbox_exporter', 'no blackbox_exporter')}, uvloop "
        f"{m['uvloop']}; load average at start {m['loadavg_at_start']}."
    )
    if "cpu" in results:
        c = results["cpu"]
        out += [
            "",
            f"CPU, {c['tuples']} tuples every {c['interval']:g} s:",
            "",
            "| side | CPU s per 1,000 full probes | probes measured | success |",
            "|---|---|---|---|",
        ]
        for side in ("exporter", "blackbox"):
            if f"{side}_cpu_per_1000" in c:
                probes = sum(r["probes"] for r in c["rows"] if r["side"] == side)
                out.append(
                    f"| {side} | {c[f'{side}_cpu_per_1000']:.3f} | {probes:.0f} | "
                    f"{c[f'{side}_success_ratio']:.1%} |"
                )
        if "ratio" in c:
            out.append(f"| ratio exporter / blackbox | {c['ratio']:.2f} | | |")
    if "sustain" in results:
        s = results["sustain"]
        out += [
            "",
            f"Sustain (one core, interval {s['interval']:g} s):",
            "",
            "| tuples | = per 60 s | round lag max | start lag p99 <= | skipped | "
            "core use | sustained |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in s["rows"]:
            out.append(
                f"| {r['tuples']} | {r['per_60s']} | {r['round_lag_seconds']:.3f} s | "
                f"{r['start_lag_p99']:g} s | {r['skipped']:.0f} | "
                f"{r['core_utilisation']:.0%} | {'yes' if r['sustained'] else 'no'} |"
            )
    if "timing" in results:
        t = results["timing"]
        out += [
            "",
            f"Timing error, |reported - {t['delay_ms']:g} ms|:",
            "",
            "| side | load | tuples | dns p50 / p99 ms (n) | http p50 / p99 ms (n) |",
            "|---|---|---|---|---|",
        ]
        hold = results.get("targets_hold_error")
        if hold:
            d, h = hold["dns"], hold["http"]
            out.append(
                f"| targets' own hold | all | | {d['p50_ms']:.2f} / {d['p99_ms']:.2f} "
                f"({d['samples']}) | {h['p50_ms']:.2f} / {h['p99_ms']:.2f} ({h['samples']}) |"
            )
        for r in t["rows"]:
            d, h = r["dns"], r["http"]
            out.append(
                f"| {r['side']} | {r['load']} | {r['tuples']} | {d['p50_ms']:.2f} / "
                f"{d['p99_ms']:.2f} ({d['samples']}) | {h['p50_ms']:.2f} / "
                f"{h['p99_ms']:.2f} ({h['samples']}) |"
            )
        kernel = [r for r in t["rows"] if "kernel_rtt_ms" in r]
        if kernel:
            out += [
                "",
                "The exporter's connect phase (wall clock) beside the kernel's RTT (TCP_INFO):",
                "",
                "| load | tuples | connect p50 / p99 ms (n) | kernel RTT p50 / p99 ms (n) |",
                "|---|---|---|---|",
            ]
            for r in kernel:
                c, k = r["connect_ms"], r["kernel_rtt_ms"]
                out.append(
                    f"| {r['load']} | {r['tuples']} | {c['p50']:.3f} / {c['p99']:.3f} "
                    f"({c['samples']}) | {k['p50']:.3f} / {k['p99']:.3f} ({k['samples']}) |"
                )
    if "memory" in results:
        out += [
            "",
            "| tuples | resolvers | phase histograms | scrape p50 / max | size (gzip) | "
            "RSS (peak) |",
            "|---|---|---|---|---|---|",
        ]
        for r in results["memory"]["rows"]:
            out.append(
                f"| {r['tuples']} | {r['resolvers']} | {r['phase_histograms']} | "
                f"{r['scrape_p50_s'] * 1000:.0f} / "
                f"{r['scrape_max_s'] * 1000:.0f} ms | {r['bytes'] / 1e6:.1f} MB "
                f"({r['gzip_bytes'] / 1e6:.2f} MB) | {r['rss_bytes'] / 2**20:.0f} MiB "
                f"({r['peak_rss_bytes'] / 2**20:.0f} MiB) |"
            )
    return "\n".join(out) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="messaging-exporter beside blackbox_exporter")
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731  # a tiny parser
    p.add_argument("--parts", default="cpu,sustain,timing,memory")
    p.add_argument("--tuples", type=int, default=1000, help="cpu: matrix size")
    p.add_argument("--interval", type=float, default=10.0, help="seconds, cpu/sustain/timing")
    p.add_argument("--window", type=float, default=30.0, help="cpu: seconds measured per turn")
    p.add_argument("--warmup", type=float, default=5.0, help="blackbox: seconds before measuring")
    p.add_argument("--repeats", type=int, default=2, help="cpu: turns of each side")
    p.add_argument("--sustain", type=ints, default=[1667, 2500, 3333, 5000])
    p.add_argument("--sustain-rounds", type=int, default=3)
    p.add_argument("--timing-tuples", type=int, default=40)
    p.add_argument("--timing-low", type=int, default=200)
    p.add_argument("--timing-rounds", type=int, default=4)
    p.add_argument(
        "--timing-loaded",
        type=int,
        default=0,
        help="tuples of the loaded timing run (default: 80%% of the sustained)",
    )
    p.add_argument("--delay-ms", type=float, default=50.0)
    p.add_argument("--memory", type=ints, default=[1000, 10000])
    p.add_argument("--scrapes", type=int, default=5)
    p.add_argument(
        "--memory-resolvers",
        type=int,
        default=1,
        help="memory: resolvers per endpoint (tuples / this = endpoints)",
    )
    p.add_argument(
        "--phase-histograms",
        choices=("tuple", "endpoint", "none"),
        default="tuple",
        help="memory: the exporter's metrics.phase_histograms",
    )
    p.add_argument(
        "--scrape-every", type=float, default=15.0, help="memory: seconds between two scrapes"
    )
    p.add_argument("--no-blackbox", action="store_true")
    p.add_argument(
        "--loop", choices=("asyncio", "uvloop"), default="asyncio", help="the exporter's event loop"
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin to cores (taskset)")
    p.add_argument("--quick", action="store_true", help="a small run of every part (smoke)")
    p.add_argument("--out", help="write the JSON results here")
    p.add_argument("--markdown", action="store_true", help="print a markdown table too")
    args = p.parse_args(argv)
    if args.quick:  # every part, tiny; the loaded timing run is left out (< its tuples)
        args.tuples, args.interval, args.window, args.warmup, args.repeats = 20, 1.0, 2.0, 1.0, 1
        args.sustain, args.sustain_rounds = [20], 1
        args.timing_tuples, args.timing_low, args.timing_rounds = 4, 10, 2
        args.timing_loaded, args.memory, args.scrapes, args.delay_ms = 1, [20], 2, 20.0
        args.scrape_every = 1.0
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    parts = set(args.parts.split(","))
    have_bb = not args.no_blackbox and os.access(BLACKBOX, os.X_OK) and os.geteuid() == 0
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    results: dict[str, Any] = {
        "loop": args.loop,
        "machine": machine(),
        "blackbox": have_bb,
        "pinned": pin,
        "argv": sys.argv[1:],
    }
    with tempfile.TemporaryDirectory(prefix="mx-bench-") as tmp:
        lab = Lab(
            directory=Path(tmp),
            base=f"127.77.{random.randrange(1, 255)}",
            python=sys.executable,
            pin=pin,
            loop=args.loop,
        )
        async with targets(lab, args.delay_ms, results):
            if "cpu" in parts:
                results["cpu"] = await part_cpu(lab, args, have_bb)
            if "sustain" in parts:
                results["sustain"] = await part_sustain(lab, args)
            if "timing" in parts:
                loaded = args.timing_loaded or int(
                    0.8 * results.get("sustain", {}).get("largest", 0)
                )
                results["timing"] = await part_timing(lab, args, have_bb, loaded)
            if "memory" in parts:
                results["memory"] = await part_memory(lab, args)
    return results


def report(
    results: dict[str, Any], *, out: str | Path | None, table: Callable[[Any], str] | None
) -> None:
    """A benchmark's results as JSON on stdout (and in `out`), then `table(results)`, its
    markdown, when asked for."""
    text = json.dumps(results, indent=1)
    if out:
        Path(out).write_text(text)
    print(text)
    if table is not None:
        print(table(results))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report(asyncio.run(run(args)), out=args.out, table=markdown if args.markdown else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
