"""What the Redis backends share: clients that fail fast, scripts, outage logging."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterError, NoScriptError, RedisError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

try:
    from redis.maint_notifications import MaintNotificationsConfig
except ImportError:  # older redis-py: no maintenance notifications to switch off
    _POOL_OPTIONS: dict[str, Any] = {}
else:
    # Left on ("auto"), they make the pool hand out connections the server has closed
    # without checking them, so the first calls after a Redis restart fail on dead sockets.
    _POOL_OPTIONS = {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}

from ..base import Status

logger = logging.getLogger(__package__)
"""One logger for every Redis backend: the outage lines are read by operators as one stream."""

LUA = Path(__file__).resolve().parent.parent / "lua"

STATUSES: dict[str, Status] = {"online": "online", "away": "away", "offline": "offline"}

CONNECT_TIMEOUT = 1.0
"""Seconds to open a connection: Redis is on the local network, or it is away."""
SOCKET_TIMEOUT = 2.0
"""Seconds to wait for one reply: a call made for a client fails within this, not 15 s later."""
POOL_TIMEOUT = 2.0
"""Seconds to wait for a free pooled connection (all 64 busy): a burst of logins waits
its turn, but callers queued behind a Redis that stopped answering are not kept 20 s."""

POOL_SIZE = 64
"""Connections a client keeps to one Redis (to each master of a cluster)."""

UNREACHABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError, RedisTimeoutError, OSError, TimeoutError,
    # A cluster failing over: CLUSTERDOWN, MASTERDOWN and TRYAGAIN answers (a cluster with no
    # node reachable, or no master for a slot, raises topology.ClusterUnavailable, a ConnectionError).
    ClusterError, TryAgainError,
)
"""What a Redis call raises while Redis cannot be reached (the hub answers 5002 for these):
errors that mean Redis is away (or too slow), as opposed to a refused command."""

CLUSTER_SCHEME = "redis+cluster://"


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEME)


def cluster_startup_nodes(url: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """``redis+cluster://[user:password@]host:port[,host:port...]`` -> nodes, user, password.

    Any node will do to discover the cluster; listing several lets a node start while some
    are away. There is no database number in a cluster (only 0)."""
    if not is_cluster_url(url):
        raise ValueError(f"not a Redis Cluster URL (expected {CLUSTER_SCHEME}host:port,...): {url!r}")
    rest = url[len(CLUSTER_SCHEME):]
    rest, _, tail = rest.partition("/")
    if tail.strip("/") not in ("", "0"):
        raise ValueError(f"a Redis Cluster has only database 0: {url!r}")
    user = password = None
    if "@" in rest:
        auth, _, rest = rest.rpartition("@")
        user, sep, password = auth.partition(":")
        if not sep:
            user, password = None, user
        user = unquote(user) if user else None
        password = unquote(password) if password else None
    nodes = []
    for spec in rest.split(","):
        host, _, port = spec.strip().rpartition(":")
        if not host:
            host, port = port, "6379"
        if not host:
            raise ValueError(f"empty node in Redis Cluster URL {url!r}")
        nodes.append((host.strip("[]"), int(port)))
    return nodes, user, password


def make_client(redis: Redis | str, **options: Any) -> tuple[Redis, bool]:
    """The client to use and whether this object owns it (and must close it).

    From a URL: a pool that makes callers wait for a free connection. redis-py's
    default pool raises once 100 are busy, which a thousand clients connecting at
    once (presence for each) reach easily. Timeouts are short so that calls made on
    behalf of a client fail fast while Redis is away. A call that finds its pooled
    connection closed by the server is retried once on a new connection: after a
    restart the pool still holds the old, dead sockets. ``options`` go to the pool's
    connections (a cluster's per-master clients pass the credentials and client name)."""
    if isinstance(redis, str):
        pool = BlockingConnectionPool.from_url(
            redis,
            max_connections=POOL_SIZE,
            timeout=POOL_TIMEOUT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            **_POOL_OPTIONS,
            **options,
        )
        return Redis.from_pool(pool), True  # the client owns the pool: aclose() disconnects it
    if redis.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError("the Redis client must be created with decode_responses=False")
    return redis, False


async def ping_within(redis: Redis, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            return bool(await redis.ping())
    except (RedisError, OSError, TimeoutError):
        return False


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stop_if_cancelled() -> None:
    """Raises CancelledError if the current task was cancelled and some library swallowed it
    (Python 3.11's ``asyncio.wait_for``): a loop that went on would never stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def describe(error: BaseException | str) -> str:
    if isinstance(error, str):
        return error
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class Health:
    """Whether one backend can reach Redis, for the logs: one warning when it loses Redis
    and one info line when it is back, per outage, instead of a traceback per failed call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down = False
        self.failures = 0

    def lost(self, error: BaseException | str) -> None:
        self.failures += 1
        if self.down:
            logger.debug("%s: Redis still unreachable: %s", self.name, describe(error))
            return
        self.down = True
        logger.warning("%s: Redis unreachable (%s); failing fast until it is back", self.name, describe(error))

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
        except UNREACHABLE as e:
            self.lost(e)
            raise
        self.back()


class Script:
    """A Lua script from ``lua/``, run by hash and loaded when Redis does not know it."""

    def __init__(self, name: str) -> None:
        self.source = (LUA / name).read_text("utf-8")
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


def own_connection(redis: Redis) -> AbstractConnection:
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


async def connect(conn: AbstractConnection) -> None:
    await conn.connect()  # type: ignore[no-untyped-call]


async def is_stale(conn: AbstractConnection) -> bool:
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
