"""Withdrawals as a process: requested, then paid out or failed, never lost in between.

A payout to a bank or a wallet takes time and can fail, so the ledger does not send money
straight to the world. ``withdraw`` moves it from the owner's ``available`` account to the
platform's payout clearing account (owner ``payouts``, kind ``pending_transfer``: money on
its way out) and records a ``PENDING`` withdrawal. The marketplace's payout system then
confirms through the server API:

* ``complete`` (with its payout reference): clearing -> world, ``COMPLETED``;
* ``fail`` (with a reason): clearing -> back to the owner's ``available``, ``FAILED``.

Each is a compare-and-set on the withdrawal's state in one transaction with its journal
entries, so a confirmation sent twice (a retried webhook, a double click) acts once; the
opposite confirmation after one has landed is refused. The invariants check that the
clearing account always holds exactly the pending withdrawals.

Pending withdrawals have no timer on purpose: reversing a payout the bank may still make
would pay twice. They are listed by :meth:`WithdrawalDesk.pending` and in the
reconciliation report, so finance sees any that wait too long.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from payments.clock import Clock
from payments.errors import InvalidRequest, NotFound, WrongState
from payments.ledger import AccountKey, AccountKind, TxKind, available, check_id, move, world
from payments.models import View
from payments.repository import Repo
from payments.store import Sql, Store

PAYOUTS: Final = "payouts"
MAX_NOTE = 200


class WithdrawalState(StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Withdrawal(View):
    withdrawal_id: str
    owner: str
    amount: int
    currency: str
    state: WithdrawalState
    reference: str | None = None
    """The payout system's reference, once completed."""
    reason: str | None = None
    """Why it failed, once failed."""
    created_at: int
    settled_at: int | None = None


_COLUMNS = "withdrawal_id, owner, amount, currency, state, reference, reason, created_at, settled_at"


def payouts(currency: str) -> AccountKey:
    """The clearing account of money on its way out."""
    return AccountKey(PAYOUTS, AccountKind.PENDING_TRANSFER, currency)


def _row(row: tuple[object, ...]) -> Withdrawal:
    return Withdrawal.model_validate(dict(zip(_COLUMNS.split(", "), row, strict=True)))


def insert_withdrawal(sql: Sql, withdrawal: Withdrawal) -> None:
    """Record a new pending withdrawal (inside the transaction that moved its money)."""
    sql.run(f"INSERT INTO withdrawals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, NULL)",
            (withdrawal.withdrawal_id, withdrawal.owner, withdrawal.amount, withdrawal.currency,
             withdrawal.state.value, withdrawal.created_at))


def _note(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NOTE:
        raise InvalidRequest(f"The {field} must be 1-{MAX_NOTE} characters.", field=field)
    return value


class WithdrawalDesk:
    """Completes and fails pending withdrawals; reads them."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def get(self, withdrawal_id: str) -> Withdrawal:
        check_id(withdrawal_id, "withdrawal id")
        rows = self.store.read(lambda sql: sql.rows(
            f"SELECT {_COLUMNS} FROM withdrawals WHERE withdrawal_id = ?", (withdrawal_id,)))
        if not rows:
            raise NotFound("No such withdrawal.", withdrawal_id=withdrawal_id)
        return _row(rows[0])

    def pending(self, limit: int = 100) -> list[Withdrawal]:
        """The oldest pending withdrawals first."""
        return self.store.read(lambda sql: [_row(r) for r in sql.rows(
            f"SELECT {_COLUMNS} FROM withdrawals WHERE state = 'PENDING' ORDER BY created_at, withdrawal_id "
            "LIMIT ?", (limit,))])

    def complete(self, withdrawal_id: str, reference: str) -> Withdrawal:
        """The payout was made: the money leaves for the world."""
        _note(reference, "reference")
        return self._settle(withdrawal_id, WithdrawalState.COMPLETED, reference)

    def fail(self, withdrawal_id: str, reason: str) -> Withdrawal:
        """The payout failed: the money goes back to the owner's available balance."""
        _note(reason, "reason")
        return self._settle(withdrawal_id, WithdrawalState.FAILED, reason)

    def _settle(self, withdrawal_id: str, state: WithdrawalState, note: str) -> Withdrawal:
        check_id(withdrawal_id, "withdrawal id")

        def txn(sql: Sql) -> Withdrawal:
            lock = " FOR UPDATE" if sql.dialect == "postgresql" else ""
            rows = sql.rows(f"SELECT {_COLUMNS} FROM withdrawals WHERE withdrawal_id = ?{lock}",
                            (withdrawal_id,))
            if not rows:
                raise NotFound("No such withdrawal.", withdrawal_id=withdrawal_id)
            current = _row(rows[0])
            if current.state is state:
                return current  # the same confirmation again: it acted once
            if current.state is not WithdrawalState.PENDING:
                raise WrongState(f"This withdrawal is already {current.state.value.lower()}.",
                                 state=current.state.value)
            now = self.clock()
            if state is WithdrawalState.COMPLETED:
                posting = move(TxKind.PAYOUT, payouts(current.currency), world(current.currency),
                               current.amount, ("withdrawal", withdrawal_id))
            else:
                posting = move(TxKind.PAYOUT_REVERSAL, payouts(current.currency),
                               available(current.owner, current.currency), current.amount,
                               ("withdrawal", withdrawal_id))
            Repo(sql).post(posting, now)
            column = "reference" if state is WithdrawalState.COMPLETED else "reason"
            sql.run(f"UPDATE withdrawals SET state = ?, {column} = ?, settled_at = ? "
                    "WHERE withdrawal_id = ? AND state = 'PENDING'",
                    (state.value, note, now, withdrawal_id))
            return current.model_copy(update={"state": state, column: note, "settled_at": now})

        return self.store.write(txn)
