"""Full passes of the cyclic garbage collector: off while the exporter runs, one per interval."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from exporter.runtime.garbage import FULL_PASS_INTERVAL, full_passes, full_passes_off
from tests.fakes.clock import FakeClock


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


def test_full_passes_off_keeps_the_young_generations_and_restores() -> None:
    before = gc.get_threshold()
    with full_passes_off():
        young, middle, old = gc.get_threshold()
        assert (young, middle) == before[:2]
        assert old >= 1_000_000
    assert gc.get_threshold() == before


def test_full_passes_off_restores_after_an_error() -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match="boom"), full_passes_off():
        raise ValueError("boom")
    assert gc.get_threshold() == before


def full_collections() -> int:
    return int(gc.get_stats()[2]["collections"])


async def test_one_full_pass_per_interval_frees_a_cycle_of_the_old_generation() -> None:
    clock = FakeClock()
    task = asyncio.create_task(full_passes(clock))
    try:
        with full_passes_off():  # no automatic full pass in between: only the task's
            await clock.settle()
            node = _Node()
            gone = weakref.ref(node)
            gc.collect(1)  # survives the middle generation: now in the old one
            del node
            gc.collect(1)  # the young passes do not look at the old generation
            assert gone() is not None
            start = full_collections()
            await clock.advance(FULL_PASS_INTERVAL - 1)
            assert full_collections() == start
            assert gone() is not None
            await clock.advance(1)
            assert full_collections() == start + 1
            assert gone() is None
            await clock.advance(2 * FULL_PASS_INTERVAL)
            assert full_collections() == start + 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
