"""The chat event outbox in the SQLite store (:class:`chat.store.chat_events.ChatEvents`).

A mixin of :class:`chat.store.sqlite.SQLiteStore`. :func:`insert_events` runs inside the
writer-thread job that stores what the events describe, so both commit in one
transaction. Ids come from ``AUTOINCREMENT``, never reused even after the newest rows
are dropped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from .chat_events import EVENT_COLUMNS, ChatEvent, NewEvent, event_row
from .sqlite_worker import Worker


def create_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS chat_events (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,"
        " type TEXT NOT NULL, conv TEXT NOT NULL, seq INTEGER NOT NULL, data TEXT NOT NULL,"
        " created_at INTEGER NOT NULL) STRICT"
    )


def insert_events(c: sqlite3.Connection, conv_id: str, seq: int, events: Sequence[NewEvent], now: int) -> None:
    if events:
        c.executemany(
            "INSERT INTO chat_events (event_id, type, conv, seq, data, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (event_id) DO NOTHING",
            [(e.event_id, e.type, conv_id, seq, e.data_json(), now) for e in events],
        )


class SQLiteChatEvents:
    _writer: Worker
    _reader: Worker

    async def add_events(self, conv_id: str, events: list[NewEvent], now: int) -> None:
        await self._writer.submit(lambda c: insert_events(c, conv_id, 0, events, now))

    async def pending_events(self, limit: int = 500) -> list[ChatEvent]:
        def job(c: sqlite3.Connection) -> list[ChatEvent]:
            rows = c.execute(f"SELECT {EVENT_COLUMNS} FROM chat_events ORDER BY id LIMIT ?", (limit,)).fetchall()
            return [event_row(r) for r in rows]

        return await self._reader.submit(job)

    async def drop_events(self, ids: list[int]) -> None:
        def job(c: sqlite3.Connection) -> None:
            c.executemany("DELETE FROM chat_events WHERE id = ?", [(i,) for i in ids])

        if ids:
            await self._writer.submit(job)
