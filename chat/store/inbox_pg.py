"""Notes on buyers and closed conversations in the PostgreSQL store (tables of schema
version 6).

A mixin of :class:`chat.store.postgres.PostgresStore`, over its pooled ``_run``/``_one``/``_all``.
A profile is saved by one statement whose condition is the version the editor read (an
``UPDATE … WHERE version = %s``, or an insert that does nothing when a row exists), so two
agents saving at once on two nodes cannot both pass: one of them finds no row written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .base import BuyerProfileRecord, ClosedRecord, NotFound
from .pg_writer import Conn

T = TypeVar("T")

_PROFILE = "shop, buyer, note, tags, version, updated_by, updated_at"
_CLOSED = "conv, by_user, closed_at, seq"
_STILL = "NOT EXISTS (SELECT 1 FROM messages m WHERE m.conv = c.conv AND m.seq > c.seq AND m.role = 'buyer')"


def _profile(row: tuple[Any, ...]) -> BuyerProfileRecord:
    shop, buyer, note, tags, version, by, at = row
    return BuyerProfileRecord(shop, buyer, note, tuple(tags), int(version), by, int(at))


def _closed(row: tuple[Any, ...]) -> ClosedRecord:
    conv, by, at, seq = row
    return ClosedRecord(conv, by, int(at), int(seq))


class PostgresInbox:
    if TYPE_CHECKING:
        async def _run(self, job: Callable[[Conn], Awaitable[T]], *, transaction: bool = False) -> T: ...

        async def _one(self, sql: str, params: Any) -> tuple[Any, ...] | None: ...

        async def _all(self, sql: str, params: Any) -> list[tuple[Any, ...]]: ...

    async def buyer_profile(self, shop: str, buyer: str) -> BuyerProfileRecord | None:
        row = await self._one(f"SELECT {_PROFILE} FROM buyer_profiles WHERE shop = %s AND buyer = %s", (shop, buyer))
        return None if row is None else _profile(row)

    async def save_buyer_profile(
        self, shop: str, buyer: str, note: str, tags: tuple[str, ...], by: str, now: int, *, expected_version: int
    ) -> tuple[BuyerProfileRecord | None, bool]:
        async def job(conn: Conn) -> tuple[BuyerProfileRecord | None, bool]:
            if expected_version == 0:
                cur = await conn.execute(
                    f"INSERT INTO buyer_profiles ({_PROFILE}) VALUES (%s, %s, %s, %s, 1, %s, %s)"
                    f" ON CONFLICT (shop, buyer) DO NOTHING RETURNING {_PROFILE}",
                    (shop, buyer, note, list(tags), by, now),
                )
            else:
                cur = await conn.execute(
                    f"UPDATE buyer_profiles SET note = %s, tags = %s, version = version + 1, updated_by = %s,"
                    f" updated_at = %s WHERE shop = %s AND buyer = %s AND version = %s RETURNING {_PROFILE}",
                    (note, list(tags), by, now, shop, buyer, expected_version),
                )
            saved = await cur.fetchone()
            if saved is not None:
                return _profile(saved), True
            row = await (await conn.execute(
                f"SELECT {_PROFILE} FROM buyer_profiles WHERE shop = %s AND buyer = %s", (shop, buyer)
            )).fetchone()
            return (None if row is None else _profile(row)), False

        return await self._run(job, transaction=True)

    async def close_conversation(self, conv_id: str, by: str, now: int) -> ClosedRecord:
        row = await self._one(
            f"INSERT INTO closed_conversations ({_CLOSED}) SELECT id, %s, %s, last_seq FROM conversations"
            " WHERE id = %s ON CONFLICT (conv) DO UPDATE SET by_user = excluded.by_user,"
            f" closed_at = excluded.closed_at, seq = excluded.seq RETURNING {_CLOSED}",
            (by, now, conv_id),
        )
        if row is None:
            raise NotFound(conv_id)
        return _closed(row)

    async def reopen_conversation(self, conv_id: str) -> ClosedRecord | None:
        row = await self._one(
            f"WITH gone AS (DELETE FROM closed_conversations WHERE conv = %s RETURNING {_CLOSED})"
            f" SELECT {_CLOSED} FROM gone c WHERE {_STILL}",
            (conv_id,),
        )
        return None if row is None else _closed(row)

    async def closed_conversations(self, conv_ids: list[str]) -> dict[str, ClosedRecord]:
        if not conv_ids:
            return {}
        rows = await self._all(
            f"SELECT {_CLOSED} FROM closed_conversations c WHERE conv = ANY(%s) AND {_STILL}", (conv_ids,)
        )
        return {r[0]: _closed(r) for r in rows}
