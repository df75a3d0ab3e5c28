"""Follows and broadcast jobs in the SQLite store (tables of schema version 4).

A mixin of :class:`chat.store.sqlite.SQLiteStore`: writes go through its writer thread (so
the broadcast limit is checked and the job recorded in one transaction), reads through
its reader thread.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .base import BroadcastRecord, BroadcastTooSoon, FollowRecord
from .encoding import BROADCAST_COLUMNS as _JOB
from .encoding import FOLLOW_COLUMNS as _FOLLOW
from .encoding import broadcast_row as _job
from .encoding import follow_row as _follow
from .encoding import pack
from .sqlite_worker import Worker

_BLOCKED = "EXISTS (SELECT 1 FROM blocks b WHERE b.shop = follows.shop AND b.buyer = follows.buyer)"


class SQLiteFollows:
    _writer: Worker
    _reader: Worker

    async def follow(self, shop: str, buyer: str, conv: str | None, now: int) -> tuple[FollowRecord, bool]:
        def job(c: sqlite3.Connection) -> tuple[FollowRecord, bool]:
            inserted = c.execute(
                f"INSERT INTO follows ({_FOLLOW}) VALUES (?, ?, ?, ?)"
                f" ON CONFLICT (shop, buyer) DO NOTHING RETURNING {_FOLLOW}",
                (shop, buyer, conv, now),
            ).fetchone()
            if inserted is not None:
                return _follow(inserted), True
            row = c.execute(f"SELECT {_FOLLOW} FROM follows WHERE shop=? AND buyer=?", (shop, buyer)).fetchone()
            return _follow(row), False

        return await self._writer.submit(job)

    async def unfollow(self, shop: str, buyer: str) -> bool:
        def job(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM follows WHERE shop=? AND buyer=?", (shop, buyer)).rowcount > 0

        return await self._writer.submit(job)

    async def get_follow(self, shop: str, buyer: str) -> FollowRecord | None:
        def job(c: sqlite3.Connection) -> FollowRecord | None:
            row = c.execute(f"SELECT {_FOLLOW} FROM follows WHERE shop=? AND buyer=?", (shop, buyer)).fetchone()
            return None if row is None else _follow(row)

        return await self._reader.submit(job)

    async def follower_count(self, shop: str) -> int:
        def job(c: sqlite3.Connection) -> int:
            return int(c.execute("SELECT count(*) FROM follows WHERE shop=?", (shop,)).fetchone()[0])

        return await self._reader.submit(job)

    async def followers(
        self, shop: str, *, after: str = "", limit: int = 100, since_before: int | None = None
    ) -> list[FollowRecord]:
        def job(c: sqlite3.Connection) -> list[FollowRecord]:
            rows = c.execute(
                f"SELECT {_FOLLOW}, {_BLOCKED} FROM follows WHERE shop=? AND buyer > ?"
                " AND (? IS NULL OR created_at <= ?) ORDER BY buyer LIMIT ?",
                (shop, after, since_before, since_before, max(limit, 0)),
            )
            return [_follow(r[:4], bool(r[4])) for r in rows]

        return await self._reader.submit(job)

    async def add_broadcast(
        self, shop: str, key: str, by: str, body: dict[str, Any], total: int, now: int, *, limit: int,
        window_ms: int,
    ) -> tuple[BroadcastRecord, bool]:
        def job(c: sqlite3.Connection) -> tuple[BroadcastRecord, bool]:
            row = c.execute(f"SELECT {_JOB} FROM broadcasts WHERE shop=? AND key=?", (shop, key)).fetchone()
            if row is not None:
                return _job(row), False
            if limit > 0:
                recent = [r[0] for r in c.execute(
                    "SELECT created_at FROM broadcasts WHERE shop=? AND created_at > ? ORDER BY created_at DESC"
                    " LIMIT ?", (shop, now - window_ms, limit))]
                if len(recent) >= limit:
                    raise BroadcastTooSoon(max(1, int(recent[-1]) + window_ms - now))
            row = c.execute(
                f"INSERT INTO broadcasts (shop, key, by_user, body, created_at, total) VALUES (?, ?, ?, ?, ?, ?)"
                f" RETURNING {_JOB}",
                (shop, key, by, pack(body), now, total),
            ).fetchone()
            return _job(row), True

        return await self._writer.submit(job)

    async def get_broadcast(self, broadcast_id: int) -> BroadcastRecord | None:
        def job(c: sqlite3.Connection) -> BroadcastRecord | None:
            row = c.execute(f"SELECT {_JOB} FROM broadcasts WHERE id=?", (broadcast_id,)).fetchone()
            return None if row is None else _job(row)

        return await self._reader.submit(job)

    async def broadcasts_of_shop(self, shop: str, *, limit: int = 20) -> list[BroadcastRecord]:
        def job(c: sqlite3.Connection) -> list[BroadcastRecord]:
            rows = c.execute(
                f"SELECT {_JOB} FROM broadcasts WHERE shop=? ORDER BY id DESC LIMIT ?", (shop, max(limit, 0))
            )
            return [_job(r) for r in rows]

        return await self._reader.submit(job)

    async def claim_broadcast(self, owner: str, now: int, lease_ms: int) -> BroadcastRecord | None:
        def job(c: sqlite3.Connection) -> BroadcastRecord | None:
            row = c.execute(
                f"UPDATE broadcasts SET lease_owner=?, lease_until=? WHERE id = (SELECT id FROM broadcasts"
                f" WHERE done = 0 AND (lease_until <= ? OR lease_owner = ?) ORDER BY id LIMIT 1) RETURNING {_JOB}",
                (owner, now + lease_ms, now, owner),
            ).fetchone()
            return None if row is None else _job(row)

        return await self._writer.submit(job)

    async def advance_broadcast(
        self, broadcast_id: int, owner: str, cursor: str, delivered: int, skipped: int, done: bool, now: int,
        lease_ms: int,
    ) -> bool:
        def job(c: sqlite3.Connection) -> bool:
            moved = c.execute(
                "UPDATE broadcasts SET cursor = max(cursor, ?), delivered=?, skipped=?, done=?, finished_at=?,"
                " lease_until=? WHERE id=? AND lease_owner=? AND done = 0",
                (cursor, delivered, skipped, int(done), now if done else None, now + lease_ms, broadcast_id, owner),
            )
            return moved.rowcount > 0

        return await self._writer.submit(job)
