"""Order commands of the guaranteed trade: offer, pay, ship, confirm, refunds, disputes.

Each public method checks its arguments, then runs as one command transaction of
:class:`~payments.commands.CommandRunner` (lock, replay, due deadline, transition,
key claim, PIN re-check, money, new version, event, stored answer). The state machine
and every deadline are in :mod:`payments.escrow`.
"""

from __future__ import annotations

from typing import Any, Literal

from payments.after_sale import decide_after_sale, decide_event
from payments.commands import CommandRunner, CommandTx, Refusal, bump, finish
from payments.errors import (
    Forbidden,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    OfferChanged,
    PaymentError,
    WrongState,
)
from payments.escrow import ORDERS, OrderAction, OrderState, order_due, order_roles
from payments.events import record_event
from payments.idempotency import IdempotencyKey
from payments.ledger import TxKind, available, check_id, escrow_hold, move, user_owner
from payments.models import Actor, Order
from payments.money import check_amount, check_currency, check_same_currency, format_amount
from payments.pin import check_pin_format
from payments.repository import Repo
from payments.statemachine import Role
from payments.store import Sql

MAX_TEXT = 500


def _text(value: object, field: str, *, required: bool = False) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or (required and not value.strip()):
        raise InvalidRequest(f"The {field} is missing or longer than {MAX_TEXT} characters.",
                             field=field)
    return value


