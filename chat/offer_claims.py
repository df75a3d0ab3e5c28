"""Buying at a broadcast's price: the ``claim_offer`` money command.

A shop's broadcast may carry a price for a listing, valid until ``offer.valid_until``. The
message only shows it; ``claim_offer`` turns it into the shop's ledger offer in the buyer's
conversation, made by the platform on the shop's behalf (as buy-now does for a signed
listing price), so the order card reaches both sides through the card relay as usual and
the buyer pays it with the ordinary ``pay``.

Who may claim: the buyer of a conversation the broadcast's message was delivered into
(its client id ``~broadcast:<id>`` cannot be forged by a client), so a follower who never
received it, or a buyer naming someone else's conversation, gets nothing.

Idempotent per (broadcast, buyer): the order id derives from both, so a retry, a second tap
or a second device gets the same order in whatever state it is now (even after the price
lapsed), never a second one. The order's pay-by deadline is the broadcast's ``valid_until``
(not the usual offer expiry): the price is payable exactly as long as the shop said, never
longer, and an order claimed on day 1 of a 30-day price does not lapse on day 3.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from payments import Actor, Order, PaymentService
from payments.errors import NotFound

from .broadcasts import message_cmid
from .handlers.context import Connection
from .protocol.errors import ErrorCode, ProtocolError
from .protocol.follow_frames import ClaimOffer
from .store.base import BroadcastRecord, ConversationRecord

if TYPE_CHECKING:
    from .money import MoneyDesk


def claim_order_id(broadcast: int, buyer: str) -> str:
    """The one order a buyer can get from one broadcast."""
    from .money import derived_id

    return derived_id("o", "broadcast", str(broadcast), buyer)


def _existing(service: PaymentService, order_id: str) -> Order | None:
    try:
        return service.get_order(order_id)
    except NotFound:
        return None


async def _received(desk: MoneyDesk, record: ConversationRecord, broadcast: int) -> BroadcastRecord:
    """The broadcast, if its message is in this conversation; else ``3005``."""
    store = desk.hub.store
    job = await store.get_broadcast(broadcast)
    if job is None or job.shop != record.shop or await store.message_by_cmid(
            record.id, job.by, message_cmid(job.id)) is None:
        raise ProtocolError(ErrorCode.BROADCAST_NOT_RECEIVED)
    return job


async def claim_offer(desk: MoneyDesk, conn: Connection, frame: ClaimOffer,
                      record: ConversationRecord) -> dict[str, Any]:
    """Make (or find) the buyer's order at the broadcast's price; the card follows."""
    from .money import SYSTEM_AGENT

    job = await _received(desk, record, frame.broadcast)
    order_id = claim_order_id(job.id, record.buyer)
    service = desk.service
    order = await asyncio.to_thread(_existing, service, order_id)
    if order is None:
        offer, listing = job.body.get("offer"), job.body.get("listing")
        if not isinstance(offer, dict) or not isinstance(listing, dict):
            raise ProtocolError(ErrorCode.NO_BROADCAST_OFFER)
        valid_until = int(offer["valid_until"])
        if desk.hub.clock.now_ms() >= valid_until:
            raise ProtocolError(ErrorCode.BROADCAST_OFFER_EXPIRED, details={"valid_until": valid_until})
        system = Actor(user_id=SYSTEM_AGENT, role="agent", shop_id=record.shop)
        order = await desk._call(
            service.offer, system, order_id=order_id, conversation_id=record.id, shop_id=record.shop,
            buyer_id=record.buyer, listing_id=str(listing["id"]), title=str(listing["title"]),
            unit_price=int(offer["price"]), quantity=1, currency=str(offer["currency"]),
            idem_key=f"broadcast/{job.id}/{record.buyer}", pay_by=valid_until,
        )
    elif order.conversation_id != record.id:
        raise ProtocolError(ErrorCode.BROADCAST_NOT_RECEIVED)
    return {"entity": "order", "view": order.model_dump(mode="json")}


__all__ = ["claim_offer", "claim_order_id"]
