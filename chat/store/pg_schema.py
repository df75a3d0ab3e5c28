"""The PostgreSQL chat store's schema: versioned migrations, run on start.

Each migration is a step number and its statements; a database records the steps it
has taken in ``schema_version`` and takes the missing ones, in order, in one
transaction. Two nodes starting at once are serialized by a transaction-scoped
advisory lock named after the schema, so exactly one of them migrates and the other
finds the work done. Migrations only add (tables, columns, indexes): a node of the
previous release keeps working against a schema one step ahead of it.

The tables live in their own PostgreSQL schema (``chat`` unless ``?schema=`` says
otherwise), so the chat can share one database with the ledger (whose tables live in
``payments``) without any name meeting another.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from . import chain
from .encoding import unpack

log = logging.getLogger(__name__)

SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
"""What ``?schema=`` may name: it is spliced into SQL, so nothing that needs quoting."""

Step = str | Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]
"""A statement, or a function run on the migrating connection (inside its transaction)."""


async def backfill_chain(conn: psycopg.AsyncConnection[Any]) -> None:
    """Hash every message stored before the chain, each conversation in seq order, and
    set the conversation's ``head_hash`` (see :mod:`chat.store.chain`). One conversation
    at a time, so memory stays bounded by the largest conversation."""
    cur = await conn.execute("SELECT id FROM conversations ORDER BY id")
    for (conv_id,) in await cur.fetchall():
        rows = await (await conn.execute(
            "SELECT seq, sender, role, kind, body, ts, cmid, hash FROM messages WHERE conv = %s ORDER BY seq",
            (conv_id,),
        )).fetchall()
        prev = chain.genesis(conv_id)
        updates: list[tuple[bytes, str, int]] = []
        for seq, sender, role, kind, body, ts, cmid, stored in rows:
            if stored is None:
                stored = chain.message_hash(prev, conv_id, int(seq), sender, role, kind, unpack(body), int(ts), cmid)
                updates.append((stored, conv_id, int(seq)))
            prev = bytes(stored)
        if updates:
            async with conn.cursor() as writer:
                await writer.executemany("UPDATE messages SET hash = %s WHERE conv = %s AND seq = %s", updates)
        await conn.execute("UPDATE conversations SET head_hash = %s WHERE id = %s", (prev if rows else None, conv_id))


MIGRATIONS: tuple[tuple[int, tuple[Step, ...]], ...] = (
    (1, (
        """CREATE TABLE conversations (
            id text PRIMARY KEY,
            buyer text NOT NULL,
            shop text NOT NULL,
            listing_id text NOT NULL,
            listing bytea NOT NULL,
            agent text,
            last_seq bigint NOT NULL DEFAULT 0,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL DEFAULT 0,
            status text NOT NULL DEFAULT 'open',
            buyer_read bigint NOT NULL DEFAULT 0,
            shop_read bigint NOT NULL DEFAULT 0,
            change bigint NOT NULL DEFAULT 0,
            UNIQUE (buyer, shop, listing_id)
        )""",
        # The inbox pages by (updated_at, id) in code point order (COLLATE "C").
        'CREATE INDEX conversations_buyer_recent ON conversations (buyer, updated_at, id COLLATE "C")',
        'CREATE INDEX conversations_shop_recent ON conversations (shop, updated_at, id COLLATE "C")',
        "CREATE INDEX conversations_buyer_change ON conversations (buyer, change)",
        "CREATE INDEX conversations_shop_change ON conversations (shop, change)",
        """CREATE TABLE messages (
            conv text NOT NULL REFERENCES conversations (id),
            seq bigint NOT NULL,
            sender text NOT NULL,
            role text NOT NULL,
            kind text NOT NULL,
            body bytea NOT NULL,
            ts bigint NOT NULL,
            cmid text,
            digest bytea NOT NULL,
            recalled boolean NOT NULL DEFAULT false,
            auto boolean NOT NULL DEFAULT false,
            PRIMARY KEY (conv, seq)
        )""",
        "CREATE UNIQUE INDEX messages_cmid ON messages (conv, sender, cmid) WHERE cmid IS NOT NULL",
        "CREATE TABLE cursors (name text PRIMARY KEY, value bigint NOT NULL)",
        """CREATE TABLE agents (
            shop text NOT NULL,
            agent text NOT NULL,
            last_seen bigint NOT NULL,
            auto_reply text,
            auto_on boolean NOT NULL DEFAULT false,
            PRIMARY KEY (shop, agent)
        )""",
        # The change clock's frame: ``epoch`` names this database (tokens of another are
        # refused), ``base`` is the transaction id tokens count from, ``cluster`` the
        # PostgreSQL system identifier the ids belong to (see ``postgres.PostgresStore``).
        """CREATE TABLE change_clock (
            id integer PRIMARY KEY CHECK (id = 1),
            epoch text NOT NULL,
            base bigint NOT NULL,
            cluster text NOT NULL
        )""",
    )),
    # The hash chain: a hash per message, the conversation's last one (what the append
    # batch chains from, read under its row lock), and the running aggregate the batch
    # statement hashes with (``sha256(previous || part)``; see pg_queries.APPEND_BATCH).
    (2, (
        "ALTER TABLE messages ADD COLUMN hash bytea",
        "ALTER TABLE conversations ADD COLUMN head_hash bytea",
        """CREATE FUNCTION chain_step(state bytea, head bytea, part bytea) RETURNS bytea
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT sha256(coalesce(state, head) || part)'""",
        "CREATE AGGREGATE chain_link(bytea, bytea) (SFUNC = chain_step, STYPE = bytea)",
        backfill_chain,
    )),
    # Reports and blocks (chat.store.safety_pg). Reports are inserted under a table lock,
    # so ids commit in order and the server API's ``after`` cursor misses none.
    (3, (
        """CREATE TABLE reports (
            id bigserial PRIMARY KEY,
            conv text NOT NULL,
            seq bigint NOT NULL,
            reporter text NOT NULL,
            side text NOT NULL,
            buyer text NOT NULL,
            shop text NOT NULL,
            reason text NOT NULL,
            created_at bigint NOT NULL,
            UNIQUE (reporter, conv, seq)
        )""",
        """CREATE TABLE blocks (
            shop text NOT NULL,
            buyer text NOT NULL,
            side text NOT NULL,
            by_user text NOT NULL,
            reason text,
            created_at bigint NOT NULL,
            PRIMARY KEY (shop, buyer, side)
        )""",
    )),
    # Follows and broadcast jobs (chat.store.follows_pg). Followers are walked in code point
    # order of the buyer id (COLLATE "C"), the broadcast cursor's order.
    (4, (
        """CREATE TABLE follows (
            shop text NOT NULL,
            buyer text NOT NULL,
            conv text,
            created_at bigint NOT NULL,
            PRIMARY KEY (shop, buyer)
        )""",
        'CREATE INDEX follows_walk ON follows (shop, buyer COLLATE "C")',
        "CREATE INDEX follows_buyer ON follows (buyer)",
        """CREATE TABLE broadcasts (
            id bigserial PRIMARY KEY,
            shop text NOT NULL,
            key text NOT NULL,
            by_user text NOT NULL,
            body bytea NOT NULL,
            created_at bigint NOT NULL,
            total bigint NOT NULL,
            cursor text NOT NULL DEFAULT '',
            delivered bigint NOT NULL DEFAULT 0,
            skipped bigint NOT NULL DEFAULT 0,
            done boolean NOT NULL DEFAULT false,
            finished_at bigint,
            lease_owner text NOT NULL DEFAULT '',
            lease_until bigint NOT NULL DEFAULT 0,
            UNIQUE (shop, key)
        )""",
        "CREATE INDEX broadcasts_shop ON broadcasts (shop, created_at)",
        "CREATE INDEX broadcasts_open ON broadcasts (id) WHERE NOT done",
    )),
    # Pictures (chat.media.pg_store): stored once per SHA-256 of their bytes, bound to the
    # conversations they were uploaded for (what fetching them is authorised by).
    (5, (
        """CREATE TABLE media (
            sha256 text PRIMARY KEY,
            mime text NOT NULL,
            width integer NOT NULL,
            height integer NOT NULL,
            data bytea NOT NULL,
            thumb bytea NOT NULL
        )""",
        """CREATE TABLE media_links (
            sha256 text NOT NULL REFERENCES media (sha256),
            conv text NOT NULL,
            uploader text NOT NULL,
            created_at bigint NOT NULL,
            PRIMARY KEY (sha256, conv)
        )""",
    )),
    # The shop's notes and tags on buyers, and its closed conversations (chat.store.inbox_pg).
    (6, (
        """CREATE TABLE buyer_profiles (
            shop text NOT NULL,
            buyer text NOT NULL,
            note text NOT NULL,
            tags text[] NOT NULL,
            version bigint NOT NULL,
            updated_by text NOT NULL,
            updated_at bigint NOT NULL,
            PRIMARY KEY (shop, buyer)
        )""",
        """CREATE TABLE closed_conversations (
            conv text PRIMARY KEY,
            by_user text NOT NULL,
            closed_at bigint NOT NULL,
            seq bigint NOT NULL
        )""",
    )),
    # Agents' display names and avatars (chat.store.agents_pg).
    (7, (
        "ALTER TABLE agents ADD COLUMN name text, ADD COLUMN avatar text",
    )),
    # The chat event outbox (chat.store.events_pg): rows wait here until a webhook sender
    # has queued them in the ledger's webhook outbox.
    (8, (
        """CREATE TABLE chat_events (
            id bigserial PRIMARY KEY,
            event_id text NOT NULL UNIQUE,
            type text NOT NULL,
            conv text NOT NULL,
            seq bigint NOT NULL,
            data text NOT NULL,
            created_at bigint NOT NULL
        )""",
    )),
    # Reports by conversation: whether an arbiter may read one is an indexed read.
    (9, (
        "CREATE INDEX reports_conv ON reports (conv)",
    )),
)

