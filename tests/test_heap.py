"""Free heap memory given back to the OS once a minute (glibc's malloc_trim)."""

from __future__ import annotations

import asyncio
import platform

from exporter.runtime.heap import HEAP_TRIM_INTERVAL, trimmer, trims
from tests.fakes.clock import FakeClock


def test_glibc_has_malloc_trim_and_it_runs() -> None:
    libc, _ = platform.libc_ver()
    trim = trimmer()
    if libc != "glibc":
        assert trim is None
        return
    assert trim is not None
    blocks = [bytearray(100_000) for _ in range(300)]  # ~30 MB of heap, then freed
    del blocks
    assert isinstance(trim(), bool)


async def test_one_trim_per_interval() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def trim() -> bool:
        calls.append(clock.monotonic())
        return True

    task = asyncio.create_task(trims(clock, trim))
    try:
        await clock.settle()
        assert calls == []
        await clock.advance(HEAP_TRIM_INTERVAL - 1)
        assert calls == []
        await clock.advance(1)
        assert len(calls) == 1
        await clock.advance(3 * HEAP_TRIM_INTERVAL)
        assert len(calls) == 4
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
