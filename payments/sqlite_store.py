"""The SQLite store: the embedded default, one database file.

Durability and isolation come from SQLite itself: WAL journal with ``synchronous=FULL``
(a commit is on disk when ``write`` returns), ``BEGIN IMMEDIATE`` for every write (the
write lock is taken up front, so a transaction that read a balance can never fail to
upgrade to writing it, which ``busy_timeout`` would not cure), ``STRICT`` tables and
foreign keys. Each thread gets its own connection; several processes may share the file.
Within one process an optional lock queues writers in the process rather than in
SQLite's sleep-and-retry busy handler, which is much fairer under contention.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from payments.errors import StoreUnavailable
from payments.schema import statements, upgrades
from payments.store import Dialect, Sql

T = TypeVar("T")


class _Cursor:
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._conn.execute(sql, params).rowcount


class SqliteStore:
    """Ledger in one SQLite file; safe for many threads and processes."""

    dialect: Dialect = "sqlite"

    def __init__(
        self, path: str, *, busy_timeout_ms: int = 30_000, process_lock: bool = True
    ) -> None:
        if not path or path == ":memory:":
            raise ValueError("the SQLite store needs a file path (several connections share it)")
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._write_lock: threading.Lock | None = threading.Lock() if process_lock else None
        self._closed = False
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in statements("sqlite"):
                conn.execute(stmt)

            def has_column(table: str, column: str) -> bool:
                return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))

            for stmt in upgrades("sqlite", has_column):
                conn.execute(stmt)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreUnavailable("The payment store is closed.")
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def write(self, fn: Callable[[Sql], T]) -> T:
        if self._write_lock is None:
            return self._transaction("BEGIN IMMEDIATE", fn)
        with self._write_lock:
            return self._transaction("BEGIN IMMEDIATE", fn)

    def read(self, fn: Callable[[Sql], T]) -> T:
        return self._transaction("BEGIN", fn)

    def _transaction(self, begin: str, fn: Callable[[Sql], T]) -> T:
        conn = self._conn()
        try:
            conn.execute(begin)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable() from exc
        try:
            result = fn(_Cursor(conn))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):  # busy beyond the timeout, I/O
                raise StoreUnavailable() from exc
            raise
        return result

    def close(self) -> None:
        with self._all_lock:
            self._closed = True
            conns, self._all = self._all, []
            self._local = threading.local()
        for conn in conns:
            conn.close()
