"""In-process backends: the embedded default for a single hub node."""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable

from .base import PresenceState, Status


class MemoryBroker:
    """Delivers to this node only; publish schedules delivery on the next loop pass."""

    def __init__(self) -> None:
        self._channels: set[str] = set()
        self._on_message: Callable[[str, bytes], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, on_message: Callable[[str, bytes], None]) -> None:
        self._on_message = on_message
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        self._channels.clear()

    async def ping(self) -> bool:
        return True

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    def publish(self, channel: str, payload: bytes) -> None:
        if channel in self._channels and self._on_message is not None and self._loop is not None:
            self._loop.call_soon(self._deliver, channel, payload)

    def _deliver(self, channel: str, payload: bytes) -> None:
        # Re-check: the node may have unsubscribed since the publish.
        if channel in self._channels and self._on_message is not None:
            self._on_message(channel, payload)


def combine(statuses: list[Status]) -> Status:
    """Online if any entry is online, away if every entry is away, else offline
    (so one invisible device hides an otherwise away user)."""
    if "online" in statuses:
        return "online"
    if statuses and all(s == "away" for s in statuses):
        return "away"
    return "offline"


class MemoryPresence:
    """Entries in a dict; TTL kept so the contract is the same as Redis's."""

    def __init__(self, ttl_ms: int = 30_000) -> None:
        self.ttl_ms = ttl_ms
        # entity -> conn -> (member, status, expires_at)
        self._entries: dict[str, dict[str, tuple[str, Status, int]]] = {}
        self._last_seen: dict[str, int] = {}
        self._status: dict[str, Status] = {}

    async def close(self) -> None:
        pass

    async def ping(self) -> bool:
        return True

    def _live(self, entity: str, now: int) -> list[tuple[str, Status, int]]:
        return [e for e in self._entries.get(entity, {}).values() if e[2] > now]

    def _seen(self, entity: str, at: int) -> None:
        self._last_seen[entity] = max(at, self._last_seen.get(entity, at))

    def _state(self, entity: str, now: int) -> PresenceState:
        status = combine([s for (_, s, _) in self._live(entity, now)])
        last_seen = now if status != "offline" else self._last_seen.get(entity)
        return PresenceState(entity, status, last_seen)

    def _changed(self, entity: str, now: int) -> PresenceState | None:
        state = self._state(entity, now)
        if self._status.get(entity, "offline") == state.status:
            return None
        self._status[entity] = state.status
        return state

    async def set(self, entity: str, member: str, conn: str, status: Status, now: int) -> PresenceState | None:
        self._entries.setdefault(entity, {})[conn] = (member, status, now + self.ttl_ms)
        if status != "offline":
            self._seen(entity, now)
        return self._changed(entity, now)

    async def remove(self, entity: str, member: str, conn: str, now: int) -> PresenceState | None:
        entries = self._entries.get(entity)
        entry = entries.pop(conn, None) if entries is not None else None
        if entry is not None and entry[1] != "offline" and entry[2] > now:
            self._seen(entity, now)
        if entries is not None and not entries:
            del self._entries[entity]
        return self._changed(entity, now)

    async def touch(self, entries: list[tuple[str, str, str]], now: int) -> None:
        for entity, _member, conn in entries:
            entry = self._entries.get(entity, {}).get(conn)
            if entry is not None and entry[2] > now:  # an expired entry stays dead
                self._entries[entity][conn] = (entry[0], entry[1], now + self.ttl_ms)
                if entry[1] != "offline":
                    self._seen(entity, now)

    async def expire(self, now: int) -> list[PresenceState]:
        changes = []
        for entity in list(self._entries):
            entries = self._entries[entity]
            for conn, (_, status, exp) in list(entries.items()):
                if exp <= now:
                    del entries[conn]
                    if status != "offline":
                        self._seen(entity, exp - self.ttl_ms)
            if not entries:
                del self._entries[entity]
            change = self._changed(entity, now)
            if change is not None:
                changes.append(change)
        return changes

    async def get(self, entities: list[str], now: int) -> dict[str, PresenceState]:
        return {e: self._state(e, now) for e in entities}

    async def members(self, entity: str, now: int) -> dict[str, Status]:
        by_member: dict[str, list[Status]] = {}
        for member, status, _exp in self._live(entity, now):
            by_member.setdefault(member, []).append(status)
        return {m: combine(s) for m, s in by_member.items() if combine(s) != "offline"}


class MemoryInbox:
    """Bounded per-user deques. Ids carry a per-instance epoch, so cursors from before a
    restart (or a close) read as unknown instead of silently reading nothing."""

    def __init__(self, max_entries: int = 10_000, retention_ms: int = 7 * 86_400_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.retention_ms = retention_ms
        self._reset()

    def _reset(self) -> None:
        self._epoch = os.urandom(4).hex()
        # user -> deque of (number, appended_at_ms, payload); numbers start at 1
        self._queues: dict[str, deque[tuple[int, int, bytes]]] = {}
        self._next: dict[str, int] = {}
        self._floor: dict[str, int] = {}
        """Highest number dropped by trimming, per user: cursors below it read as unknown."""

    async def close(self) -> None:
        self._reset()

    async def ping(self) -> bool:
        return True

    def _trim(self, user: str, q: deque[tuple[int, int, bytes]]) -> None:
        oldest = time.time_ns() // 1_000_000 - self.retention_ms
        while q and (len(q) > self.max_entries or q[0][1] < oldest):
            self._floor[user] = q.popleft()[0]

    async def append(self, entries: list[tuple[str, bytes]]) -> list[str]:
        ids = []
        now = time.time_ns() // 1_000_000
        for user, payload in entries:
            n = self._next.get(user, 0) + 1
            self._next[user] = n
            q = self._queues.setdefault(user, deque())
            q.append((n, now, payload))
            self._trim(user, q)
            ids.append(f"{self._epoch}-{n}")
        return ids

    async def tail(self, user: str) -> str:
        return f"{self._epoch}-{self._next.get(user, 0)}"

    async def read(self, user: str, after: str, limit: int) -> list[tuple[str, bytes]] | None:
        epoch, _, number = after.partition("-")
        if epoch != self._epoch or not number.isdigit():
            return None
        n = int(number)
        q = self._queues.get(user, deque())
        self._trim(user, q)
        if n > self._next.get(user, 0) or n < self._floor.get(user, 0):
            return None  # from the future, or trimmed past the cursor
        out: list[tuple[str, bytes]] = []
        if limit <= 0:
            return out
        for i, _at, payload in q:
            if i > n:
                out.append((f"{self._epoch}-{i}", payload))
                if len(out) >= limit:
                    break
        return out
