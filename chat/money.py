"""Money in the conversation: protocol commands in, payment cards out.

The ledger (:mod:`payments`) knows nothing of websockets; this module is the
bridge. A money command is checked against the conversation (only its buyer
pays, only its shop's agents offer and ship), run in a worker thread against
the synchronous :class:`~payments.PaymentService`, and answered with the
entity's view.

Cards are *not* posted by the command. Every committed change writes an event
in the ledger's outbox in the same transaction; the :class:`CardRelay` turns
events into messages: the first event of an order or transfer becomes its
``card``, later ones ``card_update`` messages that refer to it. A message id
derived from the event (``pay:<event id>``) makes posting idempotent, so a
relay that crashes, restarts or runs on several nodes at once still posts
each card once, and a command that did not commit posts nothing.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from payments import Actor, PaymentError, PaymentEvent, PaymentService, shop_owner, user_owner
from payments.errors import WrongState
from payments.store import open_store as open_payments_store
from payments.webhooks import WebhookOutbox

from .clock import epoch_seconds
from .credit import credit_handlers
from .handlers import arbiter as arbiter_desk
from .handlers.context import Connection, Handler
from .hub import Hub
from .offer_claims import claim_offer
from .protocol import frames as f
from .protocol.errors import ErrorCode, ProtocolError
from .protocol.follow_frames import ClaimOffer
from .store.base import ConversationRecord
from .tasks import cancel_and_wait
from .webhooks import WebhookSender, WebhookSettings

log = logging.getLogger(__name__)

SYSTEM_AGENT = "system"


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id from the caller and its idempotency key, so a resent command names the same entity."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=10).hexdigest()
    return f"{prefix}_{digest}"


def key_owner(actor: Actor) -> str:
    """Whose keys name a derived order or transfer id: a buyer's bare id (as it always was,
    so retries across an upgrade name the same entity), else the role-qualified principal
    (an agent ``u77`` and a buyer ``u77`` are different people)."""
    return actor.user_id if actor.role == "buyer" else actor.principal


def actor_of(conn: Connection) -> Actor:
    ident = conn.me
    return Actor(user_id=ident.user, role=ident.role, shop_id=ident.shop)


ROLES: dict[str, frozenset[str]] = {
    "offer": frozenset({"agent"}),
    "pay": frozenset({"buyer"}),
    "claim_offer": frozenset({"buyer"}),
    "ship": frozenset({"agent"}),
    "confirm": frozenset({"buyer"}),
    "cancel": frozenset({"buyer", "agent"}),
    "extend": frozenset({"buyer"}),
    "refund": frozenset({"buyer"}),
    "refund_answer": frozenset({"agent"}),
    "dispute": frozenset({"buyer", "agent"}),
    "decide": frozenset({"arbiter"}),
    "after_sale": frozenset({"buyer"}),
    "after_sale_answer": frozenset({"agent"}),
    "transfer": frozenset({"buyer", "agent"}),
    "transfer_answer": frozenset({"buyer", "agent"}),
    "set_pin": frozenset({"buyer", "agent", "arbiter"}),
    "set_quick_pay": frozenset({"buyer"}),
    "rate": frozenset({"buyer", "agent"}),
    "wallet": frozenset({"buyer", "agent", "arbiter"}),
}
"""Who may send each money command. The one rule: a role not listed gets ``3003`` before
anything is looked up; a listed role that is not the party of the order or transfer gets
the ledger's ``6022``."""


_ORDER_COMMANDS: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "ship": ("ship", lambda fr: {"tracking_note": fr.tracking}),
    "confirm": ("confirm", lambda fr: {}),
    "cancel": ("cancel", lambda fr: {}),
    "extend": ("extend", lambda fr: {}),
    "refund": ("request_refund", lambda fr: {"amount": fr.amount, "reason": fr.reason}),
    "refund_answer": ("answer_refund", lambda fr: {"accept": fr.accept}),
    "dispute": ("dispute", lambda fr: {"reason": fr.reason}),
    "decide": ("decide", lambda fr: {"outcome": fr.outcome, "buyer_amount": fr.buyer_amount}),
    "after_sale": ("claim_after_sale", lambda fr: {"amount": fr.amount, "reason": fr.reason}),
    "after_sale_answer": ("answer_after_sale", lambda fr: {"accept": fr.accept}),
}
"""Frame type → (ledger method, its arguments beyond actor, order and key)."""


