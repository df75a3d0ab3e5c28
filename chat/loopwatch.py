"""Event-loop lag: measured all the time, and every long stall logged with what ran.

One event loop carries every connection of a node, so anything that holds it (a slow
callback, a CPU-heavy request, a blocking call) delays every user's chat at once. Two
parts watch it:

* a task that sleeps :data:`TICK` seconds and records how late it woke up in the
  ``chat_loop_lag_seconds`` histogram (``/metrics``): the loop's own latency floor;
* a watchdog thread that notices when that task has not run for longer than the stall
  threshold, takes the loop thread's Python stack *while it is stuck* (the culprit is
  still on it), and logs it once the loop runs again, with how long it was held;
* the garbage collector's passes, timed (``chat_gc_seconds`` by generation) and named in
  the stall log: a pass over every live object holds every thread, and a node holding
  thousands of connections has millions of them, so a full pass is a stall no stack shows.

Both cost a few wake-ups a second, whatever the number of connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
import time
import traceback

from .admission import Admission
from .metrics import Metrics

log = logging.getLogger(__name__)

TICK = 0.025
"""Seconds between the lag task's wake-ups."""


class LoopWatch:
    """Measures the running loop's lag; logs stalls longer than ``stall`` seconds."""

    def __init__(self, metrics: Metrics, stall: float = 0.05, admission: Admission | None = None) -> None:
        """``admission`` is told every lag measured (a late loop refuses new work)."""
        self.metrics = metrics
        self.admission = admission
        self.stall = stall
        self.stalls = 0
        """Stalls logged so far (for tests and the curious)."""
        self._beat = time.monotonic()
        self._loop_thread = 0
        self._stack: list[str] | None = None
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._gc_started = 0.0
        self._gc_held = 0.0
        """Seconds the collector held the process since the last beat."""
        # Bound now: a pass can start on any thread while it holds the histogram's own lock
        # (allocating inside ``labels()`` or a scrape), and that lock is not reentrant.
        self._gc_pauses = [metrics.gc_pause.labels(generation=str(g)) for g in range(3)]

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        held = time.perf_counter() - self._gc_started
        self._gc_held += held
        self._gc_pauses[min(2, max(0, info.get("generation", 0)))].observe(held)

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._tick(), name="loop-watch")
        self._thread = threading.Thread(target=self._watch, name="loop-watchdog", daemon=True)
        self._thread.start()
        gc.callbacks.append(self._on_gc)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            self._thread.join(1.0)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        observe = self.metrics.loop_lag.observe
        cpu_before = time.thread_time()
        while True:
            before = loop.time()
            await asyncio.sleep(TICK)
            now = time.monotonic()
            cpu = time.thread_time()
            ran, cpu_before = cpu - cpu_before, cpu
            lag = max(0.0, loop.time() - before - TICK)
            observe(lag)
            if self.admission is not None:
                self.admission.lag = lag
            held = now - self._beat - TICK
            stack, self._stack = self._stack, None
            collecting, self._gc_held = self._gc_held, 0.0
            self._beat = now
            if held > self.stall:
                self.stalls += 1
                # Little CPU of its own: the loop waited (for the GIL, held by another thread of
                # the process, or for a core, on a busy machine) rather than computed.
                where = "".join(stack) if stack else "  (many short steps, none caught)\n"
                log.warning("event loop stalled for %.0f ms (its thread computed %.0f ms of it, garbage collection"
                            " %.0f ms); it was at:\n%s", held * 1000, ran * 1000, collecting * 1000, where)

    def _watch(self) -> None:
        """Take the loop thread's stack while a stall is under way (once per stall)."""
        period = self.stall / 2
        while not self._stop.wait(period):
            if self._stack is None and time.monotonic() - self._beat - TICK > self.stall:
                frame = sys._current_frames().get(self._loop_thread)
                if frame is not None:
                    self._stack = traceback.format_stack(frame, limit=12)
