"""The ``Follows`` part of the store contract (``chat.store.base.Follows``), on every store:
memory (the reference), SQLite and PostgreSQL, with the fixtures of ``test_store_contract``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from chat.store.base import BroadcastTooSoon, Store

from . import test_store_contract as contract

# The contract suite's fixtures: every store, a fresh database per test.
store_kind = contract.store_kind
new_place = contract.new_place
open_store = contract.open_store

DAY = 86_400_000


async def test_follow_is_once_per_shop_and_buyer(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    first, made = await store.follow("s", "b1", "c1", 10)
    assert made and (first.shop, first.buyer, first.conv, first.created_at) == ("s", "b1", "c1", 10)
    again, made_again = await store.follow("s", "b1", "c9", 20)
    assert not made_again and again == first
    await store.follow("s", "b2", None, 11)
    await store.follow("other", "b1", None, 12)
    assert await store.follower_count("s") == 2 and await store.follower_count("nobody") == 0
    assert await store.get_follow("s", "b2") is not None and await store.get_follow("s", "b3") is None
    assert await store.unfollow("s", "b1") and not await store.unfollow("s", "b1")
    assert await store.follower_count("s") == 1 and await store.get_follow("other", "b1") is not None


async def test_followers_are_paged_in_code_point_order_with_blocks(open_store: Callable[[], Awaitable[Store]]) -> None:
    """Keyset paging by buyer id in code point order (upper case before lower, "Z" < "a",
    non-ASCII last), ``since_before`` leaves out later followers, ``blocked`` says either side blocks."""
    store = await open_store()
    buyers = ["b", "a", "Z", "é", "a1", "b-2", "B"]
    for i, buyer in enumerate(buyers):
        await store.follow("s", buyer, None, 100 + i)
    await store.set_block("s", "a1", "buyer", "a1", None, 1)
    await store.set_block("s", "B", "shop", "ag", None, 1)
    await store.set_block("other", "b", "shop", "ag", None, 1)
    walked, after = [], ""
    while True:
        page = await store.followers("s", after=after, limit=3)
        if not page:
            break
        walked += page
        after = page[-1].buyer
    assert [f.buyer for f in walked] == sorted(buyers)
    assert {f.buyer for f in walked if f.blocked} == {"a1", "B"}
    early = await store.followers("s", since_before=102)
    assert [f.buyer for f in early] == sorted(["b", "a", "Z"])


async def test_broadcasts_are_idempotent_by_key_and_limited_per_window(
    open_store: Callable[[], Awaitable[Store]]
) -> None:
    store = await open_store()
    body = {"text": "new tea"}
    job, made = await store.add_broadcast("s", "k-1", "a1", body, 5, 1000, limit=2, window_ms=DAY)
    assert made and (job.shop, job.key, job.by, job.body, job.total, job.cursor, job.done) == (
        "s", "k-1", "a1", body, 5, "", False)
    same, again = await store.add_broadcast("s", "k-1", "a2", {"text": "other"}, 9, 2000, limit=2, window_ms=DAY)
    assert not again and same == job
    second, _ = await store.add_broadcast("s", "k-2", "a1", body, 5, 3000, limit=2, window_ms=DAY)
    assert second.id > job.id
    with pytest.raises(BroadcastTooSoon) as refused:
        await store.add_broadcast("s", "k-3", "a1", body, 5, 5000, limit=2, window_ms=DAY)
    assert refused.value.retry_after_ms == 1000 + DAY - 5000
    # A retry of a recorded key is answered even past the limit; another shop has its own.
    assert (await store.add_broadcast("s", "k-2", "a1", body, 5, 6000, limit=2, window_ms=DAY))[1] is False
    assert (await store.add_broadcast("t", "k-3", "a1", body, 5, 6000, limit=2, window_ms=DAY))[1]
    third, _ = await store.add_broadcast("s", "k-3", "a1", body, 5, 1000 + DAY + 1, limit=2, window_ms=DAY)
    assert [b.id for b in await store.broadcasts_of_shop("s")] == [third.id, second.id, job.id]
    assert await store.get_broadcast(job.id) == job and await store.get_broadcast(10_000) is None
    unlimited = [await store.add_broadcast("u", f"k-{i}", "a", body, 0, 1, limit=0, window_ms=DAY) for i in range(3)]
    assert all(made for _, made in unlimited)


async def test_the_broadcast_limit_holds_under_racing_nodes(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    other = await open_store()

    async def attempt(i: int) -> bool:
        try:
            await (store if i % 2 else other).add_broadcast("s", f"k-{i}", "a", {"text": "x"}, 0, 10 + i,
                                                            limit=3, window_ms=DAY)
        except BroadcastTooSoon:
            return False
        return True

    assert sum(await asyncio.gather(*(attempt(i) for i in range(20)))) == 3


async def test_claim_lease_and_advance(open_store: Callable[[], Awaitable[Store]]) -> None:
    """One runner holds a job; another gets it once the lease runs out; a lost lease cannot
    move the job; the cursor never moves back; a finished job is never claimed again."""
    store = await open_store()
    job, _ = await store.add_broadcast("s", "k-1", "a", {"text": "x"}, 3, 100, limit=0, window_ms=DAY)
    claimed = await store.claim_broadcast("n1", 1000, 5000)
    assert claimed is not None and claimed.id == job.id
    assert await store.claim_broadcast("n2", 2000, 5000) is None
    assert (await store.claim_broadcast("n1", 2000, 5000)) is not None  # its own, after a restart
    assert await store.advance_broadcast(job.id, "n1", "b2", 2, 0, False, 2500, 5000)
    taken = await store.claim_broadcast("n2", 7600, 5000)
    assert taken is not None and taken.cursor == "b2" and taken.delivered == 2
    assert not await store.advance_broadcast(job.id, "n1", "b9", 9, 0, True, 7700, 5000)
    assert await store.advance_broadcast(job.id, "n2", "b1", 2, 0, False, 7800, 5000)
    assert (await store.get_broadcast(job.id)).cursor == "b2"  # type: ignore[union-attr]
    assert await store.advance_broadcast(job.id, "n2", "b3", 2, 1, True, 7900, 5000)
    done = await store.get_broadcast(job.id)
    assert done is not None and done.done and done.finished_at == 7900 and (done.delivered, done.skipped) == (2, 1)
    assert await store.claim_broadcast("n3", 99_999_999, 5000) is None
    assert not await store.advance_broadcast(job.id, "n2", "b4", 3, 1, True, 8000, 5000)


async def test_follows_survive_a_reopen(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    await store.follow("s", "b1", "c1", 1)
    job, _ = await store.add_broadcast("s", "k-1", "a", {"text": "x", "n": 1}, 1, 5, limit=1, window_ms=DAY)
    await store.close()
    again = await open_store()
    assert (await again.get_follow("s", "b1")) is not None
    assert await again.get_broadcast(job.id) == job
