"""The PostgreSQL store (psycopg 3, synchronous).

Transactions run at READ COMMITTED with explicit row locks: the entity row is locked
``FOR UPDATE`` before its state is read, accounts are locked in sorted key order and
debited conditionally, and ``CHECK (balance >= 0)`` backs that up. Serialization
failures (40001), deadlocks (40P01) and a racing insert of the same new key are retried
from the start of the transaction. The tables live in their own schema (``payments`` by
default, or ``?schema=`` in the URL), so they can share a database with other services.
"""

from __future__ import annotations

import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors

from payments.errors import StoreUnavailable
from payments.repository import ConcurrentUpdate
from payments.schema import statements, upgrades
from payments.store import Dialect, Sql

T = TypeVar("T")

_RETRYABLE = (
    pg_errors.SerializationFailure,
    pg_errors.DeadlockDetected,
    pg_errors.UniqueViolation,
    ConcurrentUpdate,
)
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class _Cursor:
    dialect: Dialect = "postgresql"

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(sql.replace("?", "%s"), params)
        return self._cur.fetchall() if self._cur.description else []

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        self._cur.execute(sql.replace("?", "%s"), params)
        return self._cur.rowcount


def split_schema(url: str) -> tuple[str, str]:
    """Take ``schema=`` out of a PostgreSQL URL; return ``(url, schema)``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), "payments")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresStore:
    """Ledger in PostgreSQL; a small pool of connections shared by threads."""

    dialect: Dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int = 8,
        max_attempts: int = 30,
    ) -> None:
        self.url, url_schema = split_schema(url)
        self.schema = schema or url_schema
        if not _SCHEMA_NAME.match(self.schema):
            raise ValueError(f"bad schema name {self.schema!r}")
        self._max_attempts = max_attempts
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._all: list[psycopg.Connection[Any]] = []
        self._all_lock = threading.Lock()
        self._closed = False
        with self._connection() as conn, conn.transaction():
            # One migrator at a time, whichever process gets here first.
            conn.execute("SELECT pg_advisory_xact_lock(7262011)")
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            conn.execute(f'SET LOCAL search_path TO "{self.schema}"')
            for stmt in statements("postgresql"):
                conn.execute(stmt)
            for stmt in upgrades("postgresql", lambda table, column: False):
                conn.execute(stmt)

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if not self._slots.acquire(timeout=60):
            raise StoreUnavailable()
        conn: psycopg.Connection[Any] | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            yield conn
        except psycopg.OperationalError:
            if conn is not None:
                conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.close()
                else:
                    self._idle.put(conn)
            self._slots.release()

    def _connect(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise StoreUnavailable("The payment store is closed.")
        conn = psycopg.connect(self.url, autocommit=True)
        conn.execute(f'SET search_path TO "{self.schema}"')
        with self._all_lock:
            self._all.append(conn)
        return conn

    def write(self, fn: Callable[[Sql], T]) -> T:
        return self._run("BEGIN ISOLATION LEVEL READ COMMITTED", fn)

    def read(self, fn: Callable[[Sql], T]) -> T:
        return self._run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", fn)

    def _run(self, begin: str, fn: Callable[[Sql], T]) -> T:
        for attempt in range(self._max_attempts):
            try:
                with self._connection() as conn, conn.cursor() as cur:
                    cur.execute(begin)
                    try:
                        result = fn(_Cursor(cur))
                        cur.execute("COMMIT")
                    except BaseException:
                        if not conn.closed:
                            conn.rollback()
                        raise
                    return result
            except _RETRYABLE:
                if attempt + 1 == self._max_attempts:
                    raise
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
            except psycopg.OperationalError as exc:
                raise StoreUnavailable() from exc
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._all_lock:
            self._closed = True
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
