"""The SQLite writer remembers each conversation's last link instead of reading it back;
what it remembers must never outlive a rollback (two stores may share one file)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from chat.store import chain
from chat.store.base import MessageRecord
from chat.store.sqlite import SQLiteStore
from chat.store.sqlite_append import append_message

LISTING = {"id": "l-1", "title": "Tea", "price": 100, "currency": "CNY"}


def _links(messages: list[MessageRecord]) -> list[dict[str, Any]]:
    return [{**chain.record_fields(m), "hash": m.hash} for m in messages]


async def test_a_rolled_back_append_leaves_no_remembered_link(tmp_path: Path) -> None:
    path = str(tmp_path / "chat.db")
    first, second = SQLiteStore(path, synchronous="NORMAL"), SQLiteStore(path, synchronous="NORMAL")
    await first.start()
    await second.start()
    try:
        await first.open_conversation("c1", "b", "s", LISTING, "a", 1)

        def append_then_fail(c: sqlite3.Connection) -> None:
            append_message(c, "c1", "b", "buyer", "text", {"text": "lost"}, "m-lost", 2, first._links)
            raise RuntimeError("a later statement of the same job failed")

        with pytest.raises(RuntimeError):
            await first._writer.submit(append_then_fail)
        # The other store takes seq 2 with its own content, then the first one goes on.
        await second.append("c1", "a", "agent", "text", {"text": "kept"}, "m2", 3)
        await first.append("c1", "b", "buyer", "text", {"text": "next"}, "m3", 4)
        stored = await first.messages("c1")
        assert [m.seq for m in stored] == [1, 2, 3]
        assert chain.first_broken("c1", _links(stored), last_seq=3) is None
    finally:
        await first.close()
        await second.close()
