"""The promises of ``chat.backends.base``, checked against every implementation.

Each test takes the ``backend`` fixture, parametrized over the in-memory backends, the
Redis ones on one Redis and the same on a Redis Cluster (3 masters, 3 replicas, started once
per session by ``tests/chat/redis_cluster.py``); a few are about Redis only (several nodes,
restarts, reconnects) and skip for memory, and those that cut one Redis's connections with a
relay run on the single Redis only (``test_redis_cluster.py`` kills a cluster master instead).
Redis tests run under a random key prefix, removed afterwards; they fail when no Redis answers
at ``CHAT_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).

Time in presence tests is injected (``now`` arguments), never slept.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from chat.backends.base import Broker, Presence, PresenceState, Status
from chat.backends.memory import MemoryBroker, MemoryPresence
from chat.backends.redis import ClusterMap, RedisBroker, RedisClusterBroker, RedisPresence

from .redis_cluster import RedisCluster

REDIS_URL = os.environ.get("CHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TTL = 10_000
T0 = 1_700_000_000_000
WAIT = 5.0  # seconds to wait for something that should happen at once


def _redis_up() -> bool:
    try:
        with SyncRedis.from_url(REDIS_URL, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except (RedisError, OSError):
        return False


REDIS_UP = _redis_up()


class Backend:
    """Makes backends of one kind for one test and cleans up after it."""

    def __init__(self, kind: str, cluster: RedisCluster | None = None) -> None:
        self.kind = kind
        self.cluster = cluster
        self.prefix = f"test:{uuid.uuid4().hex[:12]}:"
        self._clients: list[Any] = []
        self._closers: list[Callable[[], Any]] = []

    @property
    def redis(self) -> bool:
        """On Redis, single or cluster (several nodes can share it)."""
        return self.kind in ("redis", "cluster")

    def client(self) -> Any:
        """A new Redis (or cluster) client, named after the prefix (one per simulated node)."""
        name = f"{self.prefix}node"
        if self.cluster is not None:
            client: Any = ClusterMap(self.cluster.url, client_name=name)
        else:
            client = Redis.from_url(REDIS_URL, client_name=name)
        self._clients.append(client)
        return client

    def _admins(self) -> list[Redis]:
        if self.cluster is None:
            return [Redis.from_url(REDIS_URL)]
        return [Redis(host="127.0.0.1", port=port) for port in self.cluster.masters()]

    async def delete_keys(self) -> int:
        """Deletes every key under this test's prefix (on every master); returns how many."""
        deleted = 0
        for admin in self._admins():
            try:
                keys = [k async for k in admin.scan_iter(match=f"{self.prefix}*", count=1000)]
                for key in keys:
                    deleted += await admin.delete(key)
            finally:
                await admin.aclose()
        return deleted

    def make_broker(self, client: Any, prefix: str, **options: Any) -> RedisBroker | RedisClusterBroker:
        if self.cluster is not None:
            return RedisClusterBroker(client, prefix, **options)
        return RedisBroker(client, prefix, **options)

    def _track(self, obj: Any) -> Any:
        self._closers.append(obj.close)
        return obj

    async def broker(self, on_message: Callable[[str, bytes], None]) -> Broker:
        broker: Broker
        broker = self.make_broker(self.client(), self.prefix) if self.redis else MemoryBroker()
        await broker.start(on_message)
        return self._track(broker)  # type: ignore[no-any-return]

    def presence(self, ttl_ms: int = TTL) -> Presence:
        if self.redis:
            return self._track(RedisPresence(self.client(), self.prefix, ttl_ms=ttl_ms))  # type: ignore[no-any-return]
        return self._track(MemoryPresence(ttl_ms))  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        for close in reversed(self._closers):
            await close()
        if self._clients:
            await self.delete_keys()
        for client in self._clients:
            await client.aclose()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "redis" and not REDIS_UP:
        pytest.fail(f"no Redis at {REDIS_URL}: the suite needs a real one (.ci/run starts it)")
    cluster = request.getfixturevalue("redis_cluster") if request.param == "cluster" else None
    b = Backend(request.param, cluster)
    try:
        yield b
    finally:
        await b.aclose()


