"""The guarantees of ``chat.store.base.Store``, as one suite every store must pass.

Each test runs on every store in ``STORES``: ``memory`` (the reference implementation),
``sqlite`` and ``postgres`` (a fresh PostgreSQL schema per test on ``CHAT_TEST_PG``,
dropped afterwards). Calling ``open_store`` again opens a second instance on the same
database: a store reopened, or another node.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import psycopg
import pytest

from chat.protocol.views import msg_frame
from chat.store import chain, pg_schema
from chat.store.base import ClientIdReused, MessageRecord, NotFound, RecallRefused, Store
from chat.store.memory import MemoryStore
from chat.store.postgres import PostgresStore
from chat.store.sqlite import SQLiteStore

LISTING = {"id": "l1", "title": "Tea", "price": 100, "currency": "CNY"}
STORES = ["memory", "sqlite", "postgres"]
PG_URL = os.environ.get("CHAT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def make_store(kind: str, place: str) -> Store:
    """A store of ``kind`` on ``place`` (a file for SQLite, a schema for PostgreSQL)."""
    if kind == "memory":
        return MemoryStore()
    if kind == "sqlite":
        return SQLiteStore(place, synchronous="NORMAL")
    if kind == "postgres":
        return PostgresStore(PG_URL, schema=place, pool_size=4)
    raise ValueError(kind)


def drop_schemas(schemas: list[str]) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def new_place(store_kind: str, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes names of new, empty databases: files in ``tmp_path``, or PostgreSQL schemas
    that are dropped after the test."""
    made: list[str] = []

    def place() -> str:
        if store_kind == "postgres":
            made.append(f"chat_test_{uuid.uuid4().hex[:12]}")
        else:
            made.append(str(tmp_path / f"chat{len(made)}.db"))
        return made[-1]

    yield place
    if store_kind == "postgres" and made:
        drop_schemas(made)


@pytest.fixture
async def open_store(store_kind: str, new_place: Callable[[], str]) -> AsyncIterator[Callable[[], Awaitable[Store]]]:
    """Opens the test's store; calling it again opens another instance on the same database
    (SQLite: the same file; PostgreSQL: the same schema; the memory store, having nothing
    else, is the same instance started again)."""
    opened: list[Store] = []
    memory = MemoryStore()
    place = new_place()

    async def factory() -> Store:
        store = memory if store_kind == "memory" else make_store(store_kind, place)
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
    assert msg_frame(stored)["body"] == {}  # but never shown
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


