"""The chat store's event outbox: what the marketplace must be told about the chat.

Why an outbox: a webhook that announces a message (to a party who is offline, or one the
off-platform check flagged), a new conversation or a report must exist exactly when what
it announces does. So the store writes the event row in the *same transaction* as the
message, the conversation or the report (and writes none for a resent duplicate), and
a webhook sender moves rows to the ledger's webhook outbox later
(:mod:`chat.webhook_events`). The two databases may differ, so the move is idempotent
instead of atomic: each event carries a random ``event_id`` that becomes the delivery id
(queued with ``ON CONFLICT DO NOTHING``), and rows are dropped from here only after
their deliveries committed. A crash in between queues nothing twice; any number of
senders may move events at once.

Guarantees every store keeps (``tests/chat/test_chat_events_store.py``):

* events passed to ``append``, ``open_conversation`` or ``add_report`` are committed
  with the row they describe, or not at all (a duplicate append, an existing
  conversation and a repeated report write none);
* an ``event_id`` already pending is not written again (an id derived from what it
  describes, such as a refused message's cmid, makes a repeat one event);
* ``pending_events`` returns committed, undropped events, oldest first; ``drop_events``
  removes them (dropping twice, or an id that is gone, is harmless).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol


def new_event_id() -> str:
    """A delivery id no other event (of any store, before or after a reset) will take."""
    return "evt_chat_" + secrets.token_hex(10)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write with a message, a conversation or a report."""

    type: str
    data: dict[str, Any]
    event_id: str = field(default_factory=new_event_id)

    def data_json(self) -> str:
        return json.dumps(self.data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """A committed event waiting to become a webhook."""

    id: int
    """The row's id in this store (what ``drop_events`` takes)."""
    event_id: str
    type: str
    conv: str
    seq: int
    """The message's seq (0 when the event is not about a stored message)."""
    data: dict[str, Any]
    created_at: int


def event_row(row: tuple[Any, ...]) -> ChatEvent:
    """A ``(id, event_id, type, conv, seq, data, created_at)`` row of either SQL store."""
    return ChatEvent(int(row[0]), row[1], row[2], row[3], int(row[4]), json.loads(row[5]), int(row[6]))


EVENT_COLUMNS = "id, event_id, type, conv, seq, data, created_at"


class ChatEvents(Protocol):
    """The outbox of chat events (see the module doc)."""

    async def add_events(self, conv_id: str, events: list[NewEvent], now: int) -> None:
        """Commit events that accompany no stored row (a message the check refused)."""

    async def pending_events(self, limit: int = 500) -> list[ChatEvent]:
        """Committed events not dropped yet, oldest first."""

    async def drop_events(self, ids: list[int]) -> None:
        """Forget events whose webhooks are queued."""
