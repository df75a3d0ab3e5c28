"""SQL of the PostgreSQL chat store, and the conversion of its rows to records.

The one statement that matters is :data:`APPEND_BATCH`: a whole batch of appends, to
any number of conversations, in one statement (so one round trip and, in autocommit,
one transaction and one commit). Its parts, in the order they run:

``req``
    the batch, one row per append, from parallel arrays (``unnest ... WITH ORDINALITY``:
    ``ord`` is the append's place in the batch), sent in binary (``%(name)b``: half the
    client CPU of text arrays);
``dup``
    appends whose ``(conv, sender, cmid)`` is already stored (one index probe each, as a
    lateral ``LIMIT 1``: a join over many messages of one sender would be planned as a
    merge over all of them, quadratic in a busy conversation): they write nothing and
    return the stored message (the caller compares digests: same body, a duplicate;
    another body, ``ClientIdReused``);
``locked``
    the conversations that get messages, row-locked in id order (``FOR UPDATE`` over a
    sort; ``= ANY(ARRAY(...))`` keeps these lookups on the primary key): two nodes'
    batches lock shared conversations in the same order, so they queue behind each
    other instead of deadlocking. Under READ COMMITTED a row another node changed since
    the statement's snapshot is locked *and returned* in its newest committed version,
    so ``last_seq`` and ``head_hash`` read here continue from what the other node
    committed: no gap, no seq twice, no fork of the chain;
``numbered``
    seqs handed out in batch order within each conversation;
``chained``
    each message's hash (:mod:`chat.store.chain`): the running ``chain_link`` aggregate
    (``sha256(previous || part)``, created by migration 2) over the conversation's
    messages in batch order, starting from its ``head_hash``; ``part`` is the canonical
    encoding the client sent in two halves (``before``, ``after``) around the seq;
``bumped``
    each such conversation's ``last_seq`` moves by its number of appends and its
    ``head_hash`` to its last new hash. It also stamps the conversation with this
    transaction's id (the change clock, see ``postgres.PostgresStore``);
``inserted``
    the messages;
``evented``
    the chat events that go with new messages (:mod:`chat.store.chat_events`), joined
    to ``chained`` by ``ord``: a duplicate writes none.

An append to a conversation that does not exist matches no row of ``bumped`` and
comes back with no row: NotFound. If another node stored the same cmid after this
statement's snapshot, the insert raises a unique violation; the caller runs the batch
again and then sees it in ``dup``.
"""

from __future__ import annotations

from typing import Any

from .base import ConversationRecord, MessageRecord
from .encoding import unpack

CONV_COLUMNS = "id, buyer, shop, listing, agent, last_seq, created_at, status, updated_at"
MSG_COLUMNS = "conv, seq, sender, role, kind, body, ts, cmid, recalled, hash"
XACT_ID = "pg_current_xact_id()::text::bigint"
XMIN = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
XMAX = "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"