def redis_only(backend: Backend) -> None:
    if not backend.redis:
        pytest.skip("Redis only: the memory backends serve one node")


def single_redis_only(backend: Backend) -> None:
    if backend.kind != "redis":
        pytest.skip("one Redis behind a relay; a cluster's outages are in test_redis_cluster.py")


class Received:
    """An ``on_message`` that records payloads per channel."""

    def __init__(self) -> None:
        self.by_channel: dict[str, list[bytes]] = defaultdict(list)
        self._event = asyncio.Event()

    def __call__(self, channel: str, payload: bytes) -> None:
        self.by_channel[channel].append(payload)
        self._event.set()

    async def until(self, done: Callable[[], bool], seconds: float = WAIT) -> None:
        async with asyncio.timeout(seconds):
            while not done():
                self._event.clear()
                await self._event.wait()

    async def count(self, channel: str, n: int) -> list[bytes]:
        await self.until(lambda: len(self.by_channel[channel]) >= n)
        return self.by_channel[channel]


def payloads(n: int, tag: str = "p") -> list[bytes]:
    return [f"{tag}{i}".encode() for i in range(n)]


# Broker


async def test_broker_delivers_in_publish_order(backend: Backend) -> None:
    """Payloads published to a channel arrive in the order they were published."""
    got = Received()
    broker = await backend.broker(got)
    await broker.subscribe("c")
    sent = payloads(200)
    for p in sent:
        broker.publish("c", p)
    assert await got.count("c", len(sent)) == sent


async def test_broker_publish_returns_at_once(backend: Backend) -> None:
    """publish neither blocks nor delivers synchronously, even for a large burst."""
    got = Received()
    broker = await backend.broker(got)
    await broker.subscribe("c")
    started = time.perf_counter()
    for p in payloads(20_000):
        assert broker.publish("c", p) is None  # type: ignore[func-returns-value]
    assert time.perf_counter() - started < 1.0
    assert got.by_channel["c"] == []
    await got.count("c", 20_000)


async def test_broker_nothing_before_subscribe(backend: Backend) -> None:
    """A payload published before the node subscribed is never delivered to it."""
    got = Received()
    broker = await backend.broker(got)
    broker.publish("c", b"early")
    await broker.subscribe("c")
    broker.publish("c", b"late")
    await got.count("c", 1)
    await asyncio.sleep(0.05)
    assert got.by_channel["c"] == [b"late"]


async def test_broker_nothing_after_unsubscribe(backend: Backend) -> None:
    """Once unsubscribe returns nothing more of that channel is delivered, even in flight."""
    got = Received()
    broker = await backend.broker(got)
    await broker.subscribe("c")
    await broker.subscribe("marker")
    broker.publish("c", b"in flight")
    await broker.unsubscribe("c")
    broker.publish("c", b"after")
    broker.publish("marker", b"m")
    await got.count("marker", 1)
    await asyncio.sleep(0.05)
    assert got.by_channel["c"] == []


async def test_broker_resubscribe_delivers_again(backend: Backend) -> None:
    """A channel subscribed, unsubscribed and subscribed again delivers what follows."""
    got = Received()
    broker = await backend.broker(got)
    await broker.subscribe("c")
    await broker.unsubscribe("c")
    await broker.subscribe("c")
    broker.publish("c", b"x")
    assert await got.count("c", 1) == [b"x"]


async def test_broker_several_channels(backend: Backend) -> None:
    """Interleaved channels each keep their own order; unsubscribed ones deliver nothing."""
    got = Received()
    broker = await backend.broker(got)
    for channel in ("a", "b"):
        await broker.subscribe(channel)
    for i in range(300):
        broker.publish("abc"[i % 3], f"{i}".encode())
    await got.until(lambda: len(got.by_channel["a"]) >= 100 and len(got.by_channel["b"]) >= 100)
    await asyncio.sleep(0.05)
    assert got.by_channel["a"] == [f"{i}".encode() for i in range(0, 300, 3)]
    assert got.by_channel["b"] == [f"{i}".encode() for i in range(1, 300, 3)]
    assert "c" not in got.by_channel


