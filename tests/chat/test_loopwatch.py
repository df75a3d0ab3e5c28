"""The loop watch: a stall is logged with the code that held the loop and the time the
garbage collector took of it, and every collector pass is in ``/metrics``."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest

from chat.loopwatch import LoopWatch
from chat.metrics import Metrics


def _hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)


async def test_a_stall_is_logged_with_the_code_that_held_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    watch = LoopWatch(Metrics(), stall=0.04)
    watch.start()
    try:
        await asyncio.sleep(0.1)
        with caplog.at_level(logging.WARNING, logger="chat.loopwatch"):
            _hold_the_loop(0.2)
            await asyncio.sleep(0.1)
    finally:
        await watch.stop()
    assert watch.stalls >= 1
    record = next(r.getMessage() for r in caplog.records if "stalled" in r.getMessage())
    assert "_hold_the_loop" in record
    assert "garbage collection 0 ms" in record


async def test_collector_passes_are_timed_and_named_in_the_stall(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    watch = LoopWatch(metrics, stall=0.04)
    watch.start()
    # Enough cyclic garbage that one full pass takes a while on any machine.
    junk: list[list[object]] = []
    for _ in range(300_000):
        cell: list[object] = []
        cell.append(cell)
        junk.append(cell)
    try:
        await asyncio.sleep(0.1)
        with caplog.at_level(logging.WARNING, logger="chat.loopwatch"):
            del junk
            started = time.perf_counter()
            gc.collect()
            took = time.perf_counter() - started
            _hold_the_loop(max(0.0, 0.06 - took))
            await asyncio.sleep(0.1)
    finally:
        await watch.stop()
    assert metrics.gc_pause.labels(generation="2")._sum.get() >= took * 0.5
    record = next(r.getMessage() for r in caplog.records if "stalled" in r.getMessage())
    collected = int(record.split("garbage collection ")[1].split(" ms")[0])
    assert collected >= int(took * 1000 * 0.5)
    assert gc.callbacks.count(watch._on_gc) == 0  # stop() leaves no callback behind
