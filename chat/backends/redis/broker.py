"""Routing between hub nodes over Redis pub/sub (see the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from .client import (
    UNREACHABLE,
    Health,
    connect,
    describe,
    is_stale,
    logger,
    make_client,
    own_connection,
    ping_within,
    stop_if_cancelled,
)


class BatchingPublisher:
    """The publishing half of a broker: ``publish`` appends to a buffer; a flusher task sends
    everything buffered in one pipelined round trip (``_send_batch``), then everything
    buffered meanwhile in the next one. A batch that fails is dropped, never resent: at most
    once. ``_flushed_up_to`` lets ``subscribe`` wait until what was published before it has
    reached Redis."""

    def __init__(self, prefix: str, flush_timeout: float, max_buffer: int, max_batch: int) -> None:
        self.prefix = prefix
        self.flush_timeout = flush_timeout
        self.max_buffer = max_buffer
        self.max_batch = max_batch
        self._closing = False
        self._health = Health("redis broker")
        self._buffer: list[tuple[str, bytes]] = []
        self._published = 0  # payloads handed to publish() (and buffered)
        self._flushed = 0  # of which sent or dropped
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._dropped = 0
        self._flusher: asyncio.Task[None] | None = None

    async def _send_batch(self, batch: list[tuple[str, bytes]]) -> None:
        raise NotImplementedError

    async def _publisher_failed(self) -> None:
        """Called after a batch failed: drop the connections it may have left half-written."""

    def _subscriber_up(self) -> bool:
        return True

    async def _stop_flusher(self) -> None:
        """Lets the flusher send what is buffered (for at most ``flush_timeout``)."""
        self._wake.set()
        if self._flusher is not None:
            try:
                async with asyncio.timeout(self.flush_timeout):
                    await asyncio.shield(self._flusher)
            except TimeoutError:
                pass

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
            stop_if_cancelled()
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
                if isinstance(e, UNREACHABLE):
                    self._health.lost(f"publishing failed, dropping payloads: {describe(e)}")
                elif not failing:
                    logger.exception("broker publishing failed, dropping payloads")
                failing += len(batch)
                await self._publisher_failed()
                if not self._closing:
                    await asyncio.sleep(0.1)  # Redis is likely away: let a batch build up
            else:
                if failing or self._dropped:
                    dropped = failing + self._dropped
                    logger.debug("broker publishing again; %d payloads were dropped", dropped)
                    if self._subscriber_up():  # else the subscriber reports the return
                        self._health.back(f"; {dropped} payloads were dropped")
                    failing = self._dropped = 0
            self._flushed += len(batch)
            self._finish_flushes()


class RedisBroker(BatchingPublisher):
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
        super().__init__(prefix, flush_timeout, max_buffer, max_batch)
        redis, self._owned = make_client(redis)
        if not isinstance(redis, Redis):
            raise TypeError("RedisBroker needs a single Redis; use RedisClusterBroker for a cluster")
        self._redis = redis
        self.health_interval = health_interval
        self.subscribe_timeout = subscribe_timeout
        self.reconnect_max = reconnect_max
        self.ping_timeout = ping_timeout
        self._on_message: Callable[[str, bytes], None] | None = None
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
        self._pub_conn: AbstractConnection | None = None

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
        await self._stop_flusher()
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
        return await ping_within(self._redis, self.ping_timeout)

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

    async def _publisher_failed(self) -> None:
        conn, self._pub_conn = self._pub_conn, None
        if conn is not None:
            await conn.disconnect(nowait=True)

    def _subscriber_up(self) -> bool:
        return self._sub_conn is not None

    async def _send_batch(self, batch: list[tuple[str, bytes]]) -> None:
        """Sends one batch. A publisher connection found closed before writing (Redis restarted
        since the last batch) is replaced: the batch has not been written, so sending it on the
        new one cannot deliver anything twice. A failure after writing is not retried."""
        conn = self._pub_conn
        if conn is not None and await is_stale(conn):
            self._pub_conn = None
            await conn.disconnect(nowait=True)
            conn = None
        if conn is None:
            conn = own_connection(self._redis)
            await connect(conn)
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
            stop_if_cancelled()
            conn = own_connection(self._redis)
            try:
                await connect(conn)
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
                self._health.lost(f"subscriber connection lost: {describe(e)}")
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
            stop_if_cancelled()
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
