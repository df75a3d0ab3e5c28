"""The ``Inbox`` part of the store contract (``chat.store.base.Inbox``): notes and tags on
buyers, closed conversations. On every store (memory, SQLite, PostgreSQL), with the fixtures
of ``test_store_contract``; a second ``open_store()`` is another node on the same database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from chat.store.base import BuyerProfileRecord, NotFound, Store

from . import test_store_contract as contract

# The contract suite's fixtures: every store, a fresh database per test.
store_kind = contract.store_kind
new_place = contract.new_place
open_store = contract.open_store
LISTING = contract.LISTING


async def test_a_profile_is_saved_only_over_the_version_read(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    assert await store.buyer_profile("s", "b") is None
    first, saved = await store.save_buyer_profile("s", "b", "寄顺丰", ("VIP", "回头客"), "a1", 10, expected_version=0)
    assert saved and first == BuyerProfileRecord("s", "b", "寄顺丰", ("VIP", "回头客"), 1, "a1", 10)
    # a second agent who read nothing (version 0) cannot overwrite it, and is shown the current one
    stale, saved = await store.save_buyer_profile("s", "b", "mine", (), "a2", 11, expected_version=0)
    assert not saved and stale == first
    second, saved = await store.save_buyer_profile("s", "b", "", ("VIP",), "a2", 12, expected_version=1)
    assert saved and second == BuyerProfileRecord("s", "b", "", ("VIP",), 2, "a2", 12)
    late, saved = await store.save_buyer_profile("s", "b", "from v1", (), "a1", 13, expected_version=1)
    assert not saved and late == second
    # profiles are per shop and per buyer; a version that never existed writes nothing
    assert await store.buyer_profile("other", "b") is None
    none, saved = await store.save_buyer_profile("s", "b2", "x", (), "a1", 14, expected_version=3)
    assert not saved and none is None and await store.buyer_profile("s", "b2") is None
    other = await open_store()
    assert await other.buyer_profile("s", "b") == second


async def test_concurrent_saves_over_one_version_let_exactly_one_win(
    open_store: Callable[[], Awaitable[Store]]
) -> None:
    one, two = await open_store(), await open_store()
    await one.save_buyer_profile("s", "b", "start", (), "a0", 1, expected_version=0)
    results = await asyncio.gather(*(
        (one if i % 2 else two).save_buyer_profile("s", "b", f"edit {i}", (), f"a{i}", 2 + i, expected_version=1)
        for i in range(10)
    ))
    winners = [r for r, saved in results if saved]
    assert len(winners) == 1 and winners[0] is not None and winners[0].version == 2
    assert await one.buyer_profile("s", "b") == winners[0]


async def test_a_closed_conversation_stays_closed_until_the_buyer_writes(
    open_store: Callable[[], Awaitable[Store]]
) -> None:
    store = await open_store()
    conv, _ = await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    other, _ = await store.open_conversation("c2", "b2", "s", LISTING, "a", 1)
    await store.append("c1", "b", "buyer", "text", {"text": "hi"}, "m1", 2)
    closed = await store.close_conversation("c1", "a", 3)
    assert (closed.conv, closed.by, closed.at, closed.seq) == ("c1", "a", 3, 2)
    assert await store.closed_conversations(["c1", "c2", "nope"]) == {"c1": closed}
    # the shop writing (or the system: a payment card) does not reopen it
    await store.append("c1", "a", "agent", "text", {"text": "shipped"}, "m2", 4)
    await store.append("c1", "system", "system", "text", {"text": "card"}, "m3", 5)
    assert list(await store.closed_conversations(["c1"])) == ["c1"]
    # the buyer does, by itself; an explicit reopen then finds nothing closed
    await store.append("c1", "b", "buyer", "text", {"text": "one more thing"}, "m4", 6)
    assert await store.closed_conversations(["c1"]) == {}
    assert await store.reopen_conversation("c1") is None
    # closing again counts from the new last seq; an agent reopens it
    again = await store.close_conversation("c1", "a2", 7)
    assert again.seq == 5 and again.by == "a2"
    assert await (await open_store()).closed_conversations(["c1"]) == {"c1": again}
    assert await store.reopen_conversation("c1") == again
    assert await store.closed_conversations(["c1"]) == {} and await store.reopen_conversation("c1") is None
    assert other.id == "c2" and conv.id == "c1"
    with pytest.raises(NotFound):
        await store.close_conversation("nope", "a", 8)
    assert await store.closed_conversations([]) == {}
