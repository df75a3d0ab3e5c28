"""In-process backends: the embedded default for a single hub node."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .base import PresenceState, Status, combine


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


class MemoryPresence:
    """Entries in a dict; TTL kept so the contract is the same as Redis's."""

    def __init__(self, ttl_ms: int = 30_000) -> None:
        self.ttl_ms = ttl_ms
        # entity -> conn -> (member, status, expires_at)
        self._entries: dict[str, dict[str, tuple[str, Status, int]]] = {}
        self._last_seen: dict[str, int] = {}
        self._status: dict[str, Status] = {}
        self._next_expiry = float("inf")
        """No entry expires before this (a lower bound): until then ``expire`` has nothing
        to do and returns at once instead of walking every entity each heartbeat."""

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
        self._next_expiry = min(self._next_expiry, now + self.ttl_ms)
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

    async def touch(self, entries: list[tuple[str, str, str, Status]], now: int) -> list[PresenceState]:
        touched: dict[str, None] = {}  # entities, in order
        for entity, member, conn, status in entries:
            conns = self._entries.setdefault(entity, {})
            entry = conns.get(conn)
            if entry is not None and entry[2] > now:  # live: keep its status, as Redis does
                conns[conn] = (entry[0], entry[1], max(entry[2], now + self.ttl_ms))
                status = entry[1]
            else:  # missing or dead: the connection is alive, so it is (re-)created
                if entry is not None and entry[1] != "offline":
                    self._seen(entity, entry[2] - self.ttl_ms)
                conns[conn] = (member, status, now + self.ttl_ms)
                self._next_expiry = min(self._next_expiry, now + self.ttl_ms)
            if status != "offline":
                self._seen(entity, now)
            touched[entity] = None
        return [change for entity in touched if (change := self._changed(entity, now)) is not None]

    async def expire(self, now: int) -> list[PresenceState]:
        if now < self._next_expiry:
            return []
        changes = []
        soonest = float("inf")
        for entity in list(self._entries):
            entries = self._entries[entity]
            for conn, (_, status, exp) in list(entries.items()):
                if exp <= now:
                    del entries[conn]
                    if status != "offline":
                        self._seen(entity, exp - self.ttl_ms)
                else:
                    soonest = min(soonest, exp)
            if not entries:
                del self._entries[entity]
            change = self._changed(entity, now)
            if change is not None:
                changes.append(change)
        self._next_expiry = soonest
        return changes

    async def get(self, entities: list[str], now: int) -> dict[str, PresenceState]:
        return {e: self._state(e, now) for e in entities}

    async def members(self, entity: str, now: int) -> dict[str, Status]:
        by_member: dict[str, list[Status]] = {}
        for member, status, _exp in self._live(entity, now):
            by_member.setdefault(member, []).append(status)
        return {m: combine(s) for m, s in by_member.items()}
