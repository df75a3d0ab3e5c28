"""In-process backends: the embedded default for a single hub node."""

from __future__ import annotations

import asyncio
import os
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
    if "online" in statuses:
        return "online"
    if statuses:
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

    def _state(self, entity: str, now: int) -> PresenceState:
        entries = self._entries.get(entity, {})
        status = combine([s for (_, s, exp) in entries.values() if exp > now])
        if status != "offline":
            self._last_seen[entity] = now
        return PresenceState(entity, status, self._last_seen.get(entity))

    def _changed(self, entity: str, now: int) -> PresenceState | None:
        state = self._state(entity, now)
        if self._status.get(entity, "offline") == state.status:
            return None
        self._status[entity] = state.status
        return state

    async def set(self, entity: str, member: str, conn: str, status: Status, now: int) -> PresenceState | None:
        self._entries.setdefault(entity, {})[conn] = (member, status, now + self.ttl_ms)
        return self._changed(entity, now)

    async def remove(self, entity: str, member: str, conn: str, now: int) -> PresenceState | None:
        entries = self._entries.get(entity)
        if entries is not None and entries.pop(conn, None) is not None:
            self._last_seen[entity] = now
            if not entries:
                del self._entries[entity]
        return self._changed(entity, now)

    async def touch(self, entries: list[tuple[str, str, str]], now: int) -> None:
        for entity, _member, conn in entries:
            entry = self._entries.get(entity, {}).get(conn)
            if entry is not None:
                self._entries[entity][conn] = (entry[0], entry[1], now + self.ttl_ms)

    async def expire(self, now: int) -> list[PresenceState]:
        changes = []
        for entity in list(self._entries):
            entries = self._entries[entity]
            for conn, (_, _, exp) in list(entries.items()):
                if exp <= now:
                    del entries[conn]
                    self._last_seen[entity] = exp - self.ttl_ms
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
        for member, status, exp in self._entries.get(entity, {}).values():
            if exp > now:
                by_member.setdefault(member, []).append(status)
        return {m: combine(s) for m, s in by_member.items()}


class MemoryInbox:
    """Bounded per-user deques; ids carry a per-process epoch so a restart's cursors read as unknown."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._epoch = os.urandom(4).hex()
        self._queues: dict[str, deque[tuple[int, bytes]]] = {}
        self._next: dict[str, int] = {}

    async def close(self) -> None:
        self._queues.clear()

    async def ping(self) -> bool:
        return True

    async def append(self, entries: list[tuple[str, bytes]]) -> list[str]:
        ids = []
        for user, payload in entries:
            n = self._next.get(user, 0) + 1
            self._next[user] = n
            q = self._queues.get(user)
            if q is None:
                q = self._queues[user] = deque(maxlen=self.max_entries)
            q.append((n, payload))
            ids.append(f"{self._epoch}-{n}")
        return ids

    async def tail(self, user: str) -> str:
        return f"{self._epoch}-{self._next.get(user, 0)}"

    async def read(self, user: str, after: str, limit: int) -> list[tuple[str, bytes]] | None:
        epoch, _, number = after.partition("-")
        if epoch != self._epoch or not number.isdigit():
            return None
        n = int(number)
        if n > self._next.get(user, 0):
            return None
        q = self._queues.get(user, deque())
        if q and n < q[0][0] - 1:
            return None  # trimmed past the cursor
        out = [(f"{self._epoch}-{i}", p) for i, p in q if i > n]
        return out[:limit]
