"""Group commit: concurrent write transactions share one database transaction.

Every ledger command is one write transaction, and each commit pays a durable flush
(SQLite ``synchronous=FULL``, PostgreSQL ``synchronous_commit=on``) and holds the hot rows
(the fees account, the event sequence, a busy shop's account) until then. Under load the
commands queue on those. :class:`GroupCommitStore` wraps a store: one writer thread takes
every write waiting at that moment (up to ``max_batch``) and runs them one after another
in a single transaction, each inside its own ``SAVEPOINT``, then commits once - as
TigerBeetle batches transfers, and as databases batch their log flushes.

What each caller sees is unchanged:

* ``write`` returns only after the transaction holding its work committed; if the
  commit fails, every command of the batch fails and none of its writes happened.
* A command that raises is rolled back to its savepoint, alone; the others commit.
  Its error reaches its caller, exactly as without batching.
* Commands of one batch run in arrival order and see each other's writes (one
  serial order, as under SQLite's single writer or PostgreSQL's row locks).
* A transient conflict (a store's retryable error) inside one command re-runs the whole
  batch, from the start - allowed because a store may always re-run a write function.

Reads bypass the batching. A write function must not call ``write`` itself (it would wait
for its own batch).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from payments.errors import StoreUnavailable
from payments.repository import ConcurrentUpdate
from payments.store import Sql, Store

T = TypeVar("T")


@dataclass
class _Job(Generic[T]):
    fn: Callable[[Sql], T]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


def _batch_errors(dialect: str) -> tuple[type[BaseException], ...]:
    """Errors that concern the transaction, not one command: the wrapped store re-runs the
    batch (conflicts) or fails it as a whole (a lost connection, a busy or broken file)."""
    if dialect == "postgresql":
        import psycopg

        from payments.postgres_store import _RETRYABLE

        return (*_RETRYABLE, psycopg.OperationalError)
    import sqlite3

    return (ConcurrentUpdate, sqlite3.OperationalError)


class GroupCommitStore:
    """A :class:`~payments.store.Store` whose writes are committed in groups."""

    def __init__(self, inner: Store, *, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.inner = inner
        self.dialect = inner.dialect
        self.max_batch = max_batch
        self.batches = 0
        """Transactions committed so far (each holding one or more writes)."""
        self._batch_errors = _batch_errors(inner.dialect)
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="payments-group-commit", daemon=True)
        self._thread.start()

    def write(self, fn: Callable[[Sql], T]) -> T:
        if self._closed:
            raise StoreUnavailable("The payment store is closed.")
        job: _Job[T] = _Job(fn)
        self._queue.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        result: T = job.result
        return result

    def read(self, fn: Callable[[Sql], T]) -> T:
        return self.inner.read(fn)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        self.inner.close()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            while len(jobs) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
            self._commit(jobs)
        # Fail whatever arrived after close began (write refuses new work once closed).
        while True:
            try:
                late = self._queue.get_nowait()
            except queue.Empty:
                return
            if late is not None:
                late.error = StoreUnavailable("The payment store is closed.")
                late.done.set()

    def _commit(self, jobs: list[_Job[Any]]) -> None:
        def batch(sql: Sql) -> list[tuple[Any, BaseException | None]]:
            outcomes: list[tuple[Any, BaseException | None]] = []
            for job in jobs:
                sql.run("SAVEPOINT group_commit")
                try:
                    value = job.fn(sql)
                except self._batch_errors:
                    raise  # the store re-runs or fails the whole batch
                except Exception as exc:
                    sql.run("ROLLBACK TO SAVEPOINT group_commit")
                    sql.run("RELEASE SAVEPOINT group_commit")
                    outcomes.append((None, exc))
                else:
                    sql.run("RELEASE SAVEPOINT group_commit")
                    outcomes.append((value, None))
            return outcomes

        try:
            outcomes = self.inner.write(batch)
        except BaseException as exc:  # nothing committed: every command of the batch failed
            for job in jobs:
                job.error = exc
                job.done.set()
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        for job, (value, error) in zip(jobs, outcomes, strict=True):
            job.result, job.error = value, error
            job.done.set()
