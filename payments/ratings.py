"""Ratings after each trade, and the credit they add up to (信用评价).

Online trade between strangers runs on credit: after an order is released (confirmed or
auto-confirmed) each side may rate the other once, within ``rating_window_ms`` of the
release - good (+1), neutral (0) or bad (-1), with a comment; the buyer also rates item,
service and shipping from 1 to 5. A bad or neutral rating may be amended once to good
within the same window. A rating exists only for a real released order of the rater:
the order row is the proof, read in the rating's own transaction.

Credit (what the next buyer sees before a chat starts):

* **score**: the sum of ratings, counted once per (buyer, shop, listing, calendar month in
  UTC) - the group's first rating counts - so repeated small trades cannot farm it. For
  the shop, a buyer who did not rate within the window counts as good, as on Taobao;
  for a buyer, only the shop's explicit ratings count.
* **level** from the score (:data:`LEVELS`, Taobao's hearts, diamonds and crowns);
* **positive rate**: good / all ratings released in the last 180 days (implicit goods
  included for a shop), in basis points;
* what was decided against the party: for a shop the orders refunded after a refund
  request and the disputes decided for the buyer (refund or split); for a buyer the
  disputes decided for the shop (release).
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal

from payments.clock import Clock
from payments.errors import Forbidden, InvalidRequest, NotFound, WrongState
from payments.escrow import RELEASED_SQL, RELEASED_STATES
from payments.ledger import check_id
from payments.models import Actor, Order, View
from payments.repository import ORDER_COLUMNS, Repo
from payments.settings import DAY
from payments.store import Sql, Store

Score = Literal["good", "neutral", "bad"]
Side = Literal["buyer", "shop"]
VALUES: Final = {"good": 1, "neutral": 0, "bad": -1}
MAX_COMMENT = 500
POSITIVE_RATE_PERIOD_MS: Final = 180 * DAY

LEVELS: Final[tuple[tuple[int, str], ...]] = (
    (4, "1 heart"), (11, "2 hearts"), (41, "3 hearts"), (91, "4 hearts"), (151, "5 hearts"),
    (251, "1 diamond"), (501, "2 diamonds"), (1001, "3 diamonds"), (2001, "4 diamonds"), (5001, "5 diamonds"),
    (10001, "1 crown"), (20001, "2 crowns"), (50001, "3 crowns"), (100001, "4 crowns"), (200001, "5 crowns"),
)
"""(lowest score, level): below 4 there is no level yet."""


class Rating(View):
    order_id: str
    side: Side
    """Who rated: ``buyer`` (rating the shop) or ``shop`` (rating the buyer)."""
    rater: str
    score: Score
    comment: str | None = None
    item: int | None = None
    service: int | None = None
    shipping: int | None = None
    amended: bool = False
    created_at: int
    updated_at: int


class Credit(View):
    subject: str
    """``shop:<id>`` or ``user:<id>``."""
    score: int
    level: str | None
    positive_rate_bps: int | None
    """Good ratings per 10,000 over the last 180 days; None without any."""
    ratings: int
    """Ratings counted in ``score``."""
    refunded_after_request: int = 0
    """A shop's orders refunded after the buyer asked (accepted, or unanswered in time)."""
    disputes_lost: int = 0
    """Disputes the arbiter decided against this party: a shop's refunds and splits, a
    buyer's releases."""


def level_of(score: int) -> str | None:
    found = None
    for lowest, name in LEVELS:
        if score >= lowest:
            found = name
    return found


_COLUMNS = "order_id, side, rater, score, comment, item, service, shipping, amended, created_at, updated_at"


def _rating(row: tuple[object, ...]) -> Rating:
    values = dict(zip(_COLUMNS.split(", "), row, strict=True))
    values["amended"] = bool(values["amended"])
    return Rating.model_validate(values)