async def test_broker_many_publishes_complete_and_ordered(backend: Backend) -> None:
    """10,000 payloads over two channels all arrive, each channel in order."""
    got = Received()
    broker = await backend.broker(got)
    await broker.subscribe("x")
    await broker.subscribe("y")
    sent: dict[str, list[bytes]] = {"x": [], "y": []}
    for i in range(10_000):
        channel = "xy"[i % 2]
        payload = f"{channel}{i}".encode()
        sent[channel].append(payload)
        broker.publish(channel, payload)
        if i % 1000 == 999:
            await asyncio.sleep(0)  # as a hub would: publishes spread over loop passes
    await got.until(lambda: len(got.by_channel["x"]) + len(got.by_channel["y"]) >= 10_000)
    assert got.by_channel["x"] == sent["x"]
    assert got.by_channel["y"] == sent["y"]


async def test_broker_ping(backend: Backend) -> None:
    """ping is True while the backend is usable."""
    broker = await backend.broker(Received())
    assert await broker.ping() is True


async def test_broker_nodes_see_each_other(backend: Backend) -> None:
    """Two nodes on one Redis deliver each other's payloads, in order, to subscribers only."""
    redis_only(backend)
    got1, got2 = Received(), Received()
    node1, node2 = await backend.broker(got1), await backend.broker(got2)
    await node1.subscribe("shared")
    await node2.subscribe("shared")
    await node1.subscribe("only1")
    sent = payloads(1_000)
    for p in sent:
        node2.publish("shared", p)
        node2.publish("only1", p)
    node1.publish("shared", b"from1")
    await got1.count("shared", 1_001)
    assert [p for p in got1.by_channel["shared"] if p != b"from1"] == sent
    assert await got1.count("only1", 1_000) == sent
    await got2.count("shared", 1_001)
    assert [p for p in got2.by_channel["shared"] if p != b"from1"] == sent
    assert b"from1" in got2.by_channel["shared"]
    assert "only1" not in got2.by_channel


async def test_broker_prefixes_isolate(backend: Backend) -> None:
    """Brokers under different prefixes share one Redis without seeing each other."""
    redis_only(backend)
    got, other_got = Received(), Received()
    broker = await backend.broker(got)
    other = backend.make_broker(backend.client(), backend.prefix + "other:")
    await other.start(other_got)
    try:
        await other.subscribe("c")
        await broker.subscribe("c")
        broker.publish("c", b"mine")
        await got.count("c", 1)
        await asyncio.sleep(0.05)
        assert other_got.by_channel["c"] == []
    finally:
        await other.close()


