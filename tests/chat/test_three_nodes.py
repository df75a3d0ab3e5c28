"""Three hub processes, as on three machines: each in its own working directory, sharing
only one PostgreSQL database and Redis (a single Redis, or the 3+3 Redis Cluster).

Buyers and agents are spread over the nodes and write at once; one node is killed with
-9 under that traffic. Its clients reconnect to the other nodes and resume from the
cursor docs/protocol.md prescribes. Then every conversation must hold every message once,
without a hole, and every message any sender got an ``ack`` for must be there with the
seq the ack named."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from .client import LISTING, Client
from .conftest import REDIS_URL, token
from .procs import HubProcess
from .test_store_contract import PG_URL, drop_schemas

SHOPS = 6


@pytest.fixture(params=["redis", "cluster"])
async def trio(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[list[HubProcess]]:
    if request.param == "cluster":
        redis_url, prefix = request.getfixturevalue("redis_cluster").url, request.getfixturevalue("cluster_prefix")
    else:
        redis_url, prefix = REDIS_URL, request.getfixturevalue("redis_prefix")
    schema = f"chat_trio_{uuid.uuid4().hex[:12]}"
    env = {"DATABASE_URL": f"{PG_URL}?schema={schema}", "REDIS_URL": redis_url, "REDIS_PREFIX": prefix,
           "PAYMENTS": "off", "PRESENCE_TTL": "2"}
    nodes = []
    for name in ("node-a", "node-b", "node-c"):
        (tmp_path / name).mkdir()
        nodes.append(HubProcess(tmp_path / name / "chat.db", {**env, "NODE_ID": name}))
    try:
        await asyncio.gather(*(node.start() for node in nodes))
        yield nodes
    finally:
        for node in nodes:
            node.stop()
        drop_schemas([schema])
    for node in nodes:
        assert not node.db.exists(), "a node wrote to its own disk"


async def test_kill_9_of_one_of_three_nodes_loses_nothing(trio: list[HubProcess]) -> None:
    shops = [f"shop{i}" for i in range(SHOPS)]
    # Buyer of shop i on node i % 3, its agent on node (i + 1) % 3: every pair crosses nodes.
    agent_node = {s: trio[(i + 1) % 3] for i, s in enumerate(shops)}
    buyer_node = {s: trio[i % 3] for i, s in enumerate(shops)}
    agents = {s: await Client.connect(agent_node[s].url, token(f"a-{s}", "agent", shop=s)) for s in shops}
    for agent in agents.values():
        await agent.request({"type": "sync"})
    buyers, convs = {}, {}
    for s in shops:
        buyers[s] = await Client.connect(buyer_node[s].url, token(f"b-{s}"))
        convs[s] = (await buyers[s].request({"type": "open", "shop": s, "listing": LISTING}))["conversation"]["id"]
        await agents[s].next("msg", conv=convs[s])
    acked: dict[str, dict[int, str]] = {c: {} for c in convs.values()}  # conv -> seq -> cmid
    stop = asyncio.Event()

    async def write(client: Client, conv: str, who: str) -> None:
        i = 0
        while not stop.is_set():
            cmid = f"{who}-{i}"
            try:
                reply = await client.send_text(conv, cmid, cmid)
            except (ConnectionError, TimeoutError):
                return  # this client's node is gone (an unacked send may be lost: it was never acked)
            if reply["type"] == "ack":
                acked[conv][reply["seq"]] = cmid
            i += 1
            await asyncio.sleep(0.003)

    writers = [asyncio.create_task(write(buyers[s], convs[s], f"b{s}")) for s in shops]
    writers += [asyncio.create_task(write(agents[s], convs[s], f"a{s}")) for s in shops]
    await asyncio.sleep(0.8)
    dead = trio[2]
    dead.kill()
    await asyncio.sleep(0.4)
    stop.set()
    await asyncio.gather(*writers, return_exceptions=True)

    survivor = trio[0]
    for s in shops:
        conv = convs[s]
        for role, client, user in (("agent", agents[s], f"a-{s}"), ("buyer", buyers[s], f"b-{s}")):
            node = agent_node[s] if role == "agent" else buyer_node[s]
            if node is not dead:
                continue
            # The clients of the dead node resume on a survivor from the contiguous cursor.
            cursor = client.resume_cursor(conv, 0)
            back = await Client.connect(survivor.url, token(user, role, shop=s if role == "agent" else None))
            back.held[conv] = set(range(1, cursor + 1))
            await back.request({"type": "sync", "cursors": {conv: cursor}})
            await _page_to_the_end(back, conv)
            last = max(back.held[conv])
            assert sorted(back.held[conv]) == list(range(1, last + 1)), f"{s} {role}: a hole after resuming"
        await _check_history(survivor, s, conv, acked[conv])
    assert sum(len(a) for a in acked.values()) > 100, "the test did not get far enough to mean anything"


async def _page_to_the_end(client: Client, conv: str) -> None:
    while True:
        page = await client.request({"type": "history", "conv": conv, "after": client.resume_cursor(conv, 0)})
        if not page["messages"]:
            return


async def _check_history(node: HubProcess, shop: str, conv: str, acked: dict[int, str]) -> None:
    """The whole stored history: seqs 1..n each once, each cmid once, every ack where it said."""
    reader = await Client.connect(node.url, token(f"b-{shop}"))
    messages: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await reader.request({"type": "history", "conv": conv, "after": after, "limit": 200})
        if not page["messages"]:
            break
        messages += page["messages"]
        after = page["messages"][-1]["seq"]
    await reader.close()
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(1, len(seqs) + 1)), f"{shop}: the stored seqs are not 1..n"
    cmids = [m["cmid"] for m in messages if m["cmid"]]
    assert len(cmids) == len(set(cmids)), f"{shop}: a message was stored twice"
    by_seq = {m["seq"]: m.get("cmid") for m in messages}
    lost = {seq: cmid for seq, cmid in acked.items() if by_seq.get(seq) != cmid}
    assert not lost, f"{shop}: acknowledged messages missing or moved: {list(lost.items())[:5]}"