LATEST = MIGRATIONS[-1][0]


def split_schema(url: str, default: str = "chat") -> tuple[str, str]:
    """Take ``schema=`` out of a PostgreSQL URL (libpq would refuse it); ``(url, schema)``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), default)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('tradechat.chat.migrate'), hashtext(%s))"
_XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


async def _cluster_id(conn: psycopg.AsyncConnection[Any]) -> str:
    """The PostgreSQL cluster's system identifier (new with every ``initdb``, so a dump
    restored elsewhere is told apart), or '' where the role may not read it."""
    try:
        async with conn.transaction():  # a savepoint: a refusal does not end the migration
            cur = await conn.execute("SELECT system_identifier::text FROM pg_control_system()")
            row = await cur.fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return ""
    return "" if row is None else str(row[0])


async def migrate(conn: psycopg.AsyncConnection[Any], schema: str) -> int:
    """Bring ``schema`` up to :data:`LATEST` (creating it if need be) and set up the
    change clock; returns the version the database is at. ``conn`` must be idle."""
    if not SCHEMA_NAME.match(schema):
        raise ValueError(f"bad schema name {schema!r}")
    async with conn.transaction():
        await conn.execute(_LOCK, (schema,))
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET LOCAL search_path TO "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
        row = await cur.fetchone()
        current = 0 if row is None else int(row[0])
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                if isinstance(statement, str):
                    await conn.execute(statement)
                else:
                    await statement(conn)
            await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
            log.info("chat store %s: migrated to schema version %d", schema, version)
            current = version
        if current > LATEST:
            log.warning("chat store %s is at schema version %d, newer than this release (%d)",
                        schema, current, LATEST)
        await _set_clock(conn)
    return current


async def _set_clock(conn: psycopg.AsyncConnection[Any]) -> None:
    """Create the change clock, or start a new epoch when the database now lives in another
    cluster (restored from a dump): its transaction ids are not comparable with the old
    ones, so every token handed out before must be refused and old stamps forgotten."""
    cluster = await _cluster_id(conn)
    cur = await conn.execute("SELECT cluster FROM change_clock WHERE id = 1")
    row = await cur.fetchone()
    if row is not None and row[0] == cluster:
        return
    epoch = uuid.uuid4().hex[:12]
    if row is None:
        await conn.execute(
            f"INSERT INTO change_clock (id, epoch, base, cluster) VALUES (1, %s, {_XMIN}, %s)", (epoch, cluster)
        )
        return
    log.warning("chat store moved to another PostgreSQL cluster: new change epoch %s", epoch)
    await conn.execute(f"UPDATE change_clock SET epoch = %s, base = {_XMIN}, cluster = %s", (epoch, cluster))
    await conn.execute("UPDATE conversations SET change = 0 WHERE change <> 0")
