"""The chat event outbox part of the store contract (``chat.store.chat_events``), on every
store: memory (the reference), SQLite and PostgreSQL, with the fixtures of
``test_store_contract``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from chat.store.base import ClientIdReused, NotFound, Store
from chat.store.chat_events import NewEvent

from . import test_store_contract as contract

store_kind = contract.store_kind
new_place = contract.new_place
open_store = contract.open_store

LISTING = contract.LISTING


def ev(kind: str, **data: object) -> NewEvent:
    return NewEvent(kind, dict(data))


async def test_events_commit_with_what_they_describe(open_store: Callable[[], Awaitable[Store]]) -> None:
    """An opened conversation, a new message and a new report carry their events; an existing
    conversation, a resent message and a repeated report write none."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, None, 1, events=[ev("conversation.opened", buyer="b")])
    await store.open_conversation("c9", "b", "s", LISTING, None, 2, events=[ev("conversation.opened", buyer="b")])
    first = ev("message.flagged", flags=["phone"])
    done = await store.append("c1", "b", "buyer", "text", {"text": "hi"}, "m1", 3,
                              events=[first, ev("message.to_offline", to="shop")])
    again = await store.append("c1", "b", "buyer", "text", {"text": "hi"}, "m1", 4, events=[ev("message.flagged")])
    assert again.duplicate
    await store.append("c1", "b", "buyer", "text", {"text": "quiet"}, "m2", 5)
    await store.add_report("c1", 2, "b", "buyer", "b", "s", "spam", 6, events=[ev("report.created", reason="spam")])
    await store.add_report("c1", 2, "b", "buyer", "b", "s", "spam", 7, events=[ev("report.created", reason="x")])
    pending = await store.pending_events()
    assert [(e.type, e.conv, e.seq, e.created_at) for e in pending] == [
        ("conversation.opened", "c1", 0, 1),
        ("message.flagged", "c1", done.message.seq, 3),
        ("message.to_offline", "c1", done.message.seq, 3),
        ("report.created", "c1", 2, 6),
    ]
    assert pending[1].event_id == first.event_id and pending[1].data == {"flags": ["phone"]}
    assert pending[3].data == {"reason": "spam"}
    assert len({e.id for e in pending}) == 4 and [e.id for e in pending] == sorted(e.id for e in pending)


async def test_a_refused_append_writes_no_event(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, None, 1)
    await store.append("c1", "b", "buyer", "text", {"text": "a"}, "m1", 2)
    with pytest.raises(ClientIdReused):
        await store.append("c1", "b", "buyer", "text", {"text": "other"}, "m1", 3, events=[ev("message.flagged")])
    with pytest.raises(NotFound):
        await store.append("nope", "b", "buyer", "text", {"text": "a"}, "m1", 3, events=[ev("message.flagged")])
    assert await store.pending_events() == []


async def test_drop_forgets_and_survives_a_reopen(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Dropped events are gone (twice is harmless); the rest are durable; ids are never reused
    after the newest row is dropped (they name rows, and a sender drops by id)."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, None, 1)
    await store.add_events("c1", [ev("message.blocked", flags=["wechat"]), ev("message.blocked", flags=["qq"])], 2)
    await store.add_events("c1", [ev("message.blocked", flags=["email"])], 3)
    pending = await store.pending_events(limit=2)
    assert [e.data["flags"] for e in pending] == [["wechat"], ["qq"]]
    await store.drop_events([e.id for e in pending])
    await store.drop_events([e.id for e in pending])
    rest = await store.pending_events()
    assert [e.data["flags"] for e in rest] == [["email"]]
    await store.drop_events([rest[0].id])
    await store.add_events("c1", [ev("message.blocked", flags=["link"])], 4)
    newest = await store.pending_events()
    assert newest[0].id > rest[0].id
    await store.close()
    reopened = await open_store()
    assert [(e.event_id, e.data) for e in await reopened.pending_events()] == [(newest[0].event_id, {"flags": ["link"]})]


async def test_concurrent_appends_each_carry_their_own_events(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Appends batched into one transaction (the SQL stores' group commit) keep each event
    with its own message, and a batch mixing duplicates and new messages writes events for
    the new ones only."""
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, None, 1)
    await store.open_conversation("c2", "b", "s", {**LISTING, "id": "l2"}, None, 1)
    await store.append("c1", "b", "buyer", "text", {"text": "dup"}, "d", 2)
    jobs = [store.append(f"c{1 + i % 2}", "b", "buyer", "text", {"text": str(i)}, f"m{i}", 3,
                         events=[ev("message.to_offline", n=i)]) for i in range(20)]
    jobs.append(store.append("c1", "b", "buyer", "text", {"text": "dup"}, "d", 3, events=[ev("message.to_offline", n=-1)]))
    results = await asyncio.gather(*jobs)
    seq_of = {(r.message.conv, r.message.body["text"]): r.message.seq for r in results}
    pending = await store.pending_events()
    assert sorted(e.data["n"] for e in pending) == list(range(20))
    for e in pending:
        assert e.seq == seq_of[(e.conv, str(e.data["n"]))]


async def test_an_event_id_already_pending_is_written_once(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    await store.open_conversation("c1", "b", "s", LISTING, None, 1)
    for when in (2, 3):
        await store.add_events("c1", [NewEvent("message.blocked", {"at": when}, event_id="evt_chat_blk_same")], when)
    assert [(e.event_id, e.data) for e in await store.pending_events()] == [("evt_chat_blk_same", {"at": 2})]
