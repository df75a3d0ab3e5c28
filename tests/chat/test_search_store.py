"""The ``Search`` part of the store contract (``chat.store.base.Search``): conversations found
by buyer, listing or message text. On every store (memory, SQLite, PostgreSQL), with the
fixtures of ``test_store_contract``; a second ``open_store()`` is another node."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chat.store import search_sqlite
from chat.store.base import Store
from chat.store.sqlite import SQLiteStore

from . import test_store_contract as contract

store_kind = contract.store_kind
new_place = contract.new_place
open_store = contract.open_store

TEA = {"id": "l-tea", "title": "Longjing green tea 龙井", "price": 100, "currency": "CNY"}
CUP = {"id": "l-cup", "title": "Celadon cup", "price": 900, "currency": "CNY"}


async def _seed(store: Store) -> None:
    await store.open_conversation("c1", "alice", "s", TEA, "a", 1)
    await store.open_conversation("c2", "bob", "s", CUP, "a", 2)
    await store.open_conversation("c3", "carol", "other", TEA, "x", 3)
    await store.append("c1", "alice", "buyer", "text", {"text": "The box arrived 破损了, please help"}, "m1", 10)
    await store.append("c1", "a", "agent", "text", {"text": "Sorry! Send a photo of the damage"}, "m2", 11)
    await store.append("c2", "bob", "buyer", "text", {"text": "包装破损 again"}, "m3", 12)
    await store.append("c2", "bob", "buyer", "image", {"url": "https://x/破损.png"}, "m4", 13)
    await store.append("c3", "carol", "buyer", "text", {"text": "破损 in another shop"}, "m5", 14)


async def test_text_matches_name_the_messages_and_stay_in_the_shop(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    await _seed(store)
    hits = await store.search_conversations("破损", shop="s")
    # most recently active first; only text messages; the other shop's conversation never shows
    assert [(h.conversation.id, h.fields, h.seqs) for h in hits] == [("c2", ("text",), (2,)), ("c1", ("text",), (2,))]
    assert hits[1].snippet == "The box arrived 破损了, please help" and hits[0].snippet == "包装破损 again"
    # a 3+ character query (the trigram index's case), letters without case, any node
    other = await open_store()
    found = await other.search_conversations("PHOTO OF", shop="s")
    assert [(h.conversation.id, h.seqs) for h in found] == [("c1", (3,))]
    assert [h.conversation.id for h in await other.search_conversations("破损", buyer="carol")] == ["c3"]
    assert await store.search_conversations("  ", shop="s") == []
    assert await store.search_conversations("nothing like it", shop="s") == []
    # wildcards are taken literally
    assert await store.search_conversations("%", shop="s") == []
    assert await store.search_conversations("_", shop="s") == []


async def test_buyer_and_listing_match_and_pages_follow_activity(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    await _seed(store)
    assert [(h.conversation.id, h.fields) for h in await store.search_conversations("BOB", shop="s")] == [
        ("c2", ("buyer",))]
    assert [(h.conversation.id, h.fields) for h in await store.search_conversations("龙井", shop="s")] == [
        ("c1", ("listing",))]
    assert [h.conversation.id for h in await store.search_conversations("l-cup", shop="s")] == ["c2"]
    both = await store.search_conversations("a", shop="s", limit=1)
    assert [h.conversation.id for h in both] == ["c2"]
    last = both[0].conversation
    rest = await store.search_conversations("a", shop="s", before=(last.updated_at, last.id), limit=1)
    assert [h.conversation.id for h in rest] == ["c1"]
    assert "buyer" in rest[0].fields and "text" in rest[0].fields
    assert await store.search_conversations("a", shop="s", before=(rest[0].conversation.updated_at, "c1")) == []


async def test_recalled_messages_are_not_found_by_their_text(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    await _seed(store)
    await store.append("c1", "alice", "buyer", "text", {"text": "my phone is 13800138000"}, "m9", 20)
    assert [h.seqs for h in await store.search_conversations("13800138000", shop="s")] == [(4,)]
    await store.recall("c1", 4, "alice", 21, 120_000)
    assert await store.search_conversations("13800138000", shop="s") == []
    assert await (await open_store()).search_conversations("13800138000", shop="s") == []


def _drop_index_file(folder: Path) -> None:
    for leftover in folder.glob("chat.db-search*"):
        leftover.unlink()


async def test_a_sqlite_file_from_version_5_gets_its_text_indexed(tmp_path: Path) -> None:
    """Migration 6 queues the text messages already stored; the index takes them."""
    path = str(tmp_path / "chat.db")
    store = SQLiteStore(path, synchronous="NORMAL")
    await store.start()
    await _seed(store)
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE search_pending")  # as release 5 left it
    conn.execute("DELETE FROM schema_version WHERE version >= 6")
    conn.commit()
    conn.close()
    _drop_index_file(tmp_path)
    again = SQLiteStore(path, synchronous="NORMAL")
    await again.start()
    try:
        assert [h.conversation.id for h in await again.search_conversations("破损", shop="s")] == ["c2", "c1"]
        assert [h.seqs for h in await again.search_conversations("photo", shop="s")] == [(3,)]
    finally:
        await again.close()
    # a lost index file (a backup restored without it) is rebuilt from the messages
    _drop_index_file(tmp_path)
    third = SQLiteStore(path, synchronous="NORMAL")
    await third.start()
    try:
        assert [h.conversation.id for h in await third.search_conversations("破损", shop="s")] == ["c2", "c1"]
    finally:
        await third.close()


async def test_sqlite_indexes_its_backlog_in_chunks_and_before_a_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends only queue their text; the writer indexes the queue once it is long enough (in
    the background) and before every search, chunk by chunk."""
    monkeypatch.setattr(search_sqlite, "FLUSH_EVERY", 4)
    monkeypatch.setattr(search_sqlite, "FLUSH_ROWS", 3)
    store = SQLiteStore(str(tmp_path / "chat.db"), synchronous="NORMAL")
    await store.start()
    try:
        await store.open_conversation("c1", "b", "s", TEA, "a", 1)

        async def pending() -> int:
            return int(await store._reader.submit(lambda c: c.execute("SELECT count(*) FROM search_pending").fetchone()[0]))

        for i in range(3):
            await store.append("c1", "b", "buyer", "text", {"text": f"退货 {i}"}, f"m{i}", 10 + i)
        assert await pending() == 3
        await store.append("c1", "b", "buyer", "text", {"text": "退货 3"}, "m3", 20)
        for _ in range(100):
            if await pending() == 0:
                break
            await asyncio.sleep(0.01)
        assert await pending() == 0  # indexed in the background, in chunks of 3
        for i in range(4, 7):
            await store.append("c1", "b", "buyer", "text", {"text": f"退货 {i}"}, f"m{i}", 20 + i)
        assert await pending() == 3  # below the threshold: they wait for the next search
        await store.append("c1", "system", "system", "text", {"text": "退货 7"}, "m7", 30)
        await store.append("c1", "b", "buyer", "text", {"text": "退货 8"}, "m8", 31)
        [hit] = await store.search_conversations("退货", shop="s")
        assert await pending() == 0 and hit.seqs == (10, 9, 8, 7, 6)
    finally:
        await store.close()