class OrderCommands(CommandRunner):
    """The order half of :class:`~payments.service.PaymentService`."""


    def offer(
        self,
        actor: Actor,
        *,
        order_id: str,
        conversation_id: str,
        shop_id: str,
        buyer_id: str,
        listing_id: str,
        title: str,
        unit_price: int,
        quantity: int,
        currency: str,
        idem_key: str | None = None,
        pay_by: int | None = None,
    ) -> Order:
        """Create an order in OFFERED, or re-price it while it is still OFFERED.

        A re-offer keeps the conversation, buyer and currency; re-offering the same terms
        changes nothing (no new version, no event). With ``idem_key`` the offer is an
        action of its own: a resend returns its first answer, even after a later re-price
        or a payment, and never puts an older price back. ``pay_by`` (epoch ms) replaces the
        usual pay-by deadline (``offer_expiry_ms``): an offer made from a shop's time-limited
        price (a broadcast's) is payable exactly as long as that price, no longer and no less.
        """
        for value, field in ((order_id, "order id"), (conversation_id, "conversation id"),
                             (shop_id, "shop id"), (buyer_id, "buyer id"),
                             (listing_id, "listing id")):
            check_id(value, field)
        _text(title, "title", required=True)
        check_amount(unit_price, field="unit price")
        if type(quantity) is not int or not 1 <= quantity <= 1_000_000:
            raise InvalidRequest("The quantity must be a whole number from 1 to 1,000,000.",
                                 field="quantity")
        check_currency(currency)
        amount = check_amount(unit_price * quantity, field="order total")
        if actor.role != "agent" or actor.shop_id != shop_id:
            raise Forbidden("Only an agent of the shop can make an offer.", action="offer")
        if pay_by is not None and (type(pay_by) is not int or pay_by < 0):
            raise InvalidRequest("The pay-by time must be epoch milliseconds.", field="pay_by")
        terms = {"listing_id": listing_id, "title": title, "unit_price": unit_price,
                 "quantity": quantity, "amount": amount, "currency": currency}
        idem = None
        if idem_key is not None:
            capped = {} if pay_by is None else {"pay_by": pay_by}  # old keys hash as they did
            idem = IdempotencyKey.of(actor.key_scope, idem_key, "offer", {
                "order_id": order_id, "conversation_id": conversation_id, "shop_id": shop_id,
                "buyer_id": buyer_id, **terms, **capped})
            replay = self._replay(idem, Order)
            if replay is not None:
                return replay

        def txn(sql: Sql) -> Order | Refusal:
            repo, now = Repo(sql), self.clock()
            existing = repo.get_order(order_id, lock=True)
            if idem is not None:
                # Under the order's lock: a concurrent first use of the key has committed.
                stored = self._stored(repo, idem, Order)
                if stored is not None:
                    return stored
            if existing is not None and order_due(existing, now):
                # A lapsed offer is cancelled first (committed), then the re-offer refused.
                existing = self._time_out_order(repo, existing, now)
                try:
                    ORDERS.next(existing.state, OrderAction.OFFER, order_roles(actor, existing))
                except PaymentError as exc:
                    return Refusal(exc)
            if idem is not None and not repo.idem_claim(
                    idem.scope, idem.key, idem.op, idem.params_hash, now):
                return self._claimed_by_other(repo, idem, Order)
            deadline = now + self.settings.offer_expiry_ms if pay_by is None else pay_by
            order = self._offered(repo, actor, existing, now, order_id, conversation_id,
                                  shop_id, buyer_id, {**terms, "deadline_at": deadline})
            if idem is not None:
                repo.idem_complete(idem.scope, idem.key, order.model_dump_json())
            return order

        return finish(self.store.write(txn))

    @staticmethod
    def _offered(repo: Repo, actor: Actor, existing: Order | None, now: int, order_id: str,
                 conversation_id: str, shop_id: str, buyer_id: str, terms: dict[str, Any]) -> Order:
        """The order after an offer: created, re-priced (with a fresh pay-by deadline), or
        unchanged for the same terms."""
        if existing is None:
            order = Order(order_id=order_id, conversation_id=conversation_id,
                          shop_id=shop_id, buyer_id=buyer_id, state=OrderState.OFFERED,
                          version=1, created_at=now, updated_at=now, **terms)
            repo.insert_order(order)
            record_event(repo, order, "offered", actor, now)
            return order
        ORDERS.next(existing.state, OrderAction.OFFER, order_roles(actor, existing))
        if (existing.conversation_id, existing.buyer_id) != (conversation_id, buyer_id):
            raise InvalidRequest("This order id belongs to another conversation.",
                                 field="order_id")
        check_same_currency(existing.currency, terms["currency"])
        if all(getattr(existing, k) == v for k, v in terms.items() if k != "deadline_at"):
            return existing
        order = bump(existing, now, **terms)
        repo.update_order(order, existing.version)
        record_event(repo, order, "repriced", actor, now)
        return order

    def cancel(self, actor: Actor, *, order_id: str, idem_key: str | None = None) -> Order:
        """Withdraw an offer that was not paid (buyer or the shop's agent)."""
        return self._order_command(actor, order_id, OrderAction.CANCEL, "cancelled",
                                   lambda tx, order, state: bump(order, tx.now, state=state,
                                                                 deadline_at=None),
                                   idem_key, {})

    def pay(
        self,
        actor: Actor,
        *,
        order_id: str,
        pin: str | None,
        idem_key: str,
        expected_amount: int | None = None,
    ) -> Order:
        """OFFERED -> HELD: move the total from the buyer's wallet into escrow.

        ``expected_amount`` (the total the buyer saw) guards against a re-price racing
        the payment: if it differs, nothing is paid (``OfferChanged``). Without ``pin``
        the buyer's quick pay must cover the total (:mod:`payments.quickpay`).
        """
        if expected_amount is not None:
            check_amount(expected_amount, field="expected amount")
        if pin is not None:
            check_pin_format(pin)

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            if expected_amount is not None and expected_amount != order.amount:
                raise OfferChanged(amount=order.amount, currency=order.currency,
                                   state=order.state.value)
            if pin is None:
                self.quick_pay.authorize(tx.repo, actor, order, tx.now)
            payer = available(user_owner(order.buyer_id), order.currency)
            self._spend(tx, move(TxKind.PAY, payer, escrow_hold(order.currency, order.order_id),
                                 order.amount, ("order", order.order_id)), payer)
            return bump(order, tx.now, state=state, held=order.amount, paid_at=tx.now,
                        deadline_at=tx.now + self.settings.ship_period_ms)

        return self._order_command(actor, order_id, OrderAction.PAY, "paid", act, idem_key,
                                   {"expected_amount": expected_amount}, pin=pin,
                                   key_required=True)

    def ship(
        self, actor: Actor, *, order_id: str, tracking_note: str = "",
        idem_key: str | None = None,
    ) -> Order:
        """HELD -> SHIPPED (shop agent); starts the auto-confirm countdown."""
        _text(tracking_note, "tracking note")

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            return bump(order, tx.now, state=state, tracking_note=tracking_note or None,
                         shipped_at=tx.now, deadline_at=None,
                         auto_confirm_at=tx.now + self.settings.auto_confirm_period_ms)

        return self._order_command(actor, order_id, OrderAction.SHIP, "shipped", act,
                                   idem_key, {"tracking_note": tracking_note})

    def extend(self, actor: Actor, *, order_id: str, idem_key: str | None = None) -> Order:
        """Buyer postpones auto-confirm once by ``extension_period_ms`` (SHIPPED only)."""

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            if order.extended or order.auto_confirm_at is None:
                raise WrongState("The confirmation deadline was already extended once.",
                                 state=order.state.value, action="extend")
            return bump(order, tx.now, state=state, extended=True,
                         auto_confirm_at=order.auto_confirm_at
                         + self.settings.extension_period_ms)

        return self._order_command(actor, order_id, OrderAction.EXTEND, "extended", act,
                                   idem_key, {})

    def confirm(self, actor: Actor, *, order_id: str, idem_key: str | None = None) -> Order:
        """Buyer confirms receipt: release the escrow to the shop (minus the fee)."""
        return self._order_command(
            actor, order_id, OrderAction.CONFIRM, "released",
            lambda tx, order, state: self._settle(tx, order, state, 0, TxKind.RELEASE,
                                                  "buyer"),
            idem_key, {})

    def request_refund(
        self, actor: Actor, *, order_id: str, amount: int, reason: str,
        idem_key: str | None = None,
    ) -> Order:
        """Buyer asks for ``amount`` (at most what is held) back; pauses the countdown and
        gives the shop ``refund_answer_period_ms`` to answer. Past the ship-by deadline of
        an unshipped order the refund is granted at once, without the shop."""
        check_amount(amount, field="refund amount")
        _text(reason, "reason", required=True)

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            if amount > order.held:
                raise InvalidAmount(
                    f"The refund can be at most {format_amount(order.held, order.currency)}.",
                    field="amount")
            late = (order.state is OrderState.HELD and order.deadline_at is not None
                    and tx.now >= order.deadline_at)
            requested = bump(order, tx.now, state=state, refund_amount=amount,
                             refund_reason=reason, **self._pause(order, tx.now),
                             deadline_at=tx.now + self.settings.refund_answer_period_ms)
            if not late:
                return requested
            granted = ORDERS.next(state, OrderAction.AUTO_REFUND, {Role.SYSTEM})
            return self._settle(tx, requested, granted, amount, TxKind.REFUND, "timer")

        def event(order: Order) -> str:
            return "refund_granted" if order.state is OrderState.REFUNDED else "refund_requested"

        return self._order_command(actor, order_id, OrderAction.REQUEST_REFUND,
                                   event, act, idem_key,
                                   {"amount": amount, "reason": reason})

    def answer_refund(
        self, actor: Actor, *, order_id: str, accept: bool, idem_key: str | None = None
    ) -> Order:
        """Shop agent accepts (refund, remainder to the shop) or refuses (countdown resumes)."""
        if not isinstance(accept, bool):
            raise InvalidRequest("accept must be true or false.", field="accept")

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            if accept:
                if order.refund_amount is None:  # the state machine sets it with REFUND_REQUESTED
                    raise WrongState("There is no refund amount to accept.", state=state.value)
                return self._settle(tx, order, state, order.refund_amount, TxKind.REFUND,
                                    "agent")
            # The buyer may dispute for what was left of the countdown (at least
            # resume_min_period_ms; an unshipped order had none), then it releases.
            remaining = order.paused_remaining_ms or 0
            return bump(order, tx.now, state=state, paused_remaining_ms=None, deadline_at=None,
                        auto_confirm_at=tx.now + max(remaining, self.settings.resume_min_period_ms))

        action = OrderAction.ACCEPT_REFUND if accept else OrderAction.REFUSE_REFUND
        return self._order_command(actor, order_id, action,
                                   "refund_accepted" if accept else "refund_refused", act,
                                   idem_key, {"accept": accept})

    def dispute(
        self, actor: Actor, *, order_id: str, reason: str, idem_key: str | None = None
    ) -> Order:
        """Buyer or agent escalates a refused refund to an arbiter; pauses the countdown."""
        _text(reason, "reason", required=True)

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            return bump(order, tx.now, state=state, dispute_reason=reason,
                         disputed_by=actor.role, **self._pause(order, tx.now),
                         deadline_at=tx.now + self.settings.arbiter_period_ms)

        return self._order_command(actor, order_id, OrderAction.DISPUTE, "disputed", act,
                                   idem_key, {"reason": reason})

    def decide(
        self,
        actor: Actor,
        *,
        order_id: str,
        outcome: Literal["release", "refund", "split"],
        buyer_amount: int | None = None,
        idem_key: str | None = None,
    ) -> Order:
        """Arbiter settles a dispute: all to the shop, all to the buyer, or a split (of the
        held money; of the claim, for an after-sale dispute: :func:`decide_after_sale`)."""
        if outcome not in ("release", "refund", "split"):
            raise InvalidRequest("The outcome must be release, refund or split.",
                                 field="outcome")
        if outcome == "split":
            check_amount(buyer_amount, field="buyer amount")
        elif buyer_amount is not None:
            raise InvalidRequest("buyer_amount is only for a split.", field="buyer_amount")

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            if order.state is OrderState.AFTER_SALE_DISPUTED:
                return decide_after_sale(self, tx, order, state, outcome, buyer_amount)
            if outcome == "split":
                if buyer_amount is None:  # checked above; kept for the type checker
                    raise InvalidRequest("A split needs buyer_amount.", field="buyer_amount")
                if buyer_amount >= order.held:
                    raise InvalidAmount("A split must leave something for each side.",
                                        field="buyer_amount")
                part = buyer_amount
            else:
                part = order.held if outcome == "refund" else 0
            return self._settle(tx, order, state, part, TxKind.RESOLVE, "arbiter",
                                outcome=outcome)

        def event(order: Order) -> str:
            return decide_event(order) if order.state is OrderState.AFTER_SALE_RESOLVED else "resolved"

        return self._order_command(actor, order_id, OrderAction.DECIDE, event, act,
                                   idem_key, {"outcome": outcome, "buyer_amount": buyer_amount})

    def paid_with(self, actor: Actor, idem_key: str) -> Order | None:
        """The stored answer of the actor's ``pay`` under ``idem_key``, if it committed.

        For a composite action (buy-now: an implicit offer, then ``pay``) the whole action
        is answered by its payment; its inner parameters (the listing price the platform
        filled in) may have changed since, so this looks the key up by name only."""
        def read(sql: Sql) -> Order | None:
            record = Repo(sql).idem_lookup(actor.key_scope, idem_key)
            if record is None or record.op != OrderAction.PAY.value or not record.response:
                return None
            return Order.model_validate_json(record.response)

        return self.store.read(read)

    def get_order(self, order_id: str) -> Order:
        order = self.store.read(lambda sql: Repo(sql).get_order(check_id(order_id, "order id")))
        if order is None:
            raise NotFound("No such order.", order_id=order_id)
        return order

    def orders_in_conversation(self, conversation_id: str) -> list[Order]:
        """Every order of one conversation, oldest first (the back office's order pane, evidence)."""
        checked = check_id(conversation_id, "conversation id")
        return self.store.read(lambda sql: Repo(sql).orders_in_conversation(checked))

    def disputed_orders(self, limit: int = 100) -> list[Order]:
        """Open disputes (orders in ``DISPUTED`` or ``AFTER_SALE_DISPUTED``), the nearest arbiter
        deadline first: the arbiters' work list."""
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be an integer from 1 to 1000.", field="limit")
        return self.store.read(lambda sql: Repo(sql).disputed_orders(limit))
