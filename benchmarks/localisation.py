"""What localisation costs: the exporter with a share of its tuples failing, localisation on
and off, in one run. Offline: every packet stays in namespaces this script makes.

    sudo .venv/bin/python -m benchmarks.localisation            # 10,000 tuples, a tenth failing
    sudo .venv/bin/python -m benchmarks.localisation --quick    # a small run (the smoke test's)

The path: the exporter's namespace -- r1 -- r2 -- r3 -- the targets' namespace (the targets of
benchmarks/targets.py: one DNS server, `--addresses` HTTPS addresses). r1 resets TCP to one of
the addresses (`reject with tcp reset`, as an IP-blocking censor does), so 1 / `--addresses` of
the tuples fail at connect and are localised (a reset from hop 2 while the destination is 4
hops away). Each side runs `--rounds` rounds after the first (the first localises every
failing address once; later rounds reuse it within `localisation.interval`, as a steady state
does), once with `localisation: {enabled: true}` and once with `enabled: false`:
- CPU seconds of the exporter's process per 1,000 probes over those rounds;
- packets the exporter sent with a TTL below 64 (localisation's, counted by nftables in its
  namespace), per failing tuple probed;
- the verdicts of the failing tuples (`tcp_blocked` with localisation, `down` without).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.bench import cpu_seconds, report
from benchmarks.targets import HTTPS_PORT

ROOT = Path(__file__).resolve().parent.parent
#: Public-looking addresses that exist only on lo in the targets' namespace (a private one
#: would be judged a DNS lie).
DNS = "185.77.0.53"
LISTEN = "127.0.0.1:10053"


def addresses(n: int) -> list[str]:
    return [f"185.77.0.{10 + i}" for i in range(n)]


def run(*argv: str, stdin: str | None = None) -> str:
    return subprocess.run(
        argv, input=stdin, text=True, check=True, capture_output=True, timeout=30
    ).stdout


@contextlib.contextmanager
def chain(count: int) -> Iterator[dict[str, str]]:
    """exporter -- r1 -- r2 -- r3 -- targets, IPv4; r1 resets TCP to the first address."""
    tag = secrets.token_hex(2)
    names = {role: f"mxb-{tag}-{role}" for role in ("x", "r1", "r2", "r3", "t")}
    order = list(names.values())
    try:
        for ns in order:
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
            for key in ("net.ipv4.icmp_ratelimit=0", "net.ipv4.conf.all.rp_filter=0"):
                run("ip", "netns", "exec", ns, "sysctl", "-qw", key)
        for i, (a, b) in enumerate(itertools.pairwise(order)):
            link = ("link", "add", "uplink", "type", "veth", "peer", "name", "downlink")
            run("ip", "-n", a, *link, "netns", b)
            run("ip", "-n", a, "addr", "add", f"10.92.{i}.2/24", "dev", "uplink")
            run("ip", "-n", b, "addr", "add", f"10.92.{i}.1/24", "dev", "downlink")
            run("ip", "-n", a, "link", "set", "uplink", "up")
            run("ip", "-n", b, "link", "set", "downlink", "up")
        for i, ns in enumerate(order):
            if 0 < i < len(order) - 1:
                run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            if i < len(order) - 1:
                run("ip", "-n", ns, "route", "add", "185.77.0.0/24", "via", f"10.92.{i}.1")
            if i > 1:
                run("ip", "-n", ns, "route", "add", "10.92.0.0/24", "via", f"10.92.{i - 1}.2")
        for address in [DNS, *addresses(count)]:
            run("ip", "-n", names["t"], "addr", "add", f"{address}/32", "dev", "lo")
        blocked = addresses(count)[0]
        run(
            "ip", "netns", "exec", names["r1"], "nft", "-f", "-",
            stdin=f"""
table inet censor {{
    chain fw {{
        type filter hook forward priority 0;
        ip daddr {blocked} meta l4proto tcp reject with tcp reset
    }}
}}
""",
        )  # fmt: skip
        run(
            "ip", "netns", "exec", names["x"], "nft", "-f", "-",
            stdin="""
table inet count {
    counter low { }
    chain out {
        type filter hook output priority 0;
        ip ttl < 64 counter name low
    }
}
""",
        )  # fmt: skip
        yield names
    finally:
        for ns in order:
            subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)


def low_ttl_packets(ns: str) -> int:
    listed = json.loads(
        run("ip", "netns", "exec", ns, "nft", "-j", "list", "counter", "inet", "count", "low")
    )
    for item in listed["nftables"]:
        if "counter" in item:
            return int(item["counter"]["packets"])
    raise RuntimeError("no counter")


def config(directory: Path, tuples: int, interval: float, count: int, localise: bool) -> Path:
    lines = [
        f"interval: {interval:g}s",
        f"timeout: {min(5.0, interval):g}s",
        "concurrency: 256",
        "metrics: {phase_histograms: endpoint}",
        f"localisation: {{enabled: {'true' if localise else 'false'}}}",
        f"resolvers: {{bench: {{type: udp, address: {DNS}}}}}",
        "services:",
        "  bench:",
        "    endpoints:",
    ]
    common = f"port: {HTTPS_PORT}, tls: {{ca_file: {directory / 'ca.pem'}}}"
    lines += [f"      e{i}: {{host: h{i}.bench.test, {common}}}" for i in range(tuples)]
    path = directory / f"exporter-{tuples}-{localise}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def scrape(ns: str) -> dict[str, Any]:
    """Probes, rounds and verdict counts from one /metrics scrape (from inside `ns`, where
    the exporter listens)."""
    code = (
        "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
        f"'http://{LISTEN}/metrics', timeout=60).read().decode())"
    )
    text = run("ip", "netns", "exec", ns, sys.executable, "-c", code)
    out: dict[str, Any] = {"probes": 0.0, "rounds": 0.0, "verdicts": {}}
    wanted = "\n".join(
        line
        for line in text.splitlines()
        if line.startswith(("messaging_probes_total", "messaging_exporter_rounds_total"))
        or (line.startswith("messaging_probe_verdict{") and line.endswith(" 1.0"))
    )
    for family in text_string_to_metric_families(wanted + "\n"):
        for sample in family.samples:
            if sample.name == "messaging_probes_total":
                out["probes"] += sample.value
            elif sample.name == "messaging_exporter_rounds_total":
                out["rounds"] = sample.value
            elif sample.name == "messaging_probe_verdict":
                verdict = sample.labels["verdict"]
                out["verdicts"][verdict] = out["verdicts"].get(verdict, 0) + 1
    return out


async def rounds_done(ns: str, proc: Any, at_least: float, limit: float) -> dict[str, Any]:
    """The first scrape showing `at_least` completed rounds (polled: the exporter says it)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"the exporter exited with {proc.returncode}")
        with contextlib.suppress(subprocess.CalledProcessError):
            got = await asyncio.to_thread(scrape, ns)
            if got["rounds"] >= at_least:
                return got
        await asyncio.sleep(0.5)  # polling interval of a condition, not a synchronisation
    raise RuntimeError(f"{at_least:g} rounds not done within {limit:g}s")


