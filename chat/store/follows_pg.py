"""Follows and broadcast jobs in the PostgreSQL store (tables of schema version 4).

A mixin of :class:`chat.store.postgres.PostgresStore`, over its pooled ``_run``/``_one``/``_all``.
A broadcast is recorded under a transaction-scoped advisory lock named after its shop, so two
nodes racing to record the shop's broadcasts cannot both pass its limit. Followers are
walked in code point order (``COLLATE "C"``), the order of the job's cursor. A runner claims
a job with ``FOR UPDATE SKIP LOCKED``, so runners on several nodes never wait for each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .base import BroadcastRecord, BroadcastTooSoon, FollowRecord
from .encoding import BROADCAST_COLUMNS as _JOB
from .encoding import FOLLOW_COLUMNS as _FOLLOW
from .encoding import broadcast_row as _job
from .encoding import follow_row as _follow
from .encoding import pack
from .pg_writer import Conn

T = TypeVar("T")

_BLOCKED = "EXISTS (SELECT 1 FROM blocks b WHERE b.shop = follows.shop AND b.buyer = follows.buyer)"
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('tradechat.broadcast'), hashtext(%s))"


class PostgresFollows:
    if TYPE_CHECKING:
        async def _run(self, job: Callable[[Conn], Awaitable[T]], *, transaction: bool = False) -> T: ...

        async def _one(self, sql: str, params: Any) -> tuple[Any, ...] | None: ...

        async def _all(self, sql: str, params: Any) -> list[tuple[Any, ...]]: ...

    async def follow(self, shop: str, buyer: str, conv: str | None, now: int) -> tuple[FollowRecord, bool]:
        async def job(conn: Conn) -> tuple[FollowRecord, bool]:
            inserted = await (await conn.execute(
                f"INSERT INTO follows ({_FOLLOW}) VALUES (%s, %s, %s, %s)"
                f" ON CONFLICT (shop, buyer) DO NOTHING RETURNING {_FOLLOW}",
                (shop, buyer, conv, now),
            )).fetchone()
            if inserted is not None:
                return _follow(inserted), True
            row = await (await conn.execute(
                f"SELECT {_FOLLOW} FROM follows WHERE shop = %s AND buyer = %s", (shop, buyer)
            )).fetchone()
            return _follow(cast(tuple[Any, ...], row)), False

        return await self._run(job, transaction=True)

    async def unfollow(self, shop: str, buyer: str) -> bool:
        row = await self._one(
            "WITH gone AS (DELETE FROM follows WHERE shop = %s AND buyer = %s RETURNING 1) SELECT count(*) FROM gone",
            (shop, buyer),
        )
        return row is not None and int(row[0]) > 0

    async def get_follow(self, shop: str, buyer: str) -> FollowRecord | None:
        row = await self._one(f"SELECT {_FOLLOW} FROM follows WHERE shop = %s AND buyer = %s", (shop, buyer))
        return None if row is None else _follow(row)

    async def follower_count(self, shop: str) -> int:
        row = await self._one("SELECT count(*) FROM follows WHERE shop = %s", (shop,))
        return 0 if row is None else int(row[0])

    async def followers(
        self, shop: str, *, after: str = "", limit: int = 100, since_before: int | None = None
    ) -> list[FollowRecord]:
        rows = await self._all(
            f'SELECT {_FOLLOW}, {_BLOCKED} FROM follows WHERE shop = %s AND buyer COLLATE "C" > %s'
            ' AND (%s::bigint IS NULL OR created_at <= %s::bigint) ORDER BY buyer COLLATE "C" LIMIT %s',
            (shop, after, since_before, since_before, max(limit, 0)),
        )
        return [_follow(r[:4], bool(r[4])) for r in rows]

    async def add_broadcast(
        self, shop: str, key: str, by: str, body: dict[str, Any], total: int, now: int, *, limit: int,
        window_ms: int,
    ) -> tuple[BroadcastRecord, bool]:
        async def job(conn: Conn) -> tuple[BroadcastRecord, bool]:
            await conn.execute(_LOCK, (shop,))
            row = await (await conn.execute(
                f"SELECT {_JOB} FROM broadcasts WHERE shop = %s AND key = %s", (shop, key)
            )).fetchone()
            if row is not None:
                return _job(row), False
            if limit > 0:
                recent = await (await conn.execute(
                    "SELECT created_at FROM broadcasts WHERE shop = %s AND created_at > %s"
                    " ORDER BY created_at DESC LIMIT %s", (shop, now - window_ms, limit),
                )).fetchall()
                if len(recent) >= limit:
                    raise BroadcastTooSoon(max(1, int(recent[-1][0]) + window_ms - now))
            row = await (await conn.execute(
                f"INSERT INTO broadcasts (shop, key, by_user, body, created_at, total)"
                f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_JOB}",
                (shop, key, by, pack(body), now, total),
            )).fetchone()
            return _job(cast(tuple[Any, ...], row)), True

        return await self._run(job, transaction=True)

    async def get_broadcast(self, broadcast_id: int) -> BroadcastRecord | None:
        row = await self._one(f"SELECT {_JOB} FROM broadcasts WHERE id = %s", (broadcast_id,))
        return None if row is None else _job(row)

    async def broadcasts_of_shop(self, shop: str, *, limit: int = 20) -> list[BroadcastRecord]:
        rows = await self._all(
            f"SELECT {_JOB} FROM broadcasts WHERE shop = %s ORDER BY id DESC LIMIT %s", (shop, max(limit, 0))
        )
        return [_job(r) for r in rows]

    async def claim_broadcast(self, owner: str, now: int, lease_ms: int) -> BroadcastRecord | None:
        row = await self._one(
            f"UPDATE broadcasts SET lease_owner = %s, lease_until = %s WHERE id = (SELECT id FROM broadcasts"
            f" WHERE NOT done AND (lease_until <= %s OR lease_owner = %s) ORDER BY id LIMIT 1"
            f" FOR UPDATE SKIP LOCKED) RETURNING {_JOB}",
            (owner, now + lease_ms, now, owner),
        )
        return None if row is None else _job(row)

    async def advance_broadcast(
        self, broadcast_id: int, owner: str, cursor: str, delivered: int, skipped: int, done: bool, now: int,
        lease_ms: int,
    ) -> bool:
        row = await self._one(
            'WITH moved AS (UPDATE broadcasts SET cursor = greatest(cursor COLLATE "C", %s::text COLLATE "C"),'
            " delivered = %s, skipped = %s, done = %s, finished_at = %s, lease_until = %s"
            " WHERE id = %s AND lease_owner = %s AND NOT done RETURNING 1) SELECT count(*) FROM moved",
            (cursor, delivered, skipped, done, now if done else None, now + lease_ms, broadcast_id, owner),
        )
        return row is not None and int(row[0]) > 0
