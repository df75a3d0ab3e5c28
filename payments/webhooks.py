"""The webhook outbox: what the marketplace is told, kept until it has been told.

Why here: every order and transfer change already writes an event in the ledger's outbox
in the same transaction as the money (:mod:`payments.events`). The webhook outbox turns
those events into deliveries with a cursor that moves in the *same* transaction as the
rows it creates, so each event becomes exactly one delivery, whatever crashes and however
many processes ingest at once. Delivery itself (HTTP, signing) is the caller's; this
module only keeps state:

* ``pending`` rows are due at ``next_at``. :meth:`WebhookOutbox.claim` takes due rows by
  compare-and-set and moves ``next_at`` one lease ahead, so two deliverers never send the
  same attempt, and a deliverer that dies mid-attempt leaves a row that becomes due again
  when its lease ends (at-least-once: receivers deduplicate on the delivery ``id``).
* a row that keeps failing past the retry period becomes ``failed``; it stays until the
  marketplace replays it (then ``pending`` again, due at once) - nothing is dropped.
* ``delivered`` rows are history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from payments.clock import Clock
from payments.errors import InvalidRequest
from payments.repository import Repo
from payments.store import Sql, Store

State = Literal["pending", "delivered", "failed"]

CURSOR = "webhook_cursor"


@dataclass(frozen=True)
class Delivery:
    """One webhook: ``body`` is the exact JSON that is signed and sent."""

    id: str
    type: str
    body: str
    state: State
    attempts: int
    next_at: int
    created_at: int
    delivered_at: int | None
    last_error: str | None
    retry_from: int
    """When the current retry period started: creation, or the last replay."""

    def view(self) -> dict[str, Any]:
        """The delivery as the server API lists it."""
        return {"id": self.id, "type": self.type, "state": self.state, "attempts": self.attempts,
                "next_at": self.next_at, "created_at": self.created_at, "retry_from": self.retry_from,
                "delivered_at": self.delivered_at, "last_error": self.last_error,
                "event": json.loads(self.body)}


_COLUMNS = "id, type, body, state, attempts, next_at, created_at, delivered_at, last_error, retry_from"


_QUEUE = (f"INSERT INTO webhooks ({_COLUMNS}) VALUES (?, ?, ?, 'pending', 0, ?, ?, NULL, NULL, ?) "
          "ON CONFLICT (id) DO NOTHING")
"""A new delivery, pending and due at once; an id already there (any state) is left alone."""


def _delivery(row: tuple[Any, ...]) -> Delivery:
    return Delivery(*row)


def event_body(event_id: str, kind: str, created: int, data: dict[str, Any]) -> str:
    """The canonical JSON of one webhook (sorted keys, no spaces): stored once, signed and
    sent byte for byte on every attempt."""
    return json.dumps({"id": event_id, "type": kind, "created": created, "data": data},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class WebhookOutbox:
    """Deliveries of the ledger's events, in the ledger's own database."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def ingest(self, limit: int = 500) -> int:
        """Turn ledger events past the cursor into pending deliveries; returns how many were
        queued (0: caught up).
        Cursor and rows commit together, so an event is never queued twice or skipped."""

        def behind(sql: Sql) -> bool:
            rows = sql.rows(f"SELECT (SELECT last_id FROM event_seq WHERE singleton = 1), "
                            f"(SELECT last_event FROM {CURSOR} WHERE singleton = 1)")
            return not rows or rows[0][0] != rows[0][1]

        # A read first: most passes find nothing new, and a write transaction (with its
        # fsync) per pass would cost more than everything else the sender does.
        if not self.store.read(behind):
            return 0

        def txn(sql: Sql) -> int:
            # Locked (PostgreSQL; SQLite writes are serial anyway): concurrent ingesters
            # take turns, so the cursor never moves back and no event is read twice.
            lock = " FOR UPDATE" if sql.dialect == "postgresql" else ""
            rows = sql.rows(f"SELECT last_event FROM {CURSOR} WHERE singleton = 1{lock}")
            cursor = int(rows[0][0]) if rows else 0
            events = Repo(sql).events_after(cursor, limit)
            now = self.clock()
            queued = 0
            for ev in events:
                kind = f"{ev.entity_kind}.{ev.action}"
                delivery_id = f"evt_pay_{ev.id}"
                data = {"conversation_id": ev.conversation_id, "entity": ev.entity_kind,
                        "entity_id": ev.entity_id, "state": ev.state, "object": ev.payload}
                queued += sql.run(_QUEUE, (delivery_id, kind, event_body(delivery_id, kind, ev.created_at, data),
                                           now, now, now))
            if events:
                sql.run(f"UPDATE {CURSOR} SET last_event = ? WHERE singleton = 1", (events[-1].id,))
            return queued

        return self.store.write(txn)

    def queue(self, webhooks: list[tuple[str, str, str]]) -> int:
        """Queue ``(delivery id, type, body)`` webhooks from another outbox (the chat store's);
        returns how many were new. An id already queued is skipped, whatever its state, so a
        source that queues the same event again after a crash sends it once."""
        now = self.clock()

        def txn(sql: Sql) -> int:
            return sum(sql.run(_QUEUE, (delivery_id, kind, body, now, now, now))
                       for delivery_id, kind, body in webhooks)

        return self.store.write(txn) if webhooks else 0

    def claim(self, lease_ms: int, limit: int = 50) -> list[Delivery]:
        """Take up to ``limit`` due deliveries for one attempt each (see the module doc)."""
        now = self.clock()

        def txn(sql: Sql) -> list[Delivery]:
            due = [_delivery(r) for r in sql.rows(
                f"SELECT {_COLUMNS} FROM webhooks WHERE state = 'pending' AND next_at <= ? "
                "ORDER BY next_at, id LIMIT ?", (now, limit))]
            taken = []
            for d in due:
                if sql.run("UPDATE webhooks SET next_at = ?, attempts = attempts + 1 "
                           "WHERE id = ? AND state = 'pending' AND next_at = ?",
                           (now + lease_ms, d.id, d.next_at)):
                    taken.append(Delivery(d.id, d.type, d.body, d.state, d.attempts + 1,
                                          now + lease_ms, d.created_at, None, d.last_error,
                                          d.retry_from))
            return taken

        return self.store.write(txn)

    def delivered(self, *delivery_ids: str) -> None:
        """Mark deliveries done, all in one transaction (one commit per batch of attempts)."""
        now = self.clock()

        def txn(sql: Sql) -> None:
            for delivery_id in delivery_ids:
                sql.run("UPDATE webhooks SET state = 'delivered', delivered_at = ?, last_error = NULL "
                        "WHERE id = ? AND state = 'pending'", (now, delivery_id))

        self.store.write(txn)

    def attempt_failed(self, delivery: Delivery, error: str, retry_in_ms: int, give_up_after_ms: int) -> State:
        """Schedule the next attempt, or mark the delivery failed once the next attempt would
        fall more than ``give_up_after_ms`` after its retry period started."""
        now = self.clock()
        give_up = now + retry_in_ms > delivery.retry_from + give_up_after_ms
        state: State = "failed" if give_up else "pending"
        self.store.write(lambda sql: sql.run(
            "UPDATE webhooks SET state = ?, next_at = ?, last_error = ? WHERE id = ? AND state = 'pending'",
            (state, now + retry_in_ms, error[:500], delivery.id)))
        return state

    def failed(self, limit: int = 100, after: str = "") -> list[Delivery]:
        """Failed deliveries, oldest id first, strictly after ``after`` (keyset paging)."""
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be from 1 to 1000.", field="limit")
        return self.store.read(lambda sql: [_delivery(r) for r in sql.rows(
            f"SELECT {_COLUMNS} FROM webhooks WHERE state = 'failed' AND id > ? ORDER BY id LIMIT ?",
            (after, limit))])

    def replay(self, delivery_id: str | None = None) -> int:
        """Make one failed delivery (or all, with ``None``) pending and due now, with a fresh
        retry period; returns how many. Replaying a delivered one is refused (it arrived)."""
        now = self.clock()
        if delivery_id is None:
            return self.store.write(lambda sql: sql.run(
                "UPDATE webhooks SET state = 'pending', next_at = ?, retry_from = ? WHERE state = 'failed'",
                (now, now)))
        return self.store.write(lambda sql: sql.run(
            "UPDATE webhooks SET state = 'pending', next_at = ?, retry_from = ? WHERE id = ? AND state = 'failed'",
            (now, now, delivery_id)))

    def prune(self, delivered_before: int, limit: int = 1000) -> int:
        """Forget up to ``limit`` deliveries that arrived before ``delivered_before``; returns
        how many. Pending and failed ones are kept whatever their age. Safe: a ledger event is
        queued once (the cursor), a chat event is dropped from the chat store right after it
        is queued, so nothing comes back to be sent again once its delivery is forgotten."""

        def txn(sql: Sql) -> int:
            ids = [r[0] for r in sql.rows(
                "SELECT id FROM webhooks WHERE state = 'delivered' AND delivered_at < ? ORDER BY delivered_at LIMIT ?",
                (delivered_before, limit))]
            return sum(sql.run("DELETE FROM webhooks WHERE id = ? AND state = 'delivered'", (i,)) for i in ids)

        return self.store.write(txn)

    def get(self, delivery_id: str) -> Delivery | None:
        rows = self.store.read(lambda sql: sql.rows(
            f"SELECT {_COLUMNS} FROM webhooks WHERE id = ?", (delivery_id,)))
        return _delivery(rows[0]) if rows else None

    def counts(self) -> dict[str, int]:
        """Deliveries per state (for metrics and tests)."""
        rows = self.store.read(lambda sql: sql.rows("SELECT state, COUNT(*) FROM webhooks GROUP BY state"))
        return {str(state): int(n) for state, n in rows}
