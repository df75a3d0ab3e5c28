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

from payments.after_sale import AfterSaleCommands
from payments.clock import Clock, system_clock
from payments.commands import CommandTx
from payments.errors import (
    AlreadyPaid,
    InvalidRequest,
    NotFound,
)
from payments.escrow import DEADLINE_ACTIONS, TIMED_STATES
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
    move,
    pending_transfer,
)
from payments.models import (
    Actor,
    Change,
    FundingReceipt,
    PaymentEvent,
    Statement,
    Transfer,
)
from payments.money import check_amount, check_currency
from payments.orders import OrderCommands
from payments.pin import check_pin_format
from payments.ratings import RatingDesk
from payments.reports import Reconciliation, reconciliation
from payments.repository import Repo
from payments.settings import PaymentSettings
from payments.store import Sql, Store
from payments.transfers import TransferAction, TransferState
from payments.withdrawals import WithdrawalDesk

PRUNE_EVERY_MS = 3_600_000


class PaymentService(OrderCommands, AfterSaleCommands):
    """Escrowed orders, transfers, funding, timers and the events outbox over a store."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock = system_clock,
        settings: PaymentSettings | None = None,
    ) -> None:
        super().__init__(store, clock, settings or PaymentSettings())
        self.withdrawals = WithdrawalDesk(store, clock)
        """Completes, fails and reads withdrawals (:mod:`payments.withdrawals`)."""
        self.ratings = RatingDesk(store, clock, self.settings.rating_window_ms)
        """Ratings after each trade and the credit they add up to (:mod:`payments.ratings`)."""
        self._pruned_at: int | None = None

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
        if check_owner(to_account).startswith("deposit:"):
            raise InvalidRequest("A transfer goes to a user or a shop, not a deposit.", field="to_account")
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
        """Ask for a payout: the money leaves ``owner``'s available balance (never below
        zero) for the payout clearing account, as a ``PENDING`` withdrawal (the receipt's
        ``withdrawal_id``) until the payout is confirmed or fails."""
        return self._fund("withdraw", owner, amount, currency, idem_key)

    def balance(
        self, owner: str, currency: str, kind: AccountKind | str = AccountKind.AVAILABLE
    ) -> int:
        """Current balance of one account (``available`` of a user or shop by default).
        ``escrow_hold`` of ``platform`` is all the escrow: every order's account and the pool."""
        key = self._account(owner, currency, kind)
        if key.kind is AccountKind.ESCROW_HOLD:
            return self.store.read(lambda sql: int(sql.rows(
                "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE kind = 'escrow_hold' AND currency = ?",
                (currency,))[0][0]))
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

    def reconciliation(self, currency: str, since: int, until: int) -> Reconciliation:
        """Every account's movements in ``[since, until)`` and whether they add up
        (:mod:`payments.reports`)."""
        return reconciliation(self.store, currency, since, until)

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
        """Apply every timeout due at ``now``: auto-confirm of orders, expiry of unpaid
        offers, unanswered refund requests and after-sale claims granted, refused claims
        closed, expiry of transfers; and, once an hour, forget the PIN-less payments too old
        to count against a quick-pay cap.

        Each timeout is a compare-and-set in its own transaction, together with its
        entries and event, so concurrent or repeated runs never apply one twice.
        """
        at = self.clock() if now is None else now
        if self._pruned_at is None or not 0 <= at - self._pruned_at < PRUNE_EVERY_MS:
            self._pruned_at = at
            while self.quick_pay.prune(at) >= 1000:
                pass
        timed = [s.value for s in TIMED_STATES]
        waiting = [s.value for s in DEADLINE_ACTIONS]
        changes: list[Change] = []
        while True:
            released, lapsed, transfers = self.store.read(lambda sql: (
                Repo(sql).due_orders(at, timed, batch), Repo(sql).due_deadlines(at, waiting, batch),
                Repo(sql).due_transfers(at, batch)))
            orders = released + lapsed
            for order_id in orders:
                done = self.store.write(partial(self._time_out_order_id, order_id, at))
                if done is not None:
                    changes.append(done)
            for transfer_id in transfers:
                done = self.store.write(partial(self._time_out_transfer_id, transfer_id, at))
                if done is not None:
                    changes.append(done)
            if max(len(released), len(lapsed), len(transfers)) < batch:
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
