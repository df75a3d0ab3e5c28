"""Injected time, so every timeout (presence TTL, recall window) is testable."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.value = start_ms

    def now_ms(self) -> int:
        return self.value

    def advance(self, ms: int) -> None:
        self.value += ms


def epoch_seconds() -> float:
    """Wall-clock seconds (not monotonic): a latency start that other nodes on the same
    clock can subtract from."""
    return time.time()
