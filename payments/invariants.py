"""Ledger invariants, checked straight from the tables.

:func:`check_invariants` reads one snapshot and raises ``AssertionError`` naming the first
broken invariant and a few offending rows. Each check is a query that must return no
rows, so a check can be read (and run by hand) on its own. The numbers refer to the
invariants of the payments design notes: conservation (1), balanced journal (2), no
negative balance (3), balances equal entries (4), escrow and pending sums (5), paid at
most once (8), events iff committed and never twice (12).
"""

from __future__ import annotations

from typing import Final

from payments.escrow import HOLDING_STATES, OrderState
from payments.store import Sql, Store

_HOLDING = ", ".join(f"'{s.value}'" for s in sorted(HOLDING_STATES))
#: Idempotent commands that always post exactly one journal transaction. (``decide`` posts
#: none when it rejects an after-sale claim; the per-order checks below count its money.)
_MONEY_OPS = ", ".join(f"'{op}'" for op in (
    "deposit", "withdraw", "pay", "confirm", "accept_refund", "transfer", "accept",
    "decline"))
_AFTER_SALE = ", ".join(f"'{s.value}'" for s in OrderState if s.value.startswith("AFTER_SALE"))
_SIGNED = "CASE e.direction WHEN 'C' THEN e.amount ELSE -e.amount END"