async def test_broker_resubscribes_after_connection_drop(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """When the subscriber connection drops the broker reconnects, resubscribes and logs it."""
    redis_only(backend)
    got = Received()
    broker = await backend.broker(got)
    await broker.subscribe("c")
    await broker.subscribe("d")
    caplog.set_level(logging.INFO, logger="chat.backends.redis")
    await kill_subscribers(backend, expected=1 if backend.cluster is None else None)
    # At most once: what is published while reconnecting may be lost; keep publishing.
    async with asyncio.timeout(WAIT):
        while not got.by_channel["c"]:
            broker.publish("c", b"probe")
            await asyncio.sleep(0.02)
    await got.until(lambda: not broker.buffered)  # type: ignore[attr-defined]
    got.by_channel.clear()
    sent = payloads(100)
    for p in sent:
        broker.publish("d", p)
    assert await got.count("d", 100) == sent
    assert await broker.ping()
    resubscribed = "resubscribed 2 channels" if backend.cluster is None else "resubscribed"
    assert any(resubscribed in r.getMessage() for r in caplog.records)


async def kill_subscribers(backend: Backend, expected: int | None) -> None:
    """Closes this test's subscriber connections from the server side (on every master)."""
    name = f"{backend.prefix}node"
    killed = 0
    if backend.cluster is None:
        servers = [("127.0.0.1", None)]
    else:
        servers = [("127.0.0.1", port) for port in backend.cluster.masters()]
    for host, port in servers:
        admin = Redis.from_url(REDIS_URL) if port is None else Redis(host=host, port=port)
        try:
            for c in await admin.client_list():
                if c["name"] == name and (c.get("sub", "0") != "0" or c.get("ssub", "0") != "0"):
                    await admin.client_kill_filter(_id=c["id"])
                    killed += 1
        finally:
            await admin.aclose()
    assert killed == expected if expected is not None else killed >= 1


class Relay:
    """A TCP relay in front of Redis that a test can cut (Redis "down") and restore."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.listen_port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)
        self.listen_port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            dst.close()
            self._writers.discard(dst)


async def test_broker_survives_redis_outage(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """While Redis is away publish drops silently and ping is False; afterwards all resumes.
    The outage is logged as one warning and one info line."""
    single_redis_only(backend)
    caplog.set_level(logging.INFO, logger="chat.backends.redis")
    target = Redis.from_url(REDIS_URL).connection_pool.connection_kwargs
    relay = Relay(target.get("host", "127.0.0.1"), target.get("port", 6379))
    await relay.start()
    client = Redis(
        host="127.0.0.1",
        port=relay.listen_port,
        db=target.get("db", 0),
        retry=Retry(NoBackoff(), 0),
    )
    got = Received()
    broker = RedisBroker(client, backend.prefix, subscribe_timeout=WAIT)
    try:
        await broker.start(got)
        await broker.subscribe("c")
        await relay.cut()
        for _ in range(250):
            if not await broker.ping():
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("ping stayed True with Redis away")
        for p in payloads(100, "lost"):
            broker.publish("c", p)
        late = asyncio.create_task(broker.subscribe("d"))  # waits (up to WAIT) for Redis
        await asyncio.sleep(0.3)
        assert not late.done()
        await relay.start()
        async with asyncio.timeout(WAIT):
            await late
        assert await broker.ping()
        sent = payloads(50)
        for p in sent:
            broker.publish("c", p)
            broker.publish("d", p)
        assert await got.count("d", 50) == sent
        assert (await got.count("c", 50))[-50:] == sent
        messages = [r.getMessage() for r in caplog.records]
        assert any("subscriber connection lost" in m for m in messages)
        assert any("resubscribed 2 channels" in m for m in messages)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert not any(r.exc_info for r in caplog.records)
    finally:
        await broker.close()
        await client.aclose()
        await relay.cut()


async def relayed_broker(backend: Backend, got: Received, **options: Any) -> tuple[RedisBroker, Relay, Redis]:
    """A broker whose connections go through a relay the test can cut (Redis away or restarted)."""
    target = Redis.from_url(REDIS_URL).connection_pool.connection_kwargs
    relay = Relay(target.get("host", "127.0.0.1"), target.get("port", 6379))
    await relay.start()
    client = Redis(host="127.0.0.1", port=relay.listen_port, db=target.get("db", 0), retry=Retry(NoBackoff(), 0))
    broker = RedisBroker(client, backend.prefix, **options)
    await broker.start(got)
    return broker, relay, client


async def until(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Polls ``check`` (every 20 ms, for up to WAIT) until it is true."""
    for _ in range(int(WAIT / 0.02)):
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"not {what} within {WAIT} s")


async def until_ping(broker: RedisBroker, up: bool) -> None:
    await until(lambda: _is(broker.ping(), up), f"ping {up}")


async def _is(answer: Awaitable[bool], expected: bool) -> bool:
    return await answer is expected


async def test_broker_subscribe_fails_fast_while_redis_is_away(backend: Backend) -> None:
    """subscribe raises within subscribe_timeout while Redis is away (a client's request gets
    an answer) and leaves the channel unsubscribed; subscribing again later works."""
    single_redis_only(backend)
    got = Received()
    broker, relay, client = await relayed_broker(backend, got, subscribe_timeout=0.5)
    try:
        await broker.subscribe("c")
        await relay.cut()
        await until_ping(broker, False)
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            await broker.subscribe("d")
        assert time.perf_counter() - started < 1.5
        await relay.start()
        await until_ping(broker, True)
        async with asyncio.timeout(WAIT):  # "c" is subscribed again by the reconnection
            while not got.by_channel["c"]:
                broker.publish("d", b"not subscribed")
                broker.publish("c", b"probe")
                await asyncio.sleep(0.02)
        assert got.by_channel["d"] == []
        await broker.subscribe("d")
        broker.publish("d", b"now")
        assert await got.count("d", 1) == [b"now"]
    finally:
        await broker.close()
        await client.aclose()
        await relay.cut()