def _month(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m")


class RatingDesk:
    """Rates released orders and reads credit."""

    def __init__(self, store: Store, clock: Clock, window_ms: int) -> None:
        self.store = store
        self.clock = clock
        self.window_ms = window_ms

    def rate(self, actor: Actor, order_id: str, score: str, comment: str | None = None,
             item: int | None = None, service: int | None = None, shipping: int | None = None) -> Rating:
        """Rate the other side of a released order once (the same rating again is answered
        with the stored one); amend a bad or neutral rating to good once."""
        check_id(order_id, "order id")
        if score not in VALUES:
            raise InvalidRequest("The rating must be good, neutral or bad.", field="score")
        if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
            raise InvalidRequest(f"The comment must be at most {MAX_COMMENT} characters.", field="comment")
        details = {"item": item, "service": service, "shipping": shipping}
        for field, value in details.items():
            if value is not None and (type(value) is not int or not 1 <= value <= 5):
                raise InvalidRequest(f"The {field} rating must be a whole number from 1 to 5.", field=field)
        side: Side = "buyer" if actor.role == "buyer" else "shop"
        if side == "shop" and any(v is not None for v in details.values()):
            raise InvalidRequest("Only the buyer rates item, service and shipping.", field="item")

        def txn(sql: Sql) -> Rating:
            now = self.clock()
            order = Repo(sql).get_order(order_id, lock=True)
            if order is None:
                raise NotFound("No such order.", order_id=order_id)
            if not ((side == "buyer" and actor.role == "buyer" and actor.user_id == order.buyer_id)
                    or (side == "shop" and actor.role == "agent" and actor.shop_id == order.shop_id)):
                raise Forbidden("Only the buyer and the shop of this order rate it.", action="rate")
            if order.state not in RELEASED_STATES or order.settled_at is None:
                raise WrongState("Only a released order can be rated.", state=order.state.value, action="rate")
            if now >= order.settled_at + self.window_ms:
                raise WrongState("The time to rate this order has passed.", state=order.state.value,
                                 action="rate")
            rows = sql.rows(f"SELECT {_COLUMNS} FROM ratings WHERE order_id = ? AND side = ?", (order_id, side))
            if not rows:
                rating = Rating(order_id=order_id, side=side, rater=actor.user_id, score=score,
                                comment=comment, created_at=now, updated_at=now, **details)
                sql.run(f"INSERT INTO ratings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                        (order_id, side, actor.user_id, score, comment, item, service, shipping, now, now))
                return rating
            stored = _rating(rows[0])
            if (stored.score, stored.comment, stored.item, stored.service, stored.shipping) == (
                    score, comment, item, service, shipping):
                return stored  # the same rating again (a retry): its first answer
            if stored.amended or stored.score == "good" or score != "good":
                raise WrongState("This order was already rated; a bad or neutral rating can be changed "
                                 "to good once.", state=stored.score, action="rate")
            sql.run("UPDATE ratings SET score = 'good', comment = ?, amended = 1, updated_at = ? "
                    "WHERE order_id = ? AND side = ?", (comment, now, order_id, side))
            return stored.model_copy(update={"score": "good", "comment": comment, "amended": True, "updated_at": now})

        return self.store.write(txn)

    def ratings_of(self, order_id: str) -> list[Rating]:
        check_id(order_id, "order id")
        return self.store.read(lambda sql: [_rating(r) for r in sql.rows(
            f"SELECT {_COLUMNS} FROM ratings WHERE order_id = ? ORDER BY side", (order_id,))])

    def shop_credit(self, shop_id: str) -> Credit:
        check_id(shop_id, "shop id")
        now = self.clock()

        def read(sql: Sql) -> Credit:
            orders = self._released(sql, "shop_id", shop_id)
            given = {r.order_id: r for r in self._ratings(sql, [o.order_id for o in orders], "buyer")}
            scored: list[tuple[Order, int]] = []
            for o in orders:
                rating = given.get(o.order_id)
                if rating is not None:
                    scored.append((o, VALUES[rating.score]))
                elif o.settled_at is not None and now >= o.settled_at + self.window_ms:
                    scored.append((o, 1))  # not rated in time: good, as the marketplace counts it
            credit = self._credit(f"shop:{shop_id}", scored, now)
            refunded = sql.rows("SELECT COUNT(*) FROM orders WHERE shop_id = ? AND state = 'REFUNDED' "
                                "AND refund_amount IS NOT NULL", (shop_id,))
            lost = sql.rows("SELECT COUNT(*) FROM orders WHERE shop_id = ? AND state = 'RESOLVED' "
                            "AND outcome IN ('refund', 'split')", (shop_id,))
            return credit.model_copy(update={"refunded_after_request": int(refunded[0][0]),
                                             "disputes_lost": int(lost[0][0])})

        return self.store.read(read)

    def buyer_credit(self, buyer_id: str) -> Credit:
        check_id(buyer_id, "buyer id")
        now = self.clock()

        def read(sql: Sql) -> Credit:
            orders = self._released(sql, "buyer_id", buyer_id)
            given = {r.order_id: r for r in self._ratings(sql, [o.order_id for o in orders], "shop")}
            scored = [(o, VALUES[given[o.order_id].score]) for o in orders if o.order_id in given]
            lost = sql.rows("SELECT COUNT(*) FROM orders WHERE buyer_id = ? AND state = 'RESOLVED' "
                            "AND outcome = 'release'", (buyer_id,))
            return self._credit(f"user:{buyer_id}", scored, now).model_copy(
                update={"disputes_lost": int(lost[0][0])})

        return self.store.read(read)

    @staticmethod
    def _released(sql: Sql, column: str, value: str) -> list[Order]:
        rows = sql.rows(f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE {column} = ? "
                        f"AND state IN ({RELEASED_SQL}) ORDER BY settled_at, order_id", (value,))
        return [Order.model_validate(dict(zip(ORDER_COLUMNS, r, strict=True))) for r in rows]

    @staticmethod
    def _ratings(sql: Sql, order_ids: list[str], side: Side) -> list[Rating]:
        found: list[Rating] = []
        for start in range(0, len(order_ids), 500):
            chunk = order_ids[start:start + 500]
            marks = ", ".join("?" for _ in chunk)
            found += [_rating(r) for r in sql.rows(
                f"SELECT {_COLUMNS} FROM ratings WHERE side = ? AND order_id IN ({marks})", (side, *chunk))]
        return found

    @staticmethod
    def _credit(subject: str, scored: list[tuple[Order, int]], now: int) -> Credit:
        counted: dict[tuple[str, str, str, str], int] = {}
        for order, value in scored:  # oldest release first: a group's first rating counts
            settled = order.settled_at or order.updated_at
            counted.setdefault((order.buyer_id, order.shop_id, order.listing_id, _month(settled)), value)
        score = sum(counted.values())
        recent = [v for o, v in scored if (o.settled_at or 0) >= now - POSITIVE_RATE_PERIOD_MS]
        rate = None if not recent else sum(1 for v in recent if v > 0) * 10_000 // len(recent)
        return Credit(subject=subject, score=score, level=level_of(score), positive_rate_bps=rate,
                      ratings=len(counted))
