"""The SQLite writer stores a run of queued appends with one statement per table.

What it must keep from the one-by-one path: seqs without gaps, a whole hash chain, a
resend answered with what was stored (also when both copies are in one run), a refused
append that spoils nothing else, and events under the right seq (two stores taking turns
on one file: ``test_sqlite_chain_cache.py``)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.store import chain
from chat.store.base import Appended, ClientIdReused, MessageRecord, NotFound
from chat.store.chat_events import NewEvent
from chat.store.encoding import digest
from chat.store.sqlite import SQLiteStore

LISTING = {"id": "l-1", "title": "Tea", "price": 100, "currency": "CNY"}

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    conv=st.text(min_size=1, max_size=12), sender=st.text(max_size=12), kind=st.sampled_from(["text", "image", "x"]),
    body=st.dictionaries(st.text(max_size=6), _json, max_size=5), ts=st.integers(0, 2**62),
    cmid=st.none() | st.text(max_size=20), seq=st.integers(1, 10**9),
)
def test_split_is_the_canonical_encoding_around_the_seq(
    conv: str, sender: str, kind: str, body: dict[str, Any], ts: int, cmid: str | None, seq: int
) -> None:
    before, after = chain.split(conv, sender, "buyer", kind, body, ts, cmid)
    whole = before + str(seq).encode() + after
    assert whole == chain.canonical(conv, seq, sender, "buyer", kind, body, ts, cmid)
    assert whole == json.dumps(chain.fields(conv, seq, sender, "buyer", kind, body, ts, cmid), sort_keys=True,
                               separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(str(tmp_path / "chat.db"), synchronous="NORMAL")
    await s.start()
    try:
        yield s
    finally:
        await s.close()


async def _hold(store: SQLiteStore) -> tuple[threading.Event, asyncio.Future[Any]]:
    """Keep the writer busy in a batch of its own until the returned event is set."""
    running, gate = threading.Event(), threading.Event()

    def wait(c: sqlite3.Connection) -> None:
        running.set()
        gate.wait(10)

    held = store._writer.submit(wait)
    await asyncio.to_thread(running.wait, 10)
    return gate, held


async def _in_one_run(store: SQLiteStore, calls: list[Any]) -> list[Any]:
    """Run ``calls`` (coroutines of the store) so the writer takes them as one queued run."""
    gate, held = await _hold(store)
    tasks = [asyncio.ensure_future(call) for call in calls]
    await asyncio.sleep(0.05)  # every append is queued behind the held job
    gate.set()
    await held
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def _links(messages: list[MessageRecord]) -> list[dict[str, Any]]:
    return [{**chain.record_fields(m), "hash": m.hash} for m in messages]


async def _whole(store: SQLiteStore, conv: str) -> list[MessageRecord]:
    stored = await store.messages(conv, limit=1000)
    assert [m.seq for m in stored] == list(range(1, len(stored) + 1))
    assert chain.first_broken(conv, _links(stored), last_seq=len(stored)) is None
    return stored


async def test_a_run_over_several_conversations_chains_every_message(store: SQLiteStore) -> None:
    for conv in ("c1", "c2", "c3"):
        await store.open_conversation(conv, "b-" + conv, "s", {**LISTING, "id": conv}, "a", 1)
    calls = [store.append(f"c{1 + i % 3}", "b-c1" if i % 3 == 0 else "a", "buyer" if i % 3 == 0 else "agent",
                          "text", {"text": f"m{i}"}, f"m{i}", 10 + i) for i in range(60)]
    results = await _in_one_run(store, calls)
    assert all(isinstance(r, Appended) and not r.duplicate and r.agent == "a" for r in results)
    for conv in ("c1", "c2", "c3"):
        stored = await _whole(store, conv)
        assert len(stored) == 21  # the opening card and 20 texts
        ours = [r.message for r in results if r.message.conv == conv]
        assert [(m.seq, m.hash, m.body) for m in ours] == [(m.seq, m.hash, m.body) for m in stored[1:]]
    # The next append, one by one, chains on what the run remembered.
    after = await store.append("c1", "a", "agent", "text", {"text": "later"}, "later", 100)
    assert after.message.seq == 22
    await _whole(store, "c1")


async def test_a_resend_in_a_run_is_answered_with_what_was_stored(store: SQLiteStore) -> None:
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    first = await store.append("c1", "b", "buyer", "text", {"text": "hi", "n": [1, {"x": 2, "y": 3}]}, "m1", 2)
    results = await _in_one_run(store, [
        store.append("c1", "b", "buyer", "text", {"text": "two"}, "m2", 3),
        # The same content with its map keys in another order is the same message.
        store.append("c1", "b", "buyer", "text", {"n": [1, {"y": 3, "x": 2}], "text": "hi"}, "m1", 4),
        store.append("c1", "b", "buyer", "text", {"text": "other"}, "m1", 5),
        store.append("c1", "b", "buyer", "text", {"text": "three"}, "m3", 6),
    ])
    assert isinstance(results[0], Appended) and results[0].message.seq == 3
    assert isinstance(results[1], Appended) and results[1].duplicate
    assert results[1].message.seq == first.message.seq and results[1].message.hash == first.message.hash
    assert isinstance(results[2], ClientIdReused)
    assert isinstance(results[3], Appended) and results[3].message.seq == 4
    assert [m.cmid for m in await _whole(store, "c1")] == [None, "m1", "m2", "m3"]


async def test_two_copies_of_one_send_in_one_run_store_it_once(store: SQLiteStore) -> None:
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    results = await _in_one_run(store, [
        store.append("c1", "b", "buyer", "text", {"text": "hi"}, "m1", 2),
        store.append("c1", "b", "buyer", "text", {"text": "hi"}, "m1", 2),
        store.append("c1", "b", "buyer", "text", {"text": "changed"}, "m1", 3),
    ])
    assert isinstance(results[0], Appended) and not results[0].duplicate
    assert isinstance(results[1], Appended) and results[1].duplicate
    assert results[1].message.seq == results[0].message.seq == 2
    assert isinstance(results[2], ClientIdReused)
    assert len(await _whole(store, "c1")) == 2


async def test_a_refused_append_spoils_nothing_else_in_its_run(store: SQLiteStore) -> None:
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    results = await _in_one_run(store, [
        store.append("c1", "b", "buyer", "text", {"text": "one"}, "m1", 2),
        store.append("nope", "b", "buyer", "text", {"text": "lost"}, "m2", 3),
        store.append("c1", "b", "buyer", "text", {"text": "two"}, "m3", 4),
    ])
    assert isinstance(results[1], NotFound)
    assert [r.message.seq for r in (results[0], results[2]) if isinstance(r, Appended)] == [2, 3]
    assert len(await _whole(store, "c1")) == 3


async def test_rows_stored_with_a_digest_are_still_compared_by_it(store: SQLiteStore) -> None:
    """Rows written before the writer stopped computing a digest per message."""
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    await store.append("c1", "b", "buyer", "text", {"text": "old", "k": {"b": 1, "a": 2}}, "m1", 2)
    await store._writer.submit(lambda c: c.execute(
        "UPDATE messages SET digest=?, body=body WHERE conv='c1' AND seq=2",
        (digest("text", {"text": "old", "k": {"a": 2, "b": 1}}),)))
    results = await _in_one_run(store, [
        store.append("c1", "b", "buyer", "text", {"k": {"a": 2, "b": 1}, "text": "old"}, "m1", 5),
        store.append("c1", "b", "buyer", "text", {"text": "new"}, "m1", 6),
    ])
    assert isinstance(results[0], Appended) and results[0].duplicate and results[0].message.seq == 2
    assert isinstance(results[1], ClientIdReused)


async def test_events_are_stored_under_the_seq_their_message_took(store: SQLiteStore) -> None:
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    results = await _in_one_run(store, [
        store.append("c1", "b", "buyer", "text", {"text": f"m{i}"}, f"m{i}", 2 + i,
                     events=[NewEvent("message.created", {"i": i})]) for i in range(5)
    ])
    seqs = {r.message.body["text"]: r.message.seq for r in results if isinstance(r, Appended)}
    events = await store.pending_events()
    assert {e.data["i"]: e.seq for e in events if e.type == "message.created"} == {
        i: seqs[f"m{i}"] for i in range(5)
    }


async def test_a_failed_commit_leaves_no_remembered_link(store: SQLiteStore) -> None:
    """A run whose transaction fails after the appends were computed: the next run must
    read the previous link back, not chain on a message that was never stored."""
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)

    def failing(c: sqlite3.Connection) -> None:
        c.execute("ROLLBACK")  # the transaction ends under the batch, as a lost disk or lock would end it

    gate, held = await _hold(store)
    lost = asyncio.ensure_future(store.append("c1", "b", "buyer", "text", {"text": "lost"}, "m1", 2))
    boom = store._writer.submit(failing)
    await asyncio.sleep(0.05)
    gate.set()
    await held
    with pytest.raises(sqlite3.OperationalError):
        await lost
    with pytest.raises(sqlite3.OperationalError):
        await boom
    kept = await store.append("c1", "b", "buyer", "text", {"text": "kept"}, "m1", 3)
    assert kept.message.seq == 2 and not kept.duplicate
    await _whole(store, "c1")
