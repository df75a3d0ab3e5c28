"""Resuming cannot leave a hole: the race between an ack and a lower message, and syncs
after notices were lost. Run on every deployment (memory, Redis, two nodes)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from chat.server import ChatServer
from chat.session import Session

from .client import LISTING, Client
from .conftest import token
from .test_delivery import open_pair


@pytest.fixture
def held_notices(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Session, tuple[Any, ...]]]]:
    """Hold back live notices of messages whose text starts with ``HELD``, as if they were still
    on their way between nodes; ``release()`` is not needed: the store is the truth."""
    held: list[tuple[Session, tuple[Any, ...]]] = []
    original = Session.on_message

    def on_message(self: Session, conv: str, seq: int, frame: bytes, *rest: Any) -> None:
        if b"HELD" in frame:
            held.append((self, (conv, seq, frame, *rest)))
            return
        original(self, conv, seq, frame, *rest)

    monkeypatch.setattr(Session, "on_message", on_message)
    yield held


async def test_ack_never_overtakes_a_lower_message(url: str, held_notices: list[Any]) -> None:
    """The other side's message N is still in flight when our send is acked as N+1: msg N is
    written before the ack, and a drop right after it resumes with nothing missing."""
    buyer, agent, conv = await open_pair(url)
    opened_at = 1
    lower = await agent.send_text(conv, "HELD: the shop's answer", "a-1")
    await asyncio.sleep(0.1)  # its notice reached the buyer's node and was held there
    assert held_notices, "the test must hold the lower message's notice"
    mine = await buyer.send_text(conv, "my question", "b-1")
    assert mine["seq"] == lower["seq"] + 1
    order = [(f["type"], f.get("seq")) for f in buyer.frames if f["type"] in ("msg", "ack")]
    assert order.index(("msg", lower["seq"])) < order.index(("ack", mine["seq"])), order

    # The network drops now. The buyer resumes from the cursor the doc prescribes.
    cursor = buyer.resume_cursor(conv, opened_at)
    assert cursor == mine["seq"]
    await buyer.close()
    await agent.send_text(conv, "while you were away", "a-2")
    buyer = await Client.connect(url, token("b1"))
    task = asyncio.create_task(buyer.request({"type": "sync", "cursors": {conv: cursor}}))
    missed = await buyer.messages(conv, 1)
    await task
    assert [m["body"]["text"] for m in missed] == ["while you were away"]


async def test_contiguous_cursor_does_not_skip_a_message_still_in_flight(
    url: str, held_notices: list[Any]
) -> None:
    """A connection that drops before the lower message reached it resumes from below it."""
    buyer, agent, conv = await open_pair(url)
    lower = await agent.send_text(conv, "HELD: in flight", "a-1")
    await asyncio.sleep(0.1)
    # What the buyer held when the network dropped: the ack of its own later message only
    # (as if the ack had arrived first), without the lower message.
    buyer.held.setdefault(conv, set()).add(lower["seq"] + 1)
    cursor = buyer.resume_cursor(conv, 1)
    assert cursor == lower["seq"] - 1  # a hole: the cursor stays below it
    await buyer.close()
    buyer = await Client.connect(url, token("b1"))
    task = asyncio.create_task(buyer.request({"type": "sync", "cursors": {conv: cursor}}))
    got = await buyer.messages(conv, 1)
    await task
    assert got[0]["seq"] == lower["seq"] and got[0]["body"]["text"] == "HELD: in flight"


async def test_fast_sync_lists_a_conversation_whose_notices_were_lost(
    url: str, nodes: list[ChatServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages stored while every live notice was lost (a broker outage) are still found by a
    sync with the inbox token: the store, not the broker, says what changed."""
    buyer, agent, conv = await open_pair(url)
    first = await buyer.request({"type": "sync", "cursors": {conv: 1}})
    await buyer.close()
    for node in nodes:
        monkeypatch.setattr(node.hub.broker, "publish", lambda channel, payload: None)
    ack = await agent.send_text(conv, "sent during the outage", "a-1")
    monkeypatch.undo()
    buyer = await Client.connect(url, token("b1"))
    task = asyncio.create_task(buyer.request({"type": "sync", "cursors": {conv: 1}, "inbox": first["inbox"]}))
    got = await buyer.messages(conv, 1)
    synced = await task
    assert got[0]["seq"] == ack["seq"]
    assert synced["full"] is False and [c["id"] for c in synced["conversations"]] == [conv]


async def test_new_conversation_during_a_broker_outage_is_listed(
    url: str, nodes: list[ChatServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conversation opened while live notices were lost reaches the agent's next fast sync."""
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    first = await agent.request({"type": "sync"})
    await agent.close()
    for node in nodes:
        monkeypatch.setattr(node.hub.broker, "publish", lambda channel, payload: None)
    buyer = await Client.connect(url, token("b9"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    monkeypatch.undo()
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    synced = await agent.request({"type": "sync", "inbox": first["inbox"]})
    assert synced["full"] is False and [c["id"] for c in synced["conversations"]] == [conv]


async def resume(url: str, user: str, conv: str, cursor: int, inbox: str | None) -> tuple[Client, dict[str, Any]]:
    """Reconnect and catch up exactly as docs/protocol.md says: sync from the cursor, then page
    with ``history`` after the cursor while the conversation's last seq is above it."""
    client = await Client.connect(url, token(user))
    client.held[conv] = set(range(1, cursor + 1))
    frame: dict[str, Any] = {"type": "sync", "cursors": {conv: cursor}}
    if inbox is not None:
        frame["inbox"] = inbox
    synced = await client.request(frame)
    last = max([c["last_seq"] for c in synced["conversations"] if c["id"] == conv] or [0])
    while client.resume_cursor(conv, cursor) < last:
        page = await client.request({"type": "history", "conv": conv, "after": client.resume_cursor(conv, cursor)})
        if not page["messages"]:
            break
    return client, synced


async def test_random_drops_during_a_busy_exchange_leave_no_hole(url: str) -> None:
    """Both sides write at once while the buyer's connection drops at random moments (often
    right after an ack); resuming by the doc's rules, the buyer ends up with every message."""
    import random

    rng = random.Random(8)
    buyer, agent, conv = await open_pair(url)
    stop = asyncio.Event()

    async def agent_writes() -> None:
        i = 0
        while not stop.is_set():
            await agent.send_text(conv, f"agent {i}", f"a-{i}")
            i += 1
            await asyncio.sleep(rng.random() * 0.004)

    writer = asyncio.create_task(agent_writes())
    cursor, inbox, sent = 1, None, 0
    try:
        for _drop in range(12):
            for _ in range(rng.randint(1, 6)):
                await buyer.send_text(conv, f"buyer {sent}", f"b-{sent}")
                sent += 1
            cursor = buyer.resume_cursor(conv, cursor)
            await buyer.close()
            await asyncio.sleep(rng.random() * 0.02)
            buyer, synced = await resume(url, "b1", conv, cursor, inbox)
            inbox = synced["inbox"]
    finally:
        stop.set()
        await writer
    await asyncio.sleep(0.2)
    last = (await agent.request({"type": "history", "conv": conv, "limit": 1}))["messages"][-1]["seq"]
    cursor = buyer.resume_cursor(conv, cursor)
    if cursor < last:  # the live tail may still be on its way: page the rest as the doc says
        buyer, _ = await resume(url, "b1", conv, cursor, inbox)
    assert buyer.resume_cursor(conv, 0) >= last, sorted(set(range(1, last + 1)) - buyer.held[conv])
