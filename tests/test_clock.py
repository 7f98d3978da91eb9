"""The real clock's timers, on the real event loop."""

from __future__ import annotations

import asyncio

from exporter.runtime.clock import SystemClock


async def test_call_later_calls_back_on_the_loop_unless_cancelled() -> None:
    clock = SystemClock()
    called: list[str] = []
    done = asyncio.Event()
    start = clock.monotonic()
    cancelled = clock.call_later(0.0, lambda: called.append("cancelled"))
    clock.call_later(0.02, lambda: (called.append("kept"), done.set()))
    cancelled.cancel()
    await done.wait()
    assert called == ["kept"]
    assert clock.monotonic() - start >= 0.02


async def test_a_negative_delay_is_called_at_once() -> None:
    clock = SystemClock()
    done = asyncio.Event()
    clock.call_later(-5.0, done.set)
    await asyncio.wait_for(done.wait(), timeout=1.0)
