"""How quickly a shop answers: the figures buyers see and shops are judged by.

"Timely" is the point of the product: a buyer deciding now needs an answer now.
A conversation counts as *asked* when the buyer wrote in the window; it is
*answered* when an agent replied after that, not counting auto-replies (an
away message is not an answer). The first-response time is measured from the
buyer's first message in the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DAY_MS = 86_400_000
TYPICAL_MIN_ANSWERS = 3
"""Below this many answered conversations a "typical" time would be an anecdote."""


def percentile(sorted_values: list[int], q: float) -> int | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def summarize(shop: str, since: int, first_responses: list[int | None]) -> dict[str, Any]:
    """The ``stats`` frame's figures from per-conversation first-response times."""
    answered = sorted(t for t in first_responses if t is not None)
    asked = len(first_responses)
    return {
        "shop": shop,
        "since": since,
        "asked": asked,
        "answered": len(answered),
        "response_rate": round(len(answered) / asked, 4) if asked else None,
        "first_response_p50_ms": percentile(answered, 0.5),
        "first_response_p90_ms": percentile(answered, 0.9),
    }


@dataclass
class _Cached:
    at: int
    typical: int | None


class TypicalResponseCache:
    """The public "usually replies in" figure per shop, recomputed at most once a minute."""

    def __init__(self, ttl_ms: int = 60_000, window_days: int = 7) -> None:
        self.ttl_ms = ttl_ms
        self.window_days = window_days
        self._cache: dict[str, _Cached] = {}

    def get(self, shop: str, now: int) -> tuple[bool, int | None]:
        """(fresh, value): a stale or missing entry must be recomputed by the caller."""
        entry = self._cache.get(shop)
        if entry is None or now - entry.at > self.ttl_ms:
            return False, None if entry is None else entry.typical
        return True, entry.typical

    def put(self, shop: str, now: int, first_responses: list[int | None]) -> int | None:
        answered = sorted(t for t in first_responses if t is not None)
        typical = percentile(answered, 0.5) if len(answered) >= TYPICAL_MIN_ANSWERS else None
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[shop] = _Cached(now, typical)
        return typical
