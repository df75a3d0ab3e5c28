"""The Redis backends and the hub on a real Redis Cluster (3 masters, 3 replicas; see
``redis_cluster.py``): a master killed with -9 while it serves a subscribed channel and a
presence shard, two hub processes sharing the cluster, and a failover under two hub nodes.

The contract suite (``test_backends_contract.py``) runs on the same cluster; these are the
scenarios only a cluster has. Each failover restarts the killed node afterwards (it rejoins
as a replica), so the cluster stays 3 + 3 for the tests after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from chat.backends.base import PresenceState
from chat.backends.redis import UNREACHABLE, RedisClusterBroker, RedisPresence
from chat.backends.redis.client import cluster_startup_nodes
from chat.backends.redis.presence import shard_of
from chat.server import ChatServer

from .client import LISTING, Client
from .conftest import token
from .procs import HubProcess
from .redis_cluster import RedisCluster

pytestmark = pytest.mark.slow

T0 = 1_700_000_000_000
HEARTBEAT = 1.0  # PRESENCE_TTL / 3 for the hub nodes here


def entity_on(cluster: RedisCluster, prefix: str, port: int) -> str:
    """A user entity whose presence shard lives on the master at ``port``."""
    for i in range(10_000):
        entity = f"u:{i}"
        if cluster.master_of_slot(key_slot(f"{prefix}{{p{shard_of(entity)}}}".encode())) == port:
            return entity
    raise LookupError("no entity on that master")


async def fail_over(cluster: RedisCluster, port: int) -> float:
    """kill -9 of the master at ``port``; returns once its replica serves its slots (seconds taken)."""
    started = time.monotonic()
    cluster.kill(port)
    await asyncio.to_thread(cluster.wait_promoted, port)
    return time.monotonic() - started


async def pings(*backends: Any, seconds: float = 5.0) -> None:
    """Until every backend's ping is True (each ping has 1 s: on a loaded machine one may miss)."""
    for _ in range(int(seconds / 0.1)):
        if all([await b.ping() for b in backends]):
            return
        await asyncio.sleep(0.1)
    pytest.fail("ping still False")


class Received:
    def __init__(self) -> None:
        self.by_channel: dict[str, list[bytes]] = {}

    def __call__(self, channel: str, payload: bytes) -> None:
        self.by_channel.setdefault(channel, []).append(payload)

    async def until(self, check: Callable[[], bool], seconds: float = 10.0) -> None:
        for _ in range(int(seconds / 0.01)):
            if check():
                return
            await asyncio.sleep(0.01)
        pytest.fail(f"not there within {seconds} s")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+cluster://10.0.0.1:7000", ([("10.0.0.1", 7000)], None, None)),
        ("redis+cluster://a:7000,b:7001/0", ([("a", 7000), ("b", 7001)], None, None)),
        ("redis+cluster://:s%40cret@a", ([("a", 6379)], None, "s@cret")),
        ("redis+cluster://chat:pw@[::1]:7000,a:7001", ([("::1", 7000), ("a", 7001)], "chat", "pw")),
    ],
)
def test_cluster_url(url: str, expected: tuple[Any, ...]) -> None:
    """REDIS_URL=redis+cluster://[user:password@]host:port[,host:port...] (database 0 only)."""
    assert cluster_startup_nodes(url) == expected


@pytest.mark.parametrize("url", ["redis://a:7000", "redis+cluster://a:7000/1", "redis+cluster://a:7000,"])
def test_cluster_url_refused(url: str) -> None:
    with pytest.raises(ValueError):
        cluster_startup_nodes(url)