async def test_broker_first_publish_after_restart_is_delivered(backend: Backend) -> None:
    """After Redis closed every connection (a restart) and came back, the very first payload
    published is delivered: the stale publisher connection is replaced before writing."""
    single_redis_only(backend)
    got = Received()
    broker, relay, client = await relayed_broker(backend, got)
    try:
        await broker.subscribe("c")
        broker.publish("c", b"before")
        assert await got.count("c", 1) == [b"before"]  # the publisher connection is open
        old = broker._sub_conn
        await relay.cut()
        await relay.start()
        # The subscriber is back (a new connection, its SUBSCRIBE confirmed); nothing was
        # published since the restart, so the publisher connection is the dead one.
        await until(lambda: broker._sub_conn not in (None, old) and not broker._confirming, "resubscribed")
        broker.publish("c", b"first after")
        assert await got.count("c", 2) == [b"before", b"first after"]
    finally:
        await broker.close()
        await client.aclose()
        await relay.cut()


async def test_broker_close_stops_tasks_and_flushes(backend: Backend) -> None:
    """close sends what is buffered and leaves no task behind."""
    redis_only(backend)
    got = Received()
    listener = await backend.broker(got)
    await listener.subscribe("c")
    before = asyncio.all_tasks()
    broker = backend.make_broker(backend.client(), backend.prefix)
    await broker.start(Received())
    await broker.subscribe("x")
    # Reader and flusher; on a cluster the topology task, the flusher and a reader per master.
    assert len(asyncio.all_tasks() - before) == (2 if backend.cluster is None else 3)
    for p in payloads(50):
        broker.publish("c", p)
    await broker.close()
    assert not asyncio.all_tasks() - before
    assert await got.count("c", 50) == payloads(50)


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", "redis+cluster://127.0.0.1:1,127.0.0.1:2"])
async def test_redis_ping_false_when_unreachable(url: str) -> None:
    """ping answers False, not an exception, when Redis (or every cluster node) cannot be reached."""
    broker: RedisBroker | RedisClusterBroker
    broker = RedisClusterBroker(url) if url.startswith("redis+cluster") else RedisBroker(url)
    presence = RedisPresence(url)
    await broker.start(Received())
    try:
        started = time.perf_counter()
        assert await broker.ping() is False
        assert await presence.ping() is False
        assert time.perf_counter() - started < 5
    finally:
        await broker.close()
        await presence.close()


# Presence


async def test_presence_combined_across_devices(backend: Backend) -> None:
    """Online if any device is online, away if all are away, offline when none is left."""
    p = backend.presence()
    t = T0
    assert await p.set("u:1", "1", "a", "online", t) == PresenceState("u:1", "online", t)
    assert await p.set("u:1", "1", "b", "away", t + 1) is None
    assert await p.set("u:1", "1", "a", "away", t + 2) == PresenceState("u:1", "away", t + 2)
    assert await p.set("u:1", "1", "b", "online", t + 3) == PresenceState("u:1", "online", t + 3)
    assert await p.remove("u:1", "1", "b", t + 4) == PresenceState("u:1", "away", t + 4)
    assert await p.set("u:1", "1", "a", "away", t + 5) is None
    assert await p.remove("u:1", "1", "a", t + 6) == PresenceState("u:1", "offline", t + 6)
    assert await p.remove("u:1", "1", "a", t + 7) is None
    assert (await p.get(["u:1"], t + 8))["u:1"] == PresenceState("u:1", "offline", t + 6)


async def test_presence_combined_across_nodes(backend: Backend) -> None:
    """Entries from two nodes combine into one status, each change reported by one node."""
    redis_only(backend)
    n1, n2 = backend.presence(), backend.presence()
    t = T0
    assert (await n1.set("s:9", "a1", "c1", "away", t)) == PresenceState("s:9", "away", t)
    assert await n2.set("s:9", "a2", "c2", "online", t + 1) == PresenceState("s:9", "online", t + 1)
    assert (await n1.get(["s:9"], t + 2))["s:9"].status == "online"
    assert await n2.members("s:9", t + 2) == {"a1": "away", "a2": "online"}
    assert await n2.remove("s:9", "a2", "c2", t + 3) == PresenceState("s:9", "away", t + 3)
    assert await n1.remove("s:9", "a1", "c1", t + 4) == PresenceState("s:9", "offline", t + 4)


