"""The SQLite store's two threads: one writer that commits in groups, one reader.

SQLite allows one writer at a time and an ``fsync`` per message would cap throughput at
the disk's sync rate, so the writer takes every write queued since its last commit, runs
each inside its own SAVEPOINT (one bad request cannot spoil the batch) and commits them
together, then resolves their futures in one hop back to the event loop. Queued items of
the hot path (appends) are data, not closures: a run of them goes to one ``group`` call,
which stores them with one statement per table (see :func:`.sqlite_append.append_many`).
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    # Switching a new file to WAL takes an exclusive lock, and SQLite may answer "locked" at
    # once instead of waiting when two processes open the new file together: try again.
    # (WAL is a property of the file: once one of them has switched it, this is a no-op.)
    for attempt in range(100):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.02)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Worker:
    """A thread owning one connection; runs jobs in order, batching writes."""

    def __init__(
        self, name: str, connect: Callable[[], sqlite3.Connection], batch: bool,
        on_rollback: Callable[[], None] = lambda: None,
        on_batch: Callable[[], None] = lambda: None,
        group: Callable[[sqlite3.Connection, list[Any]], list[tuple[bool, Any]]] | None = None,
    ) -> None:
        """``on_rollback`` runs (on this thread) after anything was rolled back: caches of
        what the jobs wrote must forget it. ``on_batch`` runs as each write transaction
        begins (what jobs share per transaction starts afresh). ``group`` stores a run of
        items queued with :meth:`submit_item`, in order, inside the open transaction: a
        result per item, an item it refuses writing nothing; if it raises, the batch rolls
        back."""
        self._connect = connect
        self._batch = batch
        self._on_rollback = on_rollback
        self._on_batch = on_batch
        self._group = group
        self._jobs: queue.SimpleQueue[
            tuple[Any, asyncio.Future[Any], bool] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def submit(self, job: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue a job (a batching worker runs it in a savepoint of its own)."""
        return self._queue(job, False)

    def submit_item(self, item: Any) -> asyncio.Future[Any]:
        """Queue an item for the ``group`` callable (a batching worker's hot path)."""
        if self._group is None:
            raise TypeError("this worker takes jobs, not items")
        return self._queue(item, True)

    def _queue(self, job: Any, item: bool) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._thread.is_alive():
            fut.set_exception(ConnectionError("the store is closed"))
        else:
            self._jobs.put((job, fut, item))
        return fut

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._jobs.get()
                if first is None:
                    return
                jobs = [first]
                if self._batch:
                    while len(jobs) < 512:
                        try:
                            nxt = self._jobs.get_nowait()
                        except queue.Empty:
                            break
                        if nxt is None:
                            self._jobs.put(None)
                            break
                        jobs.append(nxt)
                self._execute(conn, jobs)
        finally:
            conn.close()

    def _execute(self, conn: sqlite3.Connection, jobs: list[Any]) -> None:
        results: list[tuple[asyncio.Future[Any], bool, Any]] = []
        if self._batch:
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._on_batch()
                for items, same in itertools.groupby(jobs, key=lambda queued: bool(queued[2])):
                    run = list(same)
                    if items and self._group is not None:
                        stored = self._group(conn, [item for item, _, _ in run])
                        results.extend((fut, ok, value) for (_, fut, _), (ok, value) in zip(run, stored, strict=True))
                    else:
                        results.extend(self._in_savepoint(conn, job, fut) for job, fut, _ in run)
                conn.execute("COMMIT")
            except BaseException as exc:  # the commit (or the group, unexpectedly) failed: nothing holds
                self._on_rollback()
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                results = [(fut, False, exc) for _, fut, _ in jobs]
        else:
            for job, fut, _ in jobs:
                try:
                    results.append((fut, True, job(conn)))
                except BaseException as exc:
                    results.append((fut, False, exc))
        loop = results[0][0].get_loop()
        loop.call_soon_threadsafe(_settle, results)

    def _in_savepoint(
        self, conn: sqlite3.Connection, job: Callable[[sqlite3.Connection], Any], fut: asyncio.Future[Any]
    ) -> tuple[asyncio.Future[Any], bool, Any]:
        """One job: what it wrote is undone alone if it raises."""
        conn.execute("SAVEPOINT job")
        try:
            value = job(conn)
        except BaseException as exc:
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            self._on_rollback()
            return (fut, False, exc)
        conn.execute("RELEASE job")
        return (fut, True, value)


def _settle(results: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for fut, ok, value in results:
        if fut.done():
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
