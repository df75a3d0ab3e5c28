"""Presence entries with TTLs in Redis (see the package docstring for the keys)."""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from ..base import PresenceState, Status, combine
from .client import (
    STATUSES,
    Health,
    Script,
    as_text,
    make_client,
    ping_within,
)


def _parse_status(value: bytes) -> tuple[Status, str]:
    status, _, member = as_text(value).partition(":")
    return STATUSES.get(status, "offline"), member


class RedisPresence:
    """Presence entries with TTLs in Redis; see the package docstring for the keys.

    ``now`` always comes from the caller (never Redis's clock). An entry is live while its
    expiry (last ``set``/``touch`` + ``ttl_ms``) is greater than ``now``. Every change of an
    entity's combined status is computed and compared-and-stored in one script, so exactly
    one caller, on any node, gets it.

    Entities with no entries keep their meta hash (last status and last_seen) for
    ``last_seen_retention_ms`` (Redis's clock; ``0`` keeps it).

    Nothing here survives a Redis restarted empty but the nodes' heartbeats, which
    ``touch`` turns back into entries (and reports as changes).
    """

    _update = Script("presence_update.lua")
    _read = Script("presence_read.lua")

    def __init__(
        self,
        redis: Redis | str,
        prefix: str = "chat:",
        *,
        ttl_ms: int = 30_000,
        last_seen_retention_ms: int = 90 * 24 * 3600 * 1000,
        expire_batch: int = 500,
        ping_timeout: float = 1.0,
    ) -> None:
        self._redis, self._owned = make_client(redis)
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self.last_seen_retention_ms = last_seen_retention_ms
        self.expire_batch = expire_batch
        self.ping_timeout = ping_timeout
        self._due = f"{prefix}p:due"
        self._health = Health("redis presence")

    def _keys(self, entity: str) -> list[str]:
        p = self.prefix
        return [f"{p}p:e:{entity}", f"{p}p:x:{entity}", f"{p}p:m:{entity}", self._due]

    def _args(self, op: str, entity: str, now: int, *more: str) -> list[str | bytes]:
        return [op, str(now), str(self.ttl_ms), entity, str(self.last_seen_retention_ms), *more]

    @staticmethod
    def _change(entity: str, reply: list[Any]) -> PresenceState | None:
        if not reply[0]:
            return None
        seen = int(reply[2]) if len(reply) > 2 and reply[2] is not None else None
        return PresenceState(entity, STATUSES[as_text(reply[1])], seen)

    async def close(self) -> None:
        if self._owned:
            await self._redis.aclose()

    async def ping(self) -> bool:
        ok = await ping_within(self._redis, self.ping_timeout)
        if ok:
            self._health.back()
        else:
            self._health.lost("no answer to PING")
        return ok

    async def set(
        self, entity: str, member: str, conn: str, status: Status, now: int
    ) -> PresenceState | None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._health.watch():
            reply = await self._update.run(
                self._redis, self._keys(entity), self._args("set", entity, now, conn, status, member)
            )
        return self._change(entity, reply)

    async def remove(self, entity: str, member: str, conn: str, now: int) -> PresenceState | None:
        with self._health.watch():
            reply = await self._update.run(
                self._redis, self._keys(entity), self._args("remove", entity, now, conn)
            )
        return self._change(entity, reply)

    async def touch(self, entries: list[tuple[str, str, str, Status]], now: int) -> list[PresenceState]:
        """One script call per entity, all in one round trip (see ``lua/presence_update.lua``)."""
        by_entity: dict[str, list[str]] = {}
        for entity, member, conn, status in entries:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}")
            by_entity.setdefault(entity, []).extend((conn, status, member))
        if not by_entity:
            return []  # no call, so nothing learnt about Redis either
        with self._health.watch():
            replies = await self._update.run_many(
                self._redis,
                [(self._keys(e), self._args("touch", e, now, *more)) for e, more in by_entity.items()],
            )
        changes = []
        for entity, reply in zip(by_entity, replies, strict=True):
            change = self._change(entity, reply)
            if change is not None:
                changes.append(change)
        return changes

    async def expire(self, now: int) -> list[PresenceState]:
        with self._health.watch():
            return await self._expire(now)

    async def _expire(self, now: int) -> list[PresenceState]:
        changes: list[PresenceState] = []
        while True:
            due = await self._redis.zrangebyscore(
                self._due, "-inf", now, start=0, num=self.expire_batch
            )
            entities = [as_text(cast(bytes, e)) for e in due]
            replies = await self._update.run_many(
                self._redis,
                [(self._keys(e), self._args("expire", e, now)) for e in entities],
            )
            for entity, reply in zip(entities, replies, strict=True):
                change = self._change(entity, reply)
                if change is not None:
                    changes.append(change)
            if len(entities) < self.expire_batch:
                return changes

    async def _live(self, entities: list[str], now: int) -> list[tuple[int | None, list[bytes]]]:
        p = self.prefix
        replies = await self._read.run_many(
            self._redis,
            [
                ([f"{p}p:e:{e}", f"{p}p:x:{e}", f"{p}p:m:{e}"], [str(now), str(self.ttl_ms)])
                for e in entities
            ],
        )
        out = []
        for reply in replies:
            seen = as_text(reply[0])
            out.append((int(seen) if seen else None, list(reply[1:])))
        return out

    async def get(self, entities: list[str], now: int) -> dict[str, PresenceState]:
        if not entities:
            return {}
        with self._health.watch():
            live = await self._live(entities, now)
        result = {}
        for entity, (seen, values) in zip(entities, live, strict=True):
            status = combine(_parse_status(v)[0] for v in values)
            result[entity] = PresenceState(entity, status, now if status != "offline" else seen)
        return result

    async def members(self, entity: str, now: int) -> dict[str, Status]:
        with self._health.watch():
            [(_seen, values)] = await self._live([entity], now)
        by_member: dict[str, list[Status]] = {}
        for value in values:
            status, member = _parse_status(value)
            by_member.setdefault(member, []).append(status)
        return {m: combine(s) for m, s in by_member.items()}