async def test_presence_unchanged_set_reports_nothing(backend: Backend) -> None:
    """Setting the same status again, or removing an unknown entry, is not a change."""
    p = backend.presence()
    assert await p.set("u:1", "1", "a", "online", T0) is not None
    assert await p.set("u:1", "1", "a", "online", T0 + 1) is None
    assert await p.set("u:1", "1", "b", "online", T0 + 2) is None
    assert await p.remove("u:1", "1", "nope", T0 + 3) is None
    assert await p.remove("u:2", "2", "nope", T0 + 3) is None


async def test_presence_get_unknown_and_known(backend: Backend) -> None:
    """get answers for every entity asked, offline with no last_seen if never seen."""
    p = backend.presence()
    await p.set("u:1", "1", "a", "online", T0)
    await p.set("u:2", "2", "b", "away", T0)
    got = await p.get(["u:1", "u:2", "u:3"], T0 + 5)
    assert got == {
        "u:1": PresenceState("u:1", "online", T0 + 5),
        "u:2": PresenceState("u:2", "away", T0 + 5),
        "u:3": PresenceState("u:3", "offline", None),
    }


async def test_presence_last_seen(backend: Backend) -> None:
    """last_seen is now while connected, then the time the last entry went."""
    p = backend.presence()
    await p.set("u:1", "1", "a", "online", T0)
    assert (await p.get(["u:1"], T0 + 100))["u:1"].last_seen == T0 + 100
    await p.remove("u:1", "1", "a", T0 + 200)
    assert (await p.get(["u:1"], T0 + 900))["u:1"] == PresenceState("u:1", "offline", T0 + 200)
    await p.set("u:1", "1", "a", "online", T0 + 1_000)
    assert await p.touch([("u:1", "1", "a", "online")], T0 + 4_000) == []
    changes = await p.expire(T0 + 4_000 + TTL)
    assert changes == [PresenceState("u:1", "offline", T0 + 4_000)]


async def test_presence_last_seen_is_latest_touch_of_any_device(backend: Backend) -> None:
    """When several devices expire, last_seen is the latest touch among them."""
    p = backend.presence()
    await p.set("u:1", "1", "a", "online", T0)
    await p.set("u:1", "1", "b", "online", T0 + 10)
    assert await p.touch([("u:1", "1", "a", "online")], T0 + 500) == []
    changes = await p.expire(T0 + 500 + TTL)
    assert changes == [PresenceState("u:1", "offline", T0 + 500)]


async def test_presence_offline_entries_do_not_count_as_away(backend: Backend) -> None:
    """An entry set offline (invisible) leaves the entity offline, not away."""
    p = backend.presence()
    assert await p.set("u:1", "1", "a", "offline", T0) is None
    assert (await p.get(["u:1"], T0))["u:1"].status == "offline"
    assert await p.set("u:1", "1", "b", "away", T0 + 1) is None
    assert (await p.get(["u:1"], T0 + 1))["u:1"].status == "offline"


async def test_presence_change_seen_by_exactly_one_caller(backend: Backend) -> None:
    """Concurrent set and remove from many tasks (and nodes) report each change once."""
    nodes = [backend.presence(), backend.presence()] if backend.redis else [backend.presence()]
    for round_ in range(5):
        t = T0 + round_ * 100
        sets = await asyncio.gather(
            *(nodes[i % len(nodes)].set("u:1", "1", f"c{i}", "online", t) for i in range(40))
        )
        assert [s for s in sets if s is not None] == [PresenceState("u:1", "online", t)]
        removes = await asyncio.gather(
            *(nodes[i % len(nodes)].remove("u:1", "1", f"c{i}", t + 1) for i in range(40))
        )
        assert [r for r in removes if r is not None] == [PresenceState("u:1", "offline", t + 1)]