async def side(
    names: dict[str, str], path: Path, rounds: int, interval: float, failing: int
) -> dict[str, Any]:
    """One exporter: after its first round, `rounds` rounds measured."""
    argv = [
        "ip", "netns", "exec", names["x"], sys.executable, "-m", "exporter",
        f"--config.file={path}", f"--web.listen-address={LISTEN}", "--log.level=error",
    ]  # fmt: skip
    run("ip", "netns", "exec", names["x"], "nft", "reset", "counter", "inet", "count", "low")
    proc = await asyncio.create_subprocess_exec(*argv, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        limit = interval * 3 + 60
        before = await rounds_done(names["x"], proc, 1, limit)
        cpu0, packets0 = cpu_seconds(proc.pid), low_ttl_packets(names["x"])
        after = await rounds_done(names["x"], proc, before["rounds"] + rounds, limit * rounds)
        cpu, packets = cpu_seconds(proc.pid) - cpu0, low_ttl_packets(names["x"]) - packets0
        probes = after["probes"] - before["probes"]
        failed_probes = failing * (after["rounds"] - before["rounds"])
        return {
            "probes": probes,
            "cpu_seconds": cpu,
            "cpu_per_1000_probes": cpu / probes * 1000 if probes else None,
            "low_ttl_packets": packets,
            "first_round_low_ttl_packets": packets0,
            "low_ttl_packets_per_failing_probe": packets / failed_probes if failed_probes else 0,
            "first_round_packets_per_failing_tuple": packets0 / failing if failing else 0,
            "verdicts": after["verdicts"],
        }
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="mx-localisation-"))
    failing = args.tuples // args.addresses + (1 if args.tuples % args.addresses else 0)
    results: dict[str, Any] = {
        "tuples": args.tuples,
        "interval_seconds": args.interval,
        "failing_tuples": failing,
        "rows": [],
    }
    with chain(args.addresses) as names:
        argv = [
            "ip", "netns", "exec", names["t"], sys.executable, "-m", "benchmarks.targets",
            "--dir", str(directory), "--dns", DNS, "--https", ",".join(addresses(args.addresses)),
        ]  # fmt: skip
        targets = await asyncio.create_subprocess_exec(
            *argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        try:
            assert targets.stdout is not None
            line = await asyncio.wait_for(targets.stdout.readline(), 30)
            if not line.startswith(b'{"ready"'):
                raise RuntimeError("the targets did not start")
            for localise in (True, False):
                path = config(directory, args.tuples, args.interval, args.addresses, localise)
                row = await side(names, path, args.rounds, args.interval, failing)
                results["rows"].append({"localisation": localise, **row})
        finally:
            targets.terminate()
            await targets.wait()
    on, off = results["rows"]
    if on["cpu_per_1000_probes"] and off["cpu_per_1000_probes"]:
        results["cpu_ratio"] = on["cpu_per_1000_probes"] / off["cpu_per_1000_probes"]
    return results


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| localisation | probes | CPU s per 1,000 probes | TTL-limited packets, first round, "
        "per failing tuple | later, per failing probe | failing tuples' verdicts |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        verdicts = ", ".join(
            f"{k} {v}" for k, v in sorted(r["verdicts"].items()) if k not in ("ok",)
        )
        rows.append(
            f"| {'on' if r['localisation'] else 'off'} | {r['probes']:.0f} | "
            f"{r['cpu_per_1000_probes']:.3f} | {r['first_round_packets_per_failing_tuple']:.1f} "
            f"| {r['low_ttl_packets_per_failing_probe']:.2f} | {verdicts} |"
        )
    return "\n".join(rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="what localisation costs")
    p.add_argument("--quick", action="store_true", help="a small run (the smoke test's)")
    p.add_argument("--tuples", type=int, default=10_000)
    p.add_argument("--addresses", type=int, default=10, help="one of them blocked by r1")
    p.add_argument("--interval", type=float, default=60.0)
    p.add_argument("--rounds", type=int, default=2, help="measured after the first")
    p.add_argument("--out", type=Path)
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.tuples, args.interval, args.rounds = 40, 2.0, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    if os.geteuid() != 0:
        print("benchmarks.localisation: run as root (it makes network namespaces)", file=sys.stderr)
        return 1
    args = parse_args(argv)
    report(asyncio.run(benchmark(args)), out=args.out, table=markdown if args.markdown else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