CHECKS: Final[list[tuple[str, str]]] = [
    ("1 conservation: the accounts of a currency sum to zero",
     "SELECT currency, SUM(balance) FROM accounts GROUP BY currency HAVING SUM(balance) <> 0"),
    ("2 every journal transaction balances with a debit and a credit",
     "SELECT j.id, j.kind FROM journal j LEFT JOIN entries e ON e.tx_id = j.id "
     f"GROUP BY j.id, j.kind HAVING COALESCE(SUM({_SIGNED}), 0) <> 0 "
     "OR SUM(CASE e.direction WHEN 'D' THEN 1 ELSE 0 END) = 0 "
     "OR SUM(CASE e.direction WHEN 'C' THEN 1 ELSE 0 END) = 0"),
    ("2 every entry is positive and in its transaction's currency",
     "SELECT e.id, e.amount, a.currency, j.currency FROM entries e "
     "JOIN accounts a ON a.id = e.account_id JOIN journal j ON j.id = e.tx_id "
     "WHERE e.amount <= 0 OR a.currency <> j.currency"),
    ("3 no account but the world is negative",
     "SELECT owner, kind, currency, balance FROM accounts "
     "WHERE (kind <> 'world' AND balance < 0) OR ((kind = 'world') <> (owner = 'world'))"),
    ("4 each stored balance equals the sum of its entries",
     f"SELECT a.id, a.owner, a.kind, a.balance, COALESCE(SUM({_SIGNED}), 0) FROM accounts a "
     "LEFT JOIN entries e ON e.account_id = a.id GROUP BY a.id, a.owner, a.kind, a.balance "
     f"HAVING a.balance <> COALESCE(SUM({_SIGNED}), 0)"),
    ("4 each entry's running balance follows from the previous one",
     f"SELECT id, account_id FROM (SELECT e.id, e.account_id, e.balance_after, {_SIGNED} AS s, "
     "LAG(e.balance_after, 1, 0) OVER (PARTITION BY e.account_id ORDER BY e.id) AS prev "
     "FROM entries e) t WHERE balance_after <> prev + s"),
    ("5 an order holds its total exactly while in a holding state",
     "SELECT order_id, state, held, amount FROM orders "
     f"WHERE (state IN ({_HOLDING}) AND held <> amount) "
     f"OR (state NOT IN ({_HOLDING}) AND held <> 0)"),
    ("5 escrow-hold balances equal the sum of orders held",
     "SELECT c.currency, COALESCE(a.balance, 0), c.held FROM "
     "(SELECT currency, SUM(held) AS held FROM orders GROUP BY currency) c "
     "LEFT JOIN (SELECT currency, SUM(balance) AS balance FROM accounts WHERE kind = 'escrow_hold' "
     "GROUP BY currency) a ON a.currency = c.currency WHERE COALESCE(a.balance, 0) <> c.held "
     "UNION ALL SELECT a.currency, a.balance, 0 FROM accounts a WHERE a.kind = 'escrow_hold' "
     "AND a.balance <> 0 AND a.currency NOT IN (SELECT currency FROM orders)"),
    ("5 an order's own escrow account holds all it holds or, paid before per-order escrow, nothing",
     "SELECT a.owner, a.currency, a.balance, o.held FROM accounts a "
     "LEFT JOIN orders o ON a.owner = 'order:' || o.order_id "
     "WHERE a.kind = 'escrow_hold' AND a.owner <> 'platform' "
     "AND (o.order_id IS NULL OR a.currency <> o.currency OR (a.balance <> o.held AND a.balance <> 0))"),
    ("5 each order's net escrow entries equal what it holds",
     f"SELECT o.order_id, o.held, COALESCE(SUM({_SIGNED}), 0) FROM orders o "
     "LEFT JOIN journal j ON j.ref_kind = 'order' AND j.ref_id = o.order_id "
     "LEFT JOIN entries e ON e.tx_id = j.id AND e.account_id IN "
     "(SELECT id FROM accounts WHERE kind = 'escrow_hold') "
     f"GROUP BY o.order_id, o.held HAVING o.held <> COALESCE(SUM({_SIGNED}), 0)"),
    ("5 pending-transfer balance equals the sum of pending transfers",
     "SELECT a.currency, a.balance, COALESCE(SUM(t.amount), 0) FROM accounts a "
     "LEFT JOIN transfers t ON t.currency = a.currency AND t.state = 'PENDING' "
     "WHERE a.kind = 'pending_transfer' AND a.owner = 'platform' GROUP BY a.currency, a.balance "
     "HAVING a.balance <> COALESCE(SUM(t.amount), 0) "
     "UNION ALL SELECT t.currency, 0, SUM(t.amount) FROM transfers t "
     "WHERE t.state = 'PENDING' AND NOT EXISTS (SELECT 1 FROM accounts a "
     "WHERE a.kind = 'pending_transfer' AND a.owner = 'platform' AND a.currency = t.currency) GROUP BY t.currency"),
    ("5 payout clearing balance equals the sum of pending withdrawals",
     "SELECT a.currency, a.balance, COALESCE(SUM(w.amount), 0) FROM accounts a "
     "LEFT JOIN withdrawals w ON w.currency = a.currency AND w.state = 'PENDING' "
     "WHERE a.owner = 'payouts' GROUP BY a.currency, a.balance "
     "HAVING a.balance <> COALESCE(SUM(w.amount), 0) "
     "UNION ALL SELECT w.currency, 0, SUM(w.amount) FROM withdrawals w "
     "WHERE w.state = 'PENDING' AND NOT EXISTS (SELECT 1 FROM accounts a "
     "WHERE a.owner = 'payouts' AND a.currency = w.currency) GROUP BY w.currency"),
    ("5 each withdrawal moved its amount out once and, settled, once more",
     "SELECT w.withdrawal_id, w.state, COUNT(j.id) FROM withdrawals w "
     "LEFT JOIN journal j ON j.ref_kind = 'withdrawal' AND j.ref_id = w.withdrawal_id "
     "GROUP BY w.withdrawal_id, w.state "
     "HAVING COUNT(j.id) <> CASE WHEN w.state = 'PENDING' THEN 1 ELSE 2 END"),
    ("5 each transfer's net pending entries equal its amount while pending",
     f"SELECT t.transfer_id, t.state, COALESCE(SUM({_SIGNED}), 0) FROM transfers t "
     "LEFT JOIN journal j ON j.ref_kind = 'transfer' AND j.ref_id = t.transfer_id "
     "LEFT JOIN entries e ON e.tx_id = j.id AND e.account_id IN "
     "(SELECT id FROM accounts WHERE kind = 'pending_transfer' AND owner = 'platform') "
     "GROUP BY t.transfer_id, t.state, t.amount "
     "HAVING COALESCE(SUM({_SIGNED}), 0) <> "
     "CASE WHEN t.state = 'PENDING' THEN t.amount ELSE 0 END".replace("{_SIGNED}", _SIGNED)),
    ("8 an order is paid at most once, and only if it left OFFERED",
     "SELECT o.order_id, o.state, COUNT(j.id) FROM orders o LEFT JOIN journal j "
     "ON j.ref_kind = 'order' AND j.ref_id = o.order_id AND j.kind = 'pay' "
     "GROUP BY o.order_id, o.state HAVING COUNT(j.id) <> "
     "CASE WHEN o.state IN ('OFFERED', 'CANCELLED') THEN 0 ELSE 1 END"),
    ("8 an order is settled at most once, exactly when it left escrow",
     "SELECT o.order_id, o.state, COUNT(j.id) FROM orders o LEFT JOIN journal j "
     "ON j.ref_kind = 'order' AND j.ref_id = o.order_id "
     "AND j.kind IN ('release', 'refund', 'resolve') GROUP BY o.order_id, o.state "
     "HAVING COUNT(j.id) <> "
     f"CASE WHEN o.state IN ('RELEASED', 'REFUNDED', 'RESOLVED', {_AFTER_SALE}) THEN 1 ELSE 0 END"),
    ("8 an after-sale refund is paid at most once, as the order records, within what was paid",
     "SELECT o.order_id, o.state, o.after_sale_refund, COUNT(DISTINCT j.id), "
     "COALESCE(SUM(CASE e.direction WHEN 'C' THEN e.amount ELSE 0 END), 0) FROM orders o "
     "LEFT JOIN journal j ON j.ref_kind = 'order' AND j.ref_id = o.order_id AND j.kind = 'after_sale_refund' "
     "LEFT JOIN entries e ON e.tx_id = j.id GROUP BY o.order_id, o.state, o.after_sale_refund, o.amount, "
     "o.buyer_refund, o.after_sale_from_deposit "
     "HAVING COUNT(DISTINCT j.id) > 1 "
     "OR COALESCE(SUM(CASE e.direction WHEN 'C' THEN e.amount ELSE 0 END), 0) <> o.after_sale_refund "
     "OR o.after_sale_refund > o.amount - o.buyer_refund OR o.after_sale_from_deposit > o.after_sale_refund "
     "OR (o.after_sale_refund > 0 AND o.state NOT IN ('AFTER_SALE_REFUNDED', 'AFTER_SALE_RESOLVED')) "
     "OR (o.state = 'AFTER_SALE_REFUNDED' AND o.after_sale_refund = 0)"),
    ("8 a transfer is funded once and settled at most once",
     "SELECT t.transfer_id, t.state, "
     "SUM(CASE WHEN j.kind = 'transfer' THEN 1 ELSE 0 END), "
     "SUM(CASE WHEN j.kind <> 'transfer' THEN 1 ELSE 0 END) FROM transfers t "
     "LEFT JOIN journal j ON j.ref_kind = 'transfer' AND j.ref_id = t.transfer_id "
     "GROUP BY t.transfer_id, t.state "
     "HAVING SUM(CASE WHEN j.kind = 'transfer' THEN 1 ELSE 0 END) <> 1 "
     "OR SUM(CASE WHEN j.kind <> 'transfer' THEN 1 ELSE 0 END) <> "
     "CASE WHEN t.state = 'PENDING' THEN 0 ELSE 1 END"),
    ("12 a money event exists exactly once per money transaction",
     "SELECT ref_kind, ref_id, txs, evs FROM (SELECT j.ref_kind, j.ref_id, COUNT(*) AS txs, "
     "(SELECT COUNT(*) FROM events v WHERE v.entity_kind = j.ref_kind "
     "AND v.entity_id = j.ref_id AND v.action IN ('paid', 'released', 'refund_accepted', "
     "'refund_granted', 'after_sale_refunded', 'after_sale_resolved', "
     "'resolved', 'pending', 'accepted', 'declined', 'expired')) AS evs "
     "FROM journal j WHERE j.ref_kind IN ('order', 'transfer') GROUP BY j.ref_kind, j.ref_id) c "
     "WHERE txs <> evs"),
    ("12 each entity's latest event shows its current state",
     "SELECT v.entity_id, v.state, o.state FROM events v JOIN orders o "
     "ON v.entity_kind = 'order' AND o.order_id = v.entity_id "
     "WHERE v.id = (SELECT MAX(id) FROM events w WHERE w.entity_kind = 'order' "
     "AND w.entity_id = v.entity_id) AND v.state <> o.state "
     "UNION ALL SELECT v.entity_id, v.state, t.state FROM events v JOIN transfers t "
     "ON v.entity_kind = 'transfer' AND t.transfer_id = v.entity_id "
     "WHERE v.id = (SELECT MAX(id) FROM events w WHERE w.entity_kind = 'transfer' "
     "AND w.entity_id = v.entity_id) AND v.state <> t.state"),
    ("12 every order and transfer has events",
     "SELECT order_id FROM orders WHERE NOT EXISTS (SELECT 1 FROM events v "
     "WHERE v.entity_kind = 'order' AND v.entity_id = order_id) UNION ALL "
     "SELECT transfer_id FROM transfers WHERE NOT EXISTS (SELECT 1 FROM events v "
     "WHERE v.entity_kind = 'transfer' AND v.entity_id = transfer_id)"),
    ("12 event ids run from 1 without gaps",
     "SELECT s.last_id, COUNT(v.id), MAX(v.id) FROM event_seq s LEFT JOIN events v ON 1 = 1 "
     "GROUP BY s.last_id HAVING COUNT(v.id) <> s.last_id OR COALESCE(MAX(v.id), 0) <> s.last_id"),
    ("7 every stored idempotency key has its response",
     "SELECT scope, key FROM idempotency WHERE response IS NULL"),
    ("7 every stored money command has exactly one journal transaction",
     "SELECT i.scope, i.key, i.op, COUNT(j.id) FROM idempotency i LEFT JOIN journal j "
     "ON j.idem_scope = i.scope AND j.idem_key = i.key "
     f"WHERE i.op IN ({_MONEY_OPS}) GROUP BY i.scope, i.key, i.op HAVING COUNT(j.id) <> 1"),
    ("7 every journal transaction made under a key has that key stored",
     "SELECT j.id, j.idem_scope, j.idem_key FROM journal j WHERE j.idem_key IS NOT NULL "
     "AND NOT EXISTS (SELECT 1 FROM idempotency i WHERE i.scope = j.idem_scope "
     "AND i.key = j.idem_key)"),
]


def violations(sql: Sql) -> list[tuple[str, list[tuple[object, ...]]]]:
    """Every broken invariant with up to five offending rows, in one snapshot."""
    broken = []
    for name, query in CHECKS:
        rows = sql.rows(query)
        if rows:
            broken.append((name, rows[:5]))
    return broken


def check_invariants(store: Store) -> None:
    """Raise ``AssertionError`` describing the first broken ledger invariant."""
    broken = store.read(violations)
    if broken:
        name, rows = broken[0]
        raise AssertionError(f"invariant broken: {name}; offending rows: {rows}")
