"""The same full probes on other Python interpreters, and so on the OpenSSL each links: what a
newer Python or OpenSSL in the container image buys, measured on the probe path alone.

    sudo .venv/bin/python -m benchmarks.interpreters \\
        --python 'chroot /opt/trixie env PYTHONPATH=/work/main /opt/venv/bin/python' --markdown
    sudo .venv/bin/python -m benchmarks.interpreters --quick     # the smoke test's run

The targets are `benchmarks.fair`'s real servers: unbound answering `hN.bench.test` and nginx
with TLS 1.2 and 1.3, RSA and ECDSA certificates. Offline: every packet stays in 127.0.0.0/8.
Each interpreter (this one, then every `--python` command) runs this module's `--loop`: one
`Prober` in that process probing the tuples of `benchmarks.bench`'s config round robin (DNS
over UDP, TCP, TLS verified, one GET), `--probes` of them at `--rate` per second, at most
`--concurrency` at a time, after `--warmup` probes, with the exporter's garbage-collector
setting; it reports its own CPU (`time.process_time()`) per probe, never the servers'. The
interpreters take turns, `--runs` times, the order rotated each run, so the machine's drift
falls on each alike.

`--wrap` runs every loop under a command prefix: `--wrap 'valgrind --tool=callgrind'` with
`--probes 300` and again with `--probes 100` gives the instructions of 200 probes, start-up
cancelled, by shared object (`callgrind_annotate`); the CPU figures are then valgrind's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shlex
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Only what the loop needs at the top: it runs on other interpreters, whose environment may
# hold the exporter's runtime packages and nothing else.
from exporter.config.loader import load
from exporter.config.matrix import Target, expand
from exporter.config.model import Config
from exporter.probes.probe import Prober
from exporter.runtime import garbage

ROOT = Path(__file__).resolve().parent.parent


# ---- the loop, in the measured interpreter


async def probe_loop(
    config_path: Path,
    probes: int,
    warmup: int,
    rate: float,
    concurrency: int,
    *,
    scheduled: bool = False,
) -> dict[str, Any]:
    """`warmup` then `probes` full probes of the config's tuples round robin, dispatched at
    `rate` per second (or by the exporter's scheduler: `scheduled`); CPU seconds of this
    process over the measured ones."""
    config = load(config_path)
    targets = expand(config)
    prober = Prober(config)
    if scheduled:
        try:
            with garbage.full_passes_off():
                measured = await scheduled_loop(config, targets, prober, probes, warmup)
        finally:
            await prober.aclose()
        return _row(probes, *measured, dispatch="scheduler")
    loop = asyncio.get_running_loop()
    semaphore = asyncio.Semaphore(concurrency)
    ok = 0

    async def one(i: int) -> None:
        nonlocal ok
        async with semaphore:
            obs = await prober.probe(targets[i % len(targets)])
        ok += obs.success

    async def dispatch(start: int, n: int) -> None:
        tasks: set[asyncio.Task[None]] = set()
        t0 = loop.time()
        for i in range(n):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(start + i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.wait(set(tasks))

    try:
        with garbage.full_passes_off():  # as in the exporter
            await dispatch(0, warmup)
            ok = 0
            cpu0, t0 = time.process_time(), loop.time()
            await dispatch(warmup, probes)
            cpu, wall = time.process_time() - cpu0, loop.time() - t0
    finally:
        await prober.aclose()
    return _row(probes, ok, cpu, wall, dispatch="loop")


async def scheduled_loop(
    config: Config, targets: Sequence[Target], prober: Prober, probes: int, warmup: int
) -> tuple[int, float, float]:
    """The probes as a running exporter makes and keeps them: its `Scheduler` spreading the
    config's tuples over its interval, its `Store` and the collector's text made as each probe
    is recorded (no web server, no scrape, no round's judgement). (successes, CPU seconds,
    wall seconds) over the `probes` recorded after `warmup`."""
    from exporter.exposition.collector import Collector
    from exporter.exposition.families import ReloadStatus
    from exporter.exposition.store import Series, Store
    from exporter.runtime.clock import SystemClock
    from exporter.runtime.scheduler import Scheduler

    loop = asyncio.get_running_loop()
    store = Store(phase_histograms=config.metrics.phase_histograms)
    scheduler = Scheduler(
        config=config,
        targets=targets,
        prober=prober,
        store=store,
        clock=SystemClock(),
        rng=random.Random(0),
    )
    status = ReloadStatus(successful=True, last_success_timestamp=time.time())
    collector = Collector(
        store=store, scheduler_stats=scheduler.stats, reload_status=lambda: status
    )
    collector.expect(target.key for target in scheduler.targets())
    warm, done = asyncio.Event(), asyncio.Event()
    recorded = ok = 0

    def count(series: Series) -> None:
        nonlocal recorded, ok
        recorded += 1
        if recorded > warmup:
            ok += series.kept is not None and series.kept.bare.success
        if recorded == warmup:
            warm.set()
        if recorded == warmup + probes:
            done.set()

    store.subscribe(count)
    task = asyncio.create_task(scheduler.run())
    try:
        await warm.wait()
        cpu0, t0 = time.process_time(), loop.time()
        await done.wait()
        return ok, time.process_time() - cpu0, loop.time() - t0
    finally:
        task.cancel()
        await asyncio.wait({task})


def _row(probes: int, ok: int, cpu: float, wall: float, *, dispatch: str) -> dict[str, Any]:
    return {
        "dispatch": dispatch,
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "probes": probes,
        "successes": ok,
        "cpu_ms_per_probe": cpu / probes * 1000,
        "probes_per_second": probes / wall,
    }


# ---- the turns, in this interpreter


def _loop_argv(prefix: Sequence[str], config: Path, args: argparse.Namespace) -> list[str]:
    return [
        *prefix,
        "-m",
        "benchmarks.interpreters",
        "--loop",
        str(config),
        f"--probes={args.probes}",
        f"--warmup={args.warmup}",
        f"--rate={args.rate:g}",
        f"--concurrency={args.concurrency}",
        *(["--scheduled"] if args.scheduled else []),
    ]


def turn(prefix: Sequence[str], config: Path, args: argparse.Namespace) -> dict[str, Any]:
    wrap = shlex.split(args.wrap or "")
    proc = subprocess.run(
        [*wrap, *_loop_argv(prefix, config, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=args.probes / args.rate * 50 + 600,  # valgrind runs ~50x slower
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{shlex.join(prefix)}: exit {proc.returncode}: {proc.stderr[-2000:]}")
    row: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return row


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # The servers' side, imported here: the loop above needs none of it.
    from benchmarks.bench import Lab, exporter_config
    from benchmarks.fair import VARIANTS, Servers, _stats

    interpreters = [[sys.executable], *(shlex.split(p) for p in args.python)]
    results: dict[str, Any] = {
        "argv": sys.argv[1:],
        "machine": {"cpu_count": os.cpu_count(), "kernel": platform.release()},
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "variants": VARIANTS,
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="mx-interpreters-") as tmp:
        lab = Lab(
            directory=Path(tmp),
            base=f"127.79.{random.randrange(1, 255)}",  # away from bench's and fair's
            python=sys.executable,
            pin=False,
        )
        async with Servers(lab, args.tuples):
            config = exporter_config(lab, args.tuples, args.tuples / args.rate, 0)
            for n in range(args.runs):
                shift = n % len(interpreters)
                for prefix in interpreters[shift:] + interpreters[:shift]:
                    row = await asyncio.to_thread(turn, prefix, config, args)
                    row.update(run=n, interpreter=shlex.join(prefix))
                    results["rows"].append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    summary: dict[str, Any] = {}
    for prefix in interpreters:
        name = shlex.join(prefix)
        rows = [r for r in results["rows"] if r["interpreter"] == name]
        summary[name] = {
            "python": rows[0]["python"],
            "openssl": rows[0]["openssl"],
            "success_ratio": sum(r["successes"] for r in rows) / sum(r["probes"] for r in rows),
            "cpu_ms_per_probe": _stats([r["cpu_ms_per_probe"] for r in rows]),
        }
    first = summary[shlex.join(interpreters[0])]["cpu_ms_per_probe"]["median"]
    for row in summary.values():
        row["ratio_to_this"] = row["cpu_ms_per_probe"]["median"] / first
    results["summary"] = summary
    return results


def markdown(results: dict[str, Any]) -> str:
    from benchmarks.fair import _cell

    out = [
        "| Python | OpenSSL | CPU ms per probe | ÷ this interpreter's | success |",
        "|---|---|---|---|---|",
    ]
    for row in results["summary"].values():
        out.append(
            f"| {row['python']} | {row['openssl']} | {_cell(row['cpu_ms_per_probe'])} | "
            f"{row['ratio_to_this']:.3f} | {row['success_ratio']:.1%} |"
        )
    return "\n".join(out) + "\n"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="COMMAND",
        help="another interpreter command (repeatable), e.g. one in a chroot of another "
        "distribution; it needs this tree on its path and the exporter's runtime packages",
    )
    p.add_argument("--tuples", type=int, default=1000)
    p.add_argument("--probes", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--rate", type=float, default=100.0, help="probes dispatched per second")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--wrap", metavar="PREFIX", help="run each loop under this command")
    p.add_argument(
        "--scheduled",
        action="store_true",
        help="probe through the exporter's scheduler, store and collector, as a running "
        "exporter does (the --rate is then the config's: --tuples over its interval)",
    )
    p.add_argument("--quick", action="store_true", help="a few seconds (the smoke test)")
    p.add_argument("--out", type=Path, help="write the JSON results here")
    p.add_argument("--markdown", action="store_true", help="print a markdown table too")
    p.add_argument("--loop", type=Path, metavar="CONFIG", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("tuples", "probes", "runs", "concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: {getattr(args, name)} is not a positive count")
    if args.rate <= 0:
        p.error(f"--rate: {args.rate:g} is not a positive rate")
    if args.quick:
        args.tuples, args.probes, args.warmup, args.runs = 8, 40, 8, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.loop is not None:
        row = asyncio.run(
            probe_loop(
                args.loop,
                args.probes,
                args.warmup,
                args.rate,
                args.concurrency,
                scheduled=args.scheduled,
            )
        )
        print(json.dumps(row))
        return 0
    from benchmarks.bench import report  # not in the loop's interpreters (see the imports)

    report(asyncio.run(run(args)), out=args.out, table=markdown if args.markdown else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
