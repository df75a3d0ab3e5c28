"""The store interface: where the ledger lives.

A store runs a function inside one database transaction. Implementations must guarantee:

* **Atomicity and durability** - when :meth:`Store.write` returns, every write made by the
  function is committed and survives a crash (``kill -9``, power loss with sync on); when
  it raises, none is.
* **Isolation for money** - the function's reads of rows it locks (``FOR UPDATE`` on
  PostgreSQL; the whole database under ``BEGIN IMMEDIATE`` on SQLite) cannot be changed by
  another transaction before commit, and accounts are locked in the order given.
* **Retries** - on a transient conflict (serialization failure, deadlock, a racing insert
  of the same key) the transaction is rolled back and the function is run again from the
  start, so it must not keep state outside the database between attempts.
* **Read snapshots** - :meth:`Store.read` sees one consistent committed snapshot.

The SQL itself is shared (:mod:`payments.repository`); a store only supplies connections,
the schema for its dialect and the transaction discipline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")

Dialect = Literal["sqlite", "postgresql"]


class Sql(Protocol):
    """A cursor inside a running transaction; placeholders are written ``?``."""

    dialect: Dialect

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run a statement and return all its rows."""

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run a statement and return the number of rows it changed."""


class Store(Protocol):
    """A transactional home for the ledger (see the module docstring for guarantees)."""

    dialect: Dialect

    def write(self, fn: Callable[[Sql], T]) -> T:
        """Run ``fn`` in a write transaction, retrying it on transient conflicts."""

    def read(self, fn: Callable[[Sql], T]) -> T:
        """Run ``fn`` in a read-only snapshot."""

    def close(self) -> None:
        """Release connections; idempotent."""


def open_store(url: str) -> Store:
    """Open ``sqlite:///path/to/file.db`` or ``postgresql://user@host:port/db[?schema=name]``.

    ``sqlite:////abs/path.db`` is an absolute path; an in-memory SQLite database is
    refused because threads need separate connections to one file. PostgreSQL tables go
    into the ``payments`` schema unless ``schema=`` says otherwise.
    """
    if url.startswith("sqlite:///"):
        from payments.sqlite_store import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from payments.postgres_store import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unsupported store url: {url!r}")
