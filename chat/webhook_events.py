"""Chat events for the marketplace: which ones a request writes, and how they become webhooks.

The ledger's events already become webhooks (:mod:`payments.webhooks`). The chat's own
(a message to a party who is not online, a flagged or refused message, a new
conversation, a report) are written by the store with what they announce
(:mod:`chat.store.chat_events`), and :func:`chat.webhooks.move_chat_events` queues them in the same webhook outbox,
so they are signed, retried, kept when failed and replayed exactly like the ledger's.

Events are written only while someone will send them (:attr:`Hub.webhooks`), so a hub
without ``WEBHOOK_URL`` pays nothing and its outbox stays empty.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .hub import Hub
from .routing import shop_entity, user_entity
from .store.base import ConversationRecord, Role, Side
from .store.chat_events import NewEvent

PREVIEW_CHARS = 140
"""How much of a text the offline notice carries (enough for a push or an SMS)."""

TYPES = ("conversation.opened", "message.to_offline", "message.flagged", "message.blocked", "report.created")


def opened(buyer: str, shop: str, agent: str | None, listing: dict[str, Any]) -> list[NewEvent]:
    return [NewEvent("conversation.opened", {
        "buyer": buyer, "shop": shop, "agent": agent,
        "listing": {k: listing[k] for k in ("id", "title", "price", "currency", "verified") if k in listing},
    })]


def reported(record: ConversationRecord, reporter: str, side: Side, reason: str) -> list[NewEvent]:
    return [NewEvent("report.created", {
        "reporter": reporter, "side": side, "reason": reason, "buyer": record.buyer, "shop": record.shop,
    })]


def blocked(hub: Hub, record: ConversationRecord, sender: str, cmid: str, flags: list[str]) -> NewEvent:
    """A text the off-platform check refused: nothing is stored, so its id is derived from
    the message id (a resend of it is one webhook) and the text is not sent."""
    key = hashlib.sha256(f"{record.id}\x00{sender}\x00{cmid}".encode()).hexdigest()[:20]
    return NewEvent("message.blocked", {
        "sender": sender, "buyer": record.buyer, "shop": record.shop, "flags": flags,
        "action": hub.config.off_platform_action,
    }, event_id=f"evt_chat_blk_{key}")


async def for_message(
    hub: Hub, record: ConversationRecord, sender: str, role: Role, kind: str, body: dict[str, Any], now: int
) -> list[NewEvent]:
    """The events a party's new message carries: ``message.flagged`` when the off-platform
    check found something, ``message.to_offline`` when the party it is for is not online
    (the assigned agent, or every agent of the shop while it is unassigned; or the buyer).
    Called only while webhooks go out (``hub.webhooks``)."""
    events: list[NewEvent] = []
    if body.get("flags"):
        events.append(NewEvent("message.flagged", {
            "sender": sender, "role": role, "buyer": record.buyer, "shop": record.shop,
            "flags": list(body["flags"]), "action": hub.config.off_platform_action,
            "masked": bool(body.get("masked")), "text": body.get("text"),
        }))
    to, entity = ("shop", user_entity(record.agent) if record.agent else shop_entity(record.shop)) \
        if role == "buyer" else ("buyer", user_entity(record.buyer))
    state = (await hub.presence.get([entity], now))[entity]
    if state.status != "online":
        text = body.get("text")
        events.append(NewEvent("message.to_offline", {
            "to": to, "buyer": record.buyer, "shop": record.shop, "agent": record.agent,
            "sender": sender, "role": role, "kind": kind, "status": state.status, "last_seen": state.last_seen,
            "preview": text[:PREVIEW_CHARS] if isinstance(text, str) else None,
        }))
    return events
