"""The SQLite store's append, run on its writer thread: the hot path of every message.

One append checks the client id (a resend is answered with what was stored), takes
the conversation's next seq and the transaction's change value, chains the message
to the previous one's hash, and inserts it. :class:`WriterState` is what the writer
keeps between appends so each runs as few statements as it can.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from . import chain
from .base import Appended, ClientIdReused, MessageRecord, NotFound, Role
from .encoding import digest, legacy_digest, pack, unpack
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
    body_digest = digest(kind, body)
    if cmid is not None:
        row = c.execute(
            f"SELECT {MSG_COLUMNS}, digest FROM messages WHERE conv=? AND sender=? AND cmid=?",
            (conv_id, sender, cmid),
        ).fetchone()
        if row is not None:
            if row[10] != body_digest and row[10] != legacy_digest(kind, body):
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
        (conv_id, seq, sender, role, kind, pack(body), now, cmid, body_digest, 1 if body.get("auto") else 0, link),
    )
    note_text(c, conv_id, seq, kind, body)
    return Appended(MessageRecord(conv_id, seq, sender, role, kind, body, now, cmid, hash=link.hex()), False, row[1])