async def test_change_token_lists_every_conversation_written_after_it(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """changed_since(token) names each conversation that got a message after the token, per owner."""
    store = await open_store()
    await store.open_conversation("c1", "b1", "s", LISTING, "a", 1)
    await store.open_conversation("c2", "b2", "s", LISTING, "a", 1)
    await store.open_conversation("c3", "b1", "t", LISTING, "a", 1)
    token = await store.change_token()
    assert await store.changed_since(token, shop="s") == []
    await store.append("c1", "b1", "buyer", "text", {"text": "hi"}, "m1", 2)
    await store.append("c3", "b1", "buyer", "text", {"text": "hi"}, "m1", 2)
    assert sorted(c.id for c in await store.changed_since(token, shop="s") or []) == ["c1"]
    assert sorted(c.id for c in await store.changed_since(token, buyer="b1") or []) == ["c1", "c3"]
    assert await store.changed_since(token, buyer="b2") == []
    later = await store.change_token()
    assert later != token and await store.changed_since(later, buyer="b1") == []
    await store.open_conversation("c4", "b3", "s", LISTING, None, 3)  # a new conversation counts
    assert [c.id for c in await store.changed_since(later, shop="s") or []] == ["c4"]
    assert len(await store.changed_since(token, shop="s", limit=2) or []) == 2
    assert await store.changed_since(token, shop="s", limit=1) is None  # too many: read them all


async def test_change_token_of_another_store_is_refused(
    open_store: Callable[[], Awaitable[Store]], store_kind: str, new_place: Callable[[], str]
) -> None:
    """A token from another store (a wiped database), from the future or garbage reads as unusable."""
    store = await open_store()
    await store.open_conversation("c1", "b1", "s", LISTING, "a", 1)
    token = await store.change_token()
    other = make_store(store_kind, new_place())
    await other.start()
    try:
        assert await other.changed_since(token, buyer="b1") is None
    finally:
        await other.close()
    epoch = token.partition(".")[0]
    for bad in (f"{epoch}.999999", "garbage", "", f"{epoch}.-1", "1718000000000-42"):
        assert await store.changed_since(bad, buyer="b1") is None, bad
    assert await store.changed_since(token, buyer="b1") == []


async def test_ping_tells_whether_the_store_is_open(open_store: Callable[[], Awaitable[Store]]) -> None:
    """ping is true while the store is started, false once it is closed, true again on reopening."""
    store = await open_store()
    assert await store.ping()
    await store.close()
    assert not await store.ping()
    assert await (await open_store()).ping()


async def test_callers_objects_are_not_shared_with_the_store(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Changing a listing or body after passing it in, or a record after getting it, changes nothing stored."""
    store = await open_store()
    tags = ["green"]
    record, card = await store.open_conversation("c1", "b", "s", {**LISTING, "tags": tags}, "a", 1)
    assert card is not None
    tags.append("spoiled")
    record.listing["title"] = "spoiled"
    card.body["listing"]["title"] = "spoiled"
    assert (await store.get_conversation("c1")).listing == {**LISTING, "tags": ["green"]}  # type: ignore[union-attr]
    assert (await store.messages("c1"))[0].body == {"listing": {**LISTING, "tags": ["green"]}}
    keys = [1]
    done = await store.append("c1", "b", "buyer", "text", {"text": "hi", "meta": {"k": keys}}, "m", 2)
    keys.append(2)
    (await store.messages("c1", after=1))[0].body["text"] = "spoiled"
    (await store.read_marks(["c1"]))["c1"]["buyer"] = 99
    assert (await store.messages("c1", after=1))[0].body == {"text": "hi", "meta": {"k": [1]}}
    assert (await store.read_marks(["c1"]))["c1"] == {"buyer": 0, "shop": 0}
    again = await store.append("c1", "b", "buyer", "text", {"text": "hi", "meta": {"k": [1]}}, "m", 3)
    assert again.duplicate and again.message.seq == done.message.seq


async def test_unknown_conversations(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Lookups skip conversations that do not exist; writes to one raise NotFound."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    await store.open_conversation("c2", "b", "s", {**LISTING, "id": "l2"}, "a", 2)
    assert [c.id for c in await store.conversations(["c2", "nope", "c1"])] == ["c2", "c1"]
    assert await store.get_conversation("nope") is None
    assert await store.messages("nope") == []
    assert await store.last_messages(["nope"]) == {}
    assert await store.read_marks(["nope"]) == {}
    assert await store.unread_counts(["nope"], "buyer") == {"nope": 0}
    for write in (
        store.set_read("nope", "buyer", 1),
        store.assign("nope", "a"),
        store.recall("nope", 1, "b", 1, 120_000),
    ):
        with pytest.raises(NotFound):
            await write


async def test_verified_listing_replaces_the_stored_card(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Reopening with a card the marketplace signed ("verified") replaces what was stored;
    an unsigned card never replaces anything (not in the ``open_conversation`` docstring)."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    signed = {**LISTING, "title": "Green tea", "verified": True}
    record, card = await store.open_conversation("c2", "b", "s", signed, None, 2)
    assert card is None and record.id == "c1" and record.listing == signed and record.agent == "a"
    record, _ = await store.open_conversation("c3", "b", "s", {**LISTING, "title": "Fake"}, None, 3)
    assert record.listing == signed
    assert (await store.find_conversation("b", "s", "l1")) == record
    assert (await store.get_conversation("c1")).last_seq == 1  # type: ignore[union-attr]


async def test_an_older_signed_card_never_replaces_a_newer_one(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Signed cards are ordered by ``signed_at``: the newest wins, so a still valid older token
    cannot roll a price back; an equal time changes nothing."""
    store = await open_store()
    new = {**LISTING, "price": 120, "verified": True, "signed_at": 2_000}
    old = {**LISTING, "price": 90, "verified": True, "signed_at": 1_000}
    await store.open_conversation("c1", "b", "s", new, "a", 1)
    record, _ = await store.open_conversation("c2", "b", "s", old, None, 2)
    assert record.listing == new
    tie = {**new, "price": 80}
    record, _ = await store.open_conversation("c3", "b", "s", tie, None, 3)
    assert record.listing == new
    newest = {**new, "price": 130, "signed_at": 3_000}
    record, _ = await store.open_conversation("c4", "b", "s", newest, None, 4)
    assert record.listing == newest and (await store.get_conversation("c1")).listing == newest  # type: ignore[union-attr]


async def test_recent_conversations_page_by_last_activity_then_id(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """Most recently active first, ties by id (descending); each page starts strictly after the
    (updated_at, id) it is given; updated_at is the last message's time and never goes back."""
    store = await open_store()
    for conv_id, at in (("c1", 10), ("c2", 20), ("c3", 20), ("c4", 30), ("c5", 5)):
        await store.open_conversation(conv_id, "b", "s", {**LISTING, "id": conv_id}, "a", at)
    await store.open_conversation("x1", "b2", "t", LISTING, "a", 50)
    await store.append("c5", "b", "buyer", "text", {"text": "up"}, "m", 40)
    await store.append("c1", "b", "buyer", "text", {"text": "late clock"}, "m", 3)
    assert (await store.get_conversation("c1")).updated_at == 10  # type: ignore[union-attr]

    async def ids(**kwargs: object) -> list[str]:
        return [c.id for c in await store.recent_conversations(**kwargs)]  # type: ignore[arg-type]

    assert await ids(buyer="b") == ["c5", "c4", "c3", "c2", "c1"]
    assert await ids(shop="s") == ["c5", "c4", "c3", "c2", "c1"]
    assert await ids(shop="t") == ["x1"]
    assert [c.updated_at for c in await store.recent_conversations(buyer="b")] == [40, 30, 20, 20, 10]
    assert await ids(buyer="b", limit=2) == ["c5", "c4"]
    assert await ids(buyer="b", before=(30, "c4"), limit=2) == ["c3", "c2"]
    assert await ids(buyer="b", before=(20, "c2"), limit=2) == ["c1"]
    assert await ids(buyer="b", before=(10, "c1"), limit=2) == []
    assert await ids(buyer="b", before=(20, "c3")) == ["c2", "c1"]  # a tie is split by id
    # No id (a client that sends only ``before_ts``): everything at that time is still to come,
    # so nothing is skipped. The docstring does not say what an empty id means.
    assert await ids(buyer="b", before=(20, "")) == ["c3", "c2", "c1"]


async def test_recall_marks_once_and_announces_as_the_sender(open_store: Callable[[], Awaitable[Store]]) -> None:
    """The recall message has the original's sender and role; a message is recalled once; a
    recall moves its conversation past the change token like any message."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    mine = (await store.append("c1", "a", "agent", "image", {"url": "x"}, "m", 1000)).message
    card = (await store.append("c1", "system", "system", "card", {"id": "o1"}, "card:o1", 1000)).message
    with pytest.raises(RecallRefused) as system_card:
        await store.recall("c1", card.seq, "system", 1001, 120_000)
    assert system_card.value.reason == "kind"
    token = await store.change_token()
    done = await store.recall("c1", mine.seq, "a", 1001, 120_000)
    assert not done.duplicate and done.agent == "a"
    assert (done.message.sender, done.message.role, done.message.kind) == ("a", "agent", "recall")
    assert done.message.seq == 4 == (await store.get_conversation("c1")).last_seq  # type: ignore[union-attr]
    assert [c.id for c in await store.changed_since(token, shop="s") or []] == ["c1"]
    with pytest.raises(RecallRefused) as twice:
        await store.recall("c1", mine.seq, "a", 1002, 120_000)
    assert twice.value.reason == "kind"
    assert (await store.get_conversation("c1")).last_seq == 4  # type: ignore[union-attr]


async def test_unread_counts_what_others_wrote_and_is_still_shown(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """Unread: the other side's, an arbiter's and the system's messages after the mark; never one's
    own side, recalled messages, recall notices or card updates (the docstring names only the
    first two rules)."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)  # 1: the card (buyer's)
    await store.append("c1", "a", "agent", "text", {"text": "hi"}, "a1", 2)  # 2
    await store.append("c1", "system", "system", "system", {"text": "assigned"}, None, 3)  # 3
    await store.append("c1", "arb", "arbiter", "text", {"text": "ruling"}, "r1", 4)  # 4
    await store.append("c1", "system", "system", "card_update", {"id": "o1"}, "pay:1", 5)  # 5
    await store.append("c1", "a", "agent", "text", {"text": "oops"}, "a2", 6)  # 6, recalled by 7
    await store.recall("c1", 6, "a", 7, 120_000)  # 7
    await store.append("c1", "b", "buyer", "text", {"text": "?"}, "b1", 8)  # 8
    assert await store.unread_counts(["c1"], "buyer") == {"c1": 3}  # 2, 3, 4
    assert await store.unread_counts(["c1"], "shop") == {"c1": 4}  # 1, 3, 4, 8
    assert await store.set_read("c1", "buyer", 3) == 3
    assert await store.unread_counts(["c1"], "buyer") == {"c1": 1}


async def test_auto_reply_switch_keeps_its_text(open_store: Callable[[], Awaitable[Store]]) -> None:
    """The text is kept while switched off and when switched on again without one; only an
    agent's own reply, only while on."""
    store = await open_store()
    assert await store.auto_reply("s", "a") is None
    assert await store.set_auto_reply("s", "a", True, None) is None  # on, but nothing to say yet
    assert await store.auto_reply("s", "a") is None
    assert await store.set_auto_reply("s", "a", True, "away") == "away"
    assert await store.auto_reply("s", "a") == "away"
    assert await store.set_auto_reply("s", "a", False, None) == "away"
    assert await store.auto_reply("s", "a") is None
    assert await store.set_auto_reply("s", "a", True, None) == "away"
    assert await store.set_auto_reply("s", "a", True, "brb") == "brb"
    await store.register_agent("s", "a", 5)  # connecting again changes nothing
    assert await store.auto_reply("s", "a") == "brb"
    assert await store.auto_reply("s", "other") is None and await store.auto_reply("t", "a") is None


async def test_first_responses_count_written_questions_and_answers(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """The opening card is no question, cards are no answer, and an answer before the question
    does not count."""
    store = await open_store()
    await store.open_conversation("card-only", "b1", "s", LISTING, "a", 6_000)  # card in the window
    await store.open_conversation("c2", "b2", "s", LISTING, "a", 1_000)
    await store.append("c2", "b2", "buyer", "text", {"text": "size?"}, "q", 6_000)
    await store.append("c2", "a", "agent", "card", {"id": "o1"}, "o1", 6_100)
    await store.append("c2", "a", "agent", "image", {"url": "chart"}, "r", 6_300)
    await store.open_conversation("c3", "b3", "s", LISTING, "a", 1_000)
    await store.append("c3", "a", "agent", "text", {"text": "welcome"}, "r", 6_000)
    await store.append("c3", "b3", "buyer", "text", {"text": "thanks"}, "q", 7_000)
    assert sorted(await store.first_responses("s", 5_000), key=lambda t: (t is None, t)) == [300, None]


async def test_change_token_with_other_digits_is_garbage(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """A client may send any 64 characters as its ``inbox`` token: one this store never issued
    (here: digits that are not ASCII) reads as unusable, it does not raise."""
    store = await open_store()
    await store.open_conversation("c1", "b1", "s", LISTING, "a", 1)
    epoch = (await store.change_token()).partition(".")[0]
    for bad in (f"{epoch}.²", f"{epoch}.٠"):
        assert await store.changed_since(bad, buyer="b1") is None, bad


async def test_cmid_resent_with_keys_in_another_order_is_a_duplicate(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """ClientIdReused is for a different body; the same body with its keys in another order
    (JSON objects have no order) is the same message."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    first = await store.append("c1", "b", "buyer", "text", {"text": "hi", "reply_to": 1}, "m", 2)
    again = await store.append("c1", "b", "buyer", "text", {"reply_to": 1, "text": "hi"}, "m", 3)
    assert again.duplicate and again.message == first.message
    with pytest.raises(ClientIdReused):  # a different value still is another body
        await store.append("c1", "b", "buyer", "text", {"reply_to": 2, "text": "hi"}, "m", 4)


async def test_cursor_never_set_does_not_go_below_zero(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """A cursor never set reads 0 and never moves back, so setting a negative value leaves it at 0."""
    store = await open_store()
    await store.set_cursor("fresh", -1)
    assert await store.get_cursor("fresh") == 0


async def test_sqlite_file_from_an_earlier_version_is_migrated(tmp_path: Path) -> None:
    """A chat file from before the updated_at, auto and auto-reply columns opens, gains them, keeps its data.

    SQLite only: it is about that store's file format, not the protocol."""
    import sqlite3

    from chat.store import sqlite_schema as sqlite_store

    path = tmp_path / "old.db"
    old_schema = (
        sqlite_store.SCHEMA.replace("    auto INTEGER NOT NULL DEFAULT 0,\n", "")
        .replace("    updated_at INTEGER NOT NULL DEFAULT 0,\n", "")
        .replace("conversations (shop, updated_at)", "conversations (shop)")
        .replace("CREATE INDEX IF NOT EXISTS conversations_buyer ON conversations (buyer, updated_at);\n", "")
        .replace("    auto_reply TEXT,\n    auto_on INTEGER NOT NULL DEFAULT 0,\n", "")
        .replace("    change INTEGER NOT NULL DEFAULT 0,\n", "")
    )
    old_schema = "\n".join(line for line in old_schema.splitlines() if "_change ON" not in line)
    assert "updated_at" not in old_schema and "auto" not in old_schema and "change INTEGER" not in old_schema
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
        assert [c.id for c in await store.changed_since("nope.0", shop="s") or []] == []
    finally:
        await store.close()


async def test_two_nodes_appending_to_one_conversation_get_gapless_unique_seqs(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """Two store instances on one database (two nodes), appending to one conversation at once,
    get seqs 2..N+1 each once, and both read the same history."""
    first, second = await open_store(), await open_store()
    await first.open_conversation("c1", "b", "s", LISTING, "a", 1)
    await second.open_conversation("c2", "b", "s", {**LISTING, "id": "l2"}, "a", 1)
    results = await asyncio.gather(*(
        (first if i % 2 else second).append(conv, "b", "buyer", "text", {"text": str(i)}, f"m{i}", 2)
        for i in range(400) for conv in ("c1", "c2")
    ))
    for conv in ("c1", "c2"):
        assert sorted(r.message.seq for r in results if r.message.conv == conv) == list(range(2, 402))
        seen = [[m.seq for m in await node.messages(conv, limit=500)] for node in (first, second)]
        assert seen[0] == seen[1] == list(range(1, 402))
        assert (await second.get_conversation(conv)).last_seq == 401  # type: ignore[union-attr]


async def test_the_same_cmid_from_two_nodes_at_once_is_stored_once(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """A client resending through another node while the first is still storing: one message,
    the other append answers it as a duplicate; another body under the cmid is refused."""
    first, second = await open_store(), await open_store()
    await first.open_conversation("c1", "b", "s", LISTING, "a", 1)
    for i in range(20):
        results = await asyncio.gather(*(
            node.append("c1", "b", "buyer", "text", {"text": str(i)}, f"m{i}", 2)
            for node in (first, second, first, second)
        ))
        assert sum(not r.duplicate for r in results) == 1
        assert all(r.message == results[0].message for r in results)
    assert (await first.get_conversation("c1")).last_seq == 21  # type: ignore[union-attr]
    with pytest.raises(ClientIdReused):
        await second.append("c1", "b", "buyer", "text", {"text": "other"}, "m0", 3)


async def test_change_token_sees_writes_of_another_node(open_store: Callable[[], Awaitable[Store]]) -> None:
    """A token taken on one node lists what another node wrote after it, and the other way round."""
    first, second = await open_store(), await open_store()
    await first.open_conversation("c1", "b1", "s", LISTING, "a", 1)
    await first.open_conversation("c2", "b2", "s", LISTING, "a", 1)
    token = await first.change_token()
    assert await second.changed_since(token, shop="s") == []
    await second.append("c1", "b1", "buyer", "text", {"text": "hi"}, "m1", 2)
    for node in (first, second):
        assert [c.id for c in await node.changed_since(token, shop="s") or []] == ["c1"]
    token = await second.change_token()
    await first.append("c2", "b2", "buyer", "text", {"text": "hi"}, "m1", 3)
    for node in (first, second):
        assert [c.id for c in await node.changed_since(token, shop="s") or []] == ["c2"]


async def test_change_token_under_concurrent_writes_from_two_nodes(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """While both nodes append to many conversations, every conversation written by an append
    that started after a token was taken (on either node) is listed by that token."""
    nodes = [await open_store(), await open_store()]
    convs = [f"c{i}" for i in range(12)]
    for i, conv in enumerate(convs):
        await nodes[i % 2].open_conversation(conv, "b", "s", {**LISTING, "id": conv}, "a", 1)
    rng = random.Random(9)
    stop = asyncio.Event()

    async def writer(node: Store, name: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            await node.append(rng.choice(convs), "b", "buyer", "text", {"text": "x"}, f"{name}-{n}", 2)
            await asyncio.sleep(0)  # the memory store never suspends: let the others run

    writers = [asyncio.create_task(writer(nodes[i % 2], f"w{i}")) for i in range(16)]
    try:
        for round_ in range(30):
            token = await nodes[round_ % 2].change_token()
            conv = rng.choice(convs)
            await nodes[(round_ + 1) % 2].append(conv, "b", "buyer", "text", {"text": "after"}, f"probe-{round_}", 3)
            await asyncio.sleep(rng.uniform(0, 0.01))
            for node in nodes:
                listed = await node.changed_since(token, buyer="b")
                assert listed is not None and conv in {c.id for c in listed}, (round_, conv)
    finally:
        stop.set()
        await asyncio.gather(*writers)


async def test_migrations_are_idempotent_and_two_nodes_may_start_at_once(
    store_kind: str, new_place: Callable[[], str]
) -> None:
    """Two nodes starting together on an empty database both come up on one schema; starting
    (or migrating) again changes nothing and keeps the data."""
    place = new_place()
    first = make_store(store_kind, place)
    second = first if store_kind == "memory" else make_store(store_kind, place)  # memory: one instance
    await asyncio.gather(first.start(), second.start())
    try:
        await first.open_conversation("c1", "b", "s", LISTING, "a", 1)
        done = await second.append("c1", "b", "buyer", "text", {"text": "hi"}, "m", 2)
        assert done.message.seq == 2
        versions = [getattr(node, "version", None) for node in (first, second)]
        assert versions[0] == versions[1]
        migrate = getattr(first, "migrate", None)
        if migrate is not None:  # the memory store has no schema
            assert versions[0] is not None and versions[0] >= 1
            assert await migrate() == versions[0] == await migrate()
    finally:
        await first.close()
        await second.close()
    again = make_store(store_kind, place)
    await again.start()
    try:
        assert getattr(again, "version", None) == versions[0]
        if store_kind != "memory":
            assert [m.seq for m in await again.messages("c1")] == [1, 2]
    finally:
        await again.close()


def links(messages: list[MessageRecord]) -> list[dict[str, Any]]:
    """Messages as the chain verifier reads them (the hashed fields and ``hash``)."""
    return [{**chain.record_fields(m), "hash": m.hash} for m in messages]


async def test_every_message_chains_from_the_one_before(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Seq 1 chains from the genesis value, each later message from its predecessor's hash;
    what ``append`` returns carries the hash that is stored, a duplicate the stored one."""
    store = await open_store()
    _, card = await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    assert card is not None and card.hash == chain.message_hash(
        chain.genesis("c1"), "c1", 1, "b", "buyer", "product", {"listing": LISTING}, 1, None
    ).hex()
    done = [await store.append("c1", "b", "buyer", "text", {"text": f"é{i}", "z": [1.5, None], "a": {"y": 1, "x": 2}},
                               f"m{i}", 2 + i) for i in range(3)]
    again = await store.append("c1", "b", "buyer", "text", {"text": "é0", "z": [1.5, None], "a": {"x": 2, "y": 1}},
                               "m0", 9)
    stored = await store.messages("c1")
    assert again.duplicate and again.message.hash == stored[1].hash
    assert [d.message.hash for d in done] == [m.hash for m in stored[1:]]
    assert chain.first_broken("c1", links(stored), last_seq=4) is None
    expected = chain.message_hash(bytes.fromhex(stored[0].hash or ""), "c1", 2, "b", "buyer", "text",
                                  {"a": {"x": 2, "y": 1}, "text": "é0", "z": [1.5, None]}, 2, "m0")
    assert stored[1].hash == expected.hex()
    assert chain.first_broken("c1", links(stored), last_seq=5) == (5, "message 5 is missing (the conversation has 5)")


async def test_recall_keeps_the_chain_valid(open_store: Callable[[], Awaitable[Store]]) -> None:
    """The recalled flag is not hashed and the recall notice is chained like any message."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    await store.append("c1", "b", "buyer", "text", {"text": "oops"}, "m1", 2)
    await store.append("c1", "a", "agent", "text", {"text": "hello"}, "m2", 3)
    notice = await store.recall("c1", 2, "b", 4, 60_000)
    await store.append("c1", "a", "agent", "text", {"text": "after"}, "m3", 5)
    stored = await store.messages("c1")
    assert [m.recalled for m in stored] == [False, True, False, False, False]
    assert stored[3].kind == "recall" and stored[3].hash == notice.message.hash
    assert chain.first_broken("c1", links(stored), last_seq=5) is None


async def test_two_nodes_appending_to_one_conversation_chain_one_after_the_other(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """Two store instances (two nodes) appending and recalling in one conversation at once:
    every message chains from the one stored before it, whichever node stored either."""
    first, second = await open_store(), await open_store()
    await first.open_conversation("c1", "b", "s", LISTING, "a", 1)
    sent = await first.append("c1", "b", "buyer", "text", {"text": "to recall"}, "r", 2)
    jobs: list[Awaitable[object]] = [
        (first if i % 2 else second).append("c1", "b" if i % 3 else "a", "buyer" if i % 3 else "agent", "text",
                                            {"text": str(i)}, f"m{i}", 3 + i)
        for i in range(300)
    ]
    jobs.insert(150, second.recall("c1", sent.message.seq, "b", 100, 60_000))
    await asyncio.gather(*jobs)
    for node in (first, second):
        stored = await node.messages("c1", limit=1000)
        assert len(stored) == 303
        assert chain.first_broken("c1", links(stored), last_seq=303) is None


async def _tamper(kind: str, place: str, sql: str, params: tuple[object, ...]) -> None:
    """Change the database behind the store's back, as someone with access to it could."""
    if kind == "sqlite":
        conn = sqlite3.connect(place)
        conn.execute(sql.replace("%s", "?"), params)
        conn.commit()
        conn.close()
        return
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True,
                                                     options=f"-c search_path={place}") as pg:
        await pg.execute(sql, params)


@pytest.mark.parametrize("edit", ["body", "delete", "delete_last", "ts"])
async def test_editing_or_deleting_a_row_in_the_database_is_detected(
    store_kind: str, new_place: Callable[[], str], edit: str
) -> None:
    """A body edited, a row deleted (in the middle or at the end) or two rows' contents
    swapped directly in the database: verification names the first broken link."""
    if store_kind == "memory":
        pytest.skip("the memory store has no database to edit")
    place = new_place()
    store = make_store(store_kind, place)
    await store.start()
    try:
        await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
        for i in range(5):
            await store.append("c1", "b", "buyer", "text", {"text": f"m{i}"}, f"m{i}", 2 + i)
        assert chain.first_broken("c1", links(await store.messages("c1")), last_seq=6) is None
        if edit == "body":
            await _tamper(store_kind, place, "UPDATE messages SET body = %s WHERE conv = %s AND seq = %s",
                          (msgpack.packb({"text": "I never said that"}), "c1", 3))
            expected = 3
        elif edit == "ts":
            await _tamper(store_kind, place, "UPDATE messages SET ts = 100 - ts WHERE conv = %s AND seq IN (4, 5)",
                          ("c1",))
            expected = 4
        else:
            seq = 6 if edit == "delete_last" else 4
            await _tamper(store_kind, place, "DELETE FROM messages WHERE conv = %s AND seq = %s", ("c1", seq))
            expected = seq
        conv = await store.get_conversation("c1")
        assert conv is not None
        broken = chain.first_broken("c1", links(await store.messages("c1")), last_seq=conv.last_seq)
        assert broken is not None and broken[0] == expected, broken
    finally:
        await store.close()


async def test_sqlite_backfill_chains_messages_stored_before_the_chain(tmp_path: Path) -> None:
    """Migration 2 hashes the rows a file already had, in seq order: the chain it builds is
    the one new appends would have built, and appends after it continue it."""
    path = str(tmp_path / "chat.db")
    store = SQLiteStore(path, synchronous="NORMAL")
    await store.start()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    await store.append("c1", "b", "buyer", "text", {"text": "hi"}, "m1", 2)
    before = [m.hash for m in await store.messages("c1")]
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE messages SET hash = NULL")
    conn.execute("DELETE FROM schema_version WHERE version >= 2")
    conn.commit()
    conn.close()
    again = SQLiteStore(path, synchronous="NORMAL")
    await again.start()
    try:
        await again.append("c1", "a", "agent", "text", {"text": "hello"}, "m2", 3)
        stored = await again.messages("c1")
        assert [m.hash for m in stored[:2]] == before
        assert chain.first_broken("c1", links(stored), last_seq=3) is None
    finally:
        await again.close()


async def test_postgres_backfill_chains_messages_stored_before_the_chain(new_place: Callable[[], str],
                                                                         store_kind: str) -> None:
    """The PostgreSQL migration 2 on a database of version 1 with messages: hashes and the
    conversations' head hash are backfilled, so the next batch continues the chain."""
    if store_kind != "postgres":
        pytest.skip("PostgreSQL's own migration")
    place = new_place()
    reference = MemoryStore()
    await reference.start()
    await reference.open_conversation("c1", "b", "s", LISTING, "a", 1)
    await reference.append("c1", "b", "buyer", "text", {"text": "hi"}, "m1", 2)
    async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as pg, pg.transaction():
        await pg.execute(f'CREATE SCHEMA "{place}"')
        await pg.execute(f'SET LOCAL search_path TO "{place}"')
        await pg.execute("CREATE TABLE schema_version"
                         " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        for statement in pg_schema.MIGRATIONS[0][1]:
            assert isinstance(statement, str)
            await pg.execute(statement)
        await pg.execute("INSERT INTO schema_version (version) VALUES (1)")
        await pg.execute("INSERT INTO conversations (id, buyer, shop, listing_id, listing, last_seq, created_at)"
                         " VALUES ('c1', 'b', 's', 'l1', %s, 2, 1)", (msgpack.packb(LISTING),))
        for m in await reference.messages("c1"):
            await pg.execute(
                "INSERT INTO messages (conv, seq, sender, role, kind, body, ts, cmid, digest)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '')",
                (m.conv, m.seq, m.sender, m.role, m.kind, msgpack.packb(m.body), m.ts, m.cmid),
            )
    store = make_store("postgres", place)
    await store.start()
    try:
        await store.append("c1", "a", "agent", "text", {"text": "hello"}, "m2", 3)
        stored = await store.messages("c1")
        assert [m.hash for m in stored[:2]] == [m.hash for m in await reference.messages("c1")]
        assert chain.first_broken("c1", links(stored), last_seq=3) is None
    finally:
        await store.close()


# --- reports and blocks ---------------------------------------------------------------


async def test_reports_are_stored_once_per_reporter_and_target_and_page_by_id(
    open_store: Callable[[], Awaitable[Store]],
) -> None:
    """A report of the same message (or conversation, seq 0) by the same reporter comes back
    unchanged; ids grow, ``after`` pages past them, and a reopened store (another node) sees them."""
    store = await open_store()
    first, made = await store.add_report("c1", 3, "b", "buyer", "b", "s", "spam", 10)
    assert made and first.id > 0 and (first.conv, first.seq, first.reason, first.created_at) == ("c1", 3, "spam", 10)
    again, made_again = await store.add_report("c1", 3, "b", "buyer", "b", "s", "another reason", 11)
    assert not made_again and again == first
    whole, _ = await store.add_report("c1", 0, "b", "buyer", "b", "s", "rude", 12)
    by_agent, _ = await store.add_report("c1", 3, "a", "shop", "b", "s", "fraud", 13)
    assert first.id < whole.id < by_agent.id
    assert await store.reports() == [first, whole, by_agent]
    assert await store.reports(after=first.id, limit=1) == [whole]
    assert await store.reports(after=by_agent.id) == []
    other = await open_store()
    assert [r.id for r in await other.reports()] == [first.id, whole.id, by_agent.id]
    assert await other.is_reported("c1") and not await other.is_reported("c2")


async def test_concurrent_reports_get_distinct_increasing_ids(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Reports made at once from two instances all get distinct ids and are all listed."""
    one, two = await open_store(), await open_store()
    made = await asyncio.gather(
        *((one if i % 2 else two).add_report(f"c{i}", 0, "b", "buyer", "b", "s", "r", i) for i in range(40))
    )
    ids = [r.id for r, _ in made]
    assert len(set(ids)) == 40
    listed = await one.reports(limit=1000)
    assert sorted(r.id for r in listed) == [r.id for r in listed] == sorted(ids)


async def test_blocks_are_per_side_and_lifted_per_side(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Each side's block is its own row: setting it twice keeps the first, lifting it leaves
    the other side's; the shop's list has both sides, oldest first."""
    store = await open_store()
    assert await store.blocks_between("s", "b") == []
    by_shop, made = await store.set_block("s", "b", "shop", "a1", "abusive", 5)
    assert made and (by_shop.side, by_shop.by, by_shop.reason, by_shop.created_at) == ("shop", "a1", "abusive", 5)
    same, made_again = await store.set_block("s", "b", "shop", "a2", None, 6)
    assert not made_again and same == by_shop
    by_buyer, _ = await store.set_block("s", "b", "buyer", "b", None, 7)
    await store.set_block("s", "b2", "shop", "a1", None, 4)
    await store.set_block("other", "b", "buyer", "b", None, 3)
    assert await store.blocks_between("s", "b") == [by_buyer, by_shop]
    assert [(x.buyer, x.side) for x in await store.blocks_of_shop("s")] == [("b2", "shop"), ("b", "shop"), ("b", "buyer")]
    assert await store.remove_block("s", "b", "shop") is True
    assert await store.remove_block("s", "b", "shop") is False
    assert await (await open_store()).blocks_between("s", "b") == [by_buyer]
