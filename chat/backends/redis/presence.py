"""Presence entries with TTLs in Redis or a Redis Cluster (see the package docstring for the keys)."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from redis.asyncio import Redis

from ..base import PresenceState, Status, combine
from .client import STATUSES, Health, Script, as_text, is_cluster_url, make_client, ping_within
from .topology import ClusterMap

T = TypeVar("T")

SHARDS = 256
"""Presence shards: each entity belongs to one (by CRC-32 of its name), whose hash tag its
keys and the shard's due set share. Every node of a deployment must use the same number:
changing it moves every entity to other keys (what the old ones held is then ignored)."""


def shard_of(entity: str) -> int:
    return zlib.crc32(entity.encode()) % SHARDS


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

    The same keys serve a single Redis and a Redis Cluster: every script call touches one
    presence shard's hash tag, so one slot. ``expire`` reads the due set of every shard
    (``SHARDS`` ZRANGEBYSCOREs in one pipeline: one round trip per master) and then sweeps
    the entities found, each in its own shard's slot.
    """

    _update = Script("presence_update.lua")
    _read = Script("presence_read.lua")

    def __init__(
        self,
        redis: Redis | ClusterMap | str,
        prefix: str = "chat:",
        *,
        ttl_ms: int = 30_000,
        last_seen_retention_ms: int = 90 * 24 * 3600 * 1000,
        expire_batch: int = 500,
        ping_timeout: float = 1.0,
    ) -> None:
        self._cluster: ClusterMap | None = None
        self._redis: Redis | None = None
        if isinstance(redis, ClusterMap):
            self._cluster, self._owned = redis, False
        elif isinstance(redis, str) and is_cluster_url(redis):
            self._cluster, self._owned = ClusterMap(redis), True
        else:
            self._redis, self._owned = make_client(redis)
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self.last_seen_retention_ms = last_seen_retention_ms
        self.expire_batch = expire_batch
        self.ping_timeout = ping_timeout
        self._health = Health("redis presence")

    def _tag(self, shard: int) -> str:
        return f"{self.prefix}{{p{shard}}}"

    def _keys(self, entity: str) -> list[str]:
        tag = self._tag(shard_of(entity))
        return [f"{tag}:e:{entity}", f"{tag}:x:{entity}", f"{tag}:m:{entity}", f"{tag}:due"]

    def _args(self, op: str, entity: str, now: int, *more: str) -> list[str | bytes]:
        return [op, str(now), str(self.ttl_ms), entity, str(self.last_seen_retention_ms), *more]

    @staticmethod
    def _change(entity: str, reply: list[Any]) -> PresenceState | None:
        if not reply[0]:
            return None
        seen = int(reply[2]) if len(reply) > 2 and reply[2] is not None else None
        return PresenceState(entity, STATUSES[as_text(reply[1])], seen)

    async def _route(self, keys: Sequence[str], send: Callable[[Redis, list[int]], Awaitable[list[T]]]) -> list[T]:
        """``send(client, indexes)`` for the commands on ``keys`` (one per command): all of them
        on a single Redis, or each master's share on a cluster (see ``ClusterMap.per_master``)."""
        if self._cluster is not None:
            return await self._cluster.per_master(keys, send)
        return await send(cast(Redis, self._redis), list(range(len(keys))))

    async def _run(self, script: Script, calls: list[tuple[list[str], list[str | bytes]]]) -> list[Any]:
        """Runs the script once per (keys, args), pipelined (per master), replies in order."""
        with self._health.watch():
            return await self._route(
                [keys[0] for keys, _ in calls], lambda r, idx: script.run_many(r, [calls[i] for i in idx])
            )

    async def close(self) -> None:
        if not self._owned:
            return
        if self._cluster is not None:
            await self._cluster.aclose()
        elif self._redis is not None:
            await self._redis.aclose()

    async def ping(self) -> bool:
        if self._cluster is not None:
            ok = await self._cluster.ping(self.ping_timeout)
        else:
            ok = await ping_within(cast(Redis, self._redis), self.ping_timeout)
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
        [reply] = await self._run(
            self._update, [(self._keys(entity), self._args("set", entity, now, conn, status, member))]
        )
        return self._change(entity, reply)

    async def remove(self, entity: str, member: str, conn: str, now: int) -> PresenceState | None:
        [reply] = await self._run(self._update, [(self._keys(entity), self._args("remove", entity, now, conn))])
        return self._change(entity, reply)

    async def touch(self, entries: list[tuple[str, str, str, Status]], now: int) -> list[PresenceState]:
        """One script call per entity, all in one round trip per master (see ``lua/presence_update.lua``)."""
        by_entity: dict[str, list[str]] = {}
        for entity, member, conn, status in entries:
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}")
            by_entity.setdefault(entity, []).extend((conn, status, member))
        if not by_entity:
            return []  # no call, so nothing learnt about Redis either
        replies = await self._run(
            self._update, [(self._keys(e), self._args("touch", e, now, *more)) for e, more in by_entity.items()]
        )
        changes = []
        for entity, reply in zip(by_entity, replies, strict=True):
            change = self._change(entity, reply)
            if change is not None:
                changes.append(change)
        return changes

    async def expire(self, now: int) -> list[PresenceState]:
        changes: list[PresenceState] = []
        shards = list(range(SHARDS))
        while shards:  # the shards whose last read was full (more may be due there)
            dues = [f"{self._tag(shard)}:due" for shard in shards]

            async def read(r: Redis, idx: list[int], dues: list[str] = dues) -> list[Any]:
                pipe = r.pipeline(transaction=False)
                for i in idx:
                    pipe.zrangebyscore(dues[i], "-inf", now, start=0, num=self.expire_batch)
                return await pipe.execute()

            with self._health.watch():
                found = await self._route(dues, read)
            entities = [as_text(cast(bytes, e)) for due in found for e in due]
            shards = [s for s, due in zip(shards, found, strict=True) if len(due) >= self.expire_batch]
            for start in range(0, len(entities), self.expire_batch):
                chunk = entities[start : start + self.expire_batch]
                replies = await self._run(self._update, [(self._keys(e), self._args("expire", e, now)) for e in chunk])
                for entity, reply in zip(chunk, replies, strict=True):
                    change = self._change(entity, reply)
                    if change is not None:
                        changes.append(change)
        return changes

    async def _live(self, entities: list[str], now: int) -> list[tuple[int | None, list[bytes]]]:
        replies = await self._run(self._read, [(self._keys(e)[:3], [str(now), str(self.ttl_ms)]) for e in entities])
        out = []
        for reply in replies:
            seen = as_text(reply[0])
            out.append((int(seen) if seen else None, list(reply[1:])))
        return out

    async def get(self, entities: list[str], now: int) -> dict[str, PresenceState]:
        if not entities:
            return {}
        live = await self._live(entities, now)
        result = {}
        for entity, (seen, values) in zip(entities, live, strict=True):
            status = combine(_parse_status(v)[0] for v in values)
            result[entity] = PresenceState(entity, status, now if status != "offline" else seen)
        return result

    async def members(self, entity: str, now: int) -> dict[str, Status]:
        [(_seen, values)] = await self._live([entity], now)
        by_member: dict[str, list[Status]] = {}
        for value in values:
            status, member = _parse_status(value)
            by_member.setdefault(member, []).append(status)
        return {m: combine(s) for m, s in by_member.items()}
