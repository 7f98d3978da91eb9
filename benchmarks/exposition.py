"""What rendering /metrics costs, the exporter's own text beside stock prometheus_client, on
the same snapshot in one process (no probing, an idle event loop): a store of N tuples, each
with a last observation, its counters and phase histograms kept as `--phase-histograms`
says, and a judged round.

    .venv/bin/python -m benchmarks.exposition                 # 1,000 and 10,000 tuples
    .venv/bin/python -m benchmarks.exposition --tuples 1000 --scrapes 3

For each size: the first scrape (everything rendered once) and the median of the next
`--scrapes` after a tenth of the tuples was probed again (what a scrape meets every 15 s at
10,000 tuples per minute, ~2,500 tuples: a tenth is the lighter case), in seconds; the text's
size; and the Python heap the renderer keeps between scrapes (tracemalloc, after a full
collection). Offline: nothing here opens a socket.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from exporter.config.model import PhaseHistograms
from exporter.exposition.collector import Collector
from exporter.exposition.families import ReloadStatus, families
from exporter.exposition.store import Store
from exporter.exposition.text import TEXT
from exporter.judge.summary import service_states
from exporter.model.judgement import EMPTY_JUDGEMENT, Finding, Verdict
from exporter.model.observation import (
    Certificate,
    DnsObservation,
    HttpObservation,
    Observation,
    Phase,
    TlsObservation,
    TupleKey,
)
from exporter.model.stats import Histogram, SchedulerStats


def key(i: int, resolvers: int) -> TupleKey:
    return TupleKey(
        service=f"s{i % 5}",
        endpoint=f"e{i // resolvers}",
        network="default",
        resolver=f"r{i % resolvers}",
        family=4,
    )


def observation(k: TupleKey, started: float) -> Observation:
    phases = {Phase.DNS: 0.004, Phase.CONNECT: 0.02, Phase.TLS: 0.05, Phase.HTTP: 0.03}
    return Observation(
        key=k,
        started=started,
        finished=started + 0.11,
        phases=MappingProxyType({**phases, Phase.TOTAL: 0.11}),
        dns=DnsObservation(
            qname=f"{k.endpoint}.example",
            qtype="A",
            server="udp://192.0.2.53:53",
            rcode="NOERROR",
            answers=("198.51.100.7",),
        ),
        address="198.51.100.7",
        tls=TlsObservation(
            server_name=f"{k.endpoint}.example",
            certificate=Certificate(
                subject=f"CN={k.endpoint}.example",
                issuer="CN=CA",
                not_after=1_893_456_000.0,
                not_before=1_600_000_000.0,
                sans=(f"{k.endpoint}.example",),
                verified=True,
            ),
        ),
        http=HttpObservation(method="GET", url=f"https://{k.endpoint}.example/", status=200),
    )


def stats(n: int) -> SchedulerStats:
    return SchedulerStats(
        ready=True,
        targets=n,
        in_flight=0,
        skipped_total=0,
        rounds_total=1,
        round_lag_seconds=0.0,
        start_lag=Histogram.empty((0.01, 0.1, 1.0)),
    )


class Stock:
    """Stock prometheus_client rendering: the snapshot's families, made at each scrape."""

    def __init__(self, store: Store, stats: SchedulerStats, status: ReloadStatus) -> None:
        self._store, self._stats, self._status = store, stats, status

    def collect(self) -> list[Metric]:
        return families(self._store.snapshot(), self._stats, self._status)


def renderer_of(kind: str, store: Store, n: int, keys: list[TupleKey]) -> Callable[[], bytes]:
    """A scrape of `store` by the exporter's own text (`own`) or stock prometheus_client."""
    status = ReloadStatus(successful=True, last_success_timestamp=0.0)
    registry = CollectorRegistry(auto_describe=False)
    if kind == "stock":  # prometheus_client alone: the snapshot's families, nothing kept
        registry.register(Stock(store, stats(n), status))
        return lambda: generate_latest(registry)
    collector = Collector(
        store=store, scheduler_stats=lambda: stats(n), reload_status=lambda: status
    )
    collector.expect(keys)
    registry.register(collector)
    return lambda: collector.text(TEXT)


