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

The presence scripts live in ``lua/`` next to this module, each starting with a
description of its KEYS and ARGV. Presence keeps all of an entity's keys and the shared
``p:due`` in one script call, so it needs a single Redis (not a cluster).

Redis going away (or restarting, empty or not) is survived, not prevented: calls fail
within a couple of seconds while it is away, each backend logs one warning when it loses
Redis and one info line when it is back, the broker reconnects and resubscribes by
itself, and the hub's presence heartbeats re-create what a restart lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:
    from redis.maint_notifications import MaintNotificationsConfig
except ImportError:  # older redis-py: no maintenance notifications to switch off
    _POOL_OPTIONS: dict[str, Any] = {}
else:
    # Left on ("auto"), they make the pool hand out connections the server has closed
    # without checking them, so the first calls after a Redis restart fail on dead sockets.
    _POOL_OPTIONS = {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}

from .base import PresenceState, Status, combine

__all__ = ["RedisBroker", "RedisPresence"]

logger = logging.getLogger(__name__)

_LUA = Path(__file__).with_name("lua")

_STATUSES: dict[str, Status] = {"online": "online", "away": "away", "offline": "offline"}

CONNECT_TIMEOUT = 1.0
"""Seconds to open a connection: Redis is on the local network, or it is away."""
SOCKET_TIMEOUT = 2.0
"""Seconds to wait for one reply: a call made for a client fails within this, not 15 s later."""
POOL_TIMEOUT = 2.0
"""Seconds to wait for a free pooled connection (all 64 busy): a burst of logins waits
its turn, but callers queued behind a Redis that stopped answering are not kept 20 s."""

UNREACHABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)
"""What a Redis call raises while Redis cannot be reached (the hub answers 5002 for these)."""
_UNREACHABLE = UNREACHABLE
"""Errors that mean Redis is away (or too slow), as opposed to a refused command."""


def _client(redis: Redis | str) -> tuple[Redis, bool]:
    """The client to use and whether this object owns it (and must close it).

    From a URL: a pool that makes callers wait for a free connection. redis-py's
    default pool raises once 100 are busy, which a thousand clients connecting at
    once (presence for each) reach easily. Timeouts are short so that calls made on
    behalf of a client fail fast while Redis is away. A call that finds its pooled
    connection closed by the server is retried once on a new connection: after a
    restart the pool still holds the old, dead sockets."""
    if isinstance(redis, str):
        pool = BlockingConnectionPool.from_url(
            redis,
            max_connections=64,
            timeout=POOL_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            **_POOL_OPTIONS,
        )
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


