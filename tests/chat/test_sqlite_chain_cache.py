"""The SQLite writer remembers each conversation's last link instead of reading it back;
what it remembers must never outlive a rollback (two stores may share one file)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
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


@pytest.fixture
async def two_stores(tmp_path: Path) -> AsyncIterator[tuple[SQLiteStore, SQLiteStore]]:
    """Two store instances on one file, as two processes of one machine would have."""
    path = str(tmp_path / "chat.db")
    first, second = SQLiteStore(path, synchronous="NORMAL"), SQLiteStore(path, synchronous="NORMAL")
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_a_rolled_back_append_leaves_no_remembered_link(two_stores: tuple[SQLiteStore, SQLiteStore]) -> None:
    first, second = two_stores
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


async def test_two_stores_taking_turns_with_runs_of_appends_keep_one_chain(
    two_stores: tuple[SQLiteStore, SQLiteStore],
) -> None:
    """Each store's writer stores runs of queued appends at once; the other store's appends
    come in between, so a link remembered from its own last run is often stale."""
    first, second = two_stores
    await first.open_conversation("c1", "b", "s", LISTING, "a", 1)
    for round_ in range(5):
        calls = [store.append("c1", "b" if i % 2 else "a", "buyer" if i % 2 else "agent", "text",
                              {"text": f"{round_}-{i}"}, f"{round_}-{i}-{n}", 10 * round_ + i)
                 for i in range(8) for n, store in enumerate((first, second))]
        assert not any(r.duplicate for r in await asyncio.gather(*calls))
    stored = await first.messages("c1", limit=1000)
    assert [m.seq for m in stored] == list(range(1, 82))
    assert chain.first_broken("c1", _links(stored), last_seq=81) is None