def scraped(
    kind: str, n: int, resolvers: int, histograms: PhaseHistograms, scrapes: int
) -> tuple[float, list[float], int]:
    """A fresh store of `n` tuples scraped by one renderer: the first scrape's seconds, the
    next ones' (a tenth of the tuples probed again before each), and the text's bytes (while
    tracing, instead: the bytes the store and the renderer keep)."""
    keys = [key(i, resolvers) for i in range(n)]
    store = Store(phase_histograms=histograms)
    render = renderer_of(kind, store, n, keys)
    for k in keys:
        store.record(observation(k, 1_700_000_000.0))
    judgement = dataclasses.replace(
        EMPTY_JUDGEMENT,
        findings=MappingProxyType(
            {k: Finding(verdict=Verdict.OK, reason="every check passed") for k in keys}
        ),
        network_up=MappingProxyType({"default": True}),
    )
    store.set_judgement(dataclasses.replace(judgement, services=service_states(judgement)))
    t0 = time.perf_counter()
    size = len(render())
    first = time.perf_counter() - t0
    later = []
    for s in range(scrapes):
        for k in keys[s % 10 :: 10]:
            store.record(observation(k, 1_700_000_060.0 + s))
        t0 = time.perf_counter()
        render()
        later.append(time.perf_counter() - t0)
    if tracemalloc.is_tracing():  # what the store and the renderer keep between scrapes
        gc.collect()
        size = tracemalloc.get_traced_memory()[0]
    return first, later, size


def run(
    kind: str, n: int, resolvers: int, histograms: PhaseHistograms, scrapes: int
) -> dict[str, Any]:
    """One renderer: timed without tracing, then again under tracemalloc for the heap it
    keeps (tracing slows every allocation: its run is never timed)."""
    gc.collect()
    first, later, size = scraped(kind, n, resolvers, histograms, scrapes)
    gc.collect()
    tracemalloc.start()
    _, _, kept = scraped(kind, n, resolvers, histograms, 1)
    tracemalloc.stop()
    return {
        "first_scrape_s": round(first, 4),
        "scrape_p50_s": round(statistics.median(later), 4),
        "bytes": size,
        "python_heap_bytes": kept,
    }


def measure(n: int, resolvers: int, histograms: PhaseHistograms, scrapes: int) -> dict[str, Any]:
    """Both renderers on the same store of `n` tuples, one after the other."""
    return {
        "tuples": n,
        "phase_histograms": histograms.value,
        **{kind: run(kind, n, resolvers, histograms, scrapes) for kind in ("own", "stock")},
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| tuples | phase histograms | renderer | first scrape | scrape p50 | text | Python heap |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        for renderer in ("own", "stock"):
            r = row[renderer]
            lines.append(
                f"| {row['tuples']:,} | {row['phase_histograms']} | {renderer} | "
                f"{r['first_scrape_s'] * 1000:,.0f} ms | {r['scrape_p50_s'] * 1000:,.0f} ms | "
                f"{r['bytes'] / 1e6:.1f} MB | {r['python_heap_bytes'] / 2**20:.0f} MiB |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="what rendering /metrics costs")
    p.add_argument("--tuples", type=int, nargs="+", default=[1000, 10_000])
    p.add_argument("--resolvers", type=int, default=10, help="resolvers per endpoint")
    p.add_argument(
        "--phase-histograms",
        choices=[m.value for m in PhaseHistograms],
        default=PhaseHistograms.ENDPOINT.value,
    )
    p.add_argument("--scrapes", type=int, default=5)
    args = p.parse_args(argv)
    rows = [
        measure(n, args.resolvers, PhaseHistograms(args.phase_histograms), args.scrapes)
        for n in args.tuples
    ]
    json.dump(rows, sys.stdout, indent=1)
    print("\n" + markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