def _stop_if_cancelled() -> None:
    """Raises CancelledError if the current task was cancelled and some library swallowed it
    (Python 3.11's ``asyncio.wait_for``): a loop that went on would never stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class _Health:
    """Whether one backend can reach Redis, for the logs: one warning when it loses Redis
    and one info line when it is back, per outage, instead of a traceback per failed call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down = False
        self.failures = 0

    def lost(self, error: BaseException | str) -> None:
        self.failures += 1
        if self.down:
            logger.debug("%s: Redis still unreachable: %s", self.name, _describe(error))
            return
        self.down = True
        logger.warning("%s: Redis unreachable (%s); failing fast until it is back", self.name, _describe(error))

    def back(self, detail: str = "") -> None:
        if self.down:
            self.down = False
            logger.info("%s: Redis is back after %d failures%s", self.name, self.failures, detail)
            self.failures = 0

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """Reports the outcome of the calls made inside (other errors pass unreported)."""
        try:
            yield
        except _UNREACHABLE as e:
            self.lost(e)
            raise
        self.back()


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

    Retrying is left to the caller: a resent PUBLISH batch would deliver twice. It has no
    socket timeout (the broker bounds each wait itself): with one, redis-py writes through
    ``asyncio.wait_for``, which on Python 3.11 can swallow the cancellation that stops the
    broker's tasks.
    """
    pool = redis.connection_pool
    kwargs = dict(pool.connection_kwargs)
    kwargs.update(protocol=2, retry=Retry(NoBackoff(), 0), health_check_interval=0, socket_timeout=None)
    kwargs.pop("retry_on_error", None)
    kwargs.pop("retry_on_timeout", None)
    kwargs.pop("maint_notifications_config", None)
    kwargs.pop("maint_notifications_pool_handler", None)
    return pool.connection_class(**kwargs)


async def _connect(conn: AbstractConnection) -> None:
    await conn.connect()  # type: ignore[no-untyped-call]


async def _stale(conn: AbstractConnection) -> bool:
    """True if the server has closed this idle connection (a restarted Redis leaves its old
    connections at end-of-file, or reset) or sent something unasked: a command written to it
    would be lost. Nothing is written, so a batch meant for it may go on a new one."""
    writer = conn._writer
    if writer is None or writer.is_closing():
        return True
    # redis-py 8 renamed can_read_destructive (deprecated there) to can_read.
    can_read = getattr(conn, "can_read", None) or conn.can_read_destructive
    try:
        return bool(await can_read())
    except (RedisError, OSError):
        return True


class RedisBroker:
    """Pub/sub across nodes: one subscriber connection and one publisher connection per node.

    * ``subscribe`` returns once Redis has confirmed the subscription, and only after every
      payload this node published before the call has reached Redis (so those are never
      delivered to this node, as if it had subscribed later).
    * ``publish`` appends to a buffer; a flusher task sends everything buffered in one
      pipelined round trip, then everything buffered meanwhile in the next one. A batch
      that fails is dropped, never resent: at most once. Before a batch is written the
      publisher connection is checked: one the server closed (Redis restarted) is replaced
      first, so the first batches after a restart are not lost on a dead socket.
    * The subscriber connection is checked with a PING when idle for ``health_interval``
      seconds; when it drops it is reopened (retrying every ``reconnect_max`` seconds at
      most, so delivery resumes soon after Redis does) and every channel subscribed again.
    * ``subscribe`` gives up after ``subscribe_timeout`` seconds (Redis away) rather than
      keep a client's request waiting for the whole outage.
    * Losing Redis is logged once as a warning and its return once as info.
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
        subscribe_timeout: float = 2.0,
        reconnect_max: float = 0.5,
    ) -> None:
        self._redis, self._owned = _client(redis)
        self.prefix = prefix
        self.health_interval = health_interval
        self.subscribe_timeout = subscribe_timeout
        self.reconnect_max = reconnect_max
        self._health = _Health("redis broker")
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
        """Raises TimeoutError after ``subscribe_timeout`` seconds without Redis's confirmation
        (Redis away); a channel this call added is then dropped again."""
        if self._reader is None or self._closing:
            raise RuntimeError("RedisBroker is not running")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        added = False
        try:
            async with asyncio.timeout(self.subscribe_timeout):
                await self._flushed_up_to(self._published)
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
                        added = True
                        if conn is None:
                            self._pending.setdefault(channel, []).append(waiter)
                        else:
                            self._confirming.setdefault(channel, deque()).append([waiter])
                            try:
                                await conn.send_command(
                                    "SUBSCRIBE", self.prefix + channel, check_health=False
                                )
                            except (RedisError, OSError) as e:
                                # The reader sees the connection fail too, reconnects and
                                # subscribes to every wanted channel, which releases the waiter.
                                logger.debug("SUBSCRIBE %s not sent: %s", channel, e)
                await waiter
        except TimeoutError:
            await self._abandon(channel, waiter, added)
            raise TimeoutError(
                f"Redis did not confirm the subscription to {channel!r} "
                f"within {self.subscribe_timeout:g} s"
            ) from None

    async def _abandon(self, channel: str, waiter: asyncio.Future[None], added: bool) -> None:
        """Forgets a subscribe() call that timed out, and its channel if that call added it and
        no other call waits for it: the caller got an error, so nothing will unsubscribe it."""
        async with self._send_lock:
            pending = self._pending.get(channel, [])
            if waiter in pending:
                pending.remove(waiter)
            for entry in self._confirming.get(channel, ()):
                if waiter in entry:
                    entry.remove(waiter)
            waiting = bool(self._pending.get(channel)) or any(self._confirming.get(channel, ()))
            if not added or waiting or channel not in self._wanted:
                return
            self._wanted.discard(channel)
            self._pending.pop(channel, None)
            conn = self._sub_conn
            if conn is not None:
                try:
                    await conn.send_command("UNSUBSCRIBE", self.prefix + channel, check_health=False)
                except (RedisError, OSError) as e:
                    logger.debug("UNSUBSCRIBE %s not sent: %s", channel, e)

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
            _stop_if_cancelled()
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
                if isinstance(e, _UNREACHABLE):
                    self._health.lost(f"publishing failed, dropping payloads: {_describe(e)}")
                elif not failing:
                    logger.exception("broker publishing failed, dropping payloads")
                failing += len(batch)
                conn, self._pub_conn = self._pub_conn, None
                if conn is not None:
                    await conn.disconnect(nowait=True)
                if not self._closing:
                    await asyncio.sleep(0.1)  # Redis is likely away: let a batch build up
            else:
                if failing or self._dropped:
                    dropped = failing + self._dropped
                    logger.debug("broker publishing again; %d payloads were dropped", dropped)
                    if self._sub_conn is not None:  # else the subscriber reports the return
                        self._health.back(f"; {dropped} payloads were dropped")
                    failing = self._dropped = 0
            self._flushed += len(batch)
            self._finish_flushes()

    async def _send_batch(self, batch: list[tuple[str, bytes]]) -> None:
        """Sends one batch. A publisher connection found closed before writing (Redis restarted
        since the last batch) is replaced: the batch has not been written, so sending it on the
        new one cannot deliver anything twice. A failure after writing is not retried."""
        conn = self._pub_conn
        if conn is not None and await _stale(conn):
            self._pub_conn = None
            await conn.disconnect(nowait=True)
            conn = None
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
        while True:
            _stop_if_cancelled()
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
                self._health.back(f"; resubscribed {len(channels)} channels")
                delay = 0.05
                self._attempted.set()
                await self._read(conn)
            except (RedisError, OSError, TimeoutError) as e:
                self._health.lost(f"subscriber connection lost: {_describe(e)}")
            except Exception:
                logger.exception("broker subscriber failed; reconnecting")
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
            delay = min(delay * 2, self.reconnect_max)

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
            _stop_if_cancelled()
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


