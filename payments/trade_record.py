"""A buyer's trade record beside the credit: what a shop weighs before an offer or a refund.

Credit (:mod:`payments.ratings`) sums ratings; a buyer new to ratings may still have bought a
lot, or have sent orders to the arbiter before. These counts cover every shop of the platform,
like the credit, and are read in one snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass

from payments.escrow import RELEASED_SQL
from payments.ledger import check_id
from payments.store import Sql, Store


@dataclass(frozen=True, slots=True)
class TradeRecord:
    trades: int
    """Orders released to the shop (confirmed by the buyer or by the timer), with or without
    an after-sale claim since."""
    disputes: int
    """Orders the buyer or a shop sent to the arbiter, whatever the decision."""


def buyer_trade_record(store: Store, buyer_id: str) -> TradeRecord:
    check_id(buyer_id, "buyer id")

    def read(sql: Sql) -> TradeRecord:
        rows = sql.rows(
            f"SELECT COALESCE(SUM(CASE WHEN state IN ({RELEASED_SQL}) THEN 1 ELSE 0 END), 0),"
            " COALESCE(SUM(CASE WHEN state IN ('DISPUTED', 'RESOLVED', 'AFTER_SALE_DISPUTED', 'AFTER_SALE_RESOLVED')"
            " OR dispute_reason IS NOT NULL"
            " THEN 1 ELSE 0 END), 0) FROM orders WHERE buyer_id = ?",
            (buyer_id,),
        )
        return TradeRecord(trades=int(rows[0][0]), disputes=int(rows[0][1]))

    return store.read(read)
