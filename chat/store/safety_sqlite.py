"""Reports and blocks in the SQLite store (tables of schema version 3).

A mixin of :class:`chat.store.sqlite.SQLiteStore`: writes go through its writer thread
(one transaction per batch, so a report's id is taken and committed in order), reads
through its reader thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .base import BlockRecord, ReportRecord, Side
from .chat_events import NewEvent
from .encoding import BLOCK_COLUMNS as _BLOCK
from .encoding import REPORT_COLUMNS as _REPORT
from .encoding import block_row as _block
from .encoding import report_row as _report
from .events_sqlite import insert_events
from .sqlite_worker import Worker


class SQLiteSafety:
    _writer: Worker
    _reader: Worker

    async def add_report(
        self, conv_id: str, seq: int, reporter: str, side: Side, buyer: str, shop: str, reason: str, now: int,
        events: Sequence[NewEvent] = (),
    ) -> tuple[ReportRecord, bool]:
        def job(c: sqlite3.Connection) -> tuple[ReportRecord, bool]:
            inserted = c.execute(
                f"INSERT INTO reports (conv, seq, reporter, side, buyer, shop, reason, created_at)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (reporter, conv, seq) DO NOTHING RETURNING {_REPORT}",
                (conv_id, seq, reporter, side, buyer, shop, reason, now),
            ).fetchone()
            if inserted is not None:
                insert_events(c, conv_id, seq, events, now)
                return _report(inserted), True
            row = c.execute(
                f"SELECT {_REPORT} FROM reports WHERE reporter=? AND conv=? AND seq=?", (reporter, conv_id, seq)
            ).fetchone()
            return _report(row), False

        return await self._writer.submit(job)

    async def is_reported(self, conv_id: str) -> bool:
        def job(c: sqlite3.Connection) -> bool:
            return c.execute("SELECT 1 FROM reports WHERE conv = ? LIMIT 1", (conv_id,)).fetchone() is not None

        return await self._reader.submit(job)

    async def reports(self, *, after: int = 0, limit: int = 100) -> list[ReportRecord]:
        def job(c: sqlite3.Connection) -> list[ReportRecord]:
            rows = c.execute(f"SELECT {_REPORT} FROM reports WHERE id > ? ORDER BY id LIMIT ?", (after, limit))
            return [_report(r) for r in rows]

        return await self._reader.submit(job)

    async def set_block(
        self, shop: str, buyer: str, side: Side, by: str, reason: str | None, now: int
    ) -> tuple[BlockRecord, bool]:
        def job(c: sqlite3.Connection) -> tuple[BlockRecord, bool]:
            inserted = c.execute(
                f"INSERT INTO blocks ({_BLOCK}) VALUES (?, ?, ?, ?, ?, ?)"
                f" ON CONFLICT (shop, buyer, side) DO NOTHING RETURNING {_BLOCK}",
                (shop, buyer, side, by, reason, now),
            ).fetchone()
            if inserted is not None:
                return _block(inserted), True
            row = c.execute(
                f"SELECT {_BLOCK} FROM blocks WHERE shop=? AND buyer=? AND side=?", (shop, buyer, side)
            ).fetchone()
            return _block(row), False

        return await self._writer.submit(job)

    async def remove_block(self, shop: str, buyer: str, side: Side) -> bool:
        def job(c: sqlite3.Connection) -> bool:
            gone = c.execute("DELETE FROM blocks WHERE shop=? AND buyer=? AND side=?", (shop, buyer, side))
            return gone.rowcount > 0

        return await self._writer.submit(job)

    async def blocks_between(self, shop: str, buyer: str) -> list[BlockRecord]:
        def job(c: sqlite3.Connection) -> list[BlockRecord]:
            rows = c.execute(f"SELECT {_BLOCK} FROM blocks WHERE shop=? AND buyer=? ORDER BY side", (shop, buyer))
            return [_block(r) for r in rows]

        return await self._reader.submit(job)

    async def blocks_of_shop(self, shop: str) -> list[BlockRecord]:
        def job(c: sqlite3.Connection) -> list[BlockRecord]:
            rows = c.execute(
                f"SELECT {_BLOCK} FROM blocks WHERE shop=? ORDER BY created_at, buyer, side", (shop,)
            )
            return [_block(r) for r in rows]

        return await self._reader.submit(job)
