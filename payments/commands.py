"""The skeletons every command runs in, and the money movements they share.

A command is one store transaction that, in order: locks its entity, answers a replay of
its idempotency key, applies a deadline that has passed (committing it even if the
command is then refused), asks the state machine for the transition, claims the key,
re-checks the PIN, moves money, writes the new version, the outbox event and the stored
response. :class:`~payments.service.PaymentService` adds argument checking and the
public signatures on top.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from payments.clock import Clock
from payments.errors import LimitExceeded, NotFound, PaymentError
from payments.escrow import ORDERS, OrderAction, OrderState, order_due, order_roles
from payments.events import record_event
from payments.idempotency import IdempotencyKey
from payments.ledger import (
    AccountKey,
    Leg,
    Posting,
    TxKind,
    available,
    check_id,
    check_owner,
    deposit_owner,
    escrow_hold,
    fees,
    move,
    pending_transfer,
    pooled_escrow,
    shop_owner,
    split,
    user_owner,
    world,
)
from payments.models import Actor, Change, FundingReceipt, Order, Transfer
from payments.money import check_amount, check_currency, format_amount
from payments.pin import PinGuard
from payments.quickpay import QuickPay
from payments.repository import Repo
from payments.settings import PaymentSettings
from payments.statemachine import Role
from payments.store import Sql, Store
from payments.transfers import (
    TRANSFERS,
    TransferAction,
    TransferState,
    transfer_due,
    transfer_roles,
)
from payments.withdrawals import Withdrawal, WithdrawalState, insert_withdrawal, payouts

V = TypeVar("V", bound=BaseModel)
E = TypeVar("E", Order, Transfer)
R = TypeVar("R")


@dataclass(frozen=True)
class Refusal:
    """Commit what was done (a timeout), then raise ``error`` to the caller."""

    error: PaymentError


def finish(result: R | Refusal) -> R:
    if isinstance(result, Refusal):
        raise result.error
    return result


@dataclass(frozen=True)
class CommandTx:
    """One running command: its repository, its ``now`` and its idempotency key."""

    repo: Repo
    now: int
    idem: IdempotencyKey | None

    def post(self, posting: Posting) -> tuple[int, dict[AccountKey, int]]:
        return self.repo.post(posting, self.now, self.idem.ref if self.idem else None)


def bump(view: E, now: int, **changes: Any) -> E:
    """The next version of an order or transfer."""
    return view.model_copy(update={**changes, "version": view.version + 1, "updated_at": now})


class CommandRunner:
    """Base of :class:`~payments.service.PaymentService`: transactions and movements."""

    def __init__(self, store: Store, clock: Clock, settings: PaymentSettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.pins = PinGuard(store, clock, settings)
        #: Small payments without PIN (:mod:`payments.quickpay`).
        self.quick_pay = QuickPay(store, clock, settings, self.pins)

    def _order_command(
        self,
        actor: Actor,
        order_id: str,
        action: OrderAction,
        event: str | Callable[[Order], str],
        act: Callable[[CommandTx, Order, OrderState], Order],
        idem_key: str | None,
        params: dict[str, Any],
        *,
        pin: str | None = None,
        key_required: bool = False,
    ) -> Order:
        check_id(order_id, "order id")
        idem = None
        if idem_key is not None or key_required:
            idem = IdempotencyKey.of(actor.key_scope, idem_key, action.value,
                                     {"order_id": order_id, **params})
            replay = self._replay(idem, Order)
            if replay is not None:
                return replay
        pin_version = None
        if pin is not None:
            # Refuse the wrong payer or an unpayable order before asking for the PIN;
            # the transaction below re-checks both under the row lock.
            seen = self.store.read(lambda sql: Repo(sql).get_order(order_id))
            if seen is None:
                raise NotFound("No such order.", order_id=order_id)
            if not order_due(seen, self.clock()):
                try:
                    ORDERS.next(seen.state, action, order_roles(actor, seen))
                except PaymentError:
                    # The same key may just have succeeded in another thread.
                    replay = self._replay(idem, Order) if idem is not None else None
                    if replay is not None:
                        return replay
                    raise
            pin_version = self.pins.verify(actor.principal, pin)

        def txn(sql: Sql) -> Order | Refusal:
            tx = CommandTx(Repo(sql), self.clock(), idem)
            order = tx.repo.get_order(order_id, lock=True)
            # Look the key up only once the row is locked: a concurrent first use of the
            # same key has committed by then, and its answer must win over our checks.
            if idem is not None:
                stored = self._stored(tx.repo, idem, Order)
                if stored is not None:
                    return stored
            if order is None:
                raise NotFound("No such order.", order_id=order_id)
            roles = order_roles(actor, order)
            if order_due(order, tx.now):
                order = self._time_out_order(tx.repo, order, tx.now)
                try:
                    ORDERS.next(order.state, action, roles)
                except PaymentError as exc:
                    return Refusal(exc)
            state = ORDERS.next(order.state, action, roles)
            if idem is not None and not tx.repo.idem_claim(
                    idem.scope, idem.key, idem.op, idem.params_hash, tx.now):
                return self._claimed_by_other(tx.repo, idem, Order)
            if pin_version is not None:
                self.pins.recheck(tx.repo, actor.principal, pin_version, tx.now)
            new = act(tx, order, state)
            tx.repo.update_order(new, order.version)
            record_event(tx.repo, new, event if isinstance(event, str) else event(new), actor, tx.now)
            if idem is not None:
                tx.repo.idem_complete(idem.scope, idem.key, new.model_dump_json())
            return new

        return finish(self.store.write(txn))

    def _transfer_command(
        self, actor: Actor, transfer_id: str, action: TransferAction, idem_key: str | None
    ) -> Transfer:
        check_id(transfer_id, "transfer id")
        idem = None
        if idem_key is not None:
            idem = IdempotencyKey.of(actor.key_scope, idem_key, action.value,
                                     {"transfer_id": transfer_id})
            replay = self._replay(idem, Transfer)
            if replay is not None:
                return replay

        def txn(sql: Sql) -> Transfer | Refusal:
            tx = CommandTx(Repo(sql), self.clock(), idem)
            transfer = tx.repo.get_transfer(transfer_id, lock=True)
            if idem is not None:
                stored = self._stored(tx.repo, idem, Transfer)
                if stored is not None:
                    return stored
            if transfer is None:
                raise NotFound("No such transfer.", transfer_id=transfer_id)
            roles = transfer_roles(actor, transfer)
            if transfer_due(transfer, tx.now):
                transfer = self._time_out_transfer(tx.repo, transfer, tx.now)
                try:
                    TRANSFERS.next(transfer.state, action, roles)
                except PaymentError as exc:
                    return Refusal(exc)
            state = TRANSFERS.next(transfer.state, action, roles)
            if idem is not None and not tx.repo.idem_claim(
                    idem.scope, idem.key, idem.op, idem.params_hash, tx.now):
                return self._claimed_by_other(tx.repo, idem, Transfer)
            accepted = action is TransferAction.ACCEPT
            new = self._settle_transfer(
                tx, transfer, state,
                TxKind.TRANSFER_ACCEPT if accepted else TxKind.TRANSFER_DECLINE)
            record_event(tx.repo, new, "accepted" if accepted else "declined", actor,
                                 tx.now)
            if idem is not None:
                tx.repo.idem_complete(idem.scope, idem.key, new.model_dump_json())
            return new

        return finish(self.store.write(txn))

    def _fund(
        self, kind: Literal["deposit", "withdraw"], owner: str, amount: int, currency: str,
        idem_key: str,
    ) -> FundingReceipt:
        check_owner(owner)
        check_amount(amount)
        check_currency(currency)
        idem = IdempotencyKey.of(f"funding:{owner}", idem_key, kind,
                                 {"owner": owner, "amount": amount, "currency": currency})
        replay = self._replay(idem, FundingReceipt)
        if replay is not None:
            return replay

        def txn(sql: Sql) -> FundingReceipt:
            tx = CommandTx(Repo(sql), self.clock(), idem)
            stored = self._stored(tx.repo, idem, FundingReceipt)
            if stored is not None:
                return stored
            if not tx.repo.idem_claim(idem.scope, idem.key, idem.op, idem.params_hash, tx.now):
                return self._claimed_by_other(tx.repo, idem, FundingReceipt)
            account = available(owner, currency)
            withdrawal_id = None
            if kind == "deposit":
                posting = move(TxKind.DEPOSIT, world(currency), account, amount)
            else:
                # Out to the payout clearing account; the world only once the payout is confirmed.
                withdrawal_id = f"w_{idem.params_hash[:8]}{uuid.uuid4().hex[:12]}"
                posting = move(TxKind.WITHDRAW, account, payouts(currency), amount,
                               ("withdrawal", withdrawal_id))
            tx_id, after = tx.post(posting)
            if withdrawal_id is not None:
                insert_withdrawal(sql, Withdrawal(
                    withdrawal_id=withdrawal_id, owner=owner, amount=amount, currency=currency,
                    state=WithdrawalState.PENDING, created_at=tx.now))
            receipt = FundingReceipt(tx_id=tx_id, owner=owner, kind=kind, amount=amount,
                                     currency=currency, balance_after=after[account],
                                     created_at=tx.now, withdrawal_id=withdrawal_id)
            tx.repo.idem_complete(idem.scope, idem.key, receipt.model_dump_json())
            return receipt

        return self.store.write(txn)

    def _spend(self, tx: CommandTx, posting: Posting, payer: AccountKey) -> None:
        """Post a payment or transfer out of ``payer`` within its limits and balance."""
        tx.repo.lock_accounts(posting.accounts)  # serialises the payer's limit check
        amount = sum(leg.amount for leg in posting.legs if leg.account == payer)
        limits = self.settings.limits.get(posting.currency)
        if limits is not None:
            if amount > limits.per_transaction:
                raise LimitExceeded(
                    "This is more than the per-payment limit of "
                    f"{format_amount(limits.per_transaction, posting.currency)}.",
                    limit="per_transaction")
            spent = tx.repo.spent_since(payer.owner, posting.currency,
                                        tx.now - self.settings.daily_window_ms + 1)
            if spent + amount > limits.daily:
                raise LimitExceeded(
                    "This is more than your daily limit of "
                    f"{format_amount(limits.daily, posting.currency)}.",
                    limit="daily", remaining=max(0, limits.daily - spent))
        tx.post(posting)

    def _settle(
        self, tx: CommandTx, order: Order, state: OrderState, buyer_part: int, kind: TxKind,
        settled_by: str, **changes: Any,
    ) -> Order:
        """Empty the order's escrow: ``buyer_part`` to the buyer, the rest to the shop."""
        seller_gross = order.held - buyer_part
        fee = seller_gross * self.settings.fee_bps // 10_000
        currency = order.currency
        own = escrow_hold(currency, order.order_id)
        # An order paid before per-order escrow holds its money in the pooled account.
        source = own if tx.repo.balance(own) else pooled_escrow(currency)
        tx.post(split(kind, source, [
            (available(user_owner(order.buyer_id), currency), buyer_part),
            (available(shop_owner(order.shop_id), currency), seller_gross - fee),
            (fees(currency), fee),
        ], ("order", order.order_id)))
        # A released order may still get an after-sale claim until its deadline_at.
        claim_by = tx.now + self.settings.after_sale_period_ms if state is OrderState.RELEASED else None
        return bump(order, tx.now, state=state, held=0, buyer_refund=buyer_part,
                     seller_gross=seller_gross, fee=fee, settled_by=settled_by,
                     settled_at=tx.now, auto_confirm_at=None, paused_remaining_ms=None,
                     deadline_at=claim_by,
                     **changes)

    def _pay_after_sale(self, tx: CommandTx, order: Order, amount: int) -> int | None:
        """Pay ``amount`` back to the buyer of a released order: from the shop's balance
        first, then its deposit. Returns the part the deposit paid, or ``None`` (nothing
        moved) when both together hold less. The accounts are locked before they are read."""
        currency = order.currency
        shop = available(shop_owner(order.shop_id), currency)
        deposit = available(deposit_owner(order.shop_id), currency)
        buyer = available(user_owner(order.buyer_id), currency)
        tx.repo.lock_accounts([shop, deposit, buyer])
        from_shop = min(amount, tx.repo.balance(shop))
        from_deposit = amount - from_shop
        if from_deposit > tx.repo.balance(deposit):
            return None
        legs = [Leg(account, "D", part) for account, part in ((shop, from_shop), (deposit, from_deposit)) if part]
        tx.post(Posting(TxKind.AFTER_SALE_REFUND, currency, (*legs, Leg(buyer, "C", amount)),
                        "order", order.order_id))
        return from_deposit

    def _grant_after_sale(self, tx: CommandTx, order: Order, state: OrderState) -> Order:
        """Pay the claim (the shop accepted, or did not answer in time); when the shop's
        money falls short, the claim goes to the arbiter instead."""
        amount = order.after_sale_amount or 0
        from_deposit = self._pay_after_sale(tx, order, amount)
        if from_deposit is None:
            return bump(order, tx.now, state=ORDERS.next(order.state, OrderAction.ESCALATE_AFTER_SALE, {Role.SYSTEM}),
                        dispute_reason="The shop's balance and deposit do not cover the refund.",
                        disputed_by="system", deadline_at=tx.now + self.settings.arbiter_period_ms)
        return bump(order, tx.now, state=state, after_sale_refund=amount, after_sale_from_deposit=from_deposit,
                    deadline_at=None)

    @staticmethod
    def _after_sale_event(order: Order) -> str:
        """The event of a granted claim: paid, or handed to the arbiter."""
        return "after_sale_refunded" if order.state is OrderState.AFTER_SALE_REFUNDED else "after_sale_escalated"

    def _settle_transfer(
        self, tx: CommandTx, transfer: Transfer, state: TransferState, kind: TxKind
    ) -> Transfer:
        to = transfer.to_account if state is TransferState.ACCEPTED else transfer.from_account
        tx.post(move(kind, pending_transfer(transfer.currency),
                     available(to, transfer.currency), transfer.amount,
                     ("transfer", transfer.transfer_id)))
        new = bump(transfer, tx.now, state=state, settled_at=tx.now)
        tx.repo.update_transfer(new, transfer.version)
        return new

    def _time_out_order_id(self, order_id: str, now: int, sql: Sql) -> Change | None:
        repo = Repo(sql)
        order = repo.get_order(order_id, lock=True)
        if order is None or not order_due(order, now):
            return None
        done = self._time_out_order(repo, order, now)
        action = {OrderState.CANCELLED: "expired", OrderState.REFUNDED: "refund_granted",
                  OrderState.AFTER_SALE_REFUNDED: "after_sale_refunded",
                  OrderState.AFTER_SALE_DISPUTED: "after_sale_escalated",
                  OrderState.AFTER_SALE_CLOSED: "after_sale_closed"}.get(done.state, "released")
        return Change(entity_kind="order", entity_id=order_id, action=action,
                      state=done.state.value)

    def _time_out_transfer_id(self, transfer_id: str, now: int, sql: Sql) -> Change | None:
        repo = Repo(sql)
        transfer = repo.get_transfer(transfer_id, lock=True)
        if transfer is None or not transfer_due(transfer, now):
            return None
        done = self._time_out_transfer(repo, transfer, now)
        return Change(entity_kind="transfer", entity_id=transfer_id, action="expired",
                      state=done.state.value)

    def _time_out_order(self, repo: Repo, order: Order, now: int) -> Order:
        """Apply the deadline that passed: release (auto-confirm), cancel an unpaid offer,
        grant an unanswered refund request or after-sale claim, or close a refused claim."""
        tx = CommandTx(repo, now, None)
        if order.state is OrderState.OFFERED:
            state = ORDERS.next(order.state, OrderAction.EXPIRE, {Role.SYSTEM})
            new, event = bump(order, now, state=state, deadline_at=None), "expired"
        elif order.state is OrderState.REFUND_REQUESTED:
            state = ORDERS.next(order.state, OrderAction.AUTO_REFUND, {Role.SYSTEM})
            new = self._settle(tx, order, state, order.refund_amount or 0, TxKind.REFUND, "timer")
            event = "refund_granted"
        elif order.state is OrderState.AFTER_SALE_REQUESTED:
            state = ORDERS.next(order.state, OrderAction.AUTO_AFTER_SALE, {Role.SYSTEM})
            new = self._grant_after_sale(tx, order, state)
            event = self._after_sale_event(new)
        elif order.state is OrderState.AFTER_SALE_REFUSED:
            state = ORDERS.next(order.state, OrderAction.CLOSE_AFTER_SALE, {Role.SYSTEM})
            new, event = bump(order, now, state=state, deadline_at=None), "after_sale_closed"
        else:
            state = ORDERS.next(order.state, OrderAction.AUTO_CONFIRM, {Role.SYSTEM})
            new, event = self._settle(tx, order, state, 0, TxKind.RELEASE, "timer"), "released"
        repo.update_order(new, order.version)
        record_event(repo, new, event, None, now)
        return new

    def _time_out_transfer(self, repo: Repo, transfer: Transfer, now: int) -> Transfer:
        state = TRANSFERS.next(transfer.state, TransferAction.EXPIRE, {Role.SYSTEM})
        new = self._settle_transfer(CommandTx(repo, now, None), transfer, state,
                                    TxKind.TRANSFER_EXPIRE)
        record_event(repo, new, "expired", None, now)
        return new

    @staticmethod
    def _pause(order: Order, now: int) -> dict[str, Any]:
        """Stop a running countdown, remembering how much of it was left."""
        if order.auto_confirm_at is None:
            return {}
        return {"auto_confirm_at": None,
                "paused_remaining_ms": max(1, order.auto_confirm_at - now)}

    def _replay(self, idem: IdempotencyKey, model: type[V]) -> V | None:
        """Answer a replay from a read snapshot, without taking the write lock."""
        return self.store.read(lambda sql: self._stored(Repo(sql), idem, model))

    @staticmethod
    def _stored(repo: Repo, idem: IdempotencyKey, model: type[V]) -> V | None:
        record = repo.idem_lookup(idem.scope, idem.key)
        if record is None:
            return None
        idem.check(record.params_hash)
        return model.model_validate_json(record.response) if record.response else None

    def _claimed_by_other(self, repo: Repo, idem: IdempotencyKey, model: type[V]) -> V:
        stored = self._stored(repo, idem, model)
        if stored is None:
            raise RuntimeError(f"idempotency key {idem.key!r} claimed without a response")
        return stored