class MoneyDesk:
    """Runs the money commands of one hub node."""

    def __init__(self, hub: Hub, service: PaymentService, *, timer_interval: float | None = None,
                 webhooks: WebhookSettings | None = None, deliver_webhooks: bool = True) -> None:
        self.hub = hub
        self.service = service
        self.relay = CardRelay(hub, service)
        self.timer_interval = timer_interval
        self._timers: asyncio.Task[None] | None = None
        self._credit_cache: dict[str, tuple[int, dict[str, Any]]] = {}
        self.webhooks = None if webhooks is None else WebhookSender(
            WebhookOutbox(service.store, service.clock), webhooks, chat_events=hub.store, deliver=deliver_webhooks)
        if self.webhooks is not None:
            hub.webhooks = self.webhooks.poke  # requests now write chat events (chat.webhook_events)
        self._commands: dict[type, Callable[[Connection, Any, ConversationRecord], Awaitable[dict[str, Any]]]] = {
            f.Offer: self._offer,
            f.Pay: self._pay,
            f.Ship: self._order_command,
            f.OrderAction: self._order_command,
            f.RequestRefund: self._order_command,
            f.AnswerRefund: self._order_command,
            f.ClaimAfterSale: self._order_command,
            f.AnswerAfterSale: self._order_command,
            f.Dispute: self._order_command,
            f.Decide: self._order_command,
            f.SendTransfer: self._transfer,
            f.AnswerTransfer: self._answer_transfer,
            f.Rate: self._rate,
            ClaimOffer: functools.partial(claim_offer, self),
        }

    async def start(self) -> None:
        await self.relay.start()
        if self.webhooks is not None:
            await self.webhooks.start()
        if self.timer_interval:
            self._timers = asyncio.create_task(run_timers(self.service, self.timer_interval, self.relay.catch_up))

    async def stop(self) -> None:
        await cancel_and_wait(self._timers)
        await self.relay.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except PaymentError as exc:
            details = {k: v for k, v in exc.details.items() if isinstance(v, str | int | float | bool | None)}
            raise ProtocolError(exc.code, exc.message, details or None) from exc

    def handlers(self) -> dict[type, Handler]:
        """The money commands' entries in the hub's dispatch table."""
        return {**dict.fromkeys(f.MONEY_FRAME_TYPES, self.handle), **credit_handlers(self),
                **arbiter_desk.ledger_handlers(self.service)}

    async def handle(self, conn: Connection, frame: Any, rid: int | None) -> None:
        """Answer one money command; the card follows through the relay."""
        if conn.me.role not in ROLES[frame.type]:
            raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, f"a {conn.me.role} may not {frame.type}")
        if isinstance(frame, f.SetPin):
            await self._call(self.service.set_pin, actor_of(conn), frame.pin, frame.current)
            conn.reply({"type": "ok", "re": rid})
            return
        if isinstance(frame, f.SetQuickPay):
            await self._call(self.service.quick_pay.configure, actor_of(conn), enabled=frame.enabled,
                             currency=frame.currency, per_payment=frame.per_payment, daily=frame.daily,
                             pin=frame.pin)
            conn.reply({"type": "ok", "re": rid})
            return
        if isinstance(frame, f.Wallet):
            conn.reply({"type": "wallet", "re": rid, **await self.wallet(conn)})
            return
        record = await self._conversation(conn, frame.conv)
        result = await self._commands[type(frame)](conn, frame, record)
        await self.relay.catch_up()
        if self.webhooks is not None:
            self.webhooks.poke()
        conn.reply({"type": "payment", "re": rid, **result})

    async def _conversation(self, conn: Connection, conv_id: str) -> ConversationRecord:
        """The conversation, checked like any other request (an arbiter's order is checked by
        the ledger: it must be disputed)."""
        if conn.me.role == "arbiter":
            record = await self.hub.conversation(conv_id)
            if record is None:
                raise ProtocolError(ErrorCode.NOT_FOUND)
            return record
        return await conn.conversation(conv_id)

    async def shop_credit(self, shop: str, now_ms: int) -> dict[str, Any] | None:
        """The shop's public credit (score, level, positive rate), recomputed at most once a
        minute per shop: listing pages ask for it on every visit. None if it cannot be read."""
        cached = self._credit_cache.get(shop)
        if cached is not None and now_ms - cached[0] < 60_000:
            return cached[1]
        try:
            credit = await asyncio.to_thread(self.service.ratings.shop_credit, shop)
        except (PaymentError, OSError):
            log.warning("could not compute the credit of %s", shop, exc_info=True)
            return None if cached is None else cached[1]
        view = credit.model_dump(mode="json", exclude={"subject"})
        if len(self._credit_cache) > 50_000:
            self._credit_cache.clear()
        self._credit_cache[shop] = (now_ms, view)
        return view

    async def disputed(self, conv_id: str) -> bool:
        """Whether an order of this conversation went to dispute (arbiters may then read it)."""
        orders = await self._call(self.service.orders_in_conversation, conv_id)
        return any(o.dispute_reason is not None or o.state in ("DISPUTED", "RESOLVED") for o in orders)

    async def wallet(self, conn: Connection) -> dict[str, Any]:
        """The balances of the account the connection acts for (a buyer's own, an agent's
        shop's; an arbiter has none), whether *this* principal has a PIN and, for a buyer,
        the quick pay switched on."""
        actor = actor_of(conn)
        owners = [] if actor.role == "arbiter" else [actor.account]
        balances = await self._call(self._balances, owners)
        pin_set = await self._call(self.service.has_pin, actor)
        quick = await self._call(self.service.quick_pay.state, actor) if actor.role == "buyer" else {}
        return {"balances": balances, "pin_set": pin_set,
                "quick_pay": {currency: vars(caps) for currency, caps in quick.items()}}

    def _balances(self, owners: list[str]) -> dict[str, dict[str, int]]:
        return {owner: self.service.balances(owner) for owner in owners}

    # --- orders -----------------------------------------------------------------

    def _order_view(self, order: Any) -> dict[str, Any]:
        return {"entity": "order", "view": order.model_dump(mode="json")}

    async def _check_order(self, record: ConversationRecord, order_id: str) -> None:
        order = await self._call(self.service.get_order, order_id)
        if order.conversation_id != record.id:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such order in this conversation")

    async def _offer(self, conn: Connection, frame: f.Offer, record: ConversationRecord) -> dict[str, Any]:
        order_id = frame.order or derived_id("o", key_owner(actor_of(conn)), frame.key)
        listing = record.listing
        order = await self._call(
            self.service.offer, actor_of(conn), order_id=order_id, conversation_id=record.id,
            shop_id=record.shop, buyer_id=record.buyer, listing_id=listing["id"], title=listing["title"],
            unit_price=frame.price, quantity=frame.quantity, currency=listing["currency"],
            idem_key=frame.key,
        )
        return self._order_view(order)

    async def _pay(self, conn: Connection, frame: f.Pay, record: ConversationRecord) -> dict[str, Any]:
        order_id = frame.order
        if order_id is None:
            # Paying the listing price: the platform makes the offer on the shop's behalf,
            # but only at a price the marketplace signed.
            listing = record.listing
            if not listing.get("verified"):
                raise ProtocolError(ErrorCode.LISTING_NOT_VERIFIED)
            buyer = actor_of(conn)
            # The buyer's action is answered by its payment: a resent buy-now that already
            # paid gets that answer, whatever the order or the listing did since.
            done = await self._call(self.service.paid_with, buyer, frame.key)
            if done is not None:
                return self._order_view(done)
            order_id = derived_id("o", key_owner(buyer), frame.key)
            system = Actor(user_id=SYSTEM_AGENT, role="agent", shop_id=record.shop)
            # The implicit offer is keyed by the action and the signed price: a resend at
            # the same price replays it; after a re-signed price it re-prices the unpaid order.
            try:
                await self._call(
                    self.service.offer, system, order_id=order_id, conversation_id=record.id,
                    shop_id=record.shop, buyer_id=record.buyer, listing_id=listing["id"],
                    title=listing["title"], unit_price=listing["price"], quantity=1,
                    currency=listing["currency"], idem_key=f"buy-now/{buyer.principal}/{frame.key}/{listing['price']}",
                )
            except ProtocolError as exc:
                # A concurrent resend may have paid meanwhile: the payment below replays it.
                if exc.code != WrongState.code:
                    raise
        else:
            await self._check_order(record, order_id)
        order = await self._call(
            self.service.pay, actor_of(conn), order_id=order_id, pin=frame.pin, idem_key=frame.key,
            expected_amount=frame.amount,
        )
        return self._order_view(order)

    async def _order_command(
        self, conn: Connection, frame: Any, record: ConversationRecord
    ) -> dict[str, Any]:
        """ship, confirm, extend, refund, refund_answer, dispute, decide: the ledger checks actor
        and state; here only that the order belongs to this conversation."""
        await self._check_order(record, frame.order)
        method, extra = _ORDER_COMMANDS[frame.type]
        order = await self._call(
            getattr(self.service, method), actor_of(conn), order_id=frame.order, idem_key=frame.key,
            **extra(frame),
        )
        return self._order_view(order)

    async def _rate(self, conn: Connection, frame: f.Rate, record: ConversationRecord) -> dict[str, Any]:
        """Rate a released order of this conversation (the ledger checks party and window)."""
        await self._check_order(record, frame.order)
        rating = await self._call(
            self.service.ratings.rate, actor_of(conn), frame.order, frame.score, frame.comment,
            frame.item, frame.service, frame.shipping,
        )
        return {"entity": "rating", "view": rating.model_dump(mode="json")}

    # --- transfers ----------------------------------------------------------------

    async def _transfer(
        self, conn: Connection, frame: f.SendTransfer, record: ConversationRecord
    ) -> dict[str, Any]:
        # Money goes between the conversation's two accounts: the buyer's and the shop's
        # (never an agent's own wallet; any agent of the shop may answer).
        actor = actor_of(conn)
        to_account = shop_owner(record.shop) if actor.role == "buyer" else user_owner(record.buyer)
        transfer = await self._call(
            self.service.transfer, actor, transfer_id=derived_id("t", key_owner(actor), frame.key),
            conversation_id=record.id, to_account=to_account, amount=frame.amount, currency=frame.currency,
            pin=frame.pin, idem_key=frame.key,
        )
        return {"entity": "transfer", "view": transfer.model_dump(mode="json")}

    async def _answer_transfer(
        self, conn: Connection, frame: f.AnswerTransfer, record: ConversationRecord
    ) -> dict[str, Any]:
        transfer = await self._call(self.service.get_transfer, frame.transfer)
        if transfer.conversation_id != record.id:
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such transfer in this conversation")
        command = self.service.accept_transfer if frame.accept else self.service.decline_transfer
        transfer = await self._call(command, actor_of(conn), transfer_id=frame.transfer, idem_key=frame.key)
        return {"entity": "transfer", "view": transfer.model_dump(mode="json")}


