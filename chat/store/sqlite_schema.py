"""The SQLite store's schema and its versioned migrations.

``start`` (and ``python -m chat migrate``) takes the steps of :data:`MIGRATIONS` a file
has not taken yet, recorded in its ``schema_version`` table, in one ``BEGIN IMMEDIATE``
transaction, so two processes starting at once take turns.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable

from . import chain
from .encoding import unpack
from .events_sqlite import create_table as create_events_table
from .search_sqlite import create_queue

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    buyer TEXT NOT NULL,
    shop TEXT NOT NULL,
    listing_id TEXT NOT NULL,
    listing BLOB NOT NULL,
    agent TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'open',
    buyer_read INTEGER NOT NULL DEFAULT 0,
    shop_read INTEGER NOT NULL DEFAULT 0,
    change INTEGER NOT NULL DEFAULT 0,
    UNIQUE (buyer, shop, listing_id)
) STRICT;
CREATE INDEX IF NOT EXISTS conversations_shop ON conversations (shop, updated_at);
CREATE INDEX IF NOT EXISTS conversations_buyer ON conversations (buyer, updated_at);
CREATE INDEX IF NOT EXISTS conversations_shop_change ON conversations (shop, change);
CREATE INDEX IF NOT EXISTS conversations_buyer_change ON conversations (buyer, change);
-- The store's change clock: every committed message takes the next value for its
-- conversation; the epoch names this file, so a token from another store is refused.
CREATE TABLE IF NOT EXISTS change_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    epoch TEXT NOT NULL,
    value INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS messages (
    conv TEXT NOT NULL REFERENCES conversations (id),
    seq INTEGER NOT NULL,
    sender TEXT NOT NULL,
    role TEXT NOT NULL,
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    ts INTEGER NOT NULL,
    cmid TEXT,
    digest BLOB,
    recalled INTEGER NOT NULL DEFAULT 0,
    auto INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conv, seq)
) STRICT, WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_cmid ON messages (conv, sender, cmid)
    WHERE cmid IS NOT NULL;
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agents (
    shop TEXT NOT NULL,
    agent TEXT NOT NULL,
    last_seen INTEGER NOT NULL,
    auto_reply TEXT,
    auto_on INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (shop, agent)
) STRICT, WITHOUT ROWID;
"""

_ADDED_COLUMNS = (
    ("conversations", "updated_at", "INTEGER NOT NULL DEFAULT 0"),
    ("conversations", "change", "INTEGER NOT NULL DEFAULT 0"),
    ("messages", "auto", "INTEGER NOT NULL DEFAULT 0"),
    ("agents", "auto_reply", "TEXT"),
    ("agents", "auto_on", "INTEGER NOT NULL DEFAULT 0"),
)
"""Columns that files from before versioned migrations may lack."""


def _statements(script: str) -> list[str]:
    """A script's statements, one by one (``executescript`` would commit first)."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines():
        if line.lstrip().startswith("--"):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete statement: {pending!r}")
    return out


def _version_1(conn: sqlite3.Connection) -> None:
    """The schema as it was when migrations got versions (:data:`SCHEMA`). A file made
    before then, with or without some of its columns, is brought to it: columns are added
    before the schema's indexes refer to them, and every statement is ``IF NOT EXISTS``."""
    for table, column, spec in _ADDED_COLUMNS:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if columns and column not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {spec}")
    for statement in _statements(SCHEMA):
        conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO change_clock (id, epoch, value) VALUES (1, ?, 0)", (uuid.uuid4().hex[:12],))


def _version_2(conn: sqlite3.Connection) -> None:
    """The hash chain (:mod:`chat.store.chain`): a ``hash`` on every message, backfilled for
    the messages already stored, each conversation in seq order."""
    if "hash" not in {row[1] for row in conn.execute("PRAGMA table_info(messages)")}:
        conn.execute("ALTER TABLE messages ADD COLUMN hash BLOB")
    backfill(conn)


def backfill(conn: sqlite3.Connection) -> int:
    """Chain every message that has no hash yet, from its predecessor's (or the genesis)
    value; returns how many were hashed. Rows come in (conv, seq) order, the primary key's."""
    done = 0
    prev_conv, prev = "", b""
    rows = conn.execute(
        "SELECT conv, seq, sender, role, kind, body, ts, cmid, hash FROM messages ORDER BY conv, seq"
    ).fetchall()
    for conv, seq, sender, role, kind, body, ts, cmid, stored in rows:
        if conv != prev_conv:
            prev_conv, prev = conv, chain.genesis(conv)
        if stored is None:
            stored = chain.message_hash(prev, conv, seq, sender, role, kind, unpack(body), ts, cmid)
            conn.execute("UPDATE messages SET hash=? WHERE conv=? AND seq=?", (stored, conv, seq))
            done += 1
        prev = bytes(stored)
    return done


