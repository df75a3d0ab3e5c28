"""Connections of the PostgreSQL chat store: the append writer (group commit) and the pool.

:class:`AppendWriter` is one task with one connection. It takes every append queued
since its last commit and stores the batch with :data:`pg_queries.APPEND_BATCH`: one
statement in autocommit, so one round trip and one commit for the batch, whatever
conversations it touches. How one bad append is kept from spoiling the others is told
in :mod:`chat.store.postgres`.

:class:`Pool` lends the connections everything else runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus

from . import pg_queries as q
from .base import Appended, ClientIdReused, MessageRecord, NotFound, Role, StoreError
from .chat_events import NewEvent
from .encoding import unpack

Conn = psycopg.AsyncConnection[Any]
log = logging.getLogger(__name__)

RETRY = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
"""Failures that say nothing about the request: run the transaction again."""
ATTEMPTS = 20


def unreachable(exc: BaseException) -> ConnectionError:
    """What callers get for a lost connection: the hub's "store unreachable"."""
    error = ConnectionError(f"chat store: {exc}")
    error.__cause__ = exc
    return error


async def connect(url: str, schema: str, *, app: str, store: str) -> Conn:
    """An autocommit connection working in ``schema``. ``app`` names it in ``pg_stat_activity``
    (which store it serves); a failure to connect is a ConnectionError naming ``store``."""
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, options=f"-c search_path={schema}", application_name=f"{app}:{schema}",
        )
    except psycopg.OperationalError as exc:
        raise ConnectionError(f"{store}: {exc}") from exc


async def backoff(attempt: int) -> None:
    await asyncio.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))