APPEND_BATCH = f"""
WITH req AS (
    SELECT * FROM unnest(
        %(conv)b::text[], %(sender)b::text[], %(role)b::text[], %(kind)b::text[], %(body)b::bytea[],
        %(ts)b::bigint[], %(cmid)b::text[], %(digest)b::bytea[], %(auto)b::boolean[],
        %(before)b::bytea[], %(after)b::bytea[]
    ) WITH ORDINALITY AS r (conv, sender, role, kind, body, ts, cmid, digest, auto, before, after, ord)
),
dup AS MATERIALIZED (
    SELECT r.ord, m.seq, m.role, m.kind, m.body, m.ts, m.recalled, m.digest, c.agent, m.hash
    FROM req r
    CROSS JOIN LATERAL (
        SELECT * FROM messages WHERE conv = r.conv AND sender = r.sender AND cmid = r.cmid LIMIT 1
    ) m
    JOIN conversations c ON c.id = r.conv
    WHERE r.cmid IS NOT NULL
),
fresh AS MATERIALIZED (
    SELECT * FROM req WHERE ord NOT IN (SELECT ord FROM dup)
),
locked AS MATERIALIZED (
    SELECT id, last_seq, head_hash, agent FROM conversations
    WHERE id = ANY(ARRAY(SELECT DISTINCT conv FROM fresh)) ORDER BY id FOR UPDATE
),
numbered AS MATERIALIZED (
    SELECT f.*, l.last_seq + row_number() OVER (PARTITION BY f.conv ORDER BY f.ord) AS seq,
           l.head_hash AS head, l.agent
    FROM fresh f JOIN locked l ON l.id = f.conv
),
chained AS MATERIALIZED (
    SELECT n.*,
           chain_link(n.head, n.before || convert_to(n.seq::text, 'UTF8') || n.after)
               OVER (PARTITION BY n.conv ORDER BY n.ord) AS hash
    FROM numbered n
),
bumped AS (
    UPDATE conversations c
    SET last_seq = c.last_seq + k.n, updated_at = greatest(c.updated_at, k.at), change = {XACT_ID},
        head_hash = k.head
    FROM (
        SELECT conv, count(*) AS n, max(ts) AS at, (array_agg(hash ORDER BY ord DESC))[1] AS head
        FROM chained GROUP BY conv
    ) k
    WHERE c.id = ANY(ARRAY(SELECT id FROM locked)) AND c.id = k.conv
),
inserted AS (
    INSERT INTO messages (conv, seq, sender, role, kind, body, ts, cmid, digest, auto, hash)
    SELECT conv, seq, sender, role, kind, body, ts, cmid, digest, auto, hash FROM chained
),
evented AS (
    INSERT INTO chat_events (event_id, type, conv, seq, data, created_at)
    SELECT e.event_id, e.type, c.conv, c.seq, e.data, c.ts
    FROM unnest(%(ev_ord)b::bigint[], %(ev_id)b::text[], %(ev_type)b::text[], %(ev_data)b::text[])
        AS e (ord, event_id, type, data)
    JOIN chained c ON c.ord = e.ord
    ON CONFLICT (event_id) DO NOTHING
)
SELECT ord, false, seq, NULL, NULL, NULL, NULL, false, NULL, agent, hash FROM chained
UNION ALL
SELECT ord, true, seq, role, kind, body, ts, recalled, digest, agent, hash FROM dup
"""
"""Rows: (ord, duplicate, seq, role, kind, body, ts, recalled, digest, agent, hash); the
stored message's fields only for duplicates."""

OPEN_INSERT = f"""
INSERT INTO conversations (id, buyer, shop, listing_id, listing, agent, last_seq, created_at, updated_at, change,
                           head_hash)
VALUES (%s, %s, %s, %s, %s, %s, 1, %s, %s, {XACT_ID}, %s)
ON CONFLICT (buyer, shop, listing_id) DO NOTHING
RETURNING {CONV_COLUMNS}
"""

INSERT_MESSAGE = """
INSERT INTO messages (conv, seq, sender, role, kind, body, ts, cmid, digest, auto, hash)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

BUMP = f"""
UPDATE conversations SET last_seq = last_seq + 1, updated_at = greatest(updated_at, %s), change = {XACT_ID},
    head_hash = %s
WHERE id = %s RETURNING last_seq, agent
"""
"""One message appended outside the batch (a recall), its hash computed by the caller
under the conversation's row lock."""

RECENT = f"""
SELECT {CONV_COLUMNS} FROM conversations
WHERE {{column}} = %(owner)s
  AND (updated_at < %(at)s OR (updated_at = %(at)s AND (%(id)s = '' OR id COLLATE "C" < %(id)s)))
ORDER BY updated_at DESC, id COLLATE "C" DESC LIMIT %(limit)s
"""

