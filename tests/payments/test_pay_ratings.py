"""Ratings after each trade and the credit they add up to: only real released orders are
rated, once per side, amended once from bad or neutral to good, within the window; credit
is the sum of valid ratings counted once per (buyer, shop, listing, month)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paysupport import ARBITER, DAY, PIN, FakeClock, agent, buyer, funded_buyer, make_store
from paysupport import settings as pay_settings

from payments import PaymentService
from payments.errors import Forbidden, InvalidRequest, WrongState
from payments.ratings import level_of


def released(service: PaymentService, order_id: str, buyer_id: str = "bob", listing: str = "l1",
             price: int = 100) -> None:
    service.offer(agent(), order_id=order_id, conversation_id=f"c-{buyer_id}", shop_id="s1", buyer_id=buyer_id,
                  listing_id=listing, title="tea", unit_price=price, quantity=1, currency="CNY")
    service.pay(buyer(buyer_id), order_id=order_id, pin=PIN, idem_key=f"pay-{order_id}")
    service.confirm(buyer(buyer_id), order_id=order_id)


def test_each_side_rates_once_and_may_amend_bad_to_good_once(service: PaymentService, clock: FakeClock) -> None:
    funded_buyer(service)
    released(service, "o1")
    first = service.ratings.rate(buyer(), "o1", "bad", "arrived late", item=3, service=2, shipping=1)
    assert service.ratings.rate(buyer(), "o1", "bad", "arrived late", item=3, service=2, shipping=1) == first
    with pytest.raises(WrongState):
        service.ratings.rate(buyer(), "o1", "neutral")  # only to good
    amended = service.ratings.rate(buyer(), "o1", "good", "they made it right")
    assert amended.amended and amended.score == "good"
    with pytest.raises(WrongState):
        service.ratings.rate(buyer(), "o1", "bad")
    shop_side = service.ratings.rate(agent(), "o1", "good", "quick payer")
    assert shop_side.side == "shop" and shop_side.rater == "alice"
    with pytest.raises(InvalidRequest):
        service.ratings.rate(agent(), "o1", "good", item=5)  # item, service, shipping are the buyer's
    assert [r.side for r in service.ratings.ratings_of("o1")] == ["buyer", "shop"]


def test_only_parties_of_a_released_order_rate_it_in_time(service: PaymentService, clock: FakeClock) -> None:
    funded_buyer(service)
    service.offer(agent(), order_id="o1", conversation_id="c", shop_id="s1", buyer_id="bob", listing_id="l1",
                  title="tea", unit_price=100, quantity=1, currency="CNY")
    with pytest.raises(WrongState):
        service.ratings.rate(buyer(), "o1", "good")  # not paid, let alone released
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="p1")
    service.confirm(buyer(), order_id="o1")
    for outsider in (buyer("mallory"), agent("s2", "eve")):
        with pytest.raises(Forbidden):
            service.ratings.rate(outsider, "o1", "bad")
    with pytest.raises(InvalidRequest):
        service.ratings.rate(buyer(), "o1", "excellent")
    clock.advance(15 * DAY)
    with pytest.raises(WrongState):
        service.ratings.rate(buyer(), "o1", "good")


def test_shop_credit_counts_once_per_buyer_listing_month_and_unrated_as_good(
    service: PaymentService, clock: FakeClock
) -> None:
    funded_buyer(service, user_id="bob")
    funded_buyer(service, user_id="carol")
    for i in range(3):  # three small trades of one listing in one month: they count once
        released(service, f"b{i}", "bob")
        service.ratings.rate(buyer("bob"), f"b{i}", "good")
    released(service, "c1", "carol", listing="l2")
    service.ratings.rate(buyer("carol"), "c1", "bad")
    released(service, "c2", "carol", listing="l3")  # never rated
    credit = service.ratings.shop_credit("s1")
    assert (credit.score, credit.ratings) == (0, 2)  # +1 (bob once) -1 (carol); c2 still in its window
    clock.advance(15 * DAY)
    credit = service.ratings.shop_credit("s1")
    assert (credit.score, credit.ratings) == (1, 3)  # c2 now counts as good
    assert credit.positive_rate_bps == 4 * 10_000 // 5 and credit.level is None
    assert service.ratings.buyer_credit("bob").score == 0


def test_levels() -> None:
    assert [level_of(s) for s in (3, 4, 10, 11, 250, 251, 10_001)] == [
        None, "1 heart", "1 heart", "2 hearts", "5 hearts", "1 diamond", "1 crown"]


ACTIONS = st.lists(st.tuples(
    st.sampled_from(["trade", "rate", "amend", "days", "refund", "refused", "dispute"]),
    st.integers(0, 2),                       # buyer
    st.integers(0, 1),                       # listing
    st.sampled_from(["good", "neutral", "bad"]),
    st.integers(1, 20),                      # days
), min_size=1, max_size=25)

OUTCOME = {"good": "release", "neutral": "split", "bad": "refund"}
"""A dispute's decision, drawn from the action's score: release is for the shop (against the
buyer), refund and split are for the buyer (against the shop)."""


def contested(service: PaymentService, order_id: str, user: str, listing: str, ending: str) -> None:
    """A paid order whose refund request ends as ``ending``: ``accepted`` (by the shop),
    ``refused`` (refused, then the buyer confirms: released), or a dispute decided ``release``,
    ``refund`` or ``split``."""
    service.offer(agent(), order_id=order_id, conversation_id=f"c-{user}", shop_id="s1", buyer_id=user,
                  listing_id=listing, title="tea", unit_price=100, quantity=1, currency="CNY")
    service.pay(buyer(user), order_id=order_id, pin=PIN, idem_key=f"pay-{order_id}")
    service.request_refund(buyer(user), order_id=order_id, amount=100, reason="not as described")
    service.answer_refund(agent(), order_id=order_id, accept=ending == "accepted")
    if ending == "refused":
        service.confirm(buyer(user), order_id=order_id)
    elif ending != "accepted":
        service.dispute(buyer(user), order_id=order_id, reason="the shop refused")
        service.decide(ARBITER, order_id=order_id, outcome=ending,  # type: ignore[arg-type]
                       buyer_amount=40 if ending == "split" else None)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_credit_is_the_sum_of_valid_ratings(actions: list[tuple[str, int, int, str, int]]) -> None:
    """After random trades, refunds, disputes decided for either side, ratings, amendments and
    the passing of time, the shop's credit equals an independent count of the valid ratings
    (only released orders are rated; a refunded or arbitrated one never counts), and the
    refunds and disputes decided against the shop, and against each buyer, are counted."""
    with make_store("sqlite") as store:
        clock = FakeClock()
        service = PaymentService(store, clock=clock, settings=pay_settings())
        users = ["u0", "u1", "u2"]
        for u in users:
            funded_buyer(service, 1_000_000, user_id=u)
        orders: list[tuple[str, str, str, int]] = []  # released: order id, buyer, listing, released at
        unreleased: list[tuple[str, str]] = []  # refunded or decided by the arbiter: order id, buyer
        rated: dict[str, tuple[str, bool]] = {}  # order -> (score, amended)
        refunded = 0
        shop_lost = 0
        buyer_lost = dict.fromkeys(users, 0)
        for n, (action, who, listing, score, days) in enumerate(actions):
            user = users[who]
            if action == "trade":
                order_id = f"o{n}"
                released(service, order_id, user, listing=f"l{listing}")
                orders.append((order_id, user, f"l{listing}", clock.now))
            elif action == "refund" or action == "refused":
                order_id = f"o{n}"
                contested(service, order_id, user, f"l{listing}", "accepted" if action == "refund" else action)
                if action == "refund":
                    refunded += 1
                    unreleased.append((order_id, user))
                else:
                    orders.append((order_id, user, f"l{listing}", clock.now))
            elif action == "dispute":
                order_id = f"o{n}"
                contested(service, order_id, user, f"l{listing}", OUTCOME[score])
                unreleased.append((order_id, user))
                if OUTCOME[score] == "release":
                    buyer_lost[user] += 1
                else:
                    shop_lost += 1
            elif action == "days":
                clock.advance(days * DAY)
            elif unreleased and days % 4 == 0:
                order_id, owner = unreleased[n % len(unreleased)]
                with pytest.raises(WrongState):
                    service.ratings.rate(buyer(owner), order_id, score)
            elif orders:
                order_id, owner, _, at = orders[n % len(orders)]
                in_time = clock.now < at + 15 * DAY
                before = rated.get(order_id)
                wanted = "good" if action == "amend" else score
                valid = in_time and (before is None or before[0] == wanted or (
                    not before[1] and before[0] != "good" and wanted == "good"))
                try:
                    service.ratings.rate(buyer(owner), order_id, wanted)
                except WrongState:
                    assert not valid
                else:
                    assert valid
                    if before is None:
                        rated[order_id] = (wanted, False)
                    elif before[0] != wanted:
                        rated[order_id] = (wanted, True)
        groups: dict[tuple[str, str, str], int] = {}
        for order_id, owner, listing, at in sorted(orders, key=lambda o: (o[3], o[0])):  # the ledger's order
            month = dt.datetime.fromtimestamp(at / 1000, tz=dt.UTC).strftime("%Y-%m")
            if order_id in rated:
                value = {"good": 1, "neutral": 0, "bad": -1}[rated[order_id][0]]
            elif clock.now >= at + 15 * DAY:
                value = 1
            else:
                continue
            groups.setdefault((owner, listing, month), value)
        credit = service.ratings.shop_credit("s1")
        assert credit.score == sum(groups.values()) and credit.ratings == len(groups)
        assert (credit.refunded_after_request, credit.disputes_lost) == (refunded, shop_lost)
        for u in users:
            assert service.ratings.buyer_credit(u).disputes_lost == buyer_lost[u], u