async def test_presence_concurrent_flips_alternate(backend: Backend) -> None:
    """Under concurrent status flips the changes reported alternate and end at the truth."""
    nodes = [backend.presence(), backend.presence()] if backend.redis else [backend.presence()]
    for round_ in range(3):
        entity = f"u:{round_}"
        ops = []
        for i in range(60):
            status: Status = "online" if (i * 7 + round_) % 3 else "away"
            ops.append(nodes[i % len(nodes)].set(entity, "1", f"c{i % 4}", status, T0 + i))
        changes = [c for c in await asyncio.gather(*ops) if c is not None]
        # In the order they happened the changes alternate (online, away, online...), so
        # whatever order the calls returned in, the counts differ by at most one, and when
        # they differ the final status is the more frequent one.
        online = sum(c.status == "online" for c in changes)
        away = sum(c.status == "away" for c in changes)
        assert online + away == len(changes) >= 1
        assert abs(online - away) <= 1
        final = (await nodes[0].get([entity], T0 + 100))[entity].status
        if online != away:
            assert final == ("online" if online > away else "away")


async def test_presence_dead_node_goes_offline_after_ttl(backend: Backend) -> None:
    """Entries nobody touches expire after ttl; expire reports each change once."""
    if backend.redis:
        dead, alive = backend.presence(), backend.presence()
    else:
        dead = alive = backend.presence()
    await dead.set("u:1", "1", "dead-conn", "online", T0)
    await alive.set("u:2", "2", "live-conn", "online", T0)
    for t in range(T0 + 1_000, T0 + TTL, 1_000):
        assert await alive.touch([("u:2", "2", "live-conn", "online")], t) == []
        assert await alive.expire(t) == []
    # An entry past its ttl reads offline at once, before any sweep.
    assert (await alive.get(["u:1"], T0 + TTL))["u:1"].status == "offline"
    assert await alive.members("u:1", T0 + TTL) == {}
    assert await alive.expire(T0 + TTL) == [PresenceState("u:1", "offline", T0)]
    assert await alive.expire(T0 + TTL) == []
    assert await alive.expire(T0 + TTL + 5_000) == []
    assert (await alive.get(["u:2"], T0 + TTL))["u:2"].status == "online"


async def test_presence_expire_reported_once_across_nodes(backend: Backend) -> None:
    """Several nodes sweeping at once report each expiry exactly once between them."""
    redis_only(backend)
    nodes = [backend.presence() for _ in range(3)]
    for i in range(30):
        await nodes[i % 3].set(f"u:{i}", str(i), f"c{i}", "online", T0 + i)
    sweeps = await asyncio.gather(*(n.expire(T0 + TTL + 100) for n in nodes for _ in range(3)))
    reported = sorted(c.entity for sweep in sweeps for c in sweep)
    assert reported == sorted(f"u:{i}" for i in range(30))
    assert all(c.status == "offline" for sweep in sweeps for c in sweep)


async def test_presence_touch_extends_ttl(backend: Backend) -> None:
    """A touched entry lives ttl after its last touch."""
    p = backend.presence()
    await p.set("u:1", "1", "a", "online", T0)
    assert await p.touch([("u:1", "1", "a", "online")], T0 + 5_000) == []
    assert await p.expire(T0 + TTL) == []
    assert (await p.get(["u:1"], T0 + TTL + 4_999))["u:1"].status == "online"
    assert await p.expire(T0 + TTL + 5_000) == [PresenceState("u:1", "offline", T0 + 5_000)]


async def test_presence_touch_of_existing_entry_reports_nothing(backend: Backend) -> None:
    """Touching live entries reports nothing and keeps their status: a heartbeat built before
    a status change must not undo it. An entry past its ttl but not yet swept was never
    reported offline, so touching it reports nothing either."""
    p = backend.presence()
    await p.set("u:1", "1", "a", "online", T0)
    assert await p.set("u:1", "1", "a", "away", T0 + 1) == PresenceState("u:1", "away", T0 + 1)
    assert await p.touch([("u:1", "1", "a", "online")], T0 + 2) == []
    assert (await p.get(["u:1"], T0 + 3))["u:1"] == PresenceState("u:1", "away", T0 + 3)
    assert await p.touch([("u:1", "1", "a", "away")], T0 + TTL + 100) == []  # dead, not swept
    assert (await p.get(["u:1"], T0 + TTL + 200))["u:1"].status == "away"
    assert await p.expire(T0 + TTL + 200) == []


