"""What the `stun` and `mtproto` checks cost: CPU seconds of the exporter's process per probe,
beside a plain TCP connect to the same data centre. Offline: every packet stays in 127.0.0.0/8.

    .venv/bin/python -m benchmarks.protocols --markdown     # the full run (docs/benchmarks.md)
    .venv/bin/python -m benchmarks.protocols --quick        # a small run (the smoke test's)

The servers, each a process of its own (their CPU is not the exporter's):
- a real STUN server, Debian's coturn (`turnserver --stun-only`, UDP only) on 127.0.0.1,
  started and awaited as tests/test_stun.py does (ready once it answers a Binding request);
- the look-alike Telegram data centre of the tests, run as a program
  (`python -m tests.fakes.mtproto_server`, "ready <port>", stops at EOF on its stdin): it
  derives the obfuscation keys and answers `resPQ` as a DC does. Started, never imported.

The variants, endpoints of one config (parsed by `exporter.config.loader` from YAML, probed by
one `exporter.probes.probe.Prober`, in this process):
- `stun`: `checks: [stun]` to coturn, `address: 127.0.0.1`: one Binding transaction over UDP;
- `tcp`: `checks: [tcp]` to the data centre: the connect alone, the baseline of the next two;
- `mtproto-obfuscated` and `mtproto-intermediate`: `checks: [tcp, mtproto]` with
  `mtproto: {transport: ...}`: the connect, then `req_pq_multi` and its `resPQ` checked.

The loop: probes dispatched at a fixed `--rate` (one task per probe, waiting on a semaphore
of the config's `concurrency`, as the exporter's scheduler dispatches them), with automatic
full garbage-collector passes off as in the exporter; no store, judging or exposition (the
same for every variant). Each run probes `--probes` times per variant; variants take turns
(`--runs` runs, the order rotated each run) after `--warmup` probes each, so the machine's
drift affects all alike. CPU is `time.process_time()` of this process (all its threads)
over the window (the `--probes` slots of the schedule, or until the last probe ended
when that is later); the servers' CPU over the same window is
read from /proc/<pid>/stat (utime + stime, all threads). Per variant: the median and range
over runs of CPU ms per probe, probes/s achieved and the probe's own duration (p50).

Results are printed as JSON (and written to `--out`), with a markdown table (`--markdown`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import platform
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aioice import stun

from benchmarks.bench import report
from exporter.config.loader import parse_yaml
from exporter.config.matrix import Target, expand
from exporter.model.observation import Phase
from exporter.probes.probe import Prober
from exporter.runtime import garbage

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Seconds coturn and the data centre may take to start.
STARTUP = 30.0
#: The variants, in the order of the table: endpoint name -> what it measures.
VARIANTS = {
    "stun": "checks: [stun] (coturn, UDP)",
    "tcp": "checks: [tcp] (the connect alone)",
    "mtproto-obfuscated": "checks: [tcp, mtproto], obfuscated (AES-256-CTR)",
    "mtproto-intermediate": "checks: [tcp, mtproto], intermediate (plain)",
}


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, all its threads, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    turnserver = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "coturn"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        turnserver = out.stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "coturn": turnserver or "unknown",
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# ---- the servers


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _stun_answers(port: int) -> bool:
    """Whether a STUN server on 127.0.0.1:port answers one Binding request within 0.1 s."""
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.1)
        sock.connect((LOOPBACK, port))
        try:
            sock.send(bytes(request))
            reply = stun.parse_message(sock.recv(2048))
        except (OSError, ValueError):  # not listening yet: refused, or silence
            return False
    # A response, not our own request read back by a socket connected to itself.
    return (
        reply.transaction_id == request.transaction_id
        and reply.message_class == stun.Class.RESPONSE
    )


@dataclass(frozen=True, slots=True)
class Server:
    pid: int
    port: int


@contextlib.contextmanager
def coturn(directory: Path) -> Iterator[Server]:
    """coturn, STUN only over UDP, no configuration file or auth database, on 127.0.0.1."""
    turnserver = shutil.which("turnserver")
    if turnserver is None:
        raise RuntimeError(
            "turnserver is not installed (the real STUN server): apt-get install coturn"
        )
    port = _free_udp_port()
    log = directory / "turnserver.log"
    command = [
        turnserver,
        "-n",  # no configuration file: only these flags
        "--stun-only",
        f"--listening-ip={LOOPBACK}",
        f"--listening-port={port}",
        "--no-tcp",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-rfc5780",  # NAT behaviour discovery wants a second address
        "--log-file=stdout",
        "--simple-log",
        f"--pidfile={directory / 'turnserver.pid'}",
        f"--userdb={directory / 'turndb'}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=directory)
    try:
        deadline = time.monotonic() + STARTUP
        while not _stun_answers(port):
            if proc.poll() is not None:
                raise RuntimeError(f"turnserver exited:\n{log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"turnserver never answered:\n{log.read_text()[-2000:]}")
        yield Server(proc.pid, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def data_centre() -> AsyncIterator[Server]:
    """The tests' look-alike data centre as a program of its own (started, not imported)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.mtproto_server", "--host", LOOPBACK, "--port", "0",
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), STARTUP)
        word, _, port = line.decode().partition(" ")
        if word != "ready":
            raise RuntimeError(f"the data centre did not start: {line!r}")
        yield Server(proc.pid, int(port))
    finally:
        proc.stdin.close()  # its way to stop: EOF on stdin
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# ---- the exporter side