UNREAD = """
SELECT c.id, count(m.seq) FROM conversations c
LEFT JOIN messages m ON m.conv = c.id AND m.seq > c.{column} AND m.role <> %s
    AND m.kind NOT IN ('recall', 'card_update') AND NOT m.recalled
WHERE c.id = ANY(%s) GROUP BY c.id
"""

FIRST_RESPONSES = """
WITH asked AS (
    SELECT m.conv, min(m.ts) AS at FROM messages m JOIN conversations v ON v.id = m.conv
    WHERE v.shop = %s AND m.role = 'buyer' AND m.cmid IS NOT NULL AND m.ts >= %s
      AND m.kind IN ('text', 'image', 'product')
    GROUP BY m.conv
)
SELECT (SELECT min(r.ts) FROM messages r WHERE r.conv = asked.conv AND r.role = 'agent' AND NOT r.auto
        AND r.ts >= asked.at AND r.kind IN ('text', 'image', 'product')) - asked.at
FROM asked ORDER BY asked.conv
"""

SET_AUTO_REPLY = """
INSERT INTO agents (shop, agent, last_seen, auto_reply, auto_on) VALUES (%s, %s, 0, %s, %s)
ON CONFLICT (shop, agent) DO UPDATE SET auto_on = excluded.auto_on,
    auto_reply = coalesce(excluded.auto_reply, agents.auto_reply)
RETURNING auto_reply
"""


def message(row: tuple[Any, ...]) -> MessageRecord:
    """A record from the ``MSG_COLUMNS`` of a row."""
    return MessageRecord(
        conv=row[0], seq=int(row[1]), sender=row[2], role=row[3], kind=row[4],
        body=unpack(row[5]), ts=int(row[6]), cmid=row[7], recalled=bool(row[8]),
        hash=None if row[9] is None else bytes(row[9]).hex(),
    )


def conversation(row: tuple[Any, ...]) -> ConversationRecord:
    """A record from the ``CONV_COLUMNS`` of a row."""
    return ConversationRecord(
        id=row[0], buyer=row[1], shop=row[2], listing=unpack(row[3]), agent=row[4],
        last_seq=int(row[5]), created_at=int(row[6]), status=row[7], updated_at=int(row[8]),
    )


SNAPSHOT = """
SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint,
       ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) AS x)
FROM (SELECT pg_current_snapshot() AS s) AS now
"""
"""The snapshot a change token is made of: (xmin, xmax, transactions running)."""

TOKEN_SPACE = 51
"""Characters a token has after its epoch and dot (clients keep 64)."""


def encode_mark(base: int, xmin: int, xmax: int, running: list[int]) -> str:
    """The token's position: ``xmin`` counted from ``base`` and, when it fits, the snapshot
    exactly, as ``xmin-(xmax - xmin)-(x - xmin)...`` for the other transactions running.
    Without the exact form (too many running), every id at or after ``xmin`` counts as
    after the token: longer lists, never a missed one."""
    short = str(xmin - base)
    if xmin == xmax:
        return short
    exact = "-".join([short, str(xmax - xmin), *(str(x - xmin) for x in sorted(running) if x != xmin)])
    return exact if len(exact) <= TOKEN_SPACE else short


def decode_mark(base: int, mark: str) -> tuple[int, int, list[int]] | None:
    """``(xmin, xmax, running)`` of a position, or None if it is not one this store writes.
    The short form reads as a snapshot with everything from ``xmin`` on still running."""
    parts = mark.split("-")
    # ASCII only: "²".isdigit() is true but int() refuses it.
    if len(mark) > TOKEN_SPACE or not all(p.isascii() and p.isdigit() for p in parts):
        return None
    xmin = base + int(parts[0])
    if len(parts) == 1:
        return xmin, xmin, []
    span, offsets = int(parts[1]), [int(p) for p in parts[2:]]
    if span == 0 or not all(0 < x < span for x in offsets):
        return None
    return xmin, xmin + span, [xmin, *(xmin + x for x in offsets)]
