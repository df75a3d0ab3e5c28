"""Following a shop and its broadcasts end to end: real hub nodes and sockets (every
deployment of the ``url`` fixture), and the runner's resume after a crash."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chat.broadcasts import BroadcastRunner, message_cmid
from chat.server import ChatServer

from .client import LISTING, Client
from .conftest import REDIS_URL, token
from .test_delivery import open_pair

OFFER_LISTING = {"id": "l-9", "title": "Biluochun 100g", "price": 9900, "currency": "CNY"}


async def until_done(agent: Client, broadcast: int, timeout: float = 20) -> dict[str, Any]:
    """Poll ``broadcasts`` until the job is finished; its view."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        page = await agent.request({"type": "broadcasts"})
        job = next(b for b in page["broadcasts"] if b["id"] == broadcast)
        if job["done"]:
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.05)


async def test_follow_unfollow_and_the_shops_follower_list(url: str) -> None:
    buyer, agent, conv = await open_pair(url)
    state = await buyer.request({"type": "follow_state", "shop": "shop1"})
    assert state == {**state, "type": "following", "following": False, "since": None}
    done = await buyer.request({"type": "follow", "shop": "shop1", "conv": conv})
    assert done["following"] and done["conv"] == conv and done["since"] > 0
    again = await buyer.request({"type": "follow", "shop": "shop1"})
    assert again["since"] == done["since"] and again["conv"] == conv
    other, _, _ = await open_pair(url, buyer_id="b2")
    # Without ``conv``: its latest conversation with the shop.
    assert (await other.request({"type": "follow", "shop": "shop1"}))["conv"] is not None
    page = await agent.request({"type": "followers", "limit": 1})
    assert page["count"] == 2 and page["more"] and [f["buyer"] for f in page["followers"]] == ["b1"]
    assert page["followers"][0] == {"buyer": "b1", "since": done["since"], "conv": conv, "blocked": False}
    rest = await agent.request({"type": "followers", "after": "b1"})
    assert [f["buyer"] for f in rest["followers"]] == ["b2"] and not rest["more"]
    gone = await buyer.request({"type": "unfollow", "shop": "shop1"})
    assert gone["type"] == "following" and not gone["following"]
    assert (await agent.request({"type": "followers"}))["count"] == 1
    # Who may do what.
    assert (await agent.request({"type": "follow", "shop": "shop1"}))["code"] == 3003
    assert (await buyer.request({"type": "followers"}))["code"] == 3003
    assert (await buyer.request({"type": "broadcast", "key": "key-0001", "text": "x"}))["code"] == 3003
    stranger = await Client.connect(url, token("b9"))
    assert (await stranger.request({"type": "follow", "shop": "shop1", "conv": conv}))["code"] == 3002
    assert (await buyer.request({"type": "follow", "shop": "shop2", "conv": conv}))["code"] == 1004


async def test_a_broadcast_reaches_every_follower_but_blocked_ones(url: str) -> None:
    """Recorded at once and idempotent by key; delivered as a ``broadcast`` message in each
    follower's conversation (live), with its unsubscribe; skipped where either side blocks;
    limited per shop (4009 with ``retry_after_ms``)."""
    pairs = [await open_pair(url, buyer_id=b) for b in ("b1", "b2", "b3", "b4")]
    agent = pairs[0][1]
    for buyer, _, conv in pairs[:3]:
        await buyer.request({"type": "follow", "shop": "shop1", "conv": conv})
    assert (await pairs[2][0].request({"type": "block", "conv": pairs[2][2]}))["type"] == "ok"
    frame = {"type": "broadcast", "key": "spring-2026", "text": "New spring tea is in",
             "listing": OFFER_LISTING, "offer": {"price": 8800, "currency": "CNY", "valid_hours": 48}}
    sent = await agent.request(frame)
    assert sent["type"] == "broadcast" and not sent["duplicate"]
    job = sent["broadcast"]
    assert job["total"] == 3 and job["by"] == "a1" and job["body"]["offer"]["price"] == 8800
    assert job["body"]["offer"]["valid_until"] == job["created_at"] + 48 * 3_600_000
    for buyer, _, conv in pairs[:2]:
        got = await buyer.next("msg", conv=conv, kind="broadcast")
        assert got["role"] == "agent" and got["sender"] == "a1" and got["cmid"] == message_cmid(job["id"])
        assert got["body"]["text"] == "New spring tea is in" and got["body"]["listing"]["id"] == "l-9"
        assert got["body"]["unsubscribe"] == {"type": "unfollow", "shop": "shop1"}
        assert got["body"]["broadcast"] == job["id"] and got["body"]["shop"] == "shop1"
    await pairs[2][0].no_frame("msg", conv=pairs[2][2], kind="broadcast")
    await pairs[3][0].no_frame("msg", kind="broadcast")
    finished = await until_done(agent, job["id"])
    assert (finished["delivered"], finished["skipped"]) == (2, 1) and finished["finished_at"]
    again = await agent.request(frame)
    assert again["duplicate"] and again["broadcast"]["id"] == job["id"]
    limited = await agent.request({**frame, "key": "spring-2026-b"})
    assert limited["code"] == 4009 and 0 < limited["details"]["retry_after_ms"] <= 86_400_000
    # The unsubscribe in the message is the whole request.
    buyer, _, conv = pairs[0]
    page = await buyer.request({"type": "history", "conv": conv})
    unsubscribe = page["messages"][-1]["body"]["unsubscribe"]
    assert (await buyer.request(unsubscribe))["following"] is False
    assert (await agent.request({"type": "followers"}))["count"] == 2
    # Broadcasts count as unread for the buyer, never as an answer in the shop's figures.
    synced = await buyer.request({"type": "sync"})
    assert next(c for c in synced["conversations"] if c["id"] == conv)["unread"] >= 1


