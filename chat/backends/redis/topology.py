"""A Redis Cluster's slot map and a pooled client per master, for the Redis backends (and
the bookkeeping of the cluster broker's subscriber connection per master).

redis-py's async ``RedisCluster`` was tried for this and left: in redis-py 8.1, concurrent
first commands on a fresh client fail with ``AttributeError`` (its lazy reconnect marks a
connection that is still connecting) and a slot-map refresh marks every connection for
reconnect, which is what happens during a failover. Here the slot map is read with
``CLUSTER SLOTS`` (redis-py's ``key_slot`` hashes the keys), and each master gets the same
fail-fast blocking pool as a single Redis (:func:`.client.make_client`), so a burst of calls
waits for a connection instead of failing.

Commands go to the master that the map names for their keys' slot. A group of commands
answered ``MOVED``, or whose master cannot be reached, makes the map be read again (once
for every caller waiting) and is sent once more to the new owner: a failover costs the
calls made during it a wait of up to a few seconds, or a ``ClusterUnavailable`` error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MovedError, RedisError, TryAgainError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .client import CONNECT_TIMEOUT, SOCKET_TIMEOUT, as_text, cluster_startup_nodes, make_client

T = TypeVar("T")

_RETRY_ON = (MovedError, TryAgainError, RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
"""What sends a group of commands once more after the map is read again."""


class ClusterUnavailable(RedisConnectionError):
    """No node answered ``CLUSTER SLOTS``, or no master serves a slot (cluster failing over)."""


class Node:
    """One master: its address and the pooled client that sends it commands."""

    def __init__(self, host: str, port: int, client: Redis) -> None:
        self.host, self.port, self.client = host, port, client
        self.name = f"{host}:{port}"

    def __repr__(self) -> str:
        return f"Node({self.name})"


class ClusterMap:
    """Slot -> master, read from the cluster; a client per master.

    ``client_name`` names every connection (the tests find theirs in CLIENT LIST)."""

    def __init__(self, url: str, *, client_name: str | None = None) -> None:
        self.url = url
        self._startup, self.username, self.password = cluster_startup_nodes(url)
        self.client_name = client_name
        self._slots: list[Node | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._nodes: dict[str, Node] = {}  # masters serving slots, by name
        self._known: list[tuple[str, int]] = []  # every node the last map listed
        self._failed: set[tuple[str, int]] = set()  # nodes that did not answer CLUSTER SLOTS
        self._slot_of: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self.version = 0  # map reads completed (successful or not)
        self.ready = False

    @property
    def masters(self) -> list[Node]:
        return list(self._nodes.values())

    def own_connection(self, node: Node) -> AbstractConnection:
        """A connection of one's own to a master, outside its pool: RESP2, never retrying, no
        socket timeout (as :func:`.client.own_connection`; the broker bounds each wait)."""
        return Connection(
            host=node.host, port=node.port, username=self.username, password=self.password,
            client_name=self.client_name, socket_connect_timeout=CONNECT_TIMEOUT, protocol=2,
            retry=Retry(NoBackoff(), 0), health_check_interval=0, socket_timeout=None,
        )

    def slot(self, key: str) -> int:
        slot = self._slot_of.get(key)
        if slot is None:
            if len(self._slot_of) > 100_000:
                self._slot_of.clear()
            slot = self._slot_of[key] = key_slot(key.encode())
        return slot

    def master_of(self, key: str) -> Node:
        node = self._slots[self.slot(key)]
        if node is None:
            raise ClusterUnavailable(f"no master known for the slot of {key!r}")
        return node

    # Reading the map

    async def refresh(self, seen: int | None = None) -> None:
        """Reads the slot map again, unless another caller did since ``seen`` (a ``version``)."""
        async with self._lock:
            if seen is not None and self.version != seen:
                return
            try:
                await self._read_map()
            finally:
                self.version += 1

    async def _read_map(self) -> None:
        # Masters first, then every node the last map listed, then the URL's; a node that
        # failed to answer last time goes last (a dead master must not hold up each read).
        candidates = list(dict.fromkeys(
            [*((n.host, n.port) for n in self._nodes.values()), *self._known, *self._startup]
        ))
        candidates.sort(key=lambda address: address in self._failed)
        error: BaseException | None = None
        for host, port in candidates:
            probe = Redis(host=host, port=port, username=self.username, password=self.password,
                          socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT,
                          retry=Retry(NoBackoff(), 0), protocol=2)
            try:
                reply = await probe.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
            except (RedisError, OSError) as e:
                error = e
                self._failed.add((host, port))
                continue
            finally:
                await probe.aclose()
            self._failed.discard((host, port))
            gone = self._apply(reply, host)
            if gone is not None:
                for node in gone:  # a master that failed over, or lost its slots
                    with contextlib.suppress(RedisError, OSError):
                        await node.client.aclose()
                return
            error = ClusterUnavailable(f"{host}:{port} knows no master for some slots")
        raise ClusterUnavailable(f"cannot read the cluster's slot map: {error}")

    def _apply(self, reply: list[Any], asked: str) -> list[Node] | None:
        """Takes the map if it covers every slot; returns the masters no longer serving any."""
        ranges: list[tuple[int, int, str, int]] = []
        known: list[tuple[str, int]] = []
        covered = 0
        for first, last, master, *replicas in reply:
            for entry in (master, *replicas):
                address = (as_text(entry[0]) or asked, int(entry[1]))
                if address[0] != "?" and address not in known:
                    known.append(address)
            ranges.append((int(first), int(last), as_text(master[0]) or asked, int(master[1])))
            covered += int(last) - int(first) + 1
        if covered != REDIS_CLUSTER_HASH_SLOTS:
            return None
        slots: list[Node | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        nodes: dict[str, Node] = {}
        for first, last, host, port in ranges:
            name = f"{host}:{port}"
            node = nodes.get(name) or self._nodes.get(name)
            if node is None:
                client, _ = make_client(f"redis://{host}:{port}/0", username=self.username,
                                        password=self.password, client_name=self.client_name)
                node = Node(host, port, client)
            nodes[name] = node
            slots[first : last + 1] = [node] * (last - first + 1)
        gone = [n for name, n in self._nodes.items() if name not in nodes]
        self._slots, self._nodes, self._known, self.ready = slots, nodes, known, True
        return gone

    # Commands

    async def per_master(
        self, keys: Sequence[str], send: Callable[[Redis, list[int]], Awaitable[list[T]]]
    ) -> list[T]:
        """Runs ``send(client, indexes)`` for each master with the indexes of ``keys`` in its
        slots, all at once, and returns the results in the order of ``keys``. A group that
        fails with MOVED or a lost connection is sent once more after the map is read again."""
        if not self.ready:
            await self.refresh(self.version)
        results: list[Any] = [None] * len(keys)
        todo = list(range(len(keys)))
        for attempt in (1, 2):
            seen = self.version
            groups: dict[str, tuple[Node, list[int]]] = {}
            for i in todo:
                node = self.master_of(keys[i])
                groups.setdefault(node.name, (node, []))[1].append(i)
            outcomes = await asyncio.gather(
                *(send(node.client, idx) for node, idx in groups.values()), return_exceptions=True
            )
            todo = []
            for (_node, idx), outcome in zip(groups.values(), outcomes, strict=True):
                if isinstance(outcome, _RETRY_ON) and attempt == 1:
                    todo.extend(idx)
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    for i, value in zip(idx, outcome, strict=True):
                        results[i] = value
            if not todo:
                break
            await self.refresh(seen)
            todo.sort()
        return results

    async def ping(self, seconds: float) -> bool:
        """True if the map is known and every master answers within ``seconds``. A master that
        does not answer makes the map be read again (it may have failed over) and every
        master of the new map be asked."""
        try:
            async with asyncio.timeout(seconds):
                for attempt in (1, 2):
                    seen = self.version
                    if attempt == 2 or not self.ready:
                        await self.refresh(seen)
                    answers = await asyncio.gather(*(n.client.ping() for n in self.masters), return_exceptions=True)
                    if all(a is True for a in answers):
                        return True
        except (RedisError, OSError, TimeoutError):
            pass
        return False

    async def aclose(self) -> None:
        for node in self.masters:
            with contextlib.suppress(RedisError, OSError):
                await node.client.aclose()
        self._nodes.clear()
        self._slots = [None] * REDIS_CLUSTER_HASH_SLOTS
        self.ready = False


class SubscriberLink:
    """A broker's subscriber connection to one master and the channels assigned to it
    (see :class:`.cluster.RedisClusterBroker`)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.conn: AbstractConnection | None = None  # set while usable
        self.channels: set[str] = set()  # assigned here (by the slot map)
        self.active: set[str] = set()  # of which confirmed on this connection
        self.sent: deque[tuple[bytes, str]] = deque()  # commands whose reply is not read yet
        # Per channel, one entry per SSUBSCRIBE sent and not yet confirmed: the waiters it releases.
        self.confirming: dict[str, deque[list[asyncio.Future[None]]]] = {}
        self.pending: dict[str, list[asyncio.Future[None]]] = {}  # waiting for a connection
        self.task: asyncio.Task[None] | None = None

    def waiters(self, channel: str) -> list[asyncio.Future[None]]:
        """Takes the channel away from this link and returns the subscribe() calls waiting on it."""
        out = self.pending.pop(channel, [])
        for entry in self.confirming.pop(channel, ()):
            out.extend(entry)
        self.channels.discard(channel)
        self.active.discard(channel)
        return out


def release(waiters: list[asyncio.Future[None]]) -> None:
    """Lets subscribe() calls return."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)
