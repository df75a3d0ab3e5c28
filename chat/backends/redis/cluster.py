"""Routing between hub nodes over a Redis Cluster's sharded pub/sub (SSUBSCRIBE/SPUBLISH).

A sharded channel lives in the slot of its name, so a payload reaches only the master that
serves that slot (and its replicas), not every shard as classic PUBLISH does in a cluster.
:class:`.topology.ClusterMap` supplies the slot map (read again after a failover) and
answers ``ping``; the subscriber and publisher connections are our own, as in
:mod:`.broker`, because the guarantees below need the confirmations and the batching that
redis-py's pub/sub objects do not expose (its async ``ClusterPubSub``, new in redis-py 7,
polls with ``get_message`` and confirms nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import MovedError, RedisError, ResponseError

from ...tasks import cancel_and_wait
from .broker import BatchingPublisher
from .client import UNREACHABLE, connect, describe, is_stale, logger, stop_if_cancelled
from .topology import ClusterMap, ClusterUnavailable, Node, SubscriberLink, release

_REFRESH_ERRORS: tuple[type[BaseException], ...] = (*UNREACHABLE, RedisError)


class RedisClusterBroker(BatchingPublisher):
    """Sharded pub/sub across nodes: per master, one subscriber connection (while channels in
    its slots are subscribed) and one publisher connection. The guarantees of
    :class:`.broker.RedisBroker` hold per channel:

    * ``subscribe`` returns once the master serving the channel's slot has confirmed the
      SSUBSCRIBE, and only after everything this node published before the call was sent.
    * ``publish`` buffers; the flusher splits each batch by master (from the slot map) and
      pipelines every part at once, so a channel's payloads keep their order. A command
      answered MOVED did not run: after the slot map is read again it is sent once more to
      the new owner (still at most once); a part whose connection fails is dropped.
    * Topology changes: a subscriber connection that drops, a SUNSUBSCRIBE the server sends by
      itself (its slot moved away) or a MOVED answer makes the broker read the slot map again
      and move each channel to the master that now serves it, subscribing it there; until the
      replica of a dead master is promoted the channels of that master are retried every
      ``reconnect_max`` seconds. Payloads published meanwhile may be lost (at most once).
      The map is also read every ``map_interval`` seconds: a planned failover may leave a
      subscription on the former master, now a replica, which still delivers (replicas
      deliver sharded messages too) until the next read moves it.
    * ``subscribe`` gives up after ``subscribe_timeout`` seconds; ``ping`` is False while a
      master with subscribed channels has no subscriber connection or a master does not answer.
    """

    def __init__(
        self,
        redis: ClusterMap | str,
        prefix: str = "chat:",
        *,
        health_interval: float = 5.0,
        flush_timeout: float = 5.0,
        max_buffer: int = 1_000_000,
        max_batch: int = 50_000,
        ping_timeout: float = 1.0,
        subscribe_timeout: float = 2.0,
        reconnect_max: float = 0.5,
        map_interval: float = 10.0,
    ) -> None:
        super().__init__(prefix, flush_timeout, max_buffer, max_batch)
        self._map = ClusterMap(redis) if isinstance(redis, str) else redis
        self._owned = isinstance(redis, str)
        self.map_interval = map_interval
        self.health_interval = health_interval
        self.subscribe_timeout = subscribe_timeout
        self.reconnect_max = reconnect_max
        self.ping_timeout = ping_timeout
        self._on_message: Callable[[str, bytes], None] | None = None
        self._wanted: set[str] = set()
        self._links: dict[str, SubscriberLink] = {}  # by node name (host:port)
        self._where: dict[str, str] = {}  # channel -> name of the link it is assigned to
        self._unplaced: dict[str, list[asyncio.Future[None]]] = {}  # waiting for a slot map
        self._lock = asyncio.Lock()  # guards the assignments and writes to subscriber connections
        self._pub: dict[str, AbstractConnection] = {}  # publisher connection per node name
        self._kicked = asyncio.Event()
        self._retired: set[asyncio.Task[None]] = set()  # subscriber tasks of former masters, ending
        self._topology: asyncio.Task[None] | None = None

    # Lifecycle

    async def start(self, on_message: Callable[[str, bytes], None]) -> None:
        if self._topology is not None:
            raise RuntimeError("RedisClusterBroker already started")
        self._on_message = on_message
        self._topology = asyncio.create_task(self._topology_forever(), name="redis-cluster-topology")
        self._flusher = asyncio.create_task(self._flush_forever(), name="redis-broker-flusher")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.flush_timeout):
                await self._refresh()

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        await self._stop_flusher()
        links = [k.task for k in self._links.values()]
        await cancel_and_wait(self._flusher, self._topology, *links, *self._retired)
        conns = [*self._pub.values(), *(k.conn for k in self._links.values() if k.conn)]
        for conn in conns:
            await conn.disconnect(nowait=True)
        for link in self._links.values():
            for channel in list(link.channels | set(link.pending)):
                release(link.waiters(channel))
        for waiters in self._unplaced.values():
            release(waiters)
        self._finish_flushes()
        if self._owned:
            await self._map.aclose()

    async def ping(self) -> bool:
        if any(link.conn is None and link.channels for link in self._links.values()):
            return False
        if await self._map.ping(self.ping_timeout):
            return True
        self._kick()  # a master may have failed over: move what it served
        return False

    # Topology

    def _kick(self) -> None:
        if not self._closing:
            self._kicked.set()

    async def _refresh(self) -> bool:
        """Reads the slot map again (once for everyone waiting), then reassigns channels."""
        try:
            async with asyncio.timeout(self.flush_timeout):
                await self._map.refresh(self._map.version)
        except _REFRESH_ERRORS as e:
            self._health.lost(f"cannot read the cluster's slot map: {describe(e)}")
            return False
        async with self._lock:
            await self._rebalance()
        return True

    async def _topology_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # else re-read every map_interval seconds
                async with asyncio.timeout(self.map_interval):
                    await self._kicked.wait()
            self._kicked.clear()
            try:
                ok = await self._refresh()
            except Exception:
                logger.exception("broker: reading the cluster's slot map failed")
                ok = False
            if not ok or any(c not in self._where for c in self._wanted):
                await asyncio.sleep(self.reconnect_max)
                self._kicked.set()
            else:
                await asyncio.sleep(0.05)  # let a burst of events make one refresh

    async def _rebalance(self) -> None:
        """Moves every channel to the link of the master now serving it; subscribes again those
        that lost their subscription on a link that is up. Called with ``_lock`` held."""
        for channel in sorted(self._wanted):
            try:
                node = self._map.master_of(self.prefix + channel)
            except ClusterUnavailable:
                continue
            link = self._links.get(self._where.get(channel, ""))
            if link is None or link.node.name != node.name:
                waiters = link.waiters(channel) if link is not None else self._unplaced.pop(channel, [])
                await self._assign(channel, node, waiters)
            elif link.conn is not None and channel not in link.active and not link.confirming.get(channel):
                await self._ssubscribe(link, channel, link.pending.pop(channel, []))
        masters = {node.name for node in self._map.masters}
        for name, link in list(self._links.items()):
            if name not in masters and not link.channels and not link.pending and link.task is not None:
                del self._links[name]  # no longer a master (failed over): close its connection
                link.task.cancel()
                self._retired.add(link.task)
                link.task.add_done_callback(self._retired.discard)

    async def _assign(self, channel: str, node: Node, waiters: list[asyncio.Future[None]]) -> None:
        link = self._links.get(node.name)
        if link is None:
            link = self._links[node.name] = SubscriberLink(node)
            link.task = asyncio.create_task(self._run_link(link), name=f"redis-cluster-sub-{node.name}")
        link.channels.add(channel)
        self._where[channel] = node.name
        if link.conn is None:
            link.pending.setdefault(channel, []).extend(waiters)
        else:
            await self._ssubscribe(link, channel, waiters)

    async def _ssubscribe(self, link: SubscriberLink, channel: str, waiters: list[asyncio.Future[None]]) -> None:
        link.confirming.setdefault(channel, deque()).append(waiters)
        link.sent.append((b"ssubscribe", channel))
        if link.conn is not None:
            try:
                await link.conn.send_command("SSUBSCRIBE", self.prefix + channel, check_health=False)
            except (RedisError, OSError) as e:
                # The link's reader sees the connection fail too and subscribes it again.
                logger.debug("SSUBSCRIBE %s not sent: %s", channel, e)

    # Subscriptions

    async def subscribe(self, channel: str) -> None:
        if self._topology is None or self._closing:
            raise RuntimeError("RedisClusterBroker is not running")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        added = False
        try:
            async with asyncio.timeout(self.subscribe_timeout):
                await self._flushed_up_to(self._published)
                async with self._lock:
                    if self._closing:
                        raise RuntimeError("RedisClusterBroker closed")
                    link = self._links.get(self._where.get(channel, ""))
                    if channel not in self._wanted:
                        self._wanted.add(channel)
                        added = True
                        try:
                            await self._assign(channel, self._map.master_of(self.prefix + channel), [waiter])
                        except ClusterUnavailable:  # no slot map yet: placed once it is read
                            self._unplaced.setdefault(channel, []).append(waiter)
                            self._kick()
                    elif link is None or link.conn is None:
                        (link.pending if link else self._unplaced).setdefault(channel, []).append(waiter)
                        self._kick()
                    elif link.confirming.get(channel):
                        link.confirming[channel][-1].append(waiter)
                    elif channel in link.active:
                        return
                    else:
                        await self._ssubscribe(link, channel, [waiter])
                await waiter
        except TimeoutError:
            await self._abandon(channel, waiter, added)
            raise TimeoutError(
                f"Redis Cluster did not confirm the subscription to {channel!r} "
                f"within {self.subscribe_timeout:g} s"
            ) from None

    async def _abandon(self, channel: str, waiter: asyncio.Future[None], added: bool) -> None:
        """As :meth:`.broker.RedisBroker._abandon`: a channel only this timed-out call wanted is dropped."""
        async with self._lock:
            link = self._links.get(self._where.get(channel, ""))
            if link is None:
                unplaced = self._unplaced.get(channel, [])
                if waiter in unplaced:
                    unplaced.remove(waiter)
                if added and not unplaced:
                    self._unplaced.pop(channel, None)
                    self._wanted.discard(channel)
                return
            if waiter in link.pending.get(channel, []):
                link.pending[channel].remove(waiter)
            for entry in link.confirming.get(channel, ()):
                if waiter in entry:
                    entry.remove(waiter)
            waiting = bool(link.pending.get(channel)) or any(link.confirming.get(channel, ()))
            if added and not waiting and channel in self._wanted:
                await self._drop(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Takes effect at once: payloads of the channel still in flight are dropped."""
        if channel not in self._wanted:
            return
        async with self._lock:
            await self._drop(channel)

    async def _drop(self, channel: str) -> None:
        self._wanted.discard(channel)
        release(self._unplaced.pop(channel, []))
        link = self._links.get(self._where.pop(channel, ""))
        if link is None:
            return
        subscribed = channel in link.active or bool(link.confirming.get(channel))
        release(link.waiters(channel))
        if link.conn is not None and subscribed:
            link.sent.append((b"sunsubscribe", channel))
            try:
                await link.conn.send_command("SUNSUBSCRIBE", self.prefix + channel, check_health=False)
            except (RedisError, OSError) as e:
                logger.debug("SUNSUBSCRIBE %s not sent: %s", channel, e)

    # Publishing

    async def _publisher_failed(self) -> None:
        for name in list(self._pub):  # a batch cut short may have left replies unread
            await self._drop_publisher(name)
        self._kick()

    def _subscriber_up(self) -> bool:
        return all(link.conn is not None for link in self._links.values() if link.channels)

    async def _send_batch(self, batch: list[tuple[str, bytes]]) -> None:
        moved = await self._send_parts(batch)
        if moved:  # not run by the old owner: once more, to the new one
            await self._refresh()
            if await self._send_parts(moved):
                logger.debug("payloads redirected twice; dropped")

    async def _send_parts(self, batch: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        """Writes each master its part, then reads the replies; returns what was answered MOVED.
        Raises (once every part is done) the error of a part that failed: that part is dropped."""
        parts: dict[str, tuple[Node, list[tuple[str, bytes]]]] = {}
        for item in batch:
            node = self._map.master_of(item[0])
            parts.setdefault(node.name, (node, []))[1].append(item)
        failed: Exception | None = None
        written: list[tuple[str, AbstractConnection, list[tuple[str, bytes]]]] = []
        for name, (node, items) in parts.items():
            try:
                conn = await self._publisher(node)
                commands = [("SPUBLISH", channel, payload) for channel, payload in items]
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                written.append((name, conn, items))
            except Exception as e:
                failed = e
                await self._drop_publisher(name)
        moved: list[tuple[str, bytes]] = []
        for name, conn, items in written:
            try:
                for item in items:
                    try:
                        await conn.read_response(disable_decoding=True, disconnect_on_error=False)
                    except MovedError:
                        moved.append(item)
            except Exception as e:
                failed = e
                await self._drop_publisher(name)
        if failed is not None:
            raise failed
        return moved

    async def _publisher(self, node: Node) -> AbstractConnection:
        """The publisher connection to a master; one the server closed is replaced first."""
        conn = self._pub.get(node.name)
        if conn is not None and await is_stale(conn):
            await self._drop_publisher(node.name)
            conn = None
        if conn is None:
            conn = self._map.own_connection(node)
            await connect(conn)
            self._pub[node.name] = conn
        return conn

    async def _drop_publisher(self, name: str) -> None:
        conn = self._pub.pop(name, None)
        if conn is not None:
            await conn.disconnect(nowait=True)
        self._kick()

    # Reading

    async def _run_link(self, link: SubscriberLink) -> None:
        delay = 0.05
        while True:
            stop_if_cancelled()
            async with self._lock:
                if not link.channels and not link.pending:
                    if self._links.get(link.node.name) is link:
                        del self._links[link.node.name]
                    return
            conn = self._map.own_connection(link.node)
            try:
                await connect(conn)
                async with self._lock:
                    link.sent.clear()
                    link.active.clear()
                    link.confirming.clear()
                    link.conn = conn
                    for channel in sorted(link.channels):
                        await self._ssubscribe(link, channel, link.pending.pop(channel, []))
                self._health.back(f"; resubscribed {len(link.channels)} channels on {link.node.name}")
                delay = 0.05
                await self._read(link, conn)
            except (RedisError, OSError, TimeoutError) as e:
                self._health.lost(f"subscriber connection to {link.node.name} lost: {describe(e)}")
            except Exception:
                logger.exception("broker subscriber for %s failed; reconnecting", link.node.name)
            finally:
                async with self._lock:
                    if link.conn is conn:
                        link.conn = None
                    for channel, entries in link.confirming.items():
                        waiting = link.pending.setdefault(channel, [])
                        for entry in entries:
                            waiting.extend(entry)
                    link.confirming.clear()
                    link.active.clear()
                    link.sent.clear()
                await conn.disconnect(nowait=True)
                self._kick()  # the node may be gone: read the slot map again
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.reconnect_max)

    async def _read(self, link: SubscriberLink, conn: AbstractConnection) -> None:
        pinged = False
        prefix = self.prefix.encode()
        while True:
            stop_if_cancelled()
            try:
                reply: Any = await conn.read_response(
                    disable_decoding=True, timeout=self.health_interval, disconnect_on_error=False
                )
            except ResponseError as e:  # a MOVED or CLUSTERDOWN answer to the oldest command
                kind, channel = link.sent.popleft() if link.sent else (b"", "")
                logger.debug("%s answered %s to %s %s", link.node.name, e, kind.decode(), channel)
                if kind == b"ping":
                    raise
                if kind == b"ssubscribe" and link.confirming.get(channel):
                    waiting = link.confirming[channel].popleft()
                    link.pending.setdefault(channel, []).extend(waiting)
                    self._kick()
                continue
            if reply is None:  # nothing for health_interval seconds
                if pinged:
                    raise TimeoutError("no reply to PING on the subscriber connection")
                pinged = True
                async with self._lock:
                    link.sent.append((b"pong", ""))
                    await conn.send_command("PING", check_health=False)
                continue
            pinged = False
            if not isinstance(reply, list) or len(reply) < 2:
                if link.sent and link.sent[0][0] == b"pong":
                    link.sent.popleft()  # +PONG once no channel is left
                continue
            kind, raw = reply[0], bytes(reply[1])
            channel = raw[len(prefix):].decode() if raw.startswith(prefix) else ""
            if kind == b"smessage" and len(reply) == 3:
                if channel in self._wanted and self._on_message is not None:
                    try:
                        self._on_message(channel, reply[2])
                    except Exception:
                        logger.exception("broker on_message failed for %s", channel)
                continue
            if link.sent and link.sent[0] == (kind, channel if kind != b"pong" else ""):
                link.sent.popleft()
                if kind == b"ssubscribe" and link.confirming.get(channel):
                    release(link.confirming[channel].popleft())
                    if not link.confirming[channel]:
                        del link.confirming[channel]
                    if channel in link.channels:
                        link.active.add(channel)
            elif kind == b"sunsubscribe":  # sent by the server: the slot moved away
                link.active.discard(channel)
                self._kick()
