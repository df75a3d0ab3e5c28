"""PostgreSQL store: many nodes, one database; appends group-committed by one writer task.

Why this shape. Every node appends through a single writer task that takes every append
queued since its last commit and stores the whole batch, for any number of
conversations, with one statement (:data:`pg_queries.APPEND_BATCH`): one round trip and
one commit per batch, not per message. Other writes (opening a conversation, a recall,
read marks, hand-overs) are rarer and run as their own short transactions on a small
pool of connections, which also serves every read.

Sequence numbers. The batch locks the conversations it writes (``FOR UPDATE`` in id
order) and moves ``last_seq`` under that lock, so several nodes appending to one
conversation queue on its row and each continues from what the other committed.

One bad append does not spoil its batch: a missing conversation, a cmid already stored
and a cmid reused with another body are told apart by the statement itself, which
writes nothing for them. A cmid that another node stores while the batch runs makes the
insert fail on the unique index; the batch is then run again and sees it stored.
Anything else that fails a batch (a value PostgreSQL refuses) sends its appends again
one by one, so only the bad one fails. Two appends of one cmid in one batch: the second
waits for the next batch and is answered as a duplicate there.

The change token (``change_token`` / ``changed_since``). A counter or sequence value
taken inside a transaction is not safe: a transaction may take value 7, commit after
another took 8 and committed, and a token "8" handed out between the two commits would
hide the conversation written by 7 forever. So the clock is PostgreSQL's own transaction
ids and snapshots: every message stamps its conversation with the id of the transaction
that wrote it (``change``, under the row lock, so the last writer's id stays), and a
token is the snapshot taken when it is issued: ``xmin``, ``xmax`` and the transactions
running then. ``changed_since`` lists the conversations whose stamp that snapshot does
not see: an id at or after ``xmax`` (started later) or one that was running (commits
later). That is exactly what changed after the token, whatever the order of commits on
several nodes; no row is shared by all writers, so nodes appending to different
conversations never wait for each other. Tokens travel to clients (at most 64
characters): when too many transactions are running to write them all, the token keeps
only ``xmin`` and everything from it on counts as later ("a few more", as the protocol
allows; past ``limit``: ``None``, a full read).

Tokens read ``<epoch>.<position>``, the position counted from ``base``
(:func:`pg_queries.encode_mark`): ``epoch`` is random per database, so a token of
another store (or a recreated database) is refused. When the database shows up in
another PostgreSQL cluster (restored from a dump; told by the system identifier), ids
there are not comparable: a new epoch begins on start and every old token is refused
(see :mod:`chat.store.pg_schema`).

Connection errors surface as :class:`ConnectionError` (the hub's "store unreachable");
an append whose commit was cut off is not retried here, since it may have committed:
clients resend with the same cmid and get the stored message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from . import chain
from . import pg_queries as q
from .agents_pg import PostgresAgentProfiles
from .base import (
    Appended,
    ConversationRecord,
    MessageRecord,
    NotFound,
    RecallRefused,
    Role,
    Side,
    StoreError,
    newer_signed_card,
)
from .chat_events import NewEvent
from .encoding import digest, pack, unpack
from .events_pg import PostgresChatEvents, insert_events
from .follows_pg import PostgresFollows
from .inbox_pg import PostgresInbox
from .pg_schema import SCHEMA_NAME, migrate, split_schema
from .pg_writer import ATTEMPTS, RETRY, Append, AppendWriter, Conn, Pool, backoff, connect
from .safety_pg import PostgresSafety
from .search_pg import PostgresSearch

T = TypeVar("T")
WRITTEN_KINDS = ("text", "image", "product")


class PostgresStore(
    PostgresSafety, PostgresFollows, PostgresInbox, PostgresSearch, PostgresAgentProfiles, PostgresChatEvents
):
    """The chat store in PostgreSQL (see :mod:`chat.store.postgres` and :mod:`chat.store.base`)."""

    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 8, max_batch: int = 1000) -> None:
        self.url, url_schema = split_schema(url)
        self.schema = schema or url_schema
        if not SCHEMA_NAME.match(self.schema):
            raise ValueError(f"bad schema name {self.schema!r}")
        self.pool_size = pool_size
        self.max_batch = max_batch
        self.version = 0
        """The schema version found or reached by the last ``start``/``migrate``."""
        self._started = False
        self._pool: Pool | None = None
        self._writer: AppendWriter | None = None
        self._epoch = ""
        self._base = 0

    async def _connect(self) -> Conn:
        return await connect(self.url, self.schema, app="tradechat", store="chat store")

    # --- lifecycle ----------------------------------------------------------

    async def migrate(self) -> int:
        """Take the migrations this database lacks (safe while other nodes do the same)."""
        conn = await self._connect()
        try:
            self.version = await migrate(conn, self.schema)
            cur = await conn.execute(f'SELECT epoch, base FROM "{self.schema}".change_clock WHERE id = 1')
            row = await cur.fetchone()
            if row is None:  # pragma: no cover - migrate() creates it
                raise StoreError("the change clock is missing")
            self._epoch, self._base = str(row[0]), int(row[1])
        finally:
            await conn.close()
        return self.version

    async def start(self) -> None:
        if self._started:
            return
        await self.migrate()
        self._pool = Pool(self._connect, self.pool_size)
        self._writer = AppendWriter(self._connect, self.max_batch)
        self._started = True

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        if self._writer is not None:
            await self._writer.close()  # after storing everything already queued
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> bool:
        if not self._started:
            return False
        row = await self._one("SELECT 1", ())
        return row is not None and row[0] == 1

    # --- appends: the writer task -------------------------------------------

    async def append(
        self, conv_id: str, sender: str, role: Role, kind: str, body: dict[str, Any], cmid: str | None, now: int,
        events: Sequence[NewEvent] = (),
    ) -> Appended:
        if not self._started or self._writer is None:
            raise ConnectionError("the store is closed")
        fut: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        before, after = chain.split(conv_id, sender, role, kind, body, now, cmid)
        self._writer.submit(Append(
            conv_id, sender, role, kind, pack(body), now, cmid, digest(kind, body), bool(body.get("auto")),
            before, after, fut, events,
        ))
        return await fut

    # --- the pool -----------------------------------------------------------

    def _check_open(self) -> None:
        self._open_pool()

    def _open_pool(self) -> Pool:
        if not self._started or self._pool is None:
            raise ConnectionError("the store is closed")
        return self._pool

    async def _run(self, job: Callable[[Conn], Awaitable[T]], *, transaction: bool = False) -> T:
        """Run ``job`` on a pooled connection (in one transaction if asked), again after a
        deadlock or serialization failure; a read also once more after its reused
        connection turned out stale (the server restarted)."""
        stale_retry = not transaction
        for attempt in range(ATTEMPTS):
            try:
                async with self._open_pool().connection() as (conn, reused):
                    try:
                        if not transaction:
                            return await job(conn)
                        async with conn.transaction():
                            return await job(conn)
                    except psycopg.OperationalError as exc:
                        if not (stale_retry and reused):
                            raise ConnectionError(f"chat store: {exc}") from exc
                        stale_retry = False
                        continue
            except RETRY:
                if attempt + 1 == ATTEMPTS:
                    raise
                await backoff(attempt)
        raise ConnectionError("chat store: gave up after repeated conflicts")

    async def _one(self, sql: str, params: Any) -> tuple[Any, ...] | None:
        async def job(conn: Conn) -> tuple[Any, ...] | None:
            return await (await conn.execute(sql, params)).fetchone()

        return await self._run(job)

    async def _all(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        async def job(conn: Conn) -> list[tuple[Any, ...]]:
            return await (await conn.execute(sql, params)).fetchall()

        return await self._run(job)

    # --- other writes -------------------------------------------------------

    async def open_conversation(
        self, conv_id: str, buyer: str, shop: str, listing: dict[str, Any], agent: str | None, now: int,
        events: Sequence[NewEvent] = (),
    ) -> tuple[ConversationRecord, MessageRecord | None]:
        card_body = {"listing": listing}
        link = chain.message_hash(chain.genesis(conv_id), conv_id, 1, buyer, "buyer", "product", card_body, now, None)

        async def job(conn: Conn) -> tuple[ConversationRecord, MessageRecord | None]:
            try:
                cur = await conn.execute(
                    q.OPEN_INSERT, (conv_id, buyer, shop, listing["id"], pack(listing), agent, now, now, link)
                )
            except pg_errors.UniqueViolation as exc:
                raise StoreError(f"conversation id {conv_id} is already taken") from exc
            row = await cur.fetchone()
            if row is not None:
                await conn.execute(q.INSERT_MESSAGE, (
                    conv_id, 1, buyer, "buyer", "product", pack(card_body), now, None, digest("product", card_body),
                    False, link,
                ))
                card = MessageRecord(
                    conv_id, 1, buyer, "buyer", "product", unpack(pack(card_body)), now, None, hash=link.hex()
                )
                await insert_events(conn, conv_id, 0, events, now)
                return q.conversation(row), card
            cur = await conn.execute(
                f"SELECT {q.CONV_COLUMNS} FROM conversations WHERE buyer=%s AND shop=%s AND listing_id=%s FOR UPDATE",
                (buyer, shop, listing["id"]),
            )
            row = await cur.fetchone()
            if row is None:  # pragma: no cover - the conflicting row is committed, and never deleted
                raise StoreError("conversation vanished")
            existing = q.conversation(row)
            if newer_signed_card(listing, existing.listing):  # the row is locked: check and replace at once
                # A card the marketplace signed replaces what a browser sent earlier.
                cur = await conn.execute(
                    f"UPDATE conversations SET listing=%s WHERE id=%s RETURNING {q.CONV_COLUMNS}",
                    (pack(listing), existing.id),
                )
                row = await cur.fetchone()
                if row is None:  # pragma: no cover - locked above
                    raise StoreError("conversation vanished")
            return q.conversation(row), None

        return await self._run(job, transaction=True)

    async def recall(self, conv_id: str, seq: int, by: str, now: int, window_ms: int) -> Appended:
        async def job(conn: Conn) -> Appended:
            # The conversation's row first, as the append batches lock it, so the two queue;
            # its last_seq and head_hash then stay as read until this transaction ends.
            head = await (await conn.execute(
                "SELECT last_seq, head_hash FROM conversations WHERE id=%s FOR UPDATE", (conv_id,)
            )).fetchone()
            cur = await conn.execute(
                f"SELECT {q.MSG_COLUMNS} FROM messages WHERE conv=%s AND seq=%s", (conv_id, seq)
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound(f"{conv_id}#{seq}")
            original = q.message(row)
            if original.sender != by:
                raise RecallRefused("sender")
            # Only what a client posted itself (it has a cmid): not the opening card, cards or notes.
            if original.kind not in WRITTEN_KINDS or original.cmid is None or original.recalled:
                raise RecallRefused("kind")
            if now - original.ts > window_ms:
                raise RecallRefused("window")
            if head is None:  # pragma: no cover - the message's conversation exists
                raise NotFound(conv_id)
            await conn.execute("UPDATE messages SET recalled = true WHERE conv=%s AND seq=%s", (conv_id, seq))
            body = {"seq": seq}
            # "~" cannot appear in a client's cmid, so this id never collides with one.
            cmid = f"~recall:{seq}"
            new_seq = int(head[0]) + 1
            prev = b"" if head[1] is None else bytes(head[1])
            link = chain.message_hash(prev, conv_id, new_seq, by, original.role, "recall", body, now, cmid)
            bumped = await (await conn.execute(q.BUMP, (now, link, conv_id))).fetchone()
            if bumped is None:  # pragma: no cover - the message's conversation exists, locked above
                raise NotFound(conv_id)
            await conn.execute(q.INSERT_MESSAGE, (
                conv_id, new_seq, by, original.role, "recall", pack(body), now, cmid, digest("recall", body), False,
                link,
            ))
            record = MessageRecord(conv_id, new_seq, by, original.role, "recall", body, now, cmid, hash=link.hex())
            return Appended(record, False, bumped[1])

        return await self._run(job, transaction=True)

    async def set_read(self, conv_id: str, side: Side, seq: int) -> int:
        column = "buyer_read" if side == "buyer" else "shop_read"
        row = await self._one(
            f"UPDATE conversations SET {column} = greatest({column}, least(%s, last_seq)) WHERE id=%s"
            f" RETURNING {column}",
            (seq, conv_id),
        )
        if row is None:
            raise NotFound(conv_id)
        return int(row[0])

    async def assign(self, conv_id: str, agent: str) -> ConversationRecord:
        row = await self._one(
            f"UPDATE conversations SET agent=%s WHERE id=%s RETURNING {q.CONV_COLUMNS}", (agent, conv_id)
        )
        if row is None:
            raise NotFound(conv_id)
        return q.conversation(row)

    async def register_agent(self, shop: str, agent: str, now: int) -> None:
        await self._one(
            "INSERT INTO agents (shop, agent, last_seen) VALUES (%s, %s, %s)"
            " ON CONFLICT (shop, agent) DO UPDATE SET last_seen = excluded.last_seen RETURNING 1",
            (shop, agent, now),
        )

    async def set_cursor(self, name: str, value: int) -> None:
        await self._one(
            "INSERT INTO cursors (name, value) VALUES (%s, %s)"
            " ON CONFLICT (name) DO UPDATE SET value = greatest(cursors.value, excluded.value) RETURNING 1",
            (name, max(0, value)),
        )

    async def set_auto_reply(self, shop: str, agent: str, active: bool, text: str | None) -> str | None:
        row = await self._one(q.SET_AUTO_REPLY, (shop, agent, text, active))
        return None if row is None else row[0]

    # --- reads --------------------------------------------------------------

    async def get_conversation(self, conv_id: str) -> ConversationRecord | None:
        row = await self._one(f"SELECT {q.CONV_COLUMNS} FROM conversations WHERE id=%s", (conv_id,))
        return None if row is None else q.conversation(row)

    async def find_conversation(self, buyer: str, shop: str, listing_id: str) -> ConversationRecord | None:
        row = await self._one(
            f"SELECT {q.CONV_COLUMNS} FROM conversations WHERE buyer=%s AND shop=%s AND listing_id=%s",
            (buyer, shop, listing_id),
        )
        return None if row is None else q.conversation(row)

    async def conversations_of_buyer(self, buyer: str) -> list[ConversationRecord]:
        return await self._owned("buyer", buyer)

    async def conversations_of_shop(self, shop: str) -> list[ConversationRecord]:
        return await self._owned("shop", shop)

    async def _owned(self, column: str, owner: str) -> list[ConversationRecord]:
        rows = await self._all(
            f'SELECT {q.CONV_COLUMNS} FROM conversations WHERE {column}=%s ORDER BY created_at, id COLLATE "C"',
            (owner,),
        )
        return [q.conversation(r) for r in rows]

    async def conversations(self, conv_ids: list[str]) -> list[ConversationRecord]:
        rows = await self._all(f"SELECT {q.CONV_COLUMNS} FROM conversations WHERE id = ANY(%s)", (conv_ids,))
        found = {r[0]: r for r in rows}
        return [q.conversation(found[i]) for i in conv_ids if i in found]

    async def recent_conversations(
        self, *, buyer: str | None = None, shop: str | None = None, before: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> list[ConversationRecord]:
        column, owner = ("buyer", buyer) if buyer is not None else ("shop", shop)
        at, after_id = (2**62, "") if before is None else before
        rows = await self._all(
            q.RECENT.format(column=column), {"owner": owner, "at": at, "id": after_id, "limit": max(limit, 0)}
        )
        return [q.conversation(r) for r in rows]

    async def messages(
        self, conv_id: str, *, after: int = 0, before: int | None = None, limit: int = 50
    ) -> list[MessageRecord]:
        if before is None:
            rows = await self._all(
                f"SELECT {q.MSG_COLUMNS} FROM messages WHERE conv=%s AND seq>%s ORDER BY seq LIMIT %s",
                (conv_id, after, max(limit, 0)),
            )
        else:
            rows = await self._all(
                f"SELECT {q.MSG_COLUMNS} FROM messages WHERE conv=%s AND seq>%s AND seq<%s"
                " ORDER BY seq DESC LIMIT %s",
                (conv_id, after, before, max(limit, 0)),
            )
            rows.reverse()
        return [q.message(r) for r in rows]

    async def last_messages(self, conv_ids: list[str]) -> dict[str, MessageRecord]:
        rows = await self._all(
            f"SELECT DISTINCT ON (conv) {q.MSG_COLUMNS} FROM messages WHERE conv = ANY(%s) ORDER BY conv, seq DESC",
            (conv_ids,),
        )
        return {r[0]: q.message(r) for r in rows}

    async def read_marks(self, conv_ids: list[str]) -> dict[str, dict[str, int]]:
        rows = await self._all(
            "SELECT id, buyer_read, shop_read FROM conversations WHERE id = ANY(%s)", (conv_ids,)
        )
        return {r[0]: {"buyer": int(r[1]), "shop": int(r[2])} for r in rows}

    async def unread_counts(self, conv_ids: list[str], side: Side) -> dict[str, int]:
        column = "buyer_read" if side == "buyer" else "shop_read"
        own_role = "buyer" if side == "buyer" else "agent"
        rows = await self._all(q.UNREAD.format(column=column), (own_role, conv_ids))
        counts = {r[0]: int(r[1]) for r in rows}
        return {conv_id: counts.get(conv_id, 0) for conv_id in conv_ids}

    async def message_by_cmid(self, conv_id: str, sender: str, cmid: str) -> MessageRecord | None:
        row = await self._one(
            f"SELECT {q.MSG_COLUMNS} FROM messages WHERE conv=%s AND sender=%s AND cmid=%s", (conv_id, sender, cmid)
        )
        return None if row is None else q.message(row)

    async def get_cursor(self, name: str) -> int:
        row = await self._one("SELECT value FROM cursors WHERE name=%s", (name,))
        return 0 if row is None else int(row[0])

    async def first_responses(self, shop: str, since: int) -> list[int | None]:
        rows = await self._all(q.FIRST_RESPONSES, (shop, since))
        return [None if r[0] is None else int(r[0]) for r in rows]

    async def auto_reply(self, shop: str, agent: str) -> str | None:
        row = await self._one("SELECT auto_reply FROM agents WHERE shop=%s AND agent=%s AND auto_on", (shop, agent))
        return None if row is None else row[0]

    async def agent_loads(self, shop: str) -> dict[str, int]:
        rows = await self._all(
            "SELECT agent, 0 FROM agents WHERE shop=%s UNION ALL"
            " SELECT agent, count(*) FROM conversations WHERE shop=%s AND status='open' AND agent IS NOT NULL"
            " GROUP BY agent",
            (shop, shop),
        )
        loads: dict[str, int] = {}
        for agent, count in rows:
            loads[agent] = max(loads.get(agent, 0), int(count))
        return loads

    async def change_token(self) -> str:
        row = await self._one(q.SNAPSHOT, ())
        if row is None:  # pragma: no cover - a SELECT without FROM returns one row
            raise StoreError("no snapshot")
        return f"{self._epoch}.{q.encode_mark(self._base, int(row[0]), int(row[1]), list(row[2]))}"

    async def changed_since(
        self, token: str, *, buyer: str | None = None, shop: str | None = None, limit: int = 10_000
    ) -> list[ConversationRecord] | None:
        """Conversations whose last writer the token's snapshot did not see: it had not
        started (id at or after ``xmax``) or was still running (see the module's docstring)."""
        column, owner = ("buyer", buyer) if buyer is not None else ("shop", shop)
        epoch, _, mark = token.partition(".")
        snapshot = q.decode_mark(self._base, mark) if epoch == self._epoch else None
        if snapshot is None:
            return None
        _, xmax, running = snapshot
        limit = max(limit, 0)

        async def job(conn: Conn) -> list[ConversationRecord] | None:
            now = await (await conn.execute(f"SELECT {q.XMAX}")).fetchone()
            if now is None or xmax > int(now[0]):  # from the future: never issued here
                return None
            cur = await conn.execute(
                f"SELECT {q.CONV_COLUMNS} FROM conversations WHERE {column}=%s"
                " AND (change >= %s OR change = ANY(%s)) LIMIT %s",
                (owner, xmax, running, limit + 1),
            )
            rows = await cur.fetchall()
            return None if len(rows) > limit else [q.conversation(r) for r in rows]

        return await self._run(job)