def _version_3(conn: sqlite3.Connection) -> None:
    """Reports and blocks (:mod:`chat.store.safety_sqlite`). ``AUTOINCREMENT``: a report id
    is never reused, so the server API's ``after`` cursor stays valid."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY AUTOINCREMENT, conv TEXT NOT NULL,"
        " seq INTEGER NOT NULL, reporter TEXT NOT NULL, side TEXT NOT NULL, buyer TEXT NOT NULL,"
        " shop TEXT NOT NULL, reason TEXT NOT NULL, created_at INTEGER NOT NULL, UNIQUE (reporter, conv, seq)) STRICT"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS blocks (shop TEXT NOT NULL, buyer TEXT NOT NULL, side TEXT NOT NULL,"
        " by_user TEXT NOT NULL, reason TEXT, created_at INTEGER NOT NULL, PRIMARY KEY (shop, buyer, side)) STRICT"
    )


def _version_4(conn: sqlite3.Connection) -> None:
    """Follows and broadcast jobs (:mod:`chat.store.follows_sqlite`). Followers are walked
    by the primary key (shop, buyer): BINARY collation is code point order."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS follows (shop TEXT NOT NULL, buyer TEXT NOT NULL, conv TEXT,"
        " created_at INTEGER NOT NULL, PRIMARY KEY (shop, buyer)) STRICT, WITHOUT ROWID"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS follows_buyer ON follows (buyer)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS broadcasts (id INTEGER PRIMARY KEY AUTOINCREMENT, shop TEXT NOT NULL,"
        " key TEXT NOT NULL, by_user TEXT NOT NULL, body BLOB NOT NULL, created_at INTEGER NOT NULL,"
        " total INTEGER NOT NULL, cursor TEXT NOT NULL DEFAULT '', delivered INTEGER NOT NULL DEFAULT 0,"
        " skipped INTEGER NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0, finished_at INTEGER,"
        " lease_owner TEXT NOT NULL DEFAULT '', lease_until INTEGER NOT NULL DEFAULT 0, UNIQUE (shop, key)) STRICT"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS broadcasts_shop ON broadcasts (shop, created_at)")
    conn.execute("CREATE INDEX IF NOT EXISTS broadcasts_open ON broadcasts (done, id)")


def _version_5(conn: sqlite3.Connection) -> None:
    """The shop's notes and tags on buyers and its closed conversations
    (:mod:`chat.store.inbox_sqlite`); ``tags`` is a JSON list."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS buyer_profiles (shop TEXT NOT NULL, buyer TEXT NOT NULL, note TEXT NOT NULL,"
        " tags TEXT NOT NULL, version INTEGER NOT NULL, updated_by TEXT NOT NULL, updated_at INTEGER NOT NULL,"
        " PRIMARY KEY (shop, buyer)) STRICT, WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS closed_conversations (conv TEXT PRIMARY KEY, by_user TEXT NOT NULL,"
        " closed_at INTEGER NOT NULL, seq INTEGER NOT NULL) STRICT, WITHOUT ROWID"
    )


def _version_6(conn: sqlite3.Connection) -> None:
    """The queue of text messages for the search index (:mod:`chat.store.search_sqlite`; the
    index has a file of its own), holding the text messages already stored."""
    create_queue(conn)


def _version_7(conn: sqlite3.Connection) -> None:
    """Agents' display names and avatars (:mod:`chat.store.agents_sqlite`)."""
    columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(agents)")}
    for column in ("name", "avatar"):
        if column not in columns:
            conn.execute(f"ALTER TABLE agents ADD COLUMN {column} TEXT")


def _version_8(conn: sqlite3.Connection) -> None:
    """The chat event outbox (:mod:`chat.store.events_sqlite`)."""
    create_events_table(conn)


def _version_9(conn: sqlite3.Connection) -> None:
    """Reports by conversation: whether an arbiter may read one is an indexed read."""
    conn.execute("CREATE INDEX IF NOT EXISTS reports_conv ON reports (conv)")


MIGRATIONS: tuple[tuple[int, Callable[[sqlite3.Connection], None]], ...] = (
    (1, _version_1), (2, _version_2), (3, _version_3), (4, _version_4), (5, _version_5), (6, _version_6),
    (7, _version_7), (8, _version_8), (9, _version_9),
)
"""Each step's number and what it does, in order; a file records the steps it took in
``schema_version``. Steps only add, so a node of the previous release can still open the
file. Append new steps here, never change one that has shipped."""

LATEST = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection) -> int:
    """Take the steps ``conn``'s file lacks, all in one write transaction (``BEGIN
    IMMEDIATE``: two processes starting at once take turns, the second finds the work
    done); returns the file's version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            " STRICT"
        )
        current = int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])
        for version, step in MIGRATIONS:
            if version > current:
                step(conn)
                conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, int(time.time() * 1000))
                )
                current = version
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current
