"""Injected time: every deadline is computed from a ``Clock``, never from the OS directly."""

from __future__ import annotations

import time
from collections.abc import Callable

#: Returns the current time in epoch milliseconds.
Clock = Callable[[], int]


def system_clock() -> int:
    """Wall-clock epoch milliseconds; the only place that reads the OS time."""
    return time.time_ns() // 1_000_000
