"""The SQLite store's append, run on its writer thread: the hot path of every message.

One append checks the client id (a resend is answered with what was stored), takes
the conversation's next seq and the transaction's change value, chains the message
to the previous one's hash, and inserts it. :class:`WriterState` is what the writer
keeps between appends so each runs as few statements as it can.

:func:`append_many` stores a run of queued appends with one statement per table instead
of three per message: the writer holds the file's write lock, so it reads the
conversations' seq once, computes every row in Python and inserts them with
``executemany`` (the statements run without the GIL, which the event loop needs). A
resend is found by the unique ``cmid`` index refusing the insert, and only then is the
run rolled back and stored one append at a time, which answers the resend.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from . import chain
from .base import Appended, ClientIdReused, MessageRecord, NotFound, Role, StoreError
from .chat_events import NewEvent
from .encoding import digest, legacy_digest, pack, unpack
from .events_sqlite import insert_events
from .search_sqlite import note_text

MSG_COLUMNS = "conv, seq, sender, role, kind, body, ts, cmid, recalled, hash"


def message_row(row: tuple[Any, ...]) -> MessageRecord:
    return MessageRecord(
        conv=row[0], seq=row[1], sender=row[2], role=row[3], kind=row[4],
        body=unpack(row[5]), ts=row[6], cmid=row[7], recalled=bool(row[8]),
        hash=None if row[9] is None else bytes(row[9]).hex(),
    )



class WriterState:
    """What the writer thread keeps between appends, so each append runs fewer statements.

    * ``last``: per conversation, the seq and hash of the last message this writer chained
      (instead of reading the previous link back);
    * ``change``: the change-clock value this transaction's appends share.

    Both are forgotten whenever the writer rolls anything back, so they never name what
    did not commit; ``change`` also at the start of every transaction."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self.last: dict[str, tuple[int, bytes]] = {}
        self.change: int | None = None

    def remember(self, conv_id: str, seq: int, link: bytes) -> None:
        if len(self.last) >= self.LIMIT:
            self.last.clear()
        self.last[conv_id] = (seq, link)

    def new_batch(self) -> None:
        self.change = None

    def rolled_back(self) -> None:
        self.last.clear()
        self.change = None



def same_content(stored_kind: str, stored_body: bytes, stored_digest: bytes | None, kind: str,
                 body: dict[str, Any]) -> bool:
    """Whether a resend carries what was stored under its ``cmid``. Rows stored since the
    writer stopped computing a digest per message hold none and are compared by body
    (maps compare regardless of key order, as the digest did); older rows by digest."""
    if stored_digest is None:
        return bool(stored_kind == kind and unpack(stored_body) == body)
    return bytes(stored_digest) in (digest(kind, body), legacy_digest(kind, body))


def append_message(
    c: sqlite3.Connection,
    conv_id: str,
    sender: str,
    role: Role,
    kind: str,
    body: dict[str, Any],
    cmid: str | None,
    now: int,
    links: WriterState,
) -> Appended:
    if cmid is not None:
        row = c.execute(
            f"SELECT {MSG_COLUMNS}, digest FROM messages WHERE conv=? AND sender=? AND cmid=?",
            (conv_id, sender, cmid),
        ).fetchone()
        if row is not None:
            if not same_content(row[4], row[5], row[10], kind, body):
                raise ClientIdReused(cmid)
            agent = c.execute("SELECT agent FROM conversations WHERE id=?", (conv_id,)).fetchone()[0]
            return Appended(message_row(row[:10]), True, agent)
    # Encoded before the first write, so a body that cannot be hashed fails cleanly.
    before, after = chain.split(conv_id, sender, role, kind, body, now, cmid)
    # The conversation takes the clock's next value, then the clock moves: writers are
    # serialized, so change values follow commit order (see ``changed_since``). Appends of
    # one transaction commit together, so they share one value (one clock move per batch).
    change = links.change
    if change is None:
        change = int(c.execute("SELECT value + 1 FROM change_clock WHERE id = 1").fetchone()[0])
    row = c.execute(
        "UPDATE conversations SET last_seq = last_seq + 1, updated_at = MAX(updated_at, ?), change = ?"
        " WHERE id=? RETURNING last_seq, agent",
        (now, change, conv_id),
    ).fetchone()
    if row is None:
        raise NotFound(conv_id)
    if links.change is None:
        c.execute("UPDATE change_clock SET value = MAX(value, ?) WHERE id = 1", (change,))
        links.change = change
    seq = int(row[0])
    # The previous link is read inside this write transaction: the file has one writer at
    # a time (BEGIN IMMEDIATE), so two store instances on it still chain one after the other.
    # A seq is stored once, so a link this writer made for seq - 1 is the one stored.
    last = links.last.get(conv_id)
    if seq == 1:
        prev = chain.genesis(conv_id)
    elif last is not None and last[0] == seq - 1:
        prev = last[1]
    else:
        found = c.execute("SELECT hash FROM messages WHERE conv=? AND seq=?", (conv_id, seq - 1)).fetchone()
        prev = b"" if found is None or found[0] is None else bytes(found[0])
    link = chain.link(prev, before + str(seq).encode() + after)
    links.remember(conv_id, seq, link)
    c.execute(
        "INSERT INTO messages (conv, seq, sender, role, kind, body, ts, cmid, digest, auto, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (conv_id, seq, sender, role, kind, pack(body), now, cmid, None, 1 if body.get("auto") else 0, link),
    )
    note_text(c, conv_id, seq, kind, body)
    return Appended(MessageRecord(conv_id, seq, sender, role, kind, body, now, cmid, hash=link.hex()), False, row[1])



