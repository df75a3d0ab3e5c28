"""Redis backends: many hub nodes sharing one Redis.

Every key and channel name starts with ``prefix`` (prepended verbatim, so end it with a
separator such as ``"chat:"``), which lets several deployments or test runs share one Redis.

Key layout, with the prefix ``chat:`` and an entity or user ``u:7``:

* Broker: pub/sub channel ``chat:<channel>``.
* Presence, per entity:

  - ``chat:p:e:u:7``  hash, conn -> ``"<status>:<member>"``
  - ``chat:p:x:u:7``  sorted set, conn -> expiry (epoch ms)
  - ``chat:p:m:u:7``  hash, ``status`` -> last combined status reported, ``seen`` -> last_seen

  and ``chat:p:due``, a sorted set entity -> earliest expiry among its entries, which lets
  ``expire`` find the entities with dead entries without scanning.
* Inbox: ``chat:i:u:7``, a stream whose entries carry the payload in field ``d``; its
  max-deleted-entry-id is kept as a low-water mark (see ``lua/inbox_append.lua``).

The presence and inbox scripts live in ``lua/`` next to this module, each starting with a
description of its KEYS and ARGV. Presence keeps all of an entity's keys and the shared
``p:due`` in one script call, so it needs a single Redis (not a cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError, ResponseError

from .base import PresenceState, Status

__all__ = ["RedisBroker", "RedisInbox", "RedisPresence"]

logger = logging.getLogger(__name__)

_LUA = Path(__file__).with_name("lua")

_STATUSES: dict[str, Status] = {"online": "online", "away": "away", "offline": "offline"}


def _client(redis: Redis | str) -> tuple[Redis, bool]:
    """The client to use and whether this object owns it (and must close it).

    From a URL: a pool that makes callers wait for a free connection. redis-py's
    default pool raises once 100 are busy, which a thousand clients connecting at
    once (presence for each) reach easily."""
    if isinstance(redis, str):
        pool = BlockingConnectionPool.from_url(redis, max_connections=64, timeout=20)
        return Redis.from_pool(pool), True  # the client owns the pool: aclose() disconnects it
    if redis.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError("the Redis client must be created with decode_responses=False")
    return redis, False


async def _ping(redis: Redis, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            return bool(await redis.ping())
    except (RedisError, OSError, TimeoutError):
        return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _Script:
    """A Lua script from ``lua/``, run by hash and loaded when Redis does not know it."""

    def __init__(self, name: str) -> None:
        self.source = (_LUA / name).read_text("utf-8")
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()

    async def load(self, redis: Redis) -> None:
        await redis.script_load(self.source)

    async def run(self, redis: Redis, keys: Sequence[str], args: Sequence[str | bytes]) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.load(redis)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)

    async def run_many(
        self, redis: Redis, calls: Sequence[tuple[Sequence[str], Sequence[str | bytes]]]
    ) -> list[Any]:
        """Runs the script once per (keys, args), pipelined in one round trip, in order.

        A call refused with NOSCRIPT did not run, so it is sent again once the script is
        loaded; any other error is raised.
        """
        results = await self._pipeline(redis, calls)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            await self.load(redis)
            again = await self._pipeline(redis, [calls[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def _pipeline(
        self, redis: Redis, calls: Sequence[tuple[Sequence[str], Sequence[str | bytes]]]
    ) -> list[Any]:
        if not calls:
            return []
        pipe = redis.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self.sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)


def _own_connection(redis: Redis) -> AbstractConnection:
    """A connection outside the client's pool, speaking RESP2, that never retries by itself.

    Retrying is left to the caller: a resent PUBLISH batch would deliver twice.
    """
    pool = redis.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(protocol=2, retry=Retry(NoBackoff(), 0), health_check_interval=0)
    kwargs.pop("retry_on_error", None)
    kwargs.pop("retry_on_timeout", None)
    kwargs.pop("maint_notifications_config", None)
    kwargs.pop("maint_notifications_pool_handler", None)
    return pool.connection_class(**kwargs)


async def _connect(conn: AbstractConnection) -> None:
    await conn.connect()  # type: ignore[no-untyped-call]


class RedisBroker:
    """Pub/sub across nodes: one subscriber connection and one publisher connection per node.

    * ``subscribe`` returns once Redis has confirmed the subscription, and only after every
      payload this node published before the call has reached Redis (so those are never
      delivered to this node, as if it had subscribed later).
    * ``publish`` appends to a buffer; a flusher task sends everything buffered in one
      pipelined round trip, then everything buffered meanwhile in the next one. A batch
      that fails is dropped, never resent: at most once.
    * The subscriber connection is checked with a PING when idle for ``health_interval``
      seconds; when it drops it is reopened, with backoff, and every channel subscribed again.
    """

    def __init__(
        self,
        redis: Redis | str,
        prefix: str = "chat:",
        *,
        health_interval: float = 5.0,
        flush_timeout: float = 5.0,
        max_buffer: int = 1_000_000,
        max_batch: int = 50_000,
        ping_timeout: float = 1.0,
    ) -> None:
        self._redis, self._owned = _client(redis)
        self.prefix = prefix
        self.health_interval = health_interval
        self.flush_timeout = flush_timeout
        self.max_buffer = max_buffer
        self.max_batch = max_batch
        self.ping_timeout = ping_timeout
        self._on_message: Callable[[str, bytes], None] | None = None
        self._closing = False
        # Subscriptions.
        self._wanted: set[str] = set()
        self._sub_conn: AbstractConnection | None = None  # set while usable
        self._send_lock = asyncio.Lock()
        # Per channel, one entry per SUBSCRIBE sent and not yet confirmed, in order: the
        # futures of the subscribe() calls that the confirmation releases.
        self._confirming: dict[str, deque[list[asyncio.Future[None]]]] = {}
        # While disconnected: subscribe() calls waiting for the resubscription.
        self._pending: dict[str, list[asyncio.Future[None]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()  # the first connection attempt is over
        # Publishing.
        self._buffer: list[tuple[str, bytes]] = []
        self._published = 0  # payloads handed to publish() (and buffered)
        self._flushed = 0  # of which sent or dropped
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._dropped = 0
        self._pub_conn: AbstractConnection | None = None
        self._flusher: asyncio.Task[None] | None = None

    # Lifecycle

    async def start(self, on_message: Callable[[str, bytes], None]) -> None:
        if self._reader is not None:
            raise RuntimeError("RedisBroker already started")
        self._on_message = on_message
        self._reader = asyncio.create_task(self._read_forever(), name="redis-broker-reader")
        self._flusher = asyncio.create_task(self._flush_forever(), name="redis-broker-flusher")
        # Let the first connection attempt finish (either way) so ping() tells the truth.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.flush_timeout):
                await self._attempted.wait()

    async def close(self) -> None:
        """Sends what is buffered (for at most ``flush_timeout``), then stops both tasks."""
        if self._closing:
            return
        self._closing = True
        self._wake.set()
        if self._flusher is not None:
            try:
                async with asyncio.timeout(self.flush_timeout):
                    await asyncio.shield(self._flusher)
            except TimeoutError:
                pass
        for task in (self._flusher, self._reader):
            if task is not None and not task.done():
                task.cancel()
        for task in (self._flusher, self._reader):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for conn in (self._pub_conn, self._sub_conn):
            if conn is not None:
                await conn.disconnect(nowait=True)
        self._pub_conn = self._sub_conn = None
        self._release_all()
        self._finish_flushes()
        if self._owned:
            await self._redis.aclose()

    async def ping(self) -> bool:
        """True if Redis answers and, once started, the subscriber connection is up."""
        if self._reader is not None and self._sub_conn is None:
            return False
        return await _ping(self._redis, self.ping_timeout)

    # Subscriptions

    async def subscribe(self, channel: str) -> None:
        if self._reader is None or self._closing:
            raise RuntimeError("RedisBroker is not running")
        await self._flushed_up_to(self._published)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        async with self._send_lock:
            if self._closing:
                raise RuntimeError("RedisBroker closed")
            conn = self._sub_conn
            in_flight = self._confirming.get(channel)
            if channel in self._wanted:
                if conn is None:
                    self._pending.setdefault(channel, []).append(waiter)
                elif in_flight:
                    in_flight[-1].append(waiter)  # released by the SUBSCRIBE already sent
                else:
                    return  # already confirmed
            else:
                self._wanted.add(channel)
                if conn is None:
                    self._pending.setdefault(channel, []).append(waiter)
                else:
                    self._confirming.setdefault(channel, deque()).append([waiter])
                    try:
                        await conn.send_command(
                            "SUBSCRIBE", self.prefix + channel, check_health=False
                        )
                    except (RedisError, OSError) as e:
                        # The reader sees the connection fail too, reconnects and subscribes
                        # to every wanted channel, which releases the waiter.
                        logger.debug("SUBSCRIBE %s not sent: %s", channel, e)
        await waiter

    async def unsubscribe(self, channel: str) -> None:
        """Takes effect at once: payloads of the channel still in flight are dropped."""
        if channel not in self._wanted:
            return
        self._wanted.discard(channel)
        async with self._send_lock:
            conn = self._sub_conn
            if conn is None or channel in self._wanted:
                return  # resubscription after reconnecting skips it / subscribed again
            try:
                await conn.send_command("UNSUBSCRIBE", self.prefix + channel, check_health=False)
            except (RedisError, OSError) as e:
                logger.debug("UNSUBSCRIBE %s not sent: %s", channel, e)

    # Publishing

    def publish(self, channel: str, payload: bytes) -> None:
        if self._closing:
            return
        if len(self._buffer) >= self.max_buffer:
            # Redis is away and the buffer full: drop (at most once), count, log once.
            if self._dropped == 0:
                logger.warning("broker buffer full (%d payloads), dropping", self.max_buffer)
            self._dropped += 1
            return
        self._buffer.append((self.prefix + channel, payload))
        self._published += 1
        if not self._wake.is_set():
            self._wake.set()

    @property
    def buffered(self) -> int:
        """Payloads waiting for the flusher."""
        return len(self._buffer)

    @property
    def dropped(self) -> int:
        """Payloads dropped because the buffer was full."""
        return self._dropped

    async def _flushed_up_to(self, count: int) -> None:
        if self._flushed >= count:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((count, waiter))
        self._wake.set()
        await waiter

    def _finish_flushes(self) -> None:
        still = []
        for count, waiter in self._flush_waiters:
            if self._closing or self._flushed >= count:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((count, waiter))
        self._flush_waiters = still

    async def _flush_forever(self) -> None:
        failing = 0  # payloads dropped since the last successful batch
        while True:
            if not self._buffer:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._buffer[: self.max_batch]
            del self._buffer[: self.max_batch]
            try:
                async with asyncio.timeout(self.flush_timeout):
                    await self._send_batch(batch)
            except Exception as e:
                if not failing:
                    if isinstance(e, RedisError | OSError | TimeoutError):
                        logger.warning("broker publishing failed, dropping payloads: %r", e)
                    else:
                        logger.exception("broker publishing failed, dropping payloads")
                failing += len(batch)
                conn, self._pub_conn = self._pub_conn, None
                if conn is not None:
                    await conn.disconnect(nowait=True)
                if not self._closing:
                    await asyncio.sleep(0.1)  # Redis is likely away: let a batch build up
            else:
                if failing or self._dropped:
                    logger.warning(
                        "broker publishing again; %d payloads were dropped", failing + self._dropped
                    )
                    failing = self._dropped = 0
            self._flushed += len(batch)
            self._finish_flushes()

    async def _send_batch(self, batch: list[tuple[str, bytes]]) -> None:
        conn = self._pub_conn
        if conn is None:
            conn = _own_connection(self._redis)
            await _connect(conn)
            self._pub_conn = conn
        await conn.send_packed_command(
            conn.pack_commands([("PUBLISH", channel, payload) for channel, payload in batch]),
            check_health=False,
        )
        for _ in batch:
            await conn.read_response(disable_decoding=True)

    # Reading

    async def _read_forever(self) -> None:
        delay = 0.05
        lost = False  # logged as lost, not yet back
        first = True
        while True:
            conn = _own_connection(self._redis)
            try:
                await _connect(conn)
                async with self._send_lock:
                    channels = sorted(self._wanted)
                    self._confirming.clear()
                    for channel in channels:
                        self._confirming[channel] = deque([self._pending.pop(channel, [])])
                    self._release_all()  # pending calls for channels no longer wanted
                    if channels:
                        await conn.send_command(
                            "SUBSCRIBE", *(self.prefix + c for c in channels), check_health=False
                        )
                    self._sub_conn = conn
                if lost or not first:
                    logger.warning(
                        "broker subscriber connection back; resubscribed %d channels",
                        len(channels),
                    )
                lost, first, delay = False, False, 0.05
                self._attempted.set()
                await self._read(conn)
            except (RedisError, OSError, TimeoutError) as e:
                if not lost:
                    logger.warning("broker subscriber connection lost: %r; reconnecting", e)
                    lost = True
                else:
                    logger.debug("broker subscriber still disconnected: %r", e)
            except Exception:
                logger.exception("broker subscriber failed; reconnecting")
                lost = True
            finally:
                self._attempted.set()
                async with self._send_lock:
                    if self._sub_conn is conn:
                        self._sub_conn = None
                    # Whatever was in flight will be confirmed by the resubscription.
                    for channel, entries in self._confirming.items():
                        waiting = self._pending.setdefault(channel, [])
                        for entry in entries:
                            waiting.extend(entry)
                    self._confirming.clear()
                await conn.disconnect(nowait=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _release_all(self) -> None:
        """Releases subscribe() calls for channels no longer wanted (or all, when closing)."""
        for channel in list(self._pending):
            if self._closing or channel not in self._wanted:
                for waiter in self._pending.pop(channel):
                    if not waiter.done():
                        waiter.set_result(None)

    async def _read(self, conn: AbstractConnection) -> None:
        pinged = False
        prefix = self.prefix.encode()
        while True:
            try:
                reply = await conn.read_response(
                    disable_decoding=True,
                    timeout=self.health_interval,
                    disconnect_on_error=False,
                )
            except ResponseError as e:
                logger.error("broker subscriber connection: %s", e)
                continue
            if reply is None:  # nothing for health_interval seconds
                if pinged:
                    raise TimeoutError("no reply to PING on the subscriber connection")
                pinged = True
                async with self._send_lock:
                    await conn.send_command("PING", check_health=False)
                continue
            pinged = False
            if not isinstance(reply, list) or len(reply) < 2:
                continue  # +PONG outside subscribed mode
            kind = reply[0]
            if kind == b"message" and len(reply) == 3:
                raw, payload = reply[1], reply[2]
                if not raw.startswith(prefix):
                    continue
                channel = raw[len(prefix) :].decode()
                if channel in self._wanted and self._on_message is not None:
                    try:
                        self._on_message(channel, payload)
                    except Exception:
                        logger.exception("broker on_message failed for %s", channel)
            elif kind == b"subscribe":
                channel = bytes(reply[1])[len(prefix) :].decode()
                entries = self._confirming.get(channel)
                if entries:
                    for waiter in entries.popleft():
                        if not waiter.done():
                            waiter.set_result(None)
                    if not entries:
                        del self._confirming[channel]


def _parse_status(value: bytes) -> tuple[Status, str]:
    status, _, member = _text(value).partition(":")
    return _STATUSES.get(status, "offline"), member


def _combine(statuses: Iterable[Status]) -> Status:
    """Online if any is online, away if all are away, else offline (also for none)."""
    listed = list(statuses)
    if "online" in listed:
        return "online"
    if listed and all(s == "away" for s in listed):
        return "away"
    return "offline"


class RedisPresence:
    """Presence entries with TTLs in Redis; see the module docstring for the keys.

    ``now`` always comes from the caller (never Redis's clock). An entry is live while its
    expiry (last ``set``/``touch`` + ``ttl_ms``) is greater than ``now``. Every change of an
    entity's combined status is computed and compared-and-stored in one script, so exactly
    one caller, on any node, gets it.

    Entities with no entries keep their meta hash (last status and last_seen) for
    ``last_seen_retention_ms`` (Redis's clock; ``0`` keeps it).
    """

    _update = _Script("presence_update.lua")
    _touch = _Script("presence_touch.lua")
    _read = _Script("presence_read.lua")

    def __init__(
        self,
        redis: Redis | str,
        prefix: str = "chat:",
        *,
        ttl_ms: int = 30_000,
        last_seen_retention_ms: int = 90 * 24 * 3600 * 1000,
        expire_batch: int = 500,
        ping_timeout: float = 1.0,
    ) -> None:
        self._redis, self._owned = _client(redis)
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self.last_seen_retention_ms = last_seen_retention_ms
        self.expire_batch = expire_batch
        self.ping_timeout = ping_timeout
        self._due = f"{prefix}p:due"

    def _keys(self, entity: str) -> list[str]:
        p = self.prefix
        return [f"{p}p:e:{entity}", f"{p}p:x:{entity}", f"{p}p:m:{entity}", self._due]

    def _args(self, op: str, entity: str, now: int, *more: str) -> list[str | bytes]:
        return [op, str(now), str(self.ttl_ms), entity, str(self.last_seen_retention_ms), *more]

    @staticmethod
    def _change(entity: str, reply: list[Any]) -> PresenceState | None:
        if not reply[0]:
            return None
        seen = int(reply[2]) if len(reply) > 2 and reply[2] is not None else None
        return PresenceState(entity, _STATUSES[_text(reply[1])], seen)

    async def close(self) -> None:
        if self._owned:
            await self._redis.aclose()

    async def ping(self) -> bool:
        return await _ping(self._redis, self.ping_timeout)

    async def set(
        self, entity: str, member: str, conn: str, status: Status, now: int
    ) -> PresenceState | None:
        if status not in _STATUSES:
            raise ValueError(f"unknown status {status!r}")
        reply = await self._update.run(
            self._redis, self._keys(entity), self._args("set", entity, now, conn, status, member)
        )
        return self._change(entity, reply)

    async def remove(self, entity: str, member: str, conn: str, now: int) -> PresenceState | None:
        reply = await self._update.run(
            self._redis, self._keys(entity), self._args("remove", entity, now, conn)
        )
        return self._change(entity, reply)

    async def touch(self, entries: list[tuple[str, str, str]], now: int) -> None:
        by_entity: dict[str, list[str]] = {}
        for entity, _member, conn in entries:
            by_entity.setdefault(entity, []).append(conn)
        p = self.prefix
        await self._touch.run_many(
            self._redis,
            [
                ([f"{p}p:x:{entity}", self._due], [str(now), str(self.ttl_ms), entity, *conns])
                for entity, conns in by_entity.items()
            ],
        )

    async def expire(self, now: int) -> list[PresenceState]:
        changes: list[PresenceState] = []
        while True:
            due = await self._redis.zrangebyscore(
                self._due, "-inf", now, start=0, num=self.expire_batch
            )
            entities = [_text(cast(bytes, e)) for e in due]
            replies = await self._update.run_many(
                self._redis,
                [(self._keys(e), self._args("expire", e, now)) for e in entities],
            )
            for entity, reply in zip(entities, replies, strict=True):
                change = self._change(entity, reply)
                if change is not None:
                    changes.append(change)
            if len(entities) < self.expire_batch:
                return changes

    async def _live(self, entities: list[str], now: int) -> list[tuple[int | None, list[bytes]]]:
        p = self.prefix
        replies = await self._read.run_many(
            self._redis,
            [
                ([f"{p}p:e:{e}", f"{p}p:x:{e}", f"{p}p:m:{e}"], [str(now), str(self.ttl_ms)])
                for e in entities
            ],
        )
        out = []
        for reply in replies:
            seen = _text(reply[0])
            out.append((int(seen) if seen else None, list(reply[1:])))
        return out

    async def get(self, entities: list[str], now: int) -> dict[str, PresenceState]:
        result = {}
        for entity, (seen, values) in zip(entities, await self._live(entities, now), strict=True):
            status = _combine(_parse_status(v)[0] for v in values)
            result[entity] = PresenceState(entity, status, now if status != "offline" else seen)
        return result

    async def members(self, entity: str, now: int) -> dict[str, Status]:
        [(_seen, values)] = await self._live([entity], now)
        by_member: dict[str, list[Status]] = {}
        for value in values:
            status, member = _parse_status(value)
            by_member.setdefault(member, []).append(status)
        return {m: _combine(s) for m, s in by_member.items()}


_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})")
_MAX_U64 = 2**64 - 1


def _stream_id(value: str | bytes) -> tuple[int, int] | None:
    match = _STREAM_ID.fullmatch(_text(value))
    if match is None:
        return None
    ms, seq = int(match[1]), int(match[2])
    if ms > _MAX_U64 or seq > _MAX_U64:
        return None
    return ms, seq


class RedisInbox:
    """Per-user Redis streams; ids are stream ids, so cursors survive a hub restart.

    Retention: about ``max_entries`` per user (``MAXLEN ~``, so a few hundred more may be
    kept), entries older than ``retention_ms`` before the newest one, and the whole stream
    ``retention_ms`` after its last append. ``read`` answers ``None`` for any cursor that
    may have missed an entry: malformed, newer than the stream, below the stream's
    low-water mark (trimmed, or from an earlier stream that expired), or on a missing
    stream (unless it is ``"0-0"``). See ``lua/inbox_append.lua``.
    """

    _append = _Script("inbox_append.lua")
    _tail = _Script("inbox_tail.lua")
    _read = _Script("inbox_read.lua")

    def __init__(
        self,
        redis: Redis | str,
        prefix: str = "chat:",
        *,
        max_entries: int = 10_000,
        retention_ms: int = 7 * 24 * 3600 * 1000,
        ping_timeout: float = 1.0,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._redis, self._owned = _client(redis)
        self.prefix = prefix
        self.max_entries = max_entries
        self.retention_ms = retention_ms
        self.ping_timeout = ping_timeout
        self._pending: list[tuple[list[tuple[str, bytes]], asyncio.Future[list[str]]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def _key(self, user: str) -> str:
        return f"{self.prefix}i:{user}"

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flusher), 5)
        if self._owned:
            await self._redis.aclose()

    async def ping(self) -> bool:
        return await _ping(self._redis, self.ping_timeout)

    async def append(self, entries: list[tuple[str, bytes]]) -> list[str]:
        """Queue the entries for the next batch; every caller of one loop pass shares a
        single pipelined round trip, and batches go out one at a time, in order.

        (One pipeline per caller opened a pool connection per message under load and
        ran out of them.)"""
        if not entries:
            return []
        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending.append((entries, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await fut

    async def _flush(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # let this loop pass's callers join the batch
            batch, self._pending = self._pending, []
            try:
                ids = await self._append_now([e for entries, _ in batch for e in entries])
            except BaseException as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            start = 0
            for entries, fut in batch:
                if not fut.done():
                    fut.set_result(ids[start:start + len(entries)])
                start += len(entries)

    async def _append_now(self, entries: list[tuple[str, bytes]]) -> list[str]:
        by_user: dict[str, list[int]] = {}
        for i, (user, _payload) in enumerate(entries):
            by_user.setdefault(user, []).append(i)
        users = list(by_user)
        settings = [str(self.max_entries), str(self.retention_ms)]
        replies = await self._append.run_many(
            self._redis,
            [
                ([self._key(u)], [*settings, *(entries[i][1] for i in by_user[u])])
                for u in users
            ],
        )
        ids = [""] * len(entries)
        for user, reply in zip(users, replies, strict=True):
            for i, new_id in zip(by_user[user], reply, strict=True):
                ids[i] = _text(new_id)
        return ids

    async def tail(self, user: str) -> str:
        """The stream's last id; a missing stream is created empty for it to have one."""
        return _text(await self._tail.run(self._redis, [self._key(user)], [str(self.retention_ms)]))

    async def read(self, user: str, after: str, limit: int) -> list[tuple[str, bytes]] | None:
        cursor = _stream_id(after)
        if cursor is None:
            return None
        reply = await self._read.run(
            self._redis, [self._key(user)], [after, str(max(limit, 0) + 1)]
        )
        if reply is None:
            # Never existed or expired: only the zero cursor is known to have missed nothing.
            return [] if cursor == (0, 0) else None
        last, mark, rows = _stream_id(reply[0]), _stream_id(reply[1]), reply[2]
        if last is None or mark is None or cursor > last or cursor < mark:
            return None
        out: list[tuple[str, bytes]] = []
        for raw_id, fields in rows:
            entry_id = _text(raw_id)
            if _stream_id(entry_id) == cursor:
                continue
            payload = b""
            for k in range(0, len(fields) - 1, 2):
                if fields[k] == b"d":
                    payload = fields[k + 1]
            out.append((entry_id, payload))
        return out[: max(limit, 0)]