class Pool:
    """At most ``size`` connections, reused newest first; one that is broken, or not idle
    when handed back, is closed rather than reused."""

    def __init__(self, connect: Callable[[], Awaitable[Conn]], size: int) -> None:
        self._connect = connect
        self._idle: list[Conn] = []
        self._slots = asyncio.Semaphore(size)
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[tuple[Conn, bool]]:
        """A connection, and whether it was reused (a reused one may have gone stale)."""
        async with self._slots:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect()
            try:
                yield conn, reused
            finally:
                if self._closed or conn.broken or conn.info.transaction_status != TransactionStatus.IDLE:
                    await conn.close()
                else:
                    self._idle.append(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


@dataclass(slots=True)
class Append:
    """One queued append; ``body`` packed, ``digest`` of the unpacked body (as SQLite's),
    ``before``/``after`` its canonical encoding around the seq (:func:`chain.split`)."""

    conv: str
    sender: str
    role: Role
    kind: str
    body: bytes
    ts: int
    cmid: str | None
    digest: bytes
    auto: bool
    before: bytes
    after: bytes
    future: asyncio.Future[Appended]
    events: Sequence[NewEvent] = ()

    def settle(self, result: Appended | BaseException) -> None:
        if self.future.done():
            return
        if isinstance(result, BaseException):
            self.future.set_exception(result)
        else:
            self.future.set_result(result)

    def outcome(self, row: tuple[Any, ...] | None) -> Appended | StoreError:
        """What the batch statement's row for this append (None: no row) means."""
        if row is None:
            return NotFound(self.conv)
        _, duplicate, seq, role, kind, body, ts, recalled, stored_digest, agent, link = row
        link = None if link is None else bytes(link).hex()
        if not duplicate:
            record = MessageRecord(
                self.conv, int(seq), self.sender, self.role, self.kind, unpack(self.body), self.ts, self.cmid,
                hash=link,
            )
            return Appended(record, False, agent)
        if bytes(stored_digest) != self.digest:
            return ClientIdReused(self.cmid or "")
        stored = MessageRecord(
            self.conv, int(seq), self.sender, role, kind, unpack(body), int(ts), self.cmid, recalled, hash=link
        )
        return Appended(stored, True, agent)


class AppendWriter:
    """The single writer task of one store instance (one node)."""

    def __init__(self, connect: Callable[[], Awaitable[Conn]], max_batch: int) -> None:
        self._connect = connect
        self.max_batch = max_batch
        self._conn: Conn | None = None
        self._queue: asyncio.Queue[Append | None] = asyncio.Queue()
        self._deferred: list[Append] = []
        self._task = asyncio.create_task(self._loop(), name="chat-store-writer")

    def submit(self, request: Append) -> None:
        self._queue.put_nowait(request)

    async def close(self) -> None:
        """Store everything queued so far, then stop."""
        self._queue.put_nowait(None)
        await self._task
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _loop(self) -> None:
        stopping = False
        while not stopping:
            if self._deferred:
                batch, self._deferred = self._deferred, []
            else:
                first = await self._queue.get()
                if first is None:
                    break
                batch = [first]
            while len(batch) < self.max_batch and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                await self._commit(batch)
            except BaseException as exc:  # never leave a caller waiting
                for req in [*batch, *self._deferred]:
                    req.settle(exc if isinstance(exc, Exception) else ConnectionError("the store is closed"))
                raise
            if stopping and self._deferred:  # answer them before stopping
                stopping = False
                self._queue.put_nowait(None)

    async def _commit(self, batch: list[Append]) -> None:
        leaders: list[Append] = []
        seen: set[tuple[str, str, str]] = set()
        for req in batch:
            if req.cmid is not None:
                key = (req.conv, req.sender, req.cmid)
                if key in seen:
                    self._deferred.append(req)  # answered from the store once its twin is committed
                    continue
                seen.add(key)
            leaders.append(req)
        try:
            rows = await self._run(leaders)
        except (psycopg.OperationalError, ConnectionError) as exc:
            # Cut off, perhaps after the commit: not retried here (see chat.store.postgres).
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            for req in [*leaders, *self._deferred]:
                req.settle(exc if isinstance(exc, ConnectionError) else unreachable(exc))
            self._deferred = []
            return
        except Exception as exc:
            if len(leaders) == 1:
                leaders[0].settle(exc)
                return
            log.warning("an append batch failed (%s): storing its %d appends one by one", exc, len(leaders))
            for req in leaders:
                await self._commit([req])
            return
        found = {int(row[0]): row for row in rows}
        for ordinal, req in enumerate(leaders, 1):
            req.settle(req.outcome(found.get(ordinal)))

    async def _run(self, batch: list[Append]) -> list[tuple[Any, ...]]:
        ev_ord: list[int] = []
        ev_id: list[str] = []
        ev_type: list[str] = []
        ev_data: list[str] = []
        for ordinal, req in enumerate(batch, 1):
            for event in req.events:
                ev_ord.append(ordinal)
                ev_id.append(event.event_id)
                ev_type.append(event.type)
                ev_data.append(event.data_json())
        params = {
            "conv": [r.conv for r in batch], "sender": [r.sender for r in batch], "role": [r.role for r in batch],
            "kind": [r.kind for r in batch], "body": [r.body for r in batch], "ts": [r.ts for r in batch],
            "cmid": [r.cmid for r in batch], "digest": [r.digest for r in batch], "auto": [r.auto for r in batch],
            "before": [r.before for r in batch], "after": [r.after for r in batch],
            "ev_ord": ev_ord, "ev_id": ev_id, "ev_type": ev_type, "ev_data": ev_data,
        }
        for attempt in range(ATTEMPTS):
            if self._conn is None or self._conn.closed:
                self._conn = await self._connect()
            try:
                cur = await self._conn.execute(q.APPEND_BATCH, params)
                return await cur.fetchall()
            except (*RETRY, pg_errors.UniqueViolation):
                # A deadlock with another node, or a cmid it stored meanwhile: run it again.
                if attempt + 1 == ATTEMPTS:
                    raise
                await backoff(attempt)
        raise ConnectionError("chat store: gave up after repeated conflicts")