async def test_a_broadcast_needs_content_and_a_listing_for_an_offer(url: str) -> None:
    _, agent, _ = await open_pair(url)
    empty = await agent.request({"type": "broadcast", "key": "key-0001"})
    assert empty["code"] == 1004
    offer = {"price": 1, "currency": "CNY", "valid_hours": 1}
    bare = await agent.request({"type": "broadcast", "key": "key-0002", "text": "x", "offer": offer})
    assert bare["code"] == 1004


async def test_a_follower_without_a_conversation_gets_the_shop_conversation(
    server_factory: Callable[..., Any]
) -> None:
    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    buyer = await Client.connect(url, token("b1"))
    await buyer.request({"type": "sync"})
    followed = await buyer.request({"type": "follow", "shop": "shop1"})
    assert followed["following"] and followed["conv"] is None
    sent = await agent.request({"type": "broadcast", "key": "hello-all", "text": "Welcome!"})
    got = await buyer.next("msg", kind="broadcast")
    assert got["body"]["text"] == "Welcome!"
    page = await buyer.request({"type": "history", "conv": got["conv"]})
    assert [m["kind"] for m in page["messages"]] == ["product", "broadcast"]
    assert page["messages"][0]["body"]["listing"]["id"] == "@shop"
    await until_done(agent, sent["broadcast"]["id"])


async def test_a_crashed_fan_out_resumes_without_double_delivery(server_factory: Callable[..., Any]) -> None:
    """A runner dies in its second batch (after some appends of it were stored); another takes
    the job over when the lease runs out, from the stored cursor; every follower has exactly
    one copy."""
    server: ChatServer = await server_factory(broadcasts_in_hub="off", broadcast_limit=0)
    hub, store = server.hub, server.hub.store
    followers = [f"b{i:04d}" for i in range(230)]
    for i, buyer in enumerate(followers):
        record, _ = await store.open_conversation(f"c{i}", buyer, "shop1", {**LISTING, "verified": False}, None, 1)
        await store.follow("shop1", buyer, record.id, 2)
    job, _ = await store.add_broadcast("shop1", "crash-1", "a1", {"text": "sale"}, len(followers), 3,
                                       limit=0, window_ms=1)
    crashing = BroadcastRunner(hub, owner="n1", batch=100, pause_ms=0, lease_ms=1)
    real = crashing._deliver
    calls = 0

    async def deliver(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls > 150:
            raise RuntimeError("killed")
        await real(*args)

    crashing._deliver = deliver  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await crashing.run_once()
    stored = await store.get_broadcast(job.id)
    assert stored is not None and stored.cursor == followers[99] and not stored.done
    await asyncio.sleep(0.01)  # the lease runs out
    assert await BroadcastRunner(hub, owner="n2", batch=100, pause_ms=0).run_once()
    done = await store.get_broadcast(job.id)
    assert done is not None and done.done and done.delivered == len(followers)
    for i in range(len(followers)):
        kinds = [m.kind for m in await store.messages(f"c{i}", limit=10)]
        assert kinds == ["product", "broadcast"], (i, kinds)


async def test_the_worker_process_delivers_broadcasts_live_through_redis(
    server_factory: Callable[..., Any], tmp_path: Path, redis_prefix: str
) -> None:
    """With ``BROADCASTS_IN_HUB=off`` the hub only records the job; ``python -m chat worker``
    (another process, on the same store and Redis) delivers it, live to a connected buyer."""
    server = await server_factory(broadcasts_in_hub="off", redis_url=REDIS_URL, redis_prefix=redis_prefix)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, agent, conv = await open_pair(url)
    await buyer.request({"type": "follow", "shop": "shop1", "conv": conv})
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/chat.db", "TOKEN_SECRET": "x" * 40,
           "PAYMENTS_DATABASE_URL": f"sqlite:///{tmp_path}/payments.db", "REDIS_URL": REDIS_URL,
           "REDIS_PREFIX": redis_prefix, "BROADCASTS_IN_HUB": "off", "LOG_LEVEL": "WARNING",
           "PIN_PEPPER": "pin-pepper-for-tests-0123456789", "NODE_ID": "worker-1"}
    worker = subprocess.Popen([sys.executable, "-m", "chat", "worker"], env=env)
    try:
        sent = await agent.request({"type": "broadcast", "key": "from-worker", "text": "by the worker"})
        got = await buyer.next("msg", conv=conv, kind="broadcast", timeout=20)
        assert got["body"]["text"] == "by the worker"
        assert (await until_done(agent, sent["broadcast"]["id"]))["delivered"] == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
