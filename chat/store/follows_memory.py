"""Follows and broadcast jobs in the memory store: the reference reading of
:class:`chat.store.base.Follows`.

A mixin of :class:`chat.store.memory.MemoryStore`; like it, every method runs without
awaiting (atomic on one event loop) and checks before it changes anything.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from .base import BlockRecord, BroadcastRecord, BroadcastTooSoon, FollowRecord


class MemoryFollows:
    _blocks: dict[tuple[str, str, str], BlockRecord]

    def _check_open(self) -> None: ...

    def _init_follows(self) -> None:
        self._follows: dict[tuple[str, str], FollowRecord] = {}  # (shop, buyer)
        self._broadcasts: list[BroadcastRecord] = []  # id = index + 1
        self._leases: dict[int, tuple[str, int]] = {}  # broadcast id -> (owner, until)

    def _follow_state(self) -> tuple[dict[tuple[str, str], FollowRecord], list[BroadcastRecord],
                                     dict[int, tuple[str, int]]]:
        return self._follows, self._broadcasts, self._leases

    async def follow(self, shop: str, buyer: str, conv: str | None, now: int) -> tuple[FollowRecord, bool]:
        self._check_open()
        follows, _, _ = self._follow_state()
        found = follows.get((shop, buyer))
        if found is not None:
            return found, False
        record = follows[(shop, buyer)] = FollowRecord(shop, buyer, conv, now)
        return record, True

    async def unfollow(self, shop: str, buyer: str) -> bool:
        self._check_open()
        return self._follow_state()[0].pop((shop, buyer), None) is not None

    async def get_follow(self, shop: str, buyer: str) -> FollowRecord | None:
        self._check_open()
        return self._follow_state()[0].get((shop, buyer))

    async def follower_count(self, shop: str) -> int:
        self._check_open()
        return sum(1 for s, _ in self._follow_state()[0] if s == shop)

    async def followers(
        self, shop: str, *, after: str = "", limit: int = 100, since_before: int | None = None
    ) -> list[FollowRecord]:
        self._check_open()
        rows = sorted(
            (f for (s, b), f in self._follow_state()[0].items()
             if s == shop and b > after and (since_before is None or f.created_at <= since_before)),
            key=lambda f: f.buyer,
        )[: max(limit, 0)]
        return [dataclasses.replace(f, blocked=any((shop, f.buyer, side) in self._blocks for side in ("buyer", "shop")))
                for f in rows]

    async def add_broadcast(
        self, shop: str, key: str, by: str, body: dict[str, Any], total: int, now: int, *, limit: int,
        window_ms: int,
    ) -> tuple[BroadcastRecord, bool]:
        self._check_open()
        _, jobs, _ = self._follow_state()
        for job in jobs:
            if job.shop == shop and job.key == key:
                return self._copy(job), False
        if limit > 0:
            recent = sorted(j.created_at for j in jobs if j.shop == shop and j.created_at > now - window_ms)
            if len(recent) >= limit:
                raise BroadcastTooSoon(max(1, recent[-limit] + window_ms - now))
        job = BroadcastRecord(len(jobs) + 1, shop, key, by, copy.deepcopy(body), now, total)
        jobs.append(job)
        return self._copy(job), True

    @staticmethod
    def _copy(job: BroadcastRecord) -> BroadcastRecord:
        return dataclasses.replace(job, body=copy.deepcopy(job.body))

    async def get_broadcast(self, broadcast_id: int) -> BroadcastRecord | None:
        self._check_open()
        jobs = self._follow_state()[1]
        return self._copy(jobs[broadcast_id - 1]) if 1 <= broadcast_id <= len(jobs) else None

    async def broadcasts_of_shop(self, shop: str, *, limit: int = 20) -> list[BroadcastRecord]:
        self._check_open()
        return [self._copy(j) for j in reversed(self._follow_state()[1]) if j.shop == shop][: max(limit, 0)]

    async def claim_broadcast(self, owner: str, now: int, lease_ms: int) -> BroadcastRecord | None:
        self._check_open()
        _, jobs, leases = self._follow_state()
        for job in jobs:
            if job.done:
                continue
            holder, until = leases.get(job.id, ("", 0))
            if until <= now or holder == owner:
                leases[job.id] = (owner, now + lease_ms)
                return self._copy(job)
        return None

    async def advance_broadcast(
        self, broadcast_id: int, owner: str, cursor: str, delivered: int, skipped: int, done: bool, now: int,
        lease_ms: int,
    ) -> bool:
        self._check_open()
        _, jobs, leases = self._follow_state()
        if not 1 <= broadcast_id <= len(jobs) or leases.get(broadcast_id, ("", 0))[0] != owner:
            return False
        job = jobs[broadcast_id - 1]
        if job.done:
            return False
        jobs[broadcast_id - 1] = dataclasses.replace(
            job, cursor=max(job.cursor, cursor), delivered=delivered, skipped=skipped, done=done,
            finished_at=now if done else None,
        )
        leases[broadcast_id] = (owner, now + lease_ms)
        return True