def config_yaml(stun_port: int, dc_port: int, timeout: float) -> str:
    ep = f"address: {LOOPBACK}"
    return "\n".join(
        [
            f"timeout: {timeout:g}s",
            "services:",
            "  bench:",
            "    endpoints:",
            f"      stun: {{{ep}, port: {stun_port}, checks: [stun]}}",
            f"      tcp: {{{ep}, port: {dc_port}, checks: [tcp]}}",
            f"      mtproto-obfuscated: {{{ep}, port: {dc_port}, checks: [tcp, mtproto], "
            "mtproto: {transport: obfuscated}}",
            f"      mtproto-intermediate: {{{ep}, port: {dc_port}, checks: [tcp, mtproto], "
            "mtproto: {transport: intermediate}}",
            "",
        ]
    )


def _checked(name: str, obs: Any) -> bool:
    """Whether the probe succeeded and its check did what the variant claims."""
    if not obs.success:
        return False
    if name == "stun":
        return obs.stun is not None and obs.stun.mapped is not None
    if name.startswith("mtproto"):
        return obs.mtproto is not None and obs.mtproto.answered
    return True


async def window(
    prober: Prober, target: Target, probes: int, rate: float, concurrency: int
) -> dict[str, Any]:
    """`probes` probes of `target` dispatched at `rate` per second: CPU, wall time, results."""
    loop = asyncio.get_running_loop()
    semaphore = asyncio.Semaphore(concurrency)
    name = target.key.endpoint
    durations: list[float] = []
    ok = 0
    errors: dict[str, int] = {}

    async def one() -> None:
        nonlocal ok
        async with semaphore:
            obs = await prober.probe(target)
        durations.append(obs.phases[Phase.TOTAL])
        if _checked(name, obs):
            ok += 1
        else:
            why = obs.result if not obs.success else "check did not answer"
            errors[why] = errors.get(why, 0) + 1

    tasks: set[asyncio.Task[None]] = set()
    cpu0, t0 = time.process_time(), loop.time()
    for i in range(probes):
        delay = t0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.wait(set(tasks))
    # The window is the n slots of the schedule, or longer when the probes fell behind it: at
    # the rate asked when they kept up, below it when not.
    end = t0 + probes / rate
    if loop.time() < end:
        await asyncio.sleep(end - loop.time())
    wall, cpu = loop.time() - t0, time.process_time() - cpu0
    durations.sort()
    return {
        "probes": probes,
        "successes": ok,
        "errors": errors,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "cpu_ms_per_probe": cpu / probes * 1000,
        "probes_per_second": probes / wall,
        "duration_p50_ms": durations[len(durations) // 2] * 1000 if durations else 0.0,
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="mx-protocols-"))
    results: dict[str, Any] = {
        "machine": machine(),
        "probes": args.probes,
        "runs": args.runs,
        "warmup": args.warmup,
        "rate": args.rate,
        "rows": [],
    }
    with coturn(directory) as turn:
        async with data_centre() as dc:
            config = parse_yaml(config_yaml(turn.port, dc.port, args.timeout), source="bench")
            results["concurrency"] = config.concurrency
            by_name = {t.key.endpoint: t for t in expand(config)}
            targets = [by_name[name] for name in VARIANTS]
            server_pid = {"stun": turn.pid}
            prober = Prober(config)
            try:
                with garbage.full_passes_off():  # as in the exporter
                    for target in targets if args.warmup else ():
                        await window(prober, target, args.warmup, args.rate, config.concurrency)
                    for run in range(args.runs):
                        shift = run % len(targets)
                        for target in targets[shift:] + targets[:shift]:
                            name = target.key.endpoint
                            pid = server_pid.get(name, dc.pid)
                            gc.collect()  # outside the window: the exporter's is every 10 min
                            server0 = cpu_seconds(pid)
                            row = await window(
                                prober, target, args.probes, args.rate, config.concurrency
                            )
                            server = cpu_seconds(pid) - server0
                            row.update(
                                variant=name,
                                run=run,
                                server_cpu_ms_per_probe=server / args.probes * 1000,
                            )
                            results["rows"].append(row)
            finally:
                await prober.aclose()
    shutil.rmtree(directory, ignore_errors=True)
    summary: dict[str, Any] = {}
    for name in VARIANTS:
        rows = [r for r in results["rows"] if r["variant"] == name]
        probes = sum(r["probes"] for r in rows)
        summary[name] = {
            "what": VARIANTS[name],
            "probes": probes,
            "success_ratio": sum(r["successes"] for r in rows) / probes,
            "cpu_ms_per_probe": _summary([r["cpu_ms_per_probe"] for r in rows]),
            "probes_per_second": _summary([r["probes_per_second"] for r in rows]),
            "duration_p50_ms": _summary([r["duration_p50_ms"] for r in rows]),
            "server_cpu_ms_per_probe": _summary([r["server_cpu_ms_per_probe"] for r in rows]),
        }
    tcp = summary["tcp"]["cpu_ms_per_probe"]["median"]
    for name in ("mtproto-obfuscated", "mtproto-intermediate"):
        summary[name]["added_to_tcp_ms"] = summary[name]["cpu_ms_per_probe"]["median"] - tcp
    results["summary"] = summary
    return results


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [
        f"Machine: {m['nproc']} cores, {m['cpu']}, Linux {m['kernel']}, Python {m['python']} "
        f"with {m['openssl']}, coturn {m['coturn']}; load average at start "
        f"{m['loadavg_at_start']}.",
        "",
        f"{results['probes']:,} probes per variant and run, {results['runs']} runs alternated, "
        f"at {results['rate']:g} probes/s, concurrency {results['concurrency']}; medians over "
        "the runs, the range in parentheses.",
        "",
        "| variant | CPU ms per probe | added to tcp, ms | probes/s | probe duration p50, ms "
        "| server CPU ms per probe | success |",
        "|---|---|---|---|---|---|---|",
    ]

    def cell(s: dict[str, float], digits: int) -> str:
        return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}\u2013{s['max']:.{digits}f})"

    for name, s in results["summary"].items():
        added = f"{s['added_to_tcp_ms']:+.3f}" if "added_to_tcp_ms" in s else ""
        out.append(
            f"| {name}: {s['what']} | {cell(s['cpu_ms_per_probe'], 3)} | {added} | "
            f"{cell(s['probes_per_second'], 1)} | {cell(s['duration_p50_ms'], 2)} | "
            f"{cell(s['server_cpu_ms_per_probe'], 3)} | {s['success_ratio']:.1%} |"
        )
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="CPU per probe of the stun and mtproto checks")
    p.add_argument("--quick", action="store_true", help="a small run (the smoke test's)")
    p.add_argument("--probes", type=int, default=3000, help="per variant and run")
    p.add_argument("--runs", type=int, default=5, help="alternated runs of every variant")
    p.add_argument("--warmup", type=int, default=200, help="probes per variant, not measured")
    p.add_argument("--rate", type=float, default=100.0, help="probes dispatched per second")
    p.add_argument("--timeout", type=float, default=5.0, help="the config's timeout, seconds")
    p.add_argument("--out", type=Path)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.probes, args.runs, args.warmup, args.rate = 40, 2, 5, 200.0
    if args.probes < 1 or args.runs < 1 or args.warmup < 0 or args.rate <= 0:
        p.error("--probes and --runs must be at least 1, --warmup 0 or more, --rate positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report(asyncio.run(benchmark(args)), out=args.out, table=markdown if args.markdown else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
