"""Notes on buyers and closed conversations in the SQLite store (tables of schema version 5).

A mixin of :class:`chat.store.sqlite.SQLiteStore`: writes go through its writer thread (one
writer, so a profile's version check and its save cannot interleave with another save),
reads through its reader thread. Whether a conversation is still closed is read from the
messages after the close (primary key range ``(conv, seq > close)``).
"""

from __future__ import annotations

import json
import sqlite3

from .base import BuyerProfileRecord, ClosedRecord, NotFound
from .sqlite_worker import Worker

_PROFILE = "shop, buyer, note, tags, version, updated_by, updated_at"
_CLOSED = "conv, by_user, closed_at, seq"
_STILL = "NOT EXISTS (SELECT 1 FROM messages m WHERE m.conv = c.conv AND m.seq > c.seq AND m.role = 'buyer')"


def _profile(row: tuple[object, ...]) -> BuyerProfileRecord:
    shop, buyer, note, tags, version, by, at = row
    return BuyerProfileRecord(str(shop), str(buyer), str(note), tuple(json.loads(str(tags))), int(str(version)),
                              str(by), int(str(at)))


def _closed(row: tuple[object, ...]) -> ClosedRecord:
    conv, by, at, seq = row
    return ClosedRecord(str(conv), str(by), int(str(at)), int(str(seq)))


class SQLiteInbox:
    _writer: Worker
    _reader: Worker

    async def buyer_profile(self, shop: str, buyer: str) -> BuyerProfileRecord | None:
        def job(c: sqlite3.Connection) -> BuyerProfileRecord | None:
            row = c.execute(f"SELECT {_PROFILE} FROM buyer_profiles WHERE shop=? AND buyer=?", (shop, buyer)).fetchone()
            return None if row is None else _profile(row)

        return await self._reader.submit(job)

    async def save_buyer_profile(
        self, shop: str, buyer: str, note: str, tags: tuple[str, ...], by: str, now: int, *, expected_version: int
    ) -> tuple[BuyerProfileRecord | None, bool]:
        def job(c: sqlite3.Connection) -> tuple[BuyerProfileRecord | None, bool]:
            row = c.execute(f"SELECT {_PROFILE} FROM buyer_profiles WHERE shop=? AND buyer=?", (shop, buyer)).fetchone()
            current = None if row is None else _profile(row)
            if (current.version if current is not None else 0) != expected_version:
                return current, False
            saved = BuyerProfileRecord(shop, buyer, note, tuple(tags), expected_version + 1, by, now)
            c.execute(
                f"INSERT INTO buyer_profiles ({_PROFILE}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (shop, buyer) DO"
                " UPDATE SET note=excluded.note, tags=excluded.tags, version=excluded.version,"
                " updated_by=excluded.updated_by, updated_at=excluded.updated_at",
                (shop, buyer, note, json.dumps(list(tags), ensure_ascii=False), saved.version, by, now),
            )
            return saved, True

        return await self._writer.submit(job)

    async def close_conversation(self, conv_id: str, by: str, now: int) -> ClosedRecord:
        def job(c: sqlite3.Connection) -> ClosedRecord:
            row = c.execute("SELECT last_seq FROM conversations WHERE id=?", (conv_id,)).fetchone()
            if row is None:
                raise NotFound(conv_id)
            c.execute(
                f"INSERT INTO closed_conversations ({_CLOSED}) VALUES (?, ?, ?, ?) ON CONFLICT (conv) DO UPDATE SET"
                " by_user=excluded.by_user, closed_at=excluded.closed_at, seq=excluded.seq",
                (conv_id, by, now, int(row[0])),
            )
            return ClosedRecord(conv_id, by, now, int(row[0]))

        return await self._writer.submit(job)

    async def reopen_conversation(self, conv_id: str) -> ClosedRecord | None:
        def job(c: sqlite3.Connection) -> ClosedRecord | None:
            row = c.execute(f"SELECT {_CLOSED} FROM closed_conversations c WHERE conv=? AND {_STILL}",
                            (conv_id,)).fetchone()
            c.execute("DELETE FROM closed_conversations WHERE conv=?", (conv_id,))
            return None if row is None else _closed(row)

        return await self._writer.submit(job)

    async def closed_conversations(self, conv_ids: list[str]) -> dict[str, ClosedRecord]:
        def job(c: sqlite3.Connection) -> dict[str, ClosedRecord]:
            found: dict[str, ClosedRecord] = {}
            for start in range(0, len(conv_ids), 500):
                chunk = conv_ids[start:start + 500]
                marks = ", ".join("?" for _ in chunk)
                rows = c.execute(
                    f"SELECT {_CLOSED} FROM closed_conversations c WHERE conv IN ({marks}) AND {_STILL}", chunk
                )
                found.update((r[0], _closed(r)) for r in rows)
            return found

        return await self._reader.submit(job)