async def test_backends_survive_master_failover(
    redis_cluster: RedisCluster, cluster_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """kill -9 of the master serving a subscribed channel and a presence shard: once its
    replica is promoted, delivery resumes on the channel (in order), new subscriptions work
    there, and one heartbeat later presence is right."""
    caplog.set_level(logging.INFO, logger="chat.backends.redis")
    cluster, prefix = redis_cluster, cluster_prefix
    victim = cluster.master_of_slot(key_slot(b"{c}"))  # the slot of every channel tagged {c}
    entity = entity_on(cluster, prefix, victim)
    got = Received()
    listener = RedisClusterBroker(cluster.url, prefix)
    talker = RedisClusterBroker(cluster.url, prefix)
    p1 = RedisPresence(cluster.url, prefix, ttl_ms=3_000)
    p2 = RedisPresence(cluster.url, prefix, ttl_ms=3_000)
    try:
        await listener.start(got)
        await talker.start(Received())
        await listener.subscribe("{c}")
        talker.publish("{c}", b"before")
        await got.until(lambda: got.by_channel.get("{c}") == [b"before"])
        assert await p1.set(entity, "1", "conn-1", "online", T0) == PresenceState(entity, "online", T0)

        took = await fail_over(cluster, victim)
        # While failing over a call fails fast or succeeds; afterwards they all succeed.
        started = time.monotonic()
        with contextlib.suppress(UNREACHABLE):
            await p2.get([entity], T0 + 100)
        assert time.monotonic() - started < 6

        # Delivery resumes on its own (at most once: probes sent meanwhile may be lost).
        async with asyncio.timeout(10):
            while b"probe" not in got.by_channel["{c}"]:
                talker.publish("{c}", b"probe")
                await asyncio.sleep(0.05)
        await got.until(lambda: not talker.buffered)
        got.by_channel.clear()
        sent = [f"after {i}".encode() for i in range(200)]
        for payload in sent:
            talker.publish("{c}", payload)
        await got.until(lambda: len(got.by_channel.get("{c}", [])) >= len(sent))
        assert got.by_channel["{c}"] == sent
        # A new subscription in the same slot, on the promoted master, works at once.
        await listener.subscribe("{c}:new")
        talker.publish("{c}:new", b"x")
        await got.until(lambda: got.by_channel.get("{c}:new") == [b"x"])
        await pings(listener, talker)

        # One heartbeat after the promotion presence is right (whatever the replica had).
        t = T0 + 1_000
        await p1.touch([(entity, "1", "conn-1", "online")], t)
        assert (await p2.get([entity], t + 1))[entity] == PresenceState(entity, "online", t + 1)
        assert await p2.members(entity, t + 1) == {"1": "online"}
        assert await p2.remove(entity, "1", "conn-1", t + 2) == PresenceState(entity, "offline", t + 2)
        await pings(p1, p2)
        messages = [r.getMessage() for r in caplog.records]
        assert any("resubscribed" in m for m in messages), messages
        assert took < 15
    finally:
        for closer in (listener.close, talker.close, p1.close, p2.close):
            await closer()
        await asyncio.to_thread(cluster.restart, victim)


async def test_broker_follows_manual_failover(redis_cluster: RedisCluster, cluster_prefix: str) -> None:
    """CLUSTER FAILOVER (a planned switch: the master becomes a replica, its connections stay
    open): delivery on the channel goes on, in order, and new subscriptions go to the new master."""
    cluster, prefix = redis_cluster, cluster_prefix
    old = cluster.master_of_slot(key_slot(b"{m}"))  # the slot of every channel tagged {m}
    got = Received()
    listener = RedisClusterBroker(cluster.url, prefix)
    talker = RedisClusterBroker(cluster.url, prefix)
    try:
        await listener.start(got)
        await talker.start(Received())
        await listener.subscribe("{m}")
        talker.publish("{m}", b"before")
        await got.until(lambda: got.by_channel.get("{m}") == [b"before"])
        new = await asyncio.to_thread(cluster.manual_failover, old)
        for _ in range(200):  # at most once: probes may be lost while the roles swap
            talker.publish("{m}", b"probe")
            await asyncio.sleep(0.05)
            if b"probe" in got.by_channel["{m}"]:
                break
        else:
            pytest.fail("no delivery after the manual failover")
        await got.until(lambda: not talker.buffered)
        got.by_channel.clear()
        sent = [f"after {i}".encode() for i in range(100)]
        for payload in sent:
            talker.publish("{m}", payload)
        await got.until(lambda: len(got.by_channel.get("{m}", [])) >= len(sent))
        assert got.by_channel["{m}"] == sent
        await listener.subscribe("{m}:new")
        talker.publish("{m}:new", b"x")
        await got.until(lambda: got.by_channel.get("{m}:new") == [b"x"])
        # Once the map is read again (a server SUNSUBSCRIBE does it at once, else the next
        # periodic read) one subscriber connection is left, to the new master.
        await listener._refresh()
        assert list(listener._links) == [f"127.0.0.1:{new}"]
        await pings(listener)
        talker.publish("{m}", b"last")
        await got.until(lambda: got.by_channel["{m}"][-1:] == [b"last"])
    finally:
        await listener.close()
        await talker.close()


async def test_two_hub_processes_on_the_cluster(
    tmp_path: Path, redis_cluster: RedisCluster, cluster_prefix: str
) -> None:
    """Two hub processes with REDIS_URL=redis+cluster://…: a buyer on one and an agent on the
    other exchange messages, receipts and typing, and see each other's presence."""
    env = {"REDIS_URL": redis_cluster.url, "REDIS_PREFIX": cluster_prefix, "PRESENCE_TTL": "1"}
    a = HubProcess(tmp_path / "chat.db", {**env, "NODE_ID": "node-a"})
    b = HubProcess(tmp_path / "chat.db", {**env, "NODE_ID": "node-b"})
    try:
        await a.start()
        await b.start()
        agent = await Client.connect(b.url, token("a1", "agent", shop="shop1"))
        await agent.request({"type": "sync"})
        buyer = await Client.connect(a.url, token("b1"))
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
        await agent.close()
        assert (await buyer.next("presence", entity="s:shop1"))["status"] == "offline"
        await buyer.close()
    finally:
        a.stop()
        b.stop()


@pytest.fixture
async def hub_pair(
    redis_cluster: RedisCluster, cluster_prefix: str, server_factory: Callable[..., Any]
) -> AsyncIterator[tuple[ChatServer, ChatServer]]:
    common = {"redis_url": redis_cluster.url, "redis_prefix": cluster_prefix, "presence_ttl": 3 * HEARTBEAT}
    a = await server_factory(node_id="node-a", **common)
    b = await server_factory(node_id="node-b", **common)
    yield a, b


async def test_hub_serves_after_master_failover(
    redis_cluster: RedisCluster, cluster_prefix: str, hub_pair: tuple[ChatServer, ChatServer]
) -> None:
    """Buyer on node A, agent on node B; the master serving the buyer's channel is killed.
    Once its replica is promoted the nodes are ready again, live delivery to the buyer
    resumes, and presence is right within one heartbeat."""
    a, b = hub_pair
    agent = await Client.connect(f"ws://127.0.0.1:{b.port}/ws", token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(f"ws://127.0.0.1:{a.port}/ws", token("b1"))
    victim = redis_cluster.master_of_slot(key_slot(f"{cluster_prefix}u:b1".encode()))
    try:
        conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
        first = await agent.send_text(conv, "before", "a0")
        await buyer.next("msg", conv=conv, seq=first["seq"])

        await fail_over(redis_cluster, victim)
        promoted = time.monotonic()
        for node in (a, b):
            for _ in range(200):
                if all((await node.hub.ready()).values()):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("node not ready after the failover")
        # Live delivery resumes: the agent's messages reach the buyer (those sent while the
        # subscription moves may come later, from the store, when the next one arrives).
        async with asyncio.timeout(10):
            while True:
                ack = await agent.send_text(conv, "after", f"a-{time.monotonic()}")
                try:
                    await buyer.next("msg", conv=conv, seq=ack["seq"], timeout=0.5)
                    break
                except TimeoutError:
                    continue
        # Presence: the shop (agent on B) reads online on node A within one heartbeat.
        while True:
            state = (await a.hub.presence.get(["s:shop1"], int(time.time() * 1000)))["s:shop1"]
            if state.status == "online":
                break
            assert time.monotonic() - promoted < 2 * HEARTBEAT + 1, "presence not right within a heartbeat"
            await asyncio.sleep(0.05)
    finally:
        await agent.close()
        await buyer.close()
        await asyncio.to_thread(redis_cluster.restart, victim)
