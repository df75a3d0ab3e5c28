"""Reports and blocks in the PostgreSQL store (tables of schema version 3).

A mixin of :class:`chat.store.postgres.PostgresStore`, over its pooled ``_run``/``_one``/``_all``.
A report is inserted under ``LOCK TABLE reports IN SHARE ROW EXCLUSIVE MODE``: a sequence
hands out ids in call order, not commit order, so without the lock a reader paging with
``after`` could pass an id whose report commits a moment later and never see it. Reports
are rare; serializing their inserts costs nothing the send path feels.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from .base import BlockRecord, ReportRecord, Side
from .chat_events import NewEvent
from .encoding import BLOCK_COLUMNS as _BLOCK
from .encoding import REPORT_COLUMNS as _REPORT
from .encoding import block_row as _block
from .encoding import report_row as _report
from .events_pg import insert_events
from .pg_writer import Conn

T = TypeVar("T")



class PostgresSafety:
    if TYPE_CHECKING:
        async def _run(self, job: Callable[[Conn], Awaitable[T]], *, transaction: bool = False) -> T: ...

        async def _one(self, sql: str, params: Any) -> tuple[Any, ...] | None: ...

        async def _all(self, sql: str, params: Any) -> list[tuple[Any, ...]]: ...

    async def add_report(
        self, conv_id: str, seq: int, reporter: str, side: Side, buyer: str, shop: str, reason: str, now: int,
        events: Sequence[NewEvent] = (),
    ) -> tuple[ReportRecord, bool]:
        async def job(conn: Conn) -> tuple[ReportRecord, bool]:
            found = await (await conn.execute(
                f"SELECT {_REPORT} FROM reports WHERE reporter = %s AND conv = %s AND seq = %s",
                (reporter, conv_id, seq),
            )).fetchone()
            if found is not None:  # the common resend needs no lock
                return _report(found), False
            await conn.execute("LOCK TABLE reports IN SHARE ROW EXCLUSIVE MODE")
            inserted = await (await conn.execute(
                f"INSERT INTO reports (conv, seq, reporter, side, buyer, shop, reason, created_at)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (reporter, conv, seq) DO NOTHING RETURNING {_REPORT}",
                (conv_id, seq, reporter, side, buyer, shop, reason, now),
            )).fetchone()
            if inserted is not None:
                await insert_events(conn, conv_id, seq, events, now)
                return _report(inserted), True
            row = await (await conn.execute(
                f"SELECT {_REPORT} FROM reports WHERE reporter = %s AND conv = %s AND seq = %s",
                (reporter, conv_id, seq),
            )).fetchone()
            return _report(cast(tuple[Any, ...], row)), False

        return await self._run(job, transaction=True)

    async def is_reported(self, conv_id: str) -> bool:
        return await self._one("SELECT 1 FROM reports WHERE conv = %s LIMIT 1", (conv_id,)) is not None

    async def reports(self, *, after: int = 0, limit: int = 100) -> list[ReportRecord]:
        rows = await self._all(f"SELECT {_REPORT} FROM reports WHERE id > %s ORDER BY id LIMIT %s", (after, limit))
        return [_report(r) for r in rows]

    async def set_block(
        self, shop: str, buyer: str, side: Side, by: str, reason: str | None, now: int
    ) -> tuple[BlockRecord, bool]:
        async def job(conn: Conn) -> tuple[BlockRecord, bool]:
            inserted = await (await conn.execute(
                f"INSERT INTO blocks ({_BLOCK}) VALUES (%s, %s, %s, %s, %s, %s)"
                f" ON CONFLICT (shop, buyer, side) DO NOTHING RETURNING {_BLOCK}",
                (shop, buyer, side, by, reason, now),
            )).fetchone()
            if inserted is not None:
                return _block(inserted), True
            row = await (await conn.execute(
                f"SELECT {_BLOCK} FROM blocks WHERE shop = %s AND buyer = %s AND side = %s", (shop, buyer, side)
            )).fetchone()
            return _block(cast(tuple[Any, ...], row)), False

        return await self._run(job, transaction=True)

    async def remove_block(self, shop: str, buyer: str, side: Side) -> bool:
        row = await self._one(
            "WITH gone AS (DELETE FROM blocks WHERE shop = %s AND buyer = %s AND side = %s RETURNING 1)"
            " SELECT count(*) FROM gone",
            (shop, buyer, side),
        )
        return row is not None and int(row[0]) > 0

    async def blocks_between(self, shop: str, buyer: str) -> list[BlockRecord]:
        rows = await self._all(
            f"SELECT {_BLOCK} FROM blocks WHERE shop = %s AND buyer = %s ORDER BY side", (shop, buyer)
        )
        return [_block(r) for r in rows]

    async def blocks_of_shop(self, shop: str) -> list[BlockRecord]:
        rows = await self._all(
            f'SELECT {_BLOCK} FROM blocks WHERE shop = %s ORDER BY created_at, buyer COLLATE "C", side', (shop,)
        )
        return [_block(r) for r in rows]
