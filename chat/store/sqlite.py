"""SQLite store: one file, WAL, group commit from a single writer thread.

Why this shape: SQLite allows one writer at a time, and an ``fsync`` per
message would cap throughput at the disk's sync rate. The writer thread takes
every write queued since its last commit, runs each inside its own SAVEPOINT
(one bad request cannot spoil the batch) and commits them together, then
resolves their futures in one hop back to the event loop. Reads use a second
connection on another thread; WAL lets them run beside the writer.

The file's schema is versioned: ``start`` (and ``python -m chat migrate``) takes the
steps of :data:`MIGRATIONS` that the file has not taken yet, recorded in its
``schema_version`` table.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import Any, TypeVar

from .agents_sqlite import SQLiteAgentProfiles
from .base import (
    Appended,
    ConversationRecord,
    MessageRecord,
    NotFound,
    RecallRefused,
    Role,
    Side,
    newer_signed_card,
)
from .chat_events import NewEvent
from .encoding import pack, unpack
from .events_sqlite import SQLiteChatEvents, insert_events
from .follows_sqlite import SQLiteFollows
from .inbox_sqlite import SQLiteInbox
from .safety_sqlite import SQLiteSafety
from .search_sqlite import SQLiteSearch
from .sqlite_append import MSG_COLUMNS, AppendRequest, WriterState, append_many, append_message, message_row
from .sqlite_schema import migrate
from .sqlite_worker import Worker, connect

T = TypeVar("T")

def _conversation(row: tuple[Any, ...]) -> ConversationRecord:
    return ConversationRecord(
        id=row[0], buyer=row[1], shop=row[2], listing=unpack(row[3]), agent=row[4],
        last_seq=row[5], created_at=row[6], status=row[7], updated_at=row[8],
    )


_CONV_COLUMNS = "id, buyer, shop, listing, agent, last_seq, created_at, status, updated_at"


class SQLiteStore(SQLiteSafety, SQLiteFollows, SQLiteInbox, SQLiteSearch, SQLiteAgentProfiles, SQLiteChatEvents):
    """The embedded default store (see :mod:`chat.store.base` for its guarantees)."""

    def __init__(self, path: str, *, synchronous: str = "FULL") -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        self.path = path
        self.synchronous = synchronous
        self._links = WriterState()
        # Not started yet: submitting to a worker whose thread is not running fails fast.
        self._writer = self._worker("store-writer", batch=True)
        self._reader = self._worker("store-reader", batch=False)
        self._started = False
        self.version = 0
        """The schema version found or reached by the last ``start``/``migrate``."""

    def _worker(self, name: str, *, batch: bool) -> Worker:
        return Worker(name, lambda: connect(self.path, self.synchronous), batch=batch,
                      on_rollback=self._links.rolled_back, on_batch=self._links.new_batch,
                      group=self._append_many if batch else None)

    def _append_many(self, c: sqlite3.Connection, requests: list[AppendRequest]) -> list[tuple[bool, Any]]:
        return append_many(c, requests, self._links)

    async def start(self) -> None:
        if self._started:
            return
        await self.migrate()
        self._writer = self._worker("store-writer", batch=True)
        self._reader = self._worker("store-reader", batch=False)
        await asyncio.to_thread(self._writer.start)
        await asyncio.to_thread(self._reader.start)
        await self._start_search()
        self._started = True

    async def migrate(self) -> int:
        """Take the migrations this file lacks (see :data:`MIGRATIONS`); returns its version."""

        def run() -> int:
            conn = connect(self.path, "FULL")
            try:
                return migrate(conn)
            finally:
                conn.close()

        self.version = await asyncio.to_thread(run)
        return self.version

    async def close(self) -> None:
        if self._started:
            await self._stop_search()
            await asyncio.to_thread(self._writer.stop)
            await asyncio.to_thread(self._reader.stop)
            self._started = False

    async def ping(self) -> bool:
        if not self._started:
            return False
        return bool(await self._reader.submit(lambda c: c.execute("SELECT 1").fetchone()[0] == 1))

    # --- writes -------------------------------------------------------------

    async def open_conversation(
        self, conv_id: str, buyer: str, shop: str, listing: dict[str, Any], agent: str | None, now: int,
        events: Sequence[NewEvent] = (),
    ) -> tuple[ConversationRecord, MessageRecord | None]:
        def job(c: sqlite3.Connection) -> tuple[ConversationRecord, MessageRecord | None]:
            row = c.execute(
                f"SELECT {_CONV_COLUMNS} FROM conversations WHERE buyer=? AND shop=? AND listing_id=?",
                (buyer, shop, listing["id"]),
            ).fetchone()
            if row is not None:
                existing = _conversation(row)
                if newer_signed_card(listing, existing.listing):
                    # A card the marketplace signed replaces what a browser sent earlier.
                    c.execute("UPDATE conversations SET listing=? WHERE id=?", (pack(listing), existing.id))
                    row = c.execute(f"SELECT {_CONV_COLUMNS} FROM conversations WHERE id=?", (existing.id,)).fetchone()
                return _conversation(row), None
            c.execute(
                "INSERT INTO conversations (id, buyer, shop, listing_id, listing, agent, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conv_id, buyer, shop, listing["id"], pack(listing), agent, now, now),
            )
            card = append_message(
                c, conv_id, buyer, "buyer", "product", {"listing": listing}, None, now, self._links
            ).message
            insert_events(c, conv_id, 0, events, now)
            row = c.execute(f"SELECT {_CONV_COLUMNS} FROM conversations WHERE id=?", (conv_id,)).fetchone()
            return _conversation(row), card

        return await self._writer.submit(job)

    async def append(
        self, conv_id: str, sender: str, role: Role, kind: str, body: dict[str, Any], cmid: str | None, now: int,
        events: Sequence[NewEvent] = (),
    ) -> Appended:
        # Data, not a closure: the writer stores a run of queued appends together, and a
        # refused one (NotFound, ClientIdReused) writes nothing.
        appended: Appended = await self._writer.submit_item(
            AppendRequest(conv_id, sender, role, kind, body, cmid, now, tuple(events))
        )
        if kind == "text" and not appended.duplicate:
            self._noted_text()
        return appended

    async def recall(self, conv_id: str, seq: int, by: str, now: int, window_ms: int) -> Appended:
        def job(c: sqlite3.Connection) -> Appended:
            row = c.execute(f"SELECT {MSG_COLUMNS} FROM messages WHERE conv=? AND seq=?", (conv_id, seq)).fetchone()
            if row is None:
                raise NotFound(f"{conv_id}#{seq}")
            original = message_row(row)
            if original.sender != by:
                raise RecallRefused("sender")
            # "~" cannot appear in a client's cmid, so this id never collides with one.
            # Only what a client posted itself: not the opening card, cards or system notes.
            if original.kind not in ("text", "image", "product") or original.cmid is None or original.recalled:
                raise RecallRefused("kind")
            if now - original.ts > window_ms:
                raise RecallRefused("window")
            c.execute("UPDATE messages SET recalled=1 WHERE conv=? AND seq=?", (conv_id, seq))
            return append_message(
                c, conv_id, by, original.role, "recall", {"seq": seq}, f"~recall:{seq}", now, self._links
            )

        return await self._writer.submit(job)

    async def set_read(self, conv_id: str, side: Side, seq: int) -> int:
        column = "buyer_read" if side == "buyer" else "shop_read"

        def job(c: sqlite3.Connection) -> int:
            row = c.execute(
                f"UPDATE conversations SET {column} = MAX({column}, MIN(?, last_seq)) WHERE id=? RETURNING {column}",
                (seq, conv_id),
            ).fetchone()
            if row is None:
                raise NotFound(conv_id)
            return int(row[0])

        return await self._writer.submit(job)

    async def assign(self, conv_id: str, agent: str) -> ConversationRecord:
        def job(c: sqlite3.Connection) -> ConversationRecord:
            row = c.execute(
                f"UPDATE conversations SET agent=? WHERE id=? RETURNING {_CONV_COLUMNS}", (agent, conv_id)
            ).fetchone()
            if row is None:
                raise NotFound(conv_id)
            return _conversation(row)

        return await self._writer.submit(job)

    async def register_agent(self, shop: str, agent: str, now: int) -> None:
        await self._writer.submit(
            lambda c: c.execute(
                "INSERT INTO agents (shop, agent, last_seen) VALUES (?, ?, ?)"
                " ON CONFLICT (shop, agent) DO UPDATE SET last_seen=excluded.last_seen",
                (shop, agent, now),
            )
        )

    # --- reads --------------------------------------------------------------

    async def get_conversation(self, conv_id: str) -> ConversationRecord | None:
        def job(c: sqlite3.Connection) -> ConversationRecord | None:
            row = c.execute(f"SELECT {_CONV_COLUMNS} FROM conversations WHERE id=?", (conv_id,)).fetchone()
            return None if row is None else _conversation(row)

        return await self._reader.submit(job)

    async def find_conversation(self, buyer: str, shop: str, listing_id: str) -> ConversationRecord | None:
        def job(c: sqlite3.Connection) -> ConversationRecord | None:
            row = c.execute(
                f"SELECT {_CONV_COLUMNS} FROM conversations WHERE buyer=? AND shop=? AND listing_id=?",
                (buyer, shop, listing_id),
            ).fetchone()
            return None if row is None else _conversation(row)

        return await self._reader.submit(job)

    async def conversations_of_buyer(self, buyer: str) -> list[ConversationRecord]:
        return await self._reader.submit(
            lambda c: [
                _conversation(r)
                for r in c.execute(
                    f"SELECT {_CONV_COLUMNS} FROM conversations WHERE buyer=? ORDER BY created_at", (buyer,)
                )
            ]
        )

    async def conversations_of_shop(self, shop: str) -> list[ConversationRecord]:
        return await self._reader.submit(
            lambda c: [
                _conversation(r)
                for r in c.execute(
                    f"SELECT {_CONV_COLUMNS} FROM conversations WHERE shop=? ORDER BY created_at", (shop,)
                )
            ]
        )

    async def recent_conversations(
        self, *, buyer: str | None = None, shop: str | None = None, before: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> list[ConversationRecord]:
        column, owner = ("buyer", buyer) if buyer is not None else ("shop", shop)
        cut = (2**62, "") if before is None else before

        def job(c: sqlite3.Connection) -> list[ConversationRecord]:
            rows = c.execute(
                f"SELECT {_CONV_COLUMNS} FROM conversations WHERE {column}=? AND (updated_at, id) < (?, ?)"
                " ORDER BY updated_at DESC, id DESC LIMIT ?",
                (owner, cut[0], cut[1] or "\U0010ffff", limit),
            ).fetchall()
            return [_conversation(r) for r in rows]

        return await self._reader.submit(job)

    async def conversations(self, conv_ids: list[str]) -> list[ConversationRecord]:
        def job(c: sqlite3.Connection) -> list[ConversationRecord]:
            out = []
            for conv_id in conv_ids:
                row = c.execute(f"SELECT {_CONV_COLUMNS} FROM conversations WHERE id=?", (conv_id,)).fetchone()
                if row is not None:
                    out.append(_conversation(row))
            return out

        return await self._reader.submit(job)

    async def messages(
        self, conv_id: str, *, after: int = 0, before: int | None = None, limit: int = 50
    ) -> list[MessageRecord]:
        def job(c: sqlite3.Connection) -> list[MessageRecord]:
            if before is not None:
                rows = c.execute(
                    f"SELECT {MSG_COLUMNS} FROM messages WHERE conv=? AND seq>? AND seq<?"
                    " ORDER BY seq DESC LIMIT ?",
                    (conv_id, after, before, limit),
                ).fetchall()
                rows.reverse()
            else:
                rows = c.execute(
                    f"SELECT {MSG_COLUMNS} FROM messages WHERE conv=? AND seq>? ORDER BY seq LIMIT ?",
                    (conv_id, after, limit),
                ).fetchall()
            return [message_row(r) for r in rows]

        return await self._reader.submit(job)

    async def last_messages(self, conv_ids: list[str]) -> dict[str, MessageRecord]:
        def job(c: sqlite3.Connection) -> dict[str, MessageRecord]:
            out: dict[str, MessageRecord] = {}
            for conv_id in conv_ids:
                row = c.execute(
                    f"SELECT {MSG_COLUMNS} FROM messages WHERE conv=? ORDER BY seq DESC LIMIT 1", (conv_id,)
                ).fetchone()
                if row is not None:
                    out[conv_id] = message_row(row)
            return out

        return await self._reader.submit(job)

    async def read_marks(self, conv_ids: list[str]) -> dict[str, dict[str, int]]:
        def job(c: sqlite3.Connection) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            for conv_id in conv_ids:
                row = c.execute("SELECT buyer_read, shop_read FROM conversations WHERE id=?", (conv_id,)).fetchone()
                if row is not None:
                    out[conv_id] = {"buyer": row[0], "shop": row[1]}
            return out

        return await self._reader.submit(job)

    async def unread_counts(self, conv_ids: list[str], side: Side) -> dict[str, int]:
        column = "buyer_read" if side == "buyer" else "shop_read"
        own_role = "buyer" if side == "buyer" else "agent"

        def job(c: sqlite3.Connection) -> dict[str, int]:
            out: dict[str, int] = {}
            for conv_id in conv_ids:
                row = c.execute(
                    f"SELECT count(*) FROM messages m JOIN conversations v ON v.id = m.conv"
                    f" WHERE m.conv=? AND m.seq > v.{column} AND m.role != ?"
                    " AND m.kind NOT IN ('recall', 'card_update') AND m.recalled = 0",
                    (conv_id, own_role),
                ).fetchone()
                out[conv_id] = int(row[0])
            return out

        return await self._reader.submit(job)

    async def message_by_cmid(self, conv_id: str, sender: str, cmid: str) -> MessageRecord | None:
        def job(c: sqlite3.Connection) -> MessageRecord | None:
            row = c.execute(
                f"SELECT {MSG_COLUMNS} FROM messages WHERE conv=? AND sender=? AND cmid=?", (conv_id, sender, cmid)
            ).fetchone()
            return None if row is None else message_row(row)

        return await self._reader.submit(job)

    async def get_cursor(self, name: str) -> int:
        def job(c: sqlite3.Connection) -> int:
            row = c.execute("SELECT value FROM cursors WHERE name=?", (name,)).fetchone()
            return 0 if row is None else int(row[0])

        return await self._reader.submit(job)

    async def set_cursor(self, name: str, value: int) -> None:
        await self._writer.submit(
            lambda c: c.execute(
                "INSERT INTO cursors (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = MAX(value, excluded.value)",
                (name, max(0, value)),
            )
        )

    async def first_responses(self, shop: str, since: int) -> list[int | None]:
        def job(c: sqlite3.Connection) -> list[int | None]:
            rows = c.execute(
                "WITH asked AS ("
                "  SELECT m.conv, MIN(m.ts) AS at FROM messages m JOIN conversations v ON v.id = m.conv"
                "  WHERE v.shop = ? AND m.role = 'buyer' AND m.cmid IS NOT NULL AND m.ts >= ?"
                "    AND m.kind IN ('text', 'image', 'product') GROUP BY m.conv)"
                " SELECT (SELECT MIN(r.ts) FROM messages r WHERE r.conv = asked.conv AND r.role = 'agent'"
                "   AND r.auto = 0 AND r.ts >= asked.at AND r.kind IN ('text', 'image', 'product')) - asked.at"
                " FROM asked",
                (shop, since),
            ).fetchall()
            return [None if r[0] is None else int(r[0]) for r in rows]

        return await self._reader.submit(job)

    async def set_auto_reply(self, shop: str, agent: str, active: bool, text: str | None) -> str | None:
        def job(c: sqlite3.Connection) -> str | None:
            row = c.execute(
                "INSERT INTO agents (shop, agent, last_seen, auto_reply, auto_on) VALUES (?, ?, 0, ?, ?)"
                " ON CONFLICT (shop, agent) DO UPDATE SET auto_on = excluded.auto_on,"
                " auto_reply = COALESCE(excluded.auto_reply, agents.auto_reply) RETURNING auto_reply",
                (shop, agent, text, 1 if active else 0),
            ).fetchone()
            return None if row is None else row[0]

        return await self._writer.submit(job)

    async def auto_reply(self, shop: str, agent: str) -> str | None:
        def job(c: sqlite3.Connection) -> str | None:
            row = c.execute(
                "SELECT auto_reply FROM agents WHERE shop=? AND agent=? AND auto_on=1", (shop, agent)
            ).fetchone()
            return None if row is None else row[0]

        return await self._reader.submit(job)

    async def change_token(self) -> str:
        def job(c: sqlite3.Connection) -> str:
            epoch, value = c.execute("SELECT epoch, value FROM change_clock WHERE id = 1").fetchone()
            return f"{epoch}.{value}"

        return await self._reader.submit(job)

    async def changed_since(
        self, token: str, *, buyer: str | None = None, shop: str | None = None, limit: int = 10_000
    ) -> list[ConversationRecord] | None:
        column, owner = ("buyer", buyer) if buyer is not None else ("shop", shop)
        epoch, _, mark = token.partition(".")

        def job(c: sqlite3.Connection) -> list[ConversationRecord] | None:
            current = c.execute("SELECT epoch, value FROM change_clock WHERE id = 1").fetchone()
            if not (mark.isascii() and mark.isdigit()) or epoch != current[0] or int(mark) > current[1]:
                return None
            rows = c.execute(
                f"SELECT {_CONV_COLUMNS} FROM conversations WHERE {column}=? AND change > ? LIMIT ?",
                (owner, int(mark), limit + 1),
            ).fetchall()
            return None if len(rows) > limit else [_conversation(r) for r in rows]

        return await self._reader.submit(job)

    async def agent_loads(self, shop: str) -> dict[str, int]:
        def job(c: sqlite3.Connection) -> dict[str, int]:
            loads = {row[0]: 0 for row in c.execute("SELECT agent FROM agents WHERE shop=?", (shop,))}
            for agent, count in c.execute(
                "SELECT agent, count(*) FROM conversations WHERE shop=? AND status='open'"
                " AND agent IS NOT NULL GROUP BY agent",
                (shop,),
            ):
                loads[agent] = count
            return loads

        return await self._reader.submit(job)