async def test_presence_touch_recreates_missing_entries(backend: Backend) -> None:
    """A heartbeat for an entry the backend does not have (Redis restarted empty, or a sweep
    ran while the beat was late) creates it with the given status and reports the change."""
    p = backend.presence()
    beat: list[tuple[str, str, str, Status]] = [
        ("s:1", "a1", "c1", "online"), ("u:a1", "a1", "c1", "online"),
        ("u:2", "2", "c2", "away"), ("u:3", "3", "c3", "offline"),
    ]
    assert await p.touch(beat, T0) == [
        PresenceState("s:1", "online", T0), PresenceState("u:a1", "online", T0),
        PresenceState("u:2", "away", T0),
    ]
    assert await p.touch(beat, T0 + 1_000) == []
    assert await p.members("s:1", T0 + 1_000) == {"a1": "online"}
    got = await p.get(["u:2", "u:3"], T0 + 1_000)
    assert got == {"u:2": PresenceState("u:2", "away", T0 + 1_000), "u:3": PresenceState("u:3", "offline", None)}
    swept = await p.expire(T0 + 1_000 + TTL)  # the next beat is late
    assert sorted(c.entity for c in swept) == ["s:1", "u:2", "u:a1"]
    assert all(c == PresenceState(c.entity, "offline", T0 + 1_000) for c in swept)
    late = T0 + 1_000 + TTL + 500
    assert await p.touch(beat[2:], late) == [PresenceState("u:2", "away", late)]
    assert (await p.get(["u:2"], late + 1))["u:2"].status == "away"


async def test_presence_touch_after_redis_lost_everything(backend: Backend) -> None:
    """Redis restarted empty: the nodes' next heartbeats bring the entries back, and each
    change is reported by exactly one of them."""
    redis_only(backend)
    n1, n2 = backend.presence(), backend.presence()
    await n1.set("s:9", "a1", "c1", "online", T0)
    await n2.set("s:9", "a2", "c2", "away", T0)
    assert await backend.delete_keys()
    assert (await n1.get(["s:9"], T0 + 1))["s:9"] == PresenceState("s:9", "offline", None)
    t = T0 + 1_000
    beats = await asyncio.gather(
        n1.touch([("s:9", "a1", "c1", "online")], t), n2.touch([("s:9", "a2", "c2", "away")], t)
    )
    assert sorted(c.status for beat in beats for c in beat) in (["online"], ["away", "online"])
    assert (await n1.get(["s:9"], t))["s:9"] == PresenceState("s:9", "online", t)
    assert await n2.members("s:9", t) == {"a1": "online", "a2": "away"}


async def test_presence_expiry_of_one_device(backend: Backend) -> None:
    """An expired device changes the combined status only if it was the deciding one."""
    p = backend.presence()
    await p.set("u:1", "1", "phone", "online", T0)
    await p.set("u:1", "1", "laptop", "away", T0)
    assert await p.touch([("u:1", "1", "laptop", "away")], T0 + 5_000) == []
    assert await p.expire(T0 + TTL) == [PresenceState("u:1", "away", T0 + TTL)]
    assert await p.expire(T0 + TTL + 5_000) == [PresenceState("u:1", "offline", T0 + 5_000)]


async def test_presence_members(backend: Backend) -> None:
    """members lists members with a live entry, each with its combined status."""
    p = backend.presence()
    await p.set("s:1", "alice", "a-phone", "away", T0)
    await p.set("s:1", "alice", "a-laptop", "online", T0)
    await p.set("s:1", "bob", "b-phone", "away", T0)
    await p.set("s:1", "carol", "c-phone", "online", T0 - TTL)  # already dead
    await p.set("u:alice", "alice", "a-phone", "online", T0)
    assert await p.members("s:1", T0 + 1) == {"alice": "online", "bob": "away"}
    await p.remove("s:1", "alice", "a-laptop", T0 + 2)
    assert await p.members("s:1", T0 + 3) == {"alice": "away", "bob": "away"}
    assert await p.members("s:2", T0 + 3) == {}


async def test_presence_ping(backend: Backend) -> None:
    """ping is True while the backend is usable."""
    assert await backend.presence().ping() is True
