"""Overload control: refuse what the node cannot carry instead of queueing it.

Beyond capacity a queue only grows, and every message in it, everyone's, waits longer.
So a node takes a ``send`` only while the wait it adds is short: it counts the sends it
has taken and not yet answered, measures how fast it answers them, and, once at least
``min_pending`` are in progress, refuses a new one with ``OVERLOADED`` (5003) and
``retry_after_ms`` when

* more sends are in progress than it answers within the budget (answer rate × budget;
  below ``min_pending`` nothing is refused, so a burst on an idle node, whose rate is
  not known yet, is taken), or
* the event loop itself is late by more than the budget (it is short of CPU: frames
  wait before they are even read). A loop that stalls for another reason with few
  sends in progress refuses nothing: refusing would not make it faster.

A refused send stored nothing; the client sends it again with the same ``cmid`` after
``retry_after_ms`` (spread by a random factor, so refused clients do not return in one
wave). What was accepted is answered within about the budget, and as soon as the load
drops the estimate falls and sends are taken again.
"""

from __future__ import annotations

import random
import time

RATE_HALF_LIFE = 0.5
"""Seconds over which the answer rate's estimate forgets half of its past."""


class Admission:
    """One per node; ``enter``/``leave`` around each admitted ``send``."""

    def __init__(self, budget_ms: int, min_pending: int) -> None:
        self.budget = budget_ms / 1000
        self.min_pending = min_pending
        self.pending = 0
        self.refused = 0
        self.lag = 0.0
        """The event loop's lateness at its last measurement (set by :mod:`chat.loopwatch`)."""
        self._rate = 0.0
        self._done = 0
        self._since = time.monotonic()

    @property
    def enabled(self) -> bool:
        return self.budget > 0

    def enter(self) -> int | None:
        """Take a send (None) or refuse it: then the milliseconds to wait before a retry."""
        if self.enabled and self.pending >= self.min_pending:
            wait = self.lag if self.lag > self.budget else 0.0
            rate = max(self.rate(), self.min_pending / self.budget)
            if self.pending >= rate * self.budget:
                wait = max(wait, self.pending / rate)
            if wait > 0:
                self.refused += 1
                return int(min(5.0, max(0.02, wait)) * 1000 * random.uniform(0.5, 1.5))
        self.pending += 1
        return None

    def leave(self) -> None:
        self.pending -= 1
        self._done += 1

    def rate(self) -> float:
        """Sends answered per second, smoothed (updated at most every 50 ms)."""
        now = time.monotonic()
        elapsed = now - self._since
        if elapsed >= 0.05:
            current = self._done / elapsed
            keep = 0.5 ** (elapsed / RATE_HALF_LIFE)
            self._rate = self._rate * keep + current * (1 - keep)
            self._done = 0
            self._since = now
        return self._rate
