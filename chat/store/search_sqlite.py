"""Conversation search in the SQLite store: message text in an FTS5 table with the trigram
tokenizer, so a substring of Chinese text (which has no spaces to split words at) is found
through the index.

Indexing stays off the append path. Writing a message's trigrams in the append's transaction
cost the single writer about 30 µs of CPU per message and a new FTS segment per commit, which
cut its throughput at saturation by about 40%. So the append only notes a text message in
``search_pending`` (one row of a small table, schema version 6), and the index lives in a file
of its own (``<path>-search``) with its own thread and lock: it is filled from the queue by
that thread while the writer goes on appending, when :data:`FLUSH_EVERY` text messages are
waiting and before every search (so a search sees every committed message). A queued row is
indexed under its queue id and only then dequeued, so a crash in between indexes it again in
place, never twice. A missing index file (a restored backup) is rebuilt from the messages.

A recall leaves the row: the query joins ``messages`` and skips recalled ones. A pattern
shorter than three characters (a trigram) cannot use the index and scans the table (SQLite
3.40's trigram LIKE answers such a pattern with no rows, so it is asked over ``text || ''``,
which the index does not see).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from functools import partial
from typing import TYPE_CHECKING, Any

from .base import ConversationRecord, SearchHit
from .encoding import unpack
from .search import TEXT_ROWS, collect, scope
from .sqlite_worker import Worker, connect

FLUSH_EVERY = 500
"""Text messages waiting before the index thread takes them without being asked."""
FLUSH_ROWS = 2000
"""Rows indexed per index transaction (a flush takes several if need be)."""

_TEXTS = (
    "SELECT t.conv, t.seq, t.text FROM search.message_text t JOIN conversations c ON c.id = t.conv"
    " JOIN messages m ON m.conv = t.conv AND m.seq = t.seq"
    " WHERE {column} LIKE ? AND c.{who} = ? AND m.recalled = 0 ORDER BY t.rowid DESC LIMIT ?"
)


def note_text(c: sqlite3.Connection, conv_id: str, seq: int, kind: str, body: dict[str, Any]) -> None:
    """Queue a text message for the index; called by the writer in the transaction that stores it."""
    if kind == "text" and isinstance(body.get("text"), str):
        c.execute("INSERT INTO search_pending (conv, seq) VALUES (?, ?)", (conv_id, seq))


def create_queue(c: sqlite3.Connection) -> None:
    """The queue, holding every text message already stored (migration 6)."""
    c.execute("CREATE TABLE IF NOT EXISTS search_pending (id INTEGER PRIMARY KEY AUTOINCREMENT, conv TEXT NOT NULL,"
              " seq INTEGER NOT NULL) STRICT")
    _queue_all(c)


def _queue_all(c: sqlite3.Connection) -> None:
    c.execute("INSERT INTO search_pending (conv, seq) SELECT conv, seq FROM messages WHERE kind = 'text'"
              " ORDER BY conv, seq")


def _requeue(c: sqlite3.Connection) -> None:
    c.execute("DELETE FROM search_pending")
    _queue_all(c)


def _dequeue(c: sqlite3.Connection, *, last: int) -> None:
    c.execute("DELETE FROM search_pending WHERE id <= ?", (last,))


def _queued(c: sqlite3.Connection) -> list[tuple[int, str, int, str]]:
    rows = c.execute(
        "SELECT p.id, p.conv, p.seq, m.body FROM search_pending p JOIN messages m ON m.conv = p.conv AND m.seq = p.seq"
        " ORDER BY p.id LIMIT ?", (FLUSH_ROWS,)
    ).fetchall()
    out = []
    for pid, conv, seq, body in rows:
        text = unpack(bytes(body)).get("text")
        out.append((int(pid), str(conv), int(seq), text if isinstance(text, str) else ""))
    return out


class SQLiteSearch:
    path: str
    _reader: Worker
    _writer: Worker

    if TYPE_CHECKING:
        async def conversations_of_shop(self, shop: str) -> list[ConversationRecord]: ...

        async def conversations_of_buyer(self, buyer: str) -> list[ConversationRecord]: ...

    async def _start_search(self) -> None:
        """Open the index file (creating it, and queueing every text message, if it is missing)."""
        index_path = self.path + "-search"
        missing = not await asyncio.to_thread(os.path.exists, index_path)

        def open_index() -> sqlite3.Connection:
            conn = connect(index_path, "NORMAL")
            conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS message_text USING fts5(text, conv UNINDEXED,"
                         " seq UNINDEXED, tokenize='trigram', detail=none)")
            return conn

        self._indexer = Worker("store-search", open_index, batch=False)
        await asyncio.to_thread(self._indexer.start)
        self._search_backlog = 0
        self._search_flush: asyncio.Task[None] | None = None
        await self._reader.submit(lambda c: c.execute("ATTACH DATABASE ? AS search", (index_path,)))
        if missing:
            await self._writer.submit(_requeue)

    async def _stop_search(self) -> None:
        """Let a flush under way finish, then close the index file."""
        if self._search_flush is not None:
            await asyncio.gather(self._search_flush, return_exceptions=True)
        await asyncio.to_thread(self._indexer.stop)

    def _noted_text(self) -> None:
        """Count a stored text message; past :data:`FLUSH_EVERY`, index the queue in the background."""
        self._search_backlog += 1
        if self._search_backlog >= FLUSH_EVERY and self._search_flush is None:
            self._search_backlog = 0
            self._search_flush = asyncio.create_task(self._flush_in_background())

    async def _flush_in_background(self) -> None:
        try:
            await self._flush_search()
        except Exception:  # the queue stays; the next search (or backlog) takes it
            pass
        finally:
            self._search_flush = None

    async def _flush_search(self) -> None:
        while True:
            rows = await self._reader.submit(_queued)
            if not rows:
                return

            def index(c: sqlite3.Connection, rows: list[tuple[int, str, int, str]] = rows) -> None:
                c.execute("BEGIN IMMEDIATE")
                try:
                    c.executemany("INSERT OR REPLACE INTO message_text (rowid, conv, seq, text) VALUES (?, ?, ?, ?)",
                                  [r for r in rows if r[3]])
                    c.execute("COMMIT")
                except BaseException:
                    c.execute("ROLLBACK")
                    raise

            await self._indexer.submit(index)
            await self._writer.submit(partial(_dequeue, last=rows[-1][0]))
            if len(rows) < FLUSH_ROWS:
                return

    async def search_conversations(
        self, query: str, *, shop: str | None = None, buyer: str | None = None,
        before: tuple[int, str] | None = None, limit: int = 20,
    ) -> list[SearchHit]:
        scoped = scope(query, shop, buyer)
        if scoped is None:
            return []
        query, who, owner = scoped
        # LIKE wildcards typed in the query only widen the candidates; collect checks each.
        sql = _TEXTS.format(who=who, column="t.text" if len(query) >= 3 else "(t.text || '')")

        def job(c: sqlite3.Connection) -> list[tuple[str, int, str]]:
            rows = c.execute(sql, (f"%{query}%", owner, TEXT_ROWS)).fetchall()
            return [(str(conv), int(seq), str(text)) for conv, seq, text in rows]

        await self._flush_search()  # every committed message, also another node's
        texts = await self._reader.submit(job)
        records = await (self.conversations_of_shop(shop) if shop is not None
                         else self.conversations_of_buyer(buyer or ""))
        return collect(records, texts, query, before=before, limit=limit)
