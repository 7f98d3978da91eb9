"""The load driver for blackbox_exporter: what Prometheus would do, one `/probe` per target per
interval, spread evenly over the interval (as Prometheus spreads its scrapes), in a process of
its own so that its CPU is not blackbox_exporter's.

Reads a JSON file `{"url": ".../probe", "module": "http", "targets": [...], "interval": s,
"duration": s}` and prints one JSON object when done: for every finished probe its wall-clock
end, success, and the phase durations blackbox_exporter reported (`dns`:
probe_dns_lookup_time_seconds, `processing`: probe_http_duration_seconds{phase="processing"}).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families


def _facts(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "probe_success":
                out["success"] = sample.value
            elif sample.name == "probe_dns_lookup_time_seconds":
                out["dns"] = sample.value
            elif sample.name == "probe_http_duration_seconds":
                out[sample.labels.get("phase", "")] = sample.value
    return out


async def drive(spec: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[str] = spec["targets"]
    interval = float(spec["interval"])
    duration = float(spec["duration"])
    gap = interval / len(targets)
    results: list[dict[str, Any]] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=interval + 10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(target: str) -> None:
            params = {"module": spec["module"], "target": target}
            try:
                async with session.get(spec["url"], params=params) as response:
                    text = await response.text()
            except (aiohttp.ClientError, TimeoutError) as exc:
                results.append({"t": time.time(), "target": target, "error": repr(exc)})
                return
            results.append({"t": time.time(), "target": target, **_facts(text)})

        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while True:
            due = start + i * gap
            if due - start >= duration:
                break
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(targets[i % len(targets)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.wait(tasks)
    return results


def main() -> None:
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    results = asyncio.run(drive(spec))
    json.dump({"results": results}, sys.stdout)


if __name__ == "__main__":
    main()