class CardRelay:
    """Posts the ledger's outbox events into their conversations, each exactly once."""

    def __init__(self, hub: Hub, service: PaymentService, interval: float = 0.5) -> None:
        self.hub = hub
        self.service = service
        self.interval = interval
        self.cursor = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._arrived = 0
        """Callers of :meth:`catch_up` so far; a pass covers those who came before it started."""
        self._covered = 0

    async def start(self) -> None:
        self.cursor = await self.hub.store.get_cursor("payment-events")
        self._task = asyncio.create_task(self._loop(), name="card-relay")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        """Events from timers (the worker) and other nodes are picked up by polling."""
        while True:
            try:
                await self.catch_up()
            except Exception:
                log.warning("card relay failed; retrying", exc_info=True)
            await asyncio.sleep(self.interval)

    async def catch_up(self) -> None:
        """Post every event committed before the call. Concurrent callers share passes: a
        pass that started after a caller arrived has read its events, so a caller that gets
        the lock after such a pass finished returns at once. Under load that is one read
        per burst of commands, not one serialised read per command before its reply."""
        self._arrived += 1
        ticket = self._arrived
        async with self._lock:
            if self._covered >= ticket:
                return
            covers = self._arrived
            while True:
                events: list[PaymentEvent] = await asyncio.to_thread(self.service.events_after, self.cursor, 200)
                for event in events:
                    await self.post(event)
                    self.cursor = event.id
                if events:
                    await self.hub.store.set_cursor("payment-events", self.cursor)
                if len(events) < 200:
                    break
            self._covered = covers

    async def post(self, event: PaymentEvent) -> None:
        hub = self.hub
        record = await hub.conversation(event.conversation_id)
        if record is None:
            log.error("payment event %d names unknown conversation %s", event.id, event.conversation_id)
            return
        card_cmid = f"card:{event.entity_kind}:{event.entity_id}"
        body = {
            "entity": event.entity_kind, "id": event.entity_id, "event": event.id, "action": event.action,
            "state": event.state, "view": event.payload,
        }
        card = await hub.store.message_by_cmid(record.id, "system", card_cmid)
        now = hub.clock.now_ms()
        if card is None:
            done = await hub.store.append(record.id, "system", "system", "card", body, card_cmid, now)
        elif card.body.get("event") == event.id:
            return  # posted before (another node, or before a restart)
        else:
            body["card"] = card.seq
            done = await hub.store.append(record.id, "system", "system", "card_update", body, f"pay:{event.id}", now)
        await hub.fan_out(record, done.message, done.agent, None, epoch_seconds())


async def run_timers(
    service: PaymentService, interval: float, after: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Apply due timeouts forever; each is a compare-and-set, so any number may run at once."""
    while True:
        try:
            changes = await asyncio.to_thread(service.run_due)
            if changes:
                log.info("applied %d due timeouts", len(changes))
                if after is not None:
                    await after()
        except Exception:
            log.warning("running due timeouts failed; retrying", exc_info=True)
        await asyncio.sleep(interval)


def open_service(url: str, settings: Any = None, clock: Callable[[], int] | None = None) -> PaymentService:
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    store = open_payments_store(url)
    if clock is None:
        return PaymentService(store, settings=settings)
    return PaymentService(store, settings=settings, clock=clock)
