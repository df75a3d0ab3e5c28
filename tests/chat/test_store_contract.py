"""The guarantees of ``chat.store.base.Store``, as one suite every store must pass.

Only SQLite exists today; a PostgreSQL store joins ``STORES`` and must pass the same tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from chat.store.base import ClientIdReused, NotFound, RecallRefused, Store
from chat.store.sqlite import SQLiteStore

LISTING = {"id": "l1", "title": "Tea", "price": 100, "currency": "CNY"}
STORES = ["sqlite"]


@pytest.fixture(params=STORES)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], Awaitable[Store]]]:
    opened: list[Store] = []

    async def factory() -> Store:
        store = SQLiteStore(str(tmp_path / "chat.db"), synchronous="NORMAL")
        await store.start()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


async def test_open_is_idempotent_per_buyer_shop_listing(open_store: Callable[[], Awaitable[Store]]) -> None:
    """The same (buyer, shop, listing) gives the same conversation and only one product card."""
    store = await open_store()
    first, card = await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    assert first.id == "c1" and card is not None and card.seq == 1 and card.kind == "product"
    again, none = await store.open_conversation("c2", "b", "s", LISTING, "x", 2)
    assert none is None and again.id == "c1" and again.agent == "a"
    assert (await store.find_conversation("b", "s", "l1")) == again
    assert await store.find_conversation("b", "s", "nope") is None
    other, _ = await store.open_conversation("c3", "b", "s", {**LISTING, "id": "l2"}, None, 3)
    assert other.id == "c3"
    assert [c.id for c in await store.conversations_of_buyer("b")] == ["c1", "c3"]
    assert [c.id for c in await store.conversations_of_shop("s")] == ["c1", "c3"]


async def test_concurrent_appends_get_gapless_unique_seqs(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Hundreds of concurrent appends to one conversation get seqs 2..N+1, each once."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    results = await asyncio.gather(
        *(store.append("c1", "b", "buyer", "text", {"text": str(i)}, f"m{i}", 2) for i in range(300))
    )
    assert sorted(r.message.seq for r in results) == list(range(2, 302))
    assert (await store.get_conversation("c1")).last_seq == 301  # type: ignore[union-attr]


async def test_cmid_is_idempotent_and_guarded(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Re-appending a cmid returns the stored message; a different body under it is refused."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    first = await store.append("c1", "b", "buyer", "text", {"text": "hi"}, "m", 2)
    again = await store.append("c1", "b", "buyer", "text", {"text": "hi"}, "m", 3)
    assert again.duplicate and again.message == first.message
    with pytest.raises(ClientIdReused):
        await store.append("c1", "b", "buyer", "text", {"text": "changed"}, "m", 4)
    other_sender = await store.append("c1", "a", "agent", "text", {"text": "changed"}, "m", 4)
    assert not other_sender.duplicate  # cmids are per sender


async def test_append_to_missing_conversation_fails(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Appending to a conversation that does not exist raises NotFound and stores nothing."""
    store = await open_store()
    with pytest.raises(NotFound):
        await store.append("nope", "b", "buyer", "text", {"text": "x"}, "m", 1)


async def test_failed_job_does_not_spoil_its_batch(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Group commit: a failing write next to good ones fails alone."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    results = await asyncio.gather(
        store.append("c1", "b", "buyer", "text", {"text": "ok1"}, "g1", 2),
        store.append("missing", "b", "buyer", "text", {"text": "bad"}, "g2", 2),
        store.append("c1", "b", "buyer", "text", {"text": "ok2"}, "g3", 2),
        return_exceptions=True,
    )
    assert isinstance(results[1], NotFound)
    assert [m.body["text"] for m in await store.messages("c1", after=1)] == ["ok1", "ok2"]