@dataclass(frozen=True, slots=True)
class AppendRequest:
    """One queued append, as :meth:`SQLiteStore.append` hands it to the writer."""

    conv: str
    sender: str
    role: Role
    kind: str
    body: dict[str, Any]
    cmid: str | None
    now: int
    events: tuple[NewEvent, ...] = ()


class _Resend(Exception):
    """The run holds a resend (or two appends with one ``cmid``): store it one by one."""


def append_many(c: sqlite3.Connection, requests: list[AppendRequest], links: WriterState) -> list[tuple[bool, Any]]:
    """Store ``requests`` in order, inside the writer's open transaction; for each, ``(True,
    Appended)`` or ``(False, StoreError)``. A request refused writes nothing; any other error
    propagates (the caller rolls the transaction back). Same results as :func:`append_message`
    called for each in turn, which is what it falls back to when the run holds a resend."""
    c.execute("SAVEPOINT bulk")
    try:
        results = _bulk(c, requests, links)
    except _Resend:
        c.execute("ROLLBACK TO bulk")
        c.execute("RELEASE bulk")
        links.rolled_back()
        return [_one(c, r, links) for r in requests]
    except BaseException:
        c.execute("ROLLBACK TO bulk")
        c.execute("RELEASE bulk")
        links.rolled_back()
        raise
    c.execute("RELEASE bulk")
    return results


def _one(c: sqlite3.Connection, r: AppendRequest, links: WriterState) -> tuple[bool, Any]:
    try:
        done = append_message(c, r.conv, r.sender, r.role, r.kind, r.body, r.cmid, r.now, links)
    except StoreError as exc:  # raised before the append's first write
        return (False, exc)
    if r.events and not done.duplicate:
        insert_events(c, r.conv, done.message.seq, r.events, r.now)
    return (True, done)


def _bulk(c: sqlite3.Connection, requests: list[AppendRequest], links: WriterState) -> list[tuple[bool, Any]]:
    convs = list(dict.fromkeys(r.conv for r in requests))
    # Read inside the write transaction (BEGIN IMMEDIATE): nobody else moves these seqs now.
    state: dict[str, list[Any]] = {}
    for i in range(0, len(convs), 500):
        part = convs[i:i + 500]
        for conv, last_seq, agent in c.execute(
            f"SELECT id, last_seq, agent FROM conversations WHERE id IN ({','.join('?' * len(part))})", part
        ):
            state[conv] = [int(last_seq), agent, None, 0]  # seq, agent, last link, latest ts
    change = links.change
    if change is None:
        change = int(c.execute("SELECT value + 1 FROM change_clock WHERE id = 1").fetchone()[0])
    results: list[tuple[bool, Any]] = []
    rows: list[tuple[Any, ...]] = []
    texts: list[tuple[str, int]] = []
    seen: set[tuple[str, str, str]] = set()
    for r in requests:
        conv = state.get(r.conv)
        if conv is None:
            results.append((False, NotFound(r.conv)))
            continue
        if r.cmid is not None:
            key = (r.conv, r.sender, r.cmid)
            if key in seen:
                raise _Resend
            seen.add(key)
        seq = conv[0] + 1
        prev = conv[2]
        if prev is None:
            prev = _previous_link(c, r.conv, seq, links)
        before, after = chain.split(r.conv, r.sender, r.role, r.kind, r.body, r.now, r.cmid)
        link = chain.link(prev, before + str(seq).encode() + after)
        conv[0], conv[2], conv[3] = seq, link, max(conv[3], r.now)
        rows.append((r.conv, seq, r.sender, r.role, r.kind, pack(r.body), r.now, r.cmid,
                     1 if r.body.get("auto") else 0, link))
        if r.kind == "text" and isinstance(r.body.get("text"), str):
            texts.append((r.conv, seq))
        results.append((True, Appended(MessageRecord(r.conv, seq, r.sender, r.role, r.kind, r.body, r.now, r.cmid,
                                                     hash=link.hex()), False, conv[1])))
    if not rows:
        return results
    c.executemany(
        "UPDATE conversations SET last_seq = ?, updated_at = MAX(updated_at, ?), change = ? WHERE id = ?",
        [(s[0], s[3], change, conv) for conv, s in state.items() if s[2] is not None],
    )
    if links.change is None:
        c.execute("UPDATE change_clock SET value = MAX(value, ?) WHERE id = 1", (change,))
        links.change = change
    try:
        c.executemany(
            "INSERT INTO messages (conv, seq, sender, role, kind, body, ts, cmid, auto, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    except sqlite3.IntegrityError as exc:
        if "messages.conv, messages.sender, messages.cmid" in str(exc) or "messages_cmid" in str(exc):
            raise _Resend from exc
        raise
    if texts:
        c.executemany("INSERT INTO search_pending (conv, seq) VALUES (?, ?)", texts)
    for r, (ok, done) in zip(requests, results, strict=True):
        if ok and r.events:
            insert_events(c, r.conv, done.message.seq, r.events, r.now)
    for conv, s in state.items():
        if s[2] is not None:
            links.remember(conv, s[0], s[2])
    return results


def _previous_link(c: sqlite3.Connection, conv_id: str, seq: int, links: WriterState) -> bytes:
    """The hash ``seq`` chains from: remembered by this writer when it made it, else read."""
    if seq == 1:
        return chain.genesis(conv_id)
    last = links.last.get(conv_id)
    if last is not None and last[0] == seq - 1:
        return last[1]
    found = c.execute("SELECT hash FROM messages WHERE conv=? AND seq=?", (conv_id, seq - 1)).fetchone()
    return b"" if found is None or found[0] is None else bytes(found[0])