class RedisPresence:
    """Presence entries with TTLs in Redis; see the module docstring for the keys.

    ``now`` always comes from the caller (never Redis's clock). An entry is live while its
    expiry (last ``set``/``touch`` + ``ttl_ms``) is greater than ``now``. Every change of an
    entity's combined status is computed and compared-and-stored in one script, so exactly
    one caller, on any node, gets it.

    Entities with no entries keep their meta hash (last status and last_seen) for
    ``last_seen_retention_ms`` (Redis's clock; ``0`` keeps it).

    Nothing here survives a Redis restarted empty but the nodes' heartbeats, which
    ``touch`` turns back into entries (and reports as changes).
    """

    _update = _Script("presence_update.lua")
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
        self._health = _Health("redis presence")

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
        ok = await _ping(self._redis, self.ping_timeout)
        if ok:
            self._health.back()
        else:
            self._health.lost("no answer to PING")
        return ok

    async def set(
        self, entity: str, member: str, conn: str, status: Status, now: int
    ) -> PresenceState | None:
        if status not in _STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._health.watch():
            reply = await self._update.run(
                self._redis, self._keys(entity), self._args("set", entity, now, conn, status, member)
            )
        return self._change(entity, reply)

    async def remove(self, entity: str, member: str, conn: str, now: int) -> PresenceState | None:
        with self._health.watch():
            reply = await self._update.run(
                self._redis, self._keys(entity), self._args("remove", entity, now, conn)
            )
        return self._change(entity, reply)

    async def touch(self, entries: list[tuple[str, str, str, Status]], now: int) -> list[PresenceState]:
        """One script call per entity, all in one round trip (see ``lua/presence_update.lua``)."""
        by_entity: dict[str, list[str]] = {}
        for entity, member, conn, status in entries:
            if status not in _STATUSES:
                raise ValueError(f"unknown status {status!r}")
            by_entity.setdefault(entity, []).extend((conn, status, member))
        if not by_entity:
            return []  # no call, so nothing learnt about Redis either
        with self._health.watch():
            replies = await self._update.run_many(
                self._redis,
                [(self._keys(e), self._args("touch", e, now, *more)) for e, more in by_entity.items()],
            )
        changes = []
        for entity, reply in zip(by_entity, replies, strict=True):
            change = self._change(entity, reply)
            if change is not None:
                changes.append(change)
        return changes

    async def expire(self, now: int) -> list[PresenceState]:
        with self._health.watch():
            return await self._expire(now)

    async def _expire(self, now: int) -> list[PresenceState]:
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
        if not entities:
            return {}
        with self._health.watch():
            live = await self._live(entities, now)
        result = {}
        for entity, (seen, values) in zip(entities, live, strict=True):
            status = combine(_parse_status(v)[0] for v in values)
            result[entity] = PresenceState(entity, status, now if status != "offline" else seen)
        return result

    async def members(self, entity: str, now: int) -> dict[str, Status]:
        with self._health.watch():
            [(_seen, values)] = await self._live([entity], now)
        by_member: dict[str, list[Status]] = {}
        for value in values:
            status, member = _parse_status(value)
            by_member.setdefault(member, []).append(status)
        return {m: combine(s) for m, s in by_member.items()}
