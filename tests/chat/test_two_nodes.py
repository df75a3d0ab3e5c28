"""Two hub processes sharing one Redis and one SQLite file: live delivery, presence
and resume all cross the node boundary; a node killed with -9 takes its users offline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .client import LISTING, Client
from .conftest import REDIS_URL, token
from .procs import HubProcess


@pytest.fixture
async def pair(tmp_path: Path, redis_prefix: str) -> AsyncIterator[tuple[HubProcess, HubProcess]]:
    env = {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": redis_prefix, "PRESENCE_TTL": "1"}
    a = HubProcess(tmp_path / "chat.db", {**env, "NODE_ID": "node-a"})
    b = HubProcess(tmp_path / "chat.db", {**env, "NODE_ID": "node-b"})
    await a.start()
    await b.start()
    yield a, b
    a.stop()
    b.stop()


async def test_buyer_and_agent_on_different_nodes(pair: tuple[HubProcess, HubProcess]) -> None:
    """Messages, typing, receipts and presence flow between a buyer on one node and an agent on the other."""
    a, b = pair
    agent = await Client.connect(b.url, token("a1", "agent", shop="shop1"))
    assert agent.welcome["node"] == "node-b"
    await agent.request({"type": "sync"})
    buyer = await Client.connect(a.url, token("b1"))
    assert buyer.welcome["node"] == "node-a"
    opened = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
    conv = opened["conversation"]["id"]
    assert opened["conversation"]["agent"] == "a1"  # node A saw node B's agent online
    assert (await buyer.next("presence", entity="s:shop1"))["status"] == "online"
    assert (await agent.next("msg", conv=conv))["kind"] == "product"
    await buyer.request({"type": "typing", "conv": conv, "active": True})
    assert (await agent.next("typing", conv=conv))["user"] == "b1"
    ack = await buyer.send_text(conv, "跨节点", "x1")
    assert (await agent.next("msg", conv=conv))["seq"] == ack["seq"]
    await agent.request({"type": "read", "conv": conv, "seq": ack["seq"]})
    assert (await buyer.next("receipt", conv=conv))["seq"] == ack["seq"]
    reply = await agent.send_text(conv, "收到", "y1")
    assert (await buyer.next("msg", conv=conv))["seq"] == reply["seq"]


async def test_resume_on_the_other_node(pair: tuple[HubProcess, HubProcess]) -> None:
    """An agent drops from node B, messages arrive meanwhile, and it resumes on node A with nothing missing."""
    a, b = pair
    agent = await Client.connect(b.url, token("a1", "agent", shop="shop1"))
    first = await agent.request({"type": "sync"})
    buyer = await Client.connect(a.url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await agent.next("msg", conv=conv)
    await agent.close()
    for i in range(20):
        await buyer.send_text(conv, f"while away {i}", f"w{i}")
    agent = await Client.connect(a.url, token("a1", "agent", shop="shop1"))
    task = asyncio.create_task(agent.request({"type": "sync", "cursors": {conv: 1}, "inbox": first["inbox"]}))
    missed = await agent.messages(conv, 20)
    synced = await task
    assert synced["full"] is False  # the store's change token works on every node
    assert [m["seq"] for m in missed] == list(range(2, 22))
    await buyer.send_text(conv, "live again", "live")
    assert (await agent.next("msg", conv=conv))["seq"] == 22
    await agent.no_frame("msg", conv=conv)


async def test_killed_node_users_go_offline(pair: tuple[HubProcess, HubProcess]) -> None:
    """kill -9 of the agent's node: the buyer on the other node sees the shop go offline within the TTL."""
    a, b = pair
    agent = await Client.connect(b.url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(a.url, token("b1"))
    await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
    assert (await buyer.next("presence", entity="s:shop1"))["status"] == "online"
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    b.kill()
    gone = await buyer.next("presence", entity="s:shop1", timeout=10)
    assert gone["status"] == "offline"
    assert loop.time() - killed_at < 4  # the 1 s TTL plus a sweep, with room for a loaded machine


async def test_kill_9_of_a_node_under_traffic_leaves_no_hole(pair: tuple[HubProcess, HubProcess]) -> None:
    """Buyers on node A and agents on node B write at once; B is killed with -9; every agent
    resumes on A from the cursor docs/protocol.md prescribes and ends up with every message."""
    a, b = pair
    shops = [f"shop{i}" for i in range(4)]
    agents = {s: await Client.connect(b.url, token(f"a-{s}", "agent", shop=s)) for s in shops}
    for agent in agents.values():
        await agent.request({"type": "sync"})
    convs: dict[str, str] = {}
    buyers: dict[str, Client] = {}
    for s in shops:
        buyers[s] = await Client.connect(a.url, token(f"b-{s}"))
        convs[s] = (await buyers[s].request({"type": "open", "shop": s, "listing": LISTING}))["conversation"]["id"]
        await agents[s].next("msg", conv=convs[s])
    stop = asyncio.Event()

    async def write(client: Client, conv: str, who: str) -> None:
        i = 0
        while not stop.is_set():
            try:
                await client.send_text(conv, f"{who} {i}", f"{who}-{i}")
            except (ConnectionError, TimeoutError):
                return  # this side's node is gone: it stops writing (its unacked send may be lost)
            i += 1
            await asyncio.sleep(0.002)

    writers = [asyncio.create_task(write(buyers[s], convs[s], "b")) for s in shops]
    writers += [asyncio.create_task(write(agents[s], convs[s], "a")) for s in shops]
    await asyncio.sleep(0.6)
    b.kill()
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*writers, return_exceptions=True)
    for s in shops:
        conv, dead = convs[s], agents[s]
        cursor = dead.resume_cursor(conv, 0)
        resumed = await Client.connect(a.url, token(f"a-{s}", "agent", shop=s))
        resumed.held[conv] = set(range(1, cursor + 1))
        synced = await resumed.request({"type": "sync", "cursors": {conv: cursor}})
        last = next(c["last_seq"] for c in synced["conversations"] if c["id"] == conv)
        while resumed.resume_cursor(conv, 0) < last:
            page = await resumed.request({"type": "history", "conv": conv, "after": resumed.resume_cursor(conv, 0)})
            if not page["messages"]:
                break
        missing = sorted(set(range(1, last + 1)) - resumed.held[conv])
        assert not missing, f"{s}: holes {missing[:10]} after resuming from {cursor}"
        assert last > 20, "the test did not get far enough to mean anything"


async def test_a_block_on_one_node_stops_sends_on_the_other(pair: tuple[HubProcess, HubProcess]) -> None:
    """Nodes cache a pair's blocks (every send checks them): a block or unblock made on one
    node must reach the other node's cache before the next message there."""
    a, b = pair
    agent = await Client.connect(b.url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(a.url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    assert (await buyer.send_text(conv, "hello", "m1"))["type"] == "ack"  # node A now caches "no block"
    assert (await agent.request({"type": "block", "conv": conv}))["type"] == "ok"
    await asyncio.sleep(0.05)  # the announcement crosses Redis (sub-millisecond; margin for a busy machine)
    refused = await buyer.send_text(conv, "hello?", "m2")
    assert refused["type"] == "error" and refused["code"] == 4008
    assert (await agent.request({"type": "unblock", "conv": conv}))["type"] == "ok"
    await asyncio.sleep(0.05)
    assert (await buyer.send_text(conv, "hello again", "m3"))["type"] == "ack"
