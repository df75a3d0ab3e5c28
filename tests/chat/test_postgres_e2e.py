"""The real server on PostgreSQL (``DATABASE_URL=postgresql://…``): two hub processes, each in
its own working directory, sharing one database schema and one Redis; messages are
exchanged, acknowledged, and resumed across a kill -9 with nothing lost or doubled."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .client import LISTING, Client
from .conftest import REDIS_URL, token
from .procs import HubProcess
from .test_store_contract import PG_URL, drop_schemas


@pytest.fixture
async def pg_nodes(tmp_path: Path, redis_prefix: str) -> AsyncIterator[tuple[HubProcess, HubProcess]]:
    schema = f"chat_test_{uuid.uuid4().hex[:12]}"
    env = {"DATABASE_URL": f"{PG_URL}?schema={schema}", "REDIS_URL": REDIS_URL, "REDIS_PREFIX": redis_prefix,
           "PAYMENTS": "off"}
    nodes: list[HubProcess] = []
    for name in ("node-a", "node-b"):
        (tmp_path / name).mkdir()  # nothing shared on disk: each node's files in its own place
        nodes.append(HubProcess(tmp_path / name / "chat.db", {**env, "NODE_ID": name}))
    try:
        await asyncio.gather(*(node.start() for node in nodes))  # both migrate the new schema at once
        yield nodes[0], nodes[1]
    finally:
        for node in nodes:
            node.stop()
        drop_schemas([schema])
    for node in nodes:
        assert not node.db.exists(), "the SQLite file was used instead of PostgreSQL"


async def test_exchange_ack_and_resume_on_postgresql(pg_nodes: tuple[HubProcess, HubProcess]) -> None:
    """Buyer on one node, agent on the other: messages are acked with gapless seqs and delivered;
    the agent's node is killed with -9, and the agent resumes on the surviving node from its
    cursor and inbox token with every message once."""
    a, b = pg_nodes
    agent = await Client.connect(b.url, token("a1", "agent", shop="shop1"))
    first = await agent.request({"type": "sync"})
    buyer = await Client.connect(a.url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    assert (await agent.next("msg", conv=conv))["kind"] == "product"

    acks = [await buyer.send_text(conv, f"question {i}", f"q{i}") for i in range(5)]
    assert [ack["seq"] for ack in acks] == [2, 3, 4, 5, 6]
    assert (await buyer.send_text(conv, "question 0", "q0"))["duplicate"] is True
    assert [m["seq"] for m in await agent.messages(conv, 5)] == [2, 3, 4, 5, 6]
    reply = await agent.send_text(conv, "answer", "r0")
    assert (await buyer.next("msg", conv=conv))["seq"] == reply["seq"] == 7
    await agent.request({"type": "read", "conv": conv, "seq": reply["seq"]})

    b.kill()
    await asyncio.wait_for(agent.closed, 10)
    for i in range(10):
        await buyer.send_text(conv, f"while away {i}", f"w{i}")
    agent = await Client.connect(a.url, token("a1", "agent", shop="shop1"))
    task = asyncio.create_task(agent.request({"type": "sync", "cursors": {conv: 7}, "inbox": first["inbox"]}))
    missed = await agent.messages(conv, 10)
    synced = await task
    assert synced["full"] is False and [c["id"] for c in synced["conversations"]] == [conv]
    assert [m["seq"] for m in missed] == list(range(8, 18))
    assert [m["body"]["text"] for m in missed] == [f"while away {i}" for i in range(10)]

    await b.start()  # the node comes back and reads the same history
    again = await Client.connect(b.url, token("b1"))
    page = await again.request({"type": "history", "conv": conv, "after": 0, "limit": 100})
    texts = [m["body"].get("text") for m in page["messages"] if m["kind"] == "text"]
    assert texts == [*(f"question {i}" for i in range(5)), "answer", *(f"while away {i}" for i in range(10))]
