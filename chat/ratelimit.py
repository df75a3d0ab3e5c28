"""Token buckets for per-user send limits.

A bucket per user on each node: users connected to several nodes at once get
the limit on each. Refusals are answered with error 4001, never a disconnect.
"""

from __future__ import annotations


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now_ms: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now_ms

    def take(self, now_ms: int) -> bool:
        """Spend one token if there is one; time moving backwards refills nothing."""
        elapsed = max(0, now_ms - self.stamp)
        self.stamp = max(self.stamp, now_ms)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate / 1000.0)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def full(self, now_ms: int) -> bool:
        elapsed = max(0, now_ms - self.stamp)
        return self.tokens + elapsed * self.rate / 1000.0 >= self.burst


class RateLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, key: str, now_ms: int) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) > 100_000:
                self._prune(now_ms)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now_ms)
        return bucket.take(now_ms)

    def _prune(self, now_ms: int) -> None:
        """Forget buckets that have refilled: they carry no state worth keeping."""
        for key in [k for k, b in self._buckets.items() if b.full(now_ms)]:
            del self._buckets[key]
