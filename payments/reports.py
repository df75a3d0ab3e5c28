"""The reconciliation report: every account's movements in a period, and whether they add up.

What finance does at the end of a day or month: for one currency and a period
``[since, until)``, each account's opening balance, its credits and debits in the period
and its closing balance (from the append-only entries, so the past cannot be rewritten
under the report), the period's transactions summed by kind, and the checks that make the
report trustworthy on its own: each account's opening + credits - debits equals its
closing, and the accounts of the currency sum to zero at both ends.
"""

from __future__ import annotations

from payments.errors import InvalidRequest
from payments.ledger import PLATFORM, AccountKind
from payments.models import View
from payments.money import check_currency
from payments.store import Sql, Store


class AccountLine(View):
    owner: str
    kind: str
    opening: int
    credits: int
    debits: int
    closing: int


class KindLine(View):
    kind: str
    transactions: int
    amount: int
    """Money moved by these transactions (each one's credits, which equal its debits)."""


class Reconciliation(View):
    currency: str
    since: int
    until: int
    accounts: list[AccountLine]
    by_kind: list[KindLine]
    balanced: bool
    """Every account's movements explain its closing balance, and the accounts sum to zero
    at the start and at the end of the period."""


def _balances_before(sql: Sql, currency: str, at: int) -> dict[tuple[str, str], int]:
    """Each account's balance just before ``at``: its last entry's running balance."""
    rows = sql.rows(
        "SELECT a.owner, a.kind, e.balance_after FROM accounts a JOIN entries e ON e.account_id = a.id "
        "WHERE a.currency = ? AND e.id = (SELECT MAX(e2.id) FROM entries e2 "
        "WHERE e2.account_id = a.id AND e2.created_at < ?)",
        (currency, at),
    )
    return {(owner, kind): int(balance) for owner, kind, balance in rows}


def _line(owner: str, kind: str) -> tuple[str, str]:
    """The report's line of an account: every order's escrow account is one line, the
    platform's escrow (a line per order would bury the report); the invariants check them
    one by one."""
    return (PLATFORM, kind) if kind == AccountKind.ESCROW_HOLD.value else (owner, kind)


def _escrow_as_one(balances: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for (owner, kind), value in balances.items():
        line = _line(owner, kind)
        out[line] = out.get(line, 0) + value
    return out


def reconciliation(store: Store, currency: str, since: int, until: int) -> Reconciliation:
    """The report for ``currency`` over ``[since, until)`` (epoch ms), read in one snapshot."""
    check_currency(currency)
    if type(since) is not int or type(until) is not int or not 0 <= since < until:
        raise InvalidRequest("The period must be two times in ms with since < until.", field="since")

    def read(sql: Sql) -> Reconciliation:
        opening = _escrow_as_one(_balances_before(sql, currency, since))
        closing = _escrow_as_one(_balances_before(sql, currency, until))
        moves = sql.rows(
            "SELECT a.owner, a.kind, "
            "SUM(CASE WHEN e.direction = 'C' THEN e.amount ELSE 0 END), "
            "SUM(CASE WHEN e.direction = 'D' THEN e.amount ELSE 0 END) "
            "FROM entries e JOIN accounts a ON a.id = e.account_id "
            "WHERE a.currency = ? AND e.created_at >= ? AND e.created_at < ? GROUP BY a.owner, a.kind",
            (currency, since, until),
        )
        moved: dict[tuple[str, str], tuple[int, int]] = {}
        for o, k, c, d in moves:
            line = _line(o, k)
            before = moved.get(line, (0, 0))
            moved[line] = (before[0] + int(c), before[1] + int(d))
        kinds = sql.rows(
            "SELECT j.kind, COUNT(DISTINCT j.id), SUM(e.amount) FROM journal j "
            "JOIN entries e ON e.tx_id = j.id AND e.direction = 'C' "
            "WHERE j.currency = ? AND j.created_at >= ? AND j.created_at < ? GROUP BY j.kind ORDER BY j.kind",
            (currency, since, until),
        )
        lines = []
        for owner, kind in sorted(set(opening) | set(closing) | set(moved)):
            credits, debits = moved.get((owner, kind), (0, 0))
            lines.append(AccountLine(owner=owner, kind=kind, opening=opening.get((owner, kind), 0),
                                     credits=credits, debits=debits, closing=closing.get((owner, kind), 0)))
        balanced = (all(a.opening + a.credits - a.debits == a.closing for a in lines)
                    and sum(a.opening for a in lines) == 0 and sum(a.closing for a in lines) == 0)
        return Reconciliation(
            currency=currency, since=since, until=until, accounts=lines,
            by_kind=[KindLine(kind=k, transactions=int(n), amount=int(s)) for k, n, s in kinds],
            balanced=balanced,
        )

    return store.read(read)
