"""The long run: ~1,000 tuples in the censorship lab with 1 % random packet loss on the clean
uplink, for an hour by default. Not part of CI (run it by hand, as root):

    python -m tests.lab.longrun --duration 3600

What it builds: the lab (tests/lab, docs/lab.md), an nftables rule in the clean ISP's forward
chain dropping 1 % of the packets it forwards, both ways (`numgen random mod 100 < 1 drop`),
and the exporter as a real process in the lab's vantage namespace probing every lab endpoint
(copied `--copies` times under other service names) through three networks: `clean` (the
lossy uplink by source address), `clean-if` (the same uplink by interface) and `censor`, with
six resolvers (udp, tcp, DoT, DoH). Every `--sample` seconds it records the exporter's RSS
and open files (/proc/PID), its asyncio tasks (`messaging_exporter_asyncio_tasks`) and, for
each round judged since the last sample, the verdicts.

Criteria (exit status 1 when one fails, with the summary table either way):
- memory flat after warm-up: the mean RSS of the last 3 samples is less than 5 % above the
  mean of the first 3 samples after `--warmup`;
- no growth in open files or tasks: the median of the last third of the samples after
  warm-up is at most the maximum of the first third plus `SLACK` (both move with the probes
  in flight at the instant of the sample; a leak of one per round exceeds it within minutes);
- not one false `blocked` verdict: nothing on `clean` or `clean-if` (honest paths, only
  random loss) is ever judged blocked (`messaging_probe_blocked` 1), in any round seen;
- the run itself is alive: the exporter never exited, every round was seen, and `censor`
  still shows its real blocking (a detector that says nothing would pass the rest).

Only the lab's namespaces are used: no packet leaves them (docs/lab.md, "Isolation").
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.probes.network import namespace
from tests.lab.topology import Lab, Rule

ROOT = Path(__file__).resolve().parent.parent.parent
PORT = 10053  # the exporter's, inside the vantage namespace
HONEST = ("clean", "clean-if")  # networks where a blocked verdict is always false
#: Open files or tasks the last third's median may exceed the first third's maximum by.
SLACK = 4
RESOLVERS = ("google", "cloudflare", "quad9", "google-tcp", "cloudflare-dot", "quad9-doh")

Samples = dict[str, list[tuple[dict[str, str], float]]]


def loss_rules(percent: int) -> tuple[Rule, Rule]:
    """A counter of every forwarded packet, then the random drop with its own counter."""
    return (
        Rule("isp-clean", "loss", "forward", 'counter comment "longrun-all"'),
        Rule(
            "isp-clean",
            "loss",
            "forward",
            f'numgen random mod 100 < {percent} counter drop comment "longrun-drop"',
        ),
    )


def loss_counts(lab: Lab) -> tuple[int, int]:
    """(packets forwarded by the clean ISP, packets it dropped) since the rules were added."""
    text = lab.nft("isp-clean", "list chain inet lab forward")
    counts = []
    for comment in ("longrun-all", "longrun-drop"):
        match = re.search(rf'counter packets (\d+) bytes \d+.*comment "{comment}"', text)
        counts.append(int(match.group(1)) if match else -1)
    return counts[0], counts[1]


# --- the config ------------------------------------------------------------------------------


def resolver_config(lab: Lab, name: str) -> dict[str, Any]:
    r = lab.resolvers[name]
    tls = {"ca_file": str(lab.ca_file)}
    if r["type"] in ("udp", "tcp"):
        return {"type": r["type"], "address": r["address"]}
    if r["type"] == "dot":
        return {"type": "dot", "address": r["address"], "server_name": r["server_name"], "tls": tls}
    if r["type"] == "doh":
        return {"type": "doh", "url": r["url"], "address": r["address"], "tls": tls}
    raise ValueError(f"resolver {name}: type {r['type']} not used here")


def endpoint_config(lab: Lab, e: dict[str, Any]) -> dict[str, Any]:
    """The endpoint as test_lab_verdicts probes it (no QUIC, no throughput: the long run is
    about the scheduler, the probes and the verdicts under loss)."""
    tls = {"ca_file": str(lab.ca_file)}
    if e["host"] is None:  # the Telegram DCs: by address, any HTTP status is an answer
        return {
            "address": e["address"],
            "port": e["port"],
            "checks": ["tcp", "http"],
            "http": {"method": "POST", "expect_status": ["2xx", "3xx", "4xx", "5xx"]},
        }
    if e["scheme"] == "tcp":
        return {"host": e["host"], "port": e["port"], "checks": ["dns", "tcp"]}
    if e["scheme"] == "http":
        return {"host": e["host"], "port": e["port"], "checks": ["dns", "tcp", "http"]}
    out: dict[str, Any] = {
        "host": e["host"],
        "port": e["port"],
        "checks": ["dns", "tcp", "tls", "http"],
        "tls": tls,
    }
    if e.get("control_sni"):
        out["control_sni"] = e["control_sni"]
    return out


def config(lab: Lab, *, copies: int, interval: float, timeout: float) -> dict[str, Any]:
    clean = lab.networks["clean"]
    services: dict[str, Any] = {}
    for copy in range(copies):
        for name, e in lab.endpoints.items():
            if e["service"] == "canary":
                continue
            service = f"{e['service']}{copy}"
            endpoint = name.removeprefix(f"{e['service']}-")
            eps = services.setdefault(service, {"endpoints": {}})["endpoints"]
            eps[endpoint] = endpoint_config(lab, e)
    canary = lab.endpoints["canary"]
    return {
        "blockpage_patterns": [r"(?i)blocked by order of the Lab Telecommunications"],
        "interval": f"{interval:g}s",
        "timeout": f"{timeout:g}s",
        "concurrency": 64,
        "resolvers": {name: resolver_config(lab, name) for name in RESOLVERS},
        "networks": {
            "clean": {"source_address": clean["source_address"]},
            "clean-if": {"interface": clean["interface"]},
            "censor": {"source_address": lab.networks["censor"]["source_address"]},
        },
        "canaries": {"example": endpoint_config(lab, canary)},
        "services": services,
    }


# --- talking to the exporter -----------------------------------------------------------------


class NsConnection(http.client.HTTPConnection):
    """HTTP to 127.0.0.1 inside a namespace (the socket is made there)."""

    def __init__(self, ns: str, port: int) -> None:
        super().__init__("127.0.0.1", port, timeout=30)
        self.ns = ns

    def connect(self) -> None:
        with namespace(self.ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self.sock = sock


#: The families a sample needs: `name[]=` keeps the scrape (and its parsing here) small.
SAMPLED = (
    "messaging_probe_verdict",
    "messaging_probe_blocked",
    "messaging_exporter_rounds_total",
    "messaging_exporter_targets",
    "messaging_exporter_asyncio_tasks",
    "messaging_exporter_probes_in_flight",
    "messaging_exporter_probes_skipped_total",
    "messaging_exporter_round_lag_seconds",
)


def scrape(ns: str, families: tuple[str, ...] = SAMPLED) -> Samples:
    conn = NsConnection(ns, PORT)
    query = "&".join(f"name[]={name}" for name in families)
    try:
        conn.request("GET", f"/metrics?{query}")
        response = conn.getresponse()
        if response.status != 200:
            raise OSError(f"/metrics answered {response.status}")
        text = response.read().decode()
    finally:
        conn.close()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def gauge(m: Samples, name: str) -> float:
    return sum(v for _, v in m.get(name, []))


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- the run ---------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Sample:
    at: float  # seconds since the exporter started
    rss: int
    fds: int
    tasks: int
    in_flight: int
    rounds: int
    skipped: int  # slots skipped: the exporter could not keep up (overload, not a leak)
    lag: float  # the last round's largest start lag, seconds


@dataclass(slots=True, kw_only=True)
class Record:
    samples: list[Sample] = field(default_factory=list)
    rounds_seen: set[int] = field(default_factory=set)
    false_blocked: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    honest_verdicts: Counter[str] = field(default_factory=Counter)
    censor_blocked: int = 0
    honest_failures: Counter[str] = field(default_factory=Counter)
    honest_probes: float = 0.0
    targets: int = 0


def observe(m: Samples, record: Record, at: float, pid: int) -> None:
    rounds = int(gauge(m, "messaging_exporter_rounds_total"))
    record.targets = int(gauge(m, "messaging_exporter_targets"))
    record.samples.append(
        Sample(
            at=at,
            rss=rss_bytes(pid),
            fds=open_files(pid),
            tasks=int(gauge(m, "messaging_exporter_asyncio_tasks")),
            in_flight=int(gauge(m, "messaging_exporter_probes_in_flight")),
            rounds=rounds,
            skipped=int(gauge(m, "messaging_exporter_probes_skipped_total")),
            lag=gauge(m, "messaging_exporter_round_lag_seconds"),
        )
    )
    if rounds == 0 or rounds in record.rounds_seen:
        return
    record.rounds_seen.add(rounds)  # the judgement on /metrics is that of the last round
    for labels, value in m.get("messaging_probe_verdict", []):
        if value == 1.0 and labels["network"] in HONEST:
            record.honest_verdicts[labels["verdict"]] += 1
    for labels, value in m.get("messaging_probe_blocked", []):
        if value != 1.0:
            continue
        if labels["network"] in HONEST:
            verdict = next(
                v["verdict"]
                for v, one in m["messaging_probe_verdict"]
                if one == 1.0 and all(v[k] == labels[k] for k in labels)
            )
            record.false_blocked.append((rounds, {**labels, "verdict": verdict}))
        elif labels["network"] == "censor":
            record.censor_blocked += 1


def final_counts(m: Samples, record: Record) -> None:
    for labels, value in m.get("messaging_probes_total", []):
        if labels["network"] in HONEST:
            record.honest_probes += value
            if labels["result"] != "success":
                record.honest_failures[labels["result"]] += int(value)


def median_of(values: list[int]) -> float:
    return statistics.median(values) if values else 0.0


def judge(record: Record, warmup: float, exited: int | None) -> list[tuple[str, str, bool]]:
    """(criterion, figures, passed)."""
    after = [s for s in record.samples if s.at >= warmup]
    out: list[tuple[str, str, bool]] = []
    out.append(("exporter alive", "yes" if exited is None else f"exited {exited}", exited is None))
    if len(after) < 6:
        out.append(("enough samples after warm-up", f"{len(after)} (need 6)", False))
        return out
    base = statistics.mean(s.rss for s in after[:3])
    last = statistics.mean(s.rss for s in after[-3:])
    growth = last / base - 1
    out.append(
        (
            "RSS growth after warm-up < 5 %",
            f"{base / 2**20:.1f} -> {last / 2**20:.1f} MiB ({growth:+.1%})",
            growth < 0.05,
        )
    )
    third = max(1, len(after) // 3)
    for name, values in (
        ("open files", [s.fds for s in after]),
        ("asyncio tasks", [s.tasks for s in after]),
    ):
        first_max, last_median = max(values[:third]), median_of(values[-third:])
        out.append(
            (
                f"{name} not growing",
                f"first third max {first_max}, last third median {last_median:g}",
                last_median <= first_max + SLACK,
            )
        )
    rounds = sorted(record.rounds_seen)
    missed = (rounds[-1] - rounds[0] + 1 - len(rounds)) if rounds else 0
    out.append(("every round seen", f"{len(rounds)} rounds, {missed} missed", missed == 0))
    out.append(
        (
            "no false blocked verdict",
            f"{len(record.false_blocked)} of {sum(record.honest_verdicts.values())} "
            "honest-path verdicts",
            not record.false_blocked,
        )
    )
    out.append(
        (
            "censor still detected",
            f"{record.censor_blocked} blocked verdicts on censor",
            record.censor_blocked > 0,
        )
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds (default: min(300, duration / 4))"
    )
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--interval", type=float, default=30.0, help="the exporter's interval")
    parser.add_argument("--timeout", type=float, default=5.0, help="the exporter's timeout")
    parser.add_argument(
        "--copies",
        type=int,
        default=5,
        help="copies of the lab endpoints: 207 tuples each, + 18 canary tuples (5: 1,053)",
    )
    parser.add_argument("--loss", type=int, default=1, help="percent of packets dropped")
    parser.add_argument("--directory", type=Path, default=None, help="keep files here")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(300.0, args.duration / 4)
    if os.geteuid() != 0:
        print("the long run needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        if args.directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="longrun-")))
        else:
            directory = args.directory
            directory.mkdir(parents=True, exist_ok=True)
        return run(args, warmup, directory, stack)
    return 1  # unreachable: the body returns (mypy wants it)


def run(
    args: argparse.Namespace, warmup: float, directory: Path, stack: contextlib.ExitStack
) -> int:
    lab = stack.enter_context(Lab.start(directory / "lab"))
    cfg = config(lab, copies=args.copies, interval=args.interval, timeout=args.timeout)
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    stack.enter_context(lab.technique(*loss_rules(args.loss)))
    log = stack.enter_context((directory / "exporter.log").open("w"))
    proc = lab.run_in(
        "vantage",
        [
            sys.executable,
            "-m",
            "exporter",
            f"--config.file={path}",
            f"--web.listen-address=127.0.0.1:{PORT}",
            "--log.format=json",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    stack.callback(proc.wait, 10)
    stack.callback(proc.terminate)
    record = Record()
    started = time.monotonic()
    print(
        f"long run: {args.duration:g} s, {args.loss} % loss on clean, interval "
        f"{args.interval:g} s, warm-up {warmup:g} s; files in {directory}",
        flush=True,
    )
    print(
        f"{'t/s':>6} {'RSS/MiB':>8} {'fds':>5} {'tasks':>6} {'flight':>6} {'rounds':>6} "
        f"{'skipped':>7} {'lag/s':>6} {'load1':>5}"
    )
    last: Samples = {}
    next_sample = started
    while time.monotonic() - started < args.duration and proc.poll() is None:
        next_sample += args.sample
        try:
            last = scrape(lab.vantage)
        except OSError:
            if time.monotonic() - started > 30:
                raise
        else:
            observe(last, record, time.monotonic() - started, proc.pid)
            s = record.samples[-1]
            print(
                f"{s.at:6.0f} {s.rss / 2**20:8.1f} {s.fds:5d} {s.tasks:6d} {s.in_flight:6d} "
                f"{s.rounds:6d} {s.skipped:7d} {s.lag:6.2f} {os.getloadavg()[0]:5.2f}",
                flush=True,
            )
        time.sleep(max(0.0, next_sample - time.monotonic()))  # the sampling period
    exited = proc.poll()
    if exited is None:
        final_counts(scrape(lab.vantage, ("messaging_probes_total",)), record)
    results = judge(record, warmup, exited)
    forwarded, dropped = loss_counts(lab)
    print()
    print(
        f"clean ISP: {dropped} of {forwarded} forwarded packets dropped "
        f"({dropped / max(1, forwarded):.2%})"
    )
    print(
        f"tuples: {record.targets}; probes on the honest paths: {record.honest_probes:.0f}, "
        f"failed: {sum(record.honest_failures.values())} {dict(record.honest_failures)}"
    )
    print(f"honest-path verdicts over every round seen: {dict(record.honest_verdicts)}")
    for rnd, labels in record.false_blocked[:20]:
        print(f"FALSE BLOCKED in round {rnd}: {labels}")
    print()
    print(f"{'criterion':<34} {'result':<6} figures")
    for name, figures, passed in results:
        print(f"{name:<34} {'ok' if passed else 'FAIL':<6} {figures}")
    return 0 if all(passed for _, _, passed in results) else 1


if __name__ == "__main__":
    sys.exit(main())