async def test_messages_survive_reopening(open_store: Callable[[], Awaitable[Store]]) -> None:
    """What append returned is there after the store is closed and opened again."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    for i in range(20):
        await store.append("c1", "b", "buyer", "text", {"text": str(i)}, f"m{i}", 2)
    await store.close()
    reopened = await open_store()
    assert [m.seq for m in await reopened.messages("c1", limit=100)] == list(range(1, 22))


async def test_paging(open_store: Callable[[], Awaitable[Store]]) -> None:
    """messages() pages forwards after a seq and backwards before one, oldest first."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    for i in range(10):
        await store.append("c1", "b", "buyer", "text", {"text": str(i)}, f"m{i}", 2)
    assert [m.seq for m in await store.messages("c1", after=3, limit=3)] == [4, 5, 6]
    assert [m.seq for m in await store.messages("c1", before=8, limit=3)] == [5, 6, 7]
    assert [m.seq for m in await store.messages("c1", after=2, before=5, limit=10)] == [3, 4]
    assert (await store.last_messages(["c1", "nope"]))["c1"].seq == 11


async def test_recall_rules(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Only the sender, only client messages, only within the window; the original stays stored."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    msg = (await store.append("c1", "b", "buyer", "text", {"text": "secret"}, "m", 1000)).message
    with pytest.raises(RecallRefused) as by_other:
        await store.recall("c1", msg.seq, "a", 1001, 120_000)
    assert by_other.value.reason == "sender"
    with pytest.raises(RecallRefused) as late:
        await store.recall("c1", msg.seq, "b", 1000 + 120_001, 120_000)
    assert late.value.reason == "window"
    with pytest.raises(RecallRefused) as card:
        await store.recall("c1", 1, "b", 1001, 120_000)
    assert card.value.reason == "kind"
    done = await store.recall("c1", msg.seq, "b", 1001, 120_000)
    assert done.message.kind == "recall" and done.message.body == {"seq": msg.seq}
    [stored] = await store.messages("c1", after=msg.seq - 1, limit=1)
    assert stored.recalled and stored.body == {"text": "secret"}  # kept as evidence
    assert stored.view()["body"] == {}  # but never shown
    with pytest.raises(NotFound):
        await store.recall("c1", 999, "b", 1001, 120_000)


async def test_read_marks_and_unread(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Marks only move forward, never past the last seq; unread counts the other side's messages."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    for i in range(3):
        await store.append("c1", "a", "agent", "text", {"text": str(i)}, f"a{i}", 2)
    await store.append("c1", "b", "buyer", "text", {"text": "mine"}, "b0", 2)
    assert (await store.unread_counts(["c1"], "buyer"))["c1"] == 3
    assert (await store.unread_counts(["c1"], "shop"))["c1"] == 2  # product card + "mine"
    assert await store.set_read("c1", "buyer", 3) == 3
    assert await store.set_read("c1", "buyer", 2) == 3
    assert await store.set_read("c1", "buyer", 99) == 5
    assert (await store.unread_counts(["c1"], "buyer"))["c1"] == 0
    assert (await store.read_marks(["c1"]))["c1"] == {"buyer": 5, "shop": 0}


async def test_agents_and_assignment(open_store: Callable[[], Awaitable[Store]]) -> None:
    """agent_loads counts open conversations per known agent; assign moves one."""
    store = await open_store()
    await store.register_agent("s", "a", 1)
    await store.register_agent("s", "idle", 1)
    await store.open_conversation("c1", "b1", "s", LISTING, "a", 1)
    await store.open_conversation("c2", "b2", "s", LISTING, "a", 1)
    assert await store.agent_loads("s") == {"a": 2, "idle": 0}
    moved = await store.assign("c2", "idle")
    assert moved.agent == "idle"
    assert await store.agent_loads("s") == {"a": 1, "idle": 1}
    appended = await store.append("c2", "b2", "buyer", "text", {"text": "x"}, "m", 2)
    assert appended.agent == "idle"


async def test_named_cursors_only_move_forward(open_store: Callable[[], Awaitable[Store]]) -> None:
    """A named cursor starts at 0, survives reopening and never moves back."""
    store = await open_store()
    assert await store.get_cursor("x") == 0
    await store.set_cursor("x", 5)
    await store.set_cursor("x", 3)
    await store.close()
    assert await (await open_store()).get_cursor("x") == 5


async def test_message_by_cmid(open_store: Callable[[], Awaitable[Store]]) -> None:
    """A message is found by its sender and client id, and only by that pair."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    done = await store.append("c1", "system", "system", "card", {"id": "o1"}, "card:o1", 2)
    assert await store.message_by_cmid("c1", "system", "card:o1") == done.message
    assert await store.message_by_cmid("c1", "b", "card:o1") is None


async def test_first_responses_ignore_auto_replies_and_old_questions(open_store: Callable[[], Awaitable[Store]]) -> None:
    """First response: from the buyer's first message in the window to the first human agent reply."""
    store = await open_store()
    await store.open_conversation("c1", "b1", "s", LISTING, "a", 1000)
    await store.open_conversation("c2", "b2", "s", LISTING, "a", 1000)
    await store.open_conversation("c3", "b3", "s", LISTING, "a", 1000)
    await store.open_conversation("old", "b4", "s", LISTING, "a", 1000)
    await store.append("old", "b4", "buyer", "text", {"text": "long ago"}, "q", 1500)
    await store.append("old", "a", "agent", "text", {"text": "answer"}, "r", 1600)
    await store.append("c1", "b1", "buyer", "text", {"text": "in stock?"}, "q1", 10_000)
    await store.append("c1", "b1", "buyer", "text", {"text": "hello?"}, "q2", 11_000)
    await store.append("c1", "a", "agent", "text", {"text": "away", "auto": True}, "r0", 10_100)
    await store.append("c1", "a", "agent", "text", {"text": "yes"}, "r1", 70_000)
    await store.append("c2", "b2", "buyer", "text", {"text": "price?"}, "q1", 20_000)
    await store.append("c2", "a", "agent", "text", {"text": "away", "auto": True}, "r0", 20_050)
    await store.append("c3", "a", "agent", "text", {"text": "welcome"}, "r0", 9_000)  # no question: not asked
    assert sorted(await store.first_responses("s", 5_000), key=lambda t: (t is None, t)) == [60_000, None]
    assert await store.first_responses("other-shop", 0) == []


async def test_sqlite_file_from_an_earlier_version_is_migrated(tmp_path: Path) -> None:
    """A chat file from before the updated_at, auto and auto-reply columns opens, gains them, keeps its data."""
    import sqlite3

    from chat.store import sqlite as sqlite_store

    path = tmp_path / "old.db"
    old_schema = (
        sqlite_store.SCHEMA.replace("    auto INTEGER NOT NULL DEFAULT 0,\n", "")
        .replace("    updated_at INTEGER NOT NULL DEFAULT 0,\n", "")
        .replace("conversations (shop, updated_at)", "conversations (shop)")
        .replace("CREATE INDEX IF NOT EXISTS conversations_buyer ON conversations (buyer, updated_at);\n", "")
        .replace("    auto_reply TEXT,\n    auto_on INTEGER NOT NULL DEFAULT 0,\n", "")
    )
    assert "updated_at" not in old_schema and "auto" not in old_schema
    conn = sqlite3.connect(path)
    conn.executescript(old_schema)
    conn.execute("INSERT INTO conversations (id, buyer, shop, listing_id, listing, created_at) VALUES"
                 " ('c1', 'b', 's', 'l1', x'80', 1)")
    conn.commit()
    conn.close()
    store = SQLiteStore(str(path), synchronous="NORMAL")
    await store.start()
    try:
        done = await store.append("c1", "a", "agent", "text", {"text": "away", "auto": True}, "r", 5)
        assert done.message.seq == 1
        assert [c.updated_at for c in await store.recent_conversations(shop="s")] == [5]
        assert await store.set_auto_reply("s", "a", True, "away") == "away"
        assert await store.first_responses("s", 0) == []
    finally:
        await store.close()
