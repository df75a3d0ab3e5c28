"""``PaymentService``: the synchronous, thread-safe entry point of the package.

Every command is one store transaction that checks, moves money, changes state,
writes its outbox event and stores its idempotent response - all or nothing. The chat
hub calls it from worker threads (``asyncio.to_thread``); the marketplace backend calls
the funding methods. Identity is the caller's job: an :class:`Actor` is trusted, and only
checked against the entity (the buyer of *this* order, an agent of *this* shop).

Order of checks in a command: arguments, idempotent replay, PIN, existence, actor and
state (:mod:`payments.statemachine`), then limits and balance. A command that finds its
entity past a deadline first applies the timeout (committed), then is refused with the
state that won, so there is never a second outcome.
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any, Literal

from payments.clock import Clock, system_clock
from payments.commands import CommandRunner, CommandTx, bump
from payments.errors import (
    AlreadyPaid,
    Forbidden,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    OfferChanged,
    WrongState,
)
from payments.escrow import ORDERS, TIMED_STATES, OrderAction, OrderState, order_roles
from payments.events import record_event
from payments.idempotency import IdempotencyKey
from payments.ledger import (
    PLATFORM,
    WORLD,
    AccountKey,
    AccountKind,
    TxKind,
    available,
    check_id,
    check_owner,
    escrow_hold,
    move,
    pending_transfer,
    user_owner,
)
from payments.models import (
    Actor,
    Change,
    FundingReceipt,
    Order,
    PaymentEvent,
    Statement,
    Transfer,
)
from payments.money import check_amount, check_currency, check_same_currency, format_amount
from payments.pin import check_pin_format
from payments.repository import Repo
from payments.settings import PaymentSettings
from payments.store import Sql, Store
from payments.transfers import TransferAction, TransferState

MAX_TEXT = 500


def _text(value: object, field: str, *, required: bool = False) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT or (required and not value.strip()):
        raise InvalidRequest(f"The {field} is missing or longer than {MAX_TEXT} characters.",
                             field=field)
    return value


class PaymentService(CommandRunner):
    """Escrowed orders, transfers, funding, timers and the events outbox over a store."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = system_clock,
        settings: PaymentSettings | None = None,
    ) -> None:
        super().__init__(store, clock, settings or PaymentSettings())

    # -- orders --------------------------------------------------------------------------

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
    ) -> Order:
        """Create an order in OFFERED, or re-price it while it is still OFFERED.

        A re-offer keeps the conversation, buyer and currency; re-offering the same terms
        changes nothing (no new version, no event). With ``idem_key`` the offer is an
        action of its own: a resend returns its first answer, even after a later re-price
        or a payment, and never puts an older price back.
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
        terms = {"listing_id": listing_id, "title": title, "unit_price": unit_price,
                 "quantity": quantity, "amount": amount, "currency": currency}
        idem = None
        if idem_key is not None:
            idem = IdempotencyKey.of(actor.key_scope, idem_key, "offer", {
                "order_id": order_id, "conversation_id": conversation_id, "shop_id": shop_id,
                "buyer_id": buyer_id, **terms})
            replay = self._replay(idem, Order)
            if replay is not None:
                return replay

        def txn(sql: Sql) -> Order:
            repo, now = Repo(sql), self.clock()
            existing = repo.get_order(order_id, lock=True)
            if idem is not None:
                # Under the order's lock: a concurrent first use of the key has committed.
                stored = self._stored(repo, idem, Order)
                if stored is not None:
                    return stored
                if not repo.idem_claim(idem.scope, idem.key, idem.op, idem.params_hash, now):
                    return self._claimed_by_other(repo, idem, Order)
            order = self._offered(repo, actor, existing, now, order_id, conversation_id,
                                  shop_id, buyer_id, terms)
            if idem is not None:
                repo.idem_complete(idem.scope, idem.key, order.model_dump_json())
            return order

        return self.store.write(txn)

    @staticmethod
    def _offered(repo: Repo, actor: Actor, existing: Order | None, now: int, order_id: str,
                 conversation_id: str, shop_id: str, buyer_id: str, terms: dict[str, Any]) -> Order:
        """The order after an offer: created, re-priced, or unchanged for the same terms."""
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
        if all(getattr(existing, k) == v for k, v in terms.items()):
            return existing
        order = bump(existing, now, **terms)
        repo.update_order(order, existing.version)
        record_event(repo, order, "repriced", actor, now)
        return order

    def cancel(self, actor: Actor, *, order_id: str, idem_key: str | None = None) -> Order:
        """Withdraw an offer that was not paid (buyer or the shop's agent)."""
        return self._order_command(actor, order_id, OrderAction.CANCEL, "cancelled",
                                   lambda tx, order, state: bump(order, tx.now, state=state),
                                   idem_key, {})

    def pay(
        self,
        actor: Actor,
        *,
        order_id: str,
        pin: str,
        idem_key: str,
        expected_amount: int | None = None,
    ) -> Order:
        """OFFERED -> HELD: move the total from the buyer's wallet into escrow.

        ``expected_amount`` (the total the buyer saw) guards against a re-price racing
        the payment: if it differs, nothing is paid (``OfferChanged``).
        """
        if expected_amount is not None:
            check_amount(expected_amount, field="expected amount")
        check_pin_format(pin)

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            if expected_amount is not None and expected_amount != order.amount:
                raise OfferChanged(amount=order.amount, currency=order.currency,
                                   state=order.state.value)
            payer = available(user_owner(order.buyer_id), order.currency)
            self._spend(tx, move(TxKind.PAY, payer, escrow_hold(order.currency),
                                 order.amount, ("order", order.order_id)), payer)
            return bump(order, tx.now, state=state, held=order.amount, paid_at=tx.now)

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
                         shipped_at=tx.now,
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
        """Buyer asks for ``amount`` (at most what is held) back; pauses the countdown."""
        check_amount(amount, field="refund amount")
        _text(reason, "reason", required=True)

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            if amount > order.held:
                raise InvalidAmount(
                    f"The refund can be at most {format_amount(order.held, order.currency)}.",
                    field="amount")
            return bump(order, tx.now, state=state, refund_amount=amount,
                         refund_reason=reason, **self._pause(order, tx.now))

        return self._order_command(actor, order_id, OrderAction.REQUEST_REFUND,
                                   "refund_requested", act, idem_key,
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
            resumed: dict[str, Any] = {}
            if order.paused_remaining_ms is not None:
                resumed = {"paused_remaining_ms": None, "auto_confirm_at": tx.now + max(
                    order.paused_remaining_ms, self.settings.resume_min_period_ms)}
            return bump(order, tx.now, state=state, **resumed)

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
                         disputed_by=actor.role, **self._pause(order, tx.now))

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
        """Arbiter settles a dispute: all to the shop, all to the buyer, or a split."""
        if outcome not in ("release", "refund", "split"):
            raise InvalidRequest("The outcome must be release, refund or split.",
                                 field="outcome")
        if outcome == "split":
            check_amount(buyer_amount, field="buyer amount")
        elif buyer_amount is not None:
            raise InvalidRequest("buyer_amount is only for a split.", field="buyer_amount")

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
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

        return self._order_command(actor, order_id, OrderAction.DECIDE, "resolved", act,
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

    # -- transfers -----------------------------------------------------------------------

    def transfer(
        self,
        actor: Actor,
        *,
        conversation_id: str,
        to_account: str,
        amount: int,
        currency: str,
        pin: str,
        idem_key: str,
        transfer_id: str | None = None,
    ) -> Transfer:
        """Send money from the actor's account to ``to_account`` (``user:<id>`` or
        ``shop:<id>``): it waits in pending until accepted, declined or expired."""
        check_id(conversation_id, "conversation id")
        check_owner(to_account)
        from_account = actor.account
        if transfer_id is not None:
            check_id(transfer_id, "transfer id")
        check_amount(amount)
        check_currency(currency)
        if to_account == from_account:
            raise InvalidRequest("You cannot transfer money to yourself.", field="to_account")
        check_pin_format(pin)
        idem = IdempotencyKey.of(actor.key_scope, idem_key, "transfer", {
            "conversation_id": conversation_id, "to_account": to_account, "amount": amount,
            "currency": currency, "transfer_id": transfer_id})
        replay = self._replay(idem, Transfer)
        if replay is not None:
            return replay
        pin_version = self.pins.verify(actor.principal, pin)
        new_id = transfer_id or uuid.uuid4().hex

        def txn(sql: Sql) -> Transfer:
            tx = CommandTx(Repo(sql), self.clock(), idem)
            stored = self._stored(tx.repo, idem, Transfer)
            if stored is not None:
                return stored
            if not tx.repo.idem_claim(idem.scope, idem.key, idem.op, idem.params_hash, tx.now):
                return self._claimed_by_other(tx.repo, idem, Transfer)
            existing = tx.repo.get_transfer(new_id, lock=True)
            if existing is not None:
                raise AlreadyPaid("This transfer was already sent.", state=existing.state.value)
            self.pins.recheck(tx.repo, actor.principal, pin_version, tx.now)
            sender = available(from_account, currency)
            self._spend(tx, move(TxKind.TRANSFER, sender, pending_transfer(currency), amount,
                                 ("transfer", new_id)), sender)
            transfer = Transfer(
                transfer_id=new_id, conversation_id=conversation_id, from_user=actor.user_id,
                to_user=to_account.partition(":")[2], from_account=from_account,
                to_account=to_account, amount=amount, currency=currency,
                state=TransferState.PENDING, version=1,
                expires_at=tx.now + self.settings.transfer_expiry_ms, created_at=tx.now,
                updated_at=tx.now)
            tx.repo.insert_transfer(transfer)
            record_event(tx.repo, transfer, "pending", actor, tx.now)
            tx.repo.idem_complete(idem.scope, idem.key, transfer.model_dump_json())
            return transfer

        return self.store.write(txn)

    def accept_transfer(
        self, actor: Actor, *, transfer_id: str, idem_key: str | None = None
    ) -> Transfer:
        """Recipient takes the money (before ``expires_at``)."""
        return self._transfer_command(actor, transfer_id, TransferAction.ACCEPT, idem_key)

    def decline_transfer(
        self, actor: Actor, *, transfer_id: str, idem_key: str | None = None
    ) -> Transfer:
        """Recipient sends the money back to the sender."""
        return self._transfer_command(actor, transfer_id, TransferAction.DECLINE, idem_key)

    def get_transfer(self, transfer_id: str) -> Transfer:
        found = self.store.read(
            lambda sql: Repo(sql).get_transfer(check_id(transfer_id, "transfer id")))
        if found is None:
            raise NotFound("No such transfer.", transfer_id=transfer_id)
        return found

    # -- funding and reads ---------------------------------------------------------------

    def deposit(self, owner: str, amount: int, currency: str, idem_key: str) -> FundingReceipt:
        """Money enters from outside (top-up) into ``owner``'s available balance."""
        return self._fund("deposit", owner, amount, currency, idem_key)

    def withdraw(self, owner: str, amount: int, currency: str, idem_key: str) -> FundingReceipt:
        """Money leaves to the outside world; never below zero."""
        return self._fund("withdraw", owner, amount, currency, idem_key)

    def balance(
        self, owner: str, currency: str, kind: AccountKind | str = AccountKind.AVAILABLE
    ) -> int:
        """Current balance of one account (``available`` of a user or shop by default)."""
        key = self._account(owner, currency, kind)
        value = self.store.read(lambda sql: Repo(sql).balance(key))
        if value < 0 and not key.may_go_negative:
            raise RuntimeError(f"ledger corrupted: {key} is negative ({value})")
        return value

    def balances(self, owner: str) -> dict[str, int]:
        """Available balance per currency of a user or shop (currencies never used are absent)."""
        checked = check_owner(owner)
        values = self.store.read(lambda sql: Repo(sql).available_balances(checked))
        if any(v < 0 for v in values.values()):
            raise RuntimeError(f"ledger corrupted: {owner} has a negative balance")
        return values

    def orders_in_conversation(self, conversation_id: str) -> list[Order]:
        """Every order of one conversation, oldest first (the back office's order pane, evidence)."""
        checked = check_id(conversation_id, "conversation id")
        return self.store.read(lambda sql: Repo(sql).orders_in_conversation(checked))

    def has_pin(self, actor: Actor) -> bool:
        """Whether the actor has set a payment PIN (clients ask for one before paying)."""
        check_id(actor.user_id, "user id")
        return self.store.read(lambda sql: Repo(sql).get_pin(actor.principal)) is not None

    def statement(
        self, owner: str, currency: str, *, limit: int = 50, before: int | None = None
    ) -> Statement:
        """Entries on ``owner``'s available account, newest first, with running balance."""
        key = self._account(owner, currency, AccountKind.AVAILABLE)
        if type(limit) is not int or not 1 <= limit <= 500:
            raise InvalidRequest("limit must be from 1 to 500.", field="limit")
        if before is not None and type(before) is not int:
            raise InvalidRequest("before must be an entry id.", field="before")

        def txn(sql: Sql) -> Statement:
            repo = Repo(sql)
            lines = repo.statement(key, limit, before)
            return Statement(owner=owner, currency=currency, balance=repo.balance(key),
                             lines=lines,
                             next_before=lines[-1].entry_id if len(lines) == limit else None)

        return self.store.read(txn)

    def events_after(self, cursor: int = 0, limit: int = 100) -> list[PaymentEvent]:
        """Outbox events with ``id > cursor`` in commit order (ids have no gaps)."""
        if type(cursor) is not int or cursor < 0:
            raise InvalidRequest("cursor must be a non-negative integer.", field="cursor")
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be from 1 to 1000.", field="limit")
        return self.store.read(lambda sql: Repo(sql).events_after(cursor, limit))

    # -- PIN -----------------------------------------------------------------------------

    def set_pin(self, actor: Actor, pin: str, current_pin: str | None = None) -> None:
        """Set the payment PIN; changing it requires the current one."""
        check_id(actor.user_id, "user id")
        self.pins.set(actor.principal, pin, current_pin)

    # -- timers --------------------------------------------------------------------------

    def run_due(self, now: int | None = None, *, batch: int = 500) -> list[Change]:
        """Apply every timeout due at ``now``: auto-confirm of orders, expiry of transfers.

        Each timeout is a compare-and-set in its own transaction, together with its
        entries and event, so concurrent or repeated runs never apply one twice.
        """
        at = self.clock() if now is None else now
        timed = [s.value for s in TIMED_STATES]
        changes: list[Change] = []
        while True:
            orders, transfers = self.store.read(lambda sql: (
                Repo(sql).due_orders(at, timed, batch), Repo(sql).due_transfers(at, batch)))
            for order_id in orders:
                done = self.store.write(partial(self._time_out_order_id, order_id, at))
                if done is not None:
                    changes.append(done)
            for transfer_id in transfers:
                done = self.store.write(partial(self._time_out_transfer_id, transfer_id, at))
                if done is not None:
                    changes.append(done)
            if len(orders) < batch and len(transfers) < batch:
                return changes

    # -- helpers -------------------------------------------------------------------------

    def _account(self, owner: str, currency: str, kind: AccountKind | str) -> AccountKey:
        check_currency(currency)
        try:
            kind = AccountKind(kind)
        except ValueError:
            raise InvalidRequest(f"Unknown account kind {kind!r}.", field="kind") from None
        if kind is AccountKind.AVAILABLE:
            return AccountKey(check_owner(owner), kind, currency)
        expected = WORLD if kind is AccountKind.WORLD else PLATFORM
        if owner != expected:
            raise InvalidRequest(f"Accounts of kind {kind.value} belong to {expected!r}.",
                                 field="owner")
        return AccountKey(owner, kind, currency)
