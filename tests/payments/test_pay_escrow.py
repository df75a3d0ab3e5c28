"""Escrow orders: the happy path, refunds, disputes and who may do what."""

from __future__ import annotations

import pytest
from paysupport import ARBITER, DAY, PIN, agent, buyer, funded_buyer, offer, settings

from payments import OrderState, PaymentService, check_invariants
from payments.errors import (
    AlreadyPaid,
    Forbidden,
    InvalidAmount,
    InvalidRequest,
    NotFound,
    OfferChanged,
    WrongState,
)


def pay(service: PaymentService, order_id: str = "o1", key: str = "k1", user: str = "bob"):
    return service.pay(buyer(user), order_id=order_id, pin=PIN, idem_key=key)


def test_offer_pay_ship_confirm_releases_to_shop(service: PaymentService) -> None:
    """The guaranteed trade: money goes buyer -> escrow -> shop, versions grow."""
    funded_buyer(service, 1000)
    offer(service, price=150, qty=2)
    held = pay(service)
    assert (held.state, held.held, held.version) == (OrderState.HELD, 300, 2)
    assert service.balance("user:bob", "CNY") == 700
    assert service.balance("platform", "CNY", "escrow_hold") == 300
    shipped = service.ship(agent(), order_id="o1", tracking_note="SF1234")
    assert shipped.state is OrderState.SHIPPED and shipped.tracking_note == "SF1234"
    released = service.confirm(buyer(), order_id="o1")
    assert (released.state, released.held, released.settled_by) == (
        OrderState.RELEASED, 0, "buyer")
    assert service.balance("shop:s1", "CNY") == 300
    assert service.balance("platform", "CNY", "escrow_hold") == 0


def test_fee_is_taken_on_release(store, clock) -> None:
    """With fee_bps=250 the shop gets 97.5% and the fees account the rest (floored)."""
    service = PaymentService(store, clock=clock, settings=settings(fee_bps=250))
    funded_buyer(service, 1000)
    offer(service, price=999)
    pay(service)
    done = service.confirm(buyer(), order_id="o1")
    assert (done.fee, done.seller_gross) == (24, 999)
    assert service.balance("shop:s1", "CNY") == 975
    assert service.balance("platform", "CNY", "fees") == 24
    check_invariants(store)


def test_reoffer_reprices_while_offered(service: PaymentService) -> None:
    """Bargaining: a re-offer changes the price and version; the same terms change nothing."""
    offer(service, price=100)
    offer(service, price=80)
    order = service.get_order("o1")
    assert (order.amount, order.version) == (80, 2)
    offer(service, price=80)
    assert service.get_order("o1").version == 2
    assert [e.action for e in service.events_after(0)] == ["offered", "repriced"]


def test_pay_with_stale_price_is_refused(service: PaymentService) -> None:
    """A buyer who saw 100 does not pay the re-offered 120."""
    funded_buyer(service, 1000)
    offer(service, price=100)
    offer(service, price=120)
    with pytest.raises(OfferChanged) as err:
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k", expected_amount=100)
    assert err.value.code == 6023 and err.value.details["amount"] == 120
    assert service.balance("user:bob", "CNY") == 1000


def test_reoffer_after_payment_is_refused(service: PaymentService) -> None:
    """Once paid, the price is fixed."""
    funded_buyer(service)
    offer(service)
    pay(service)
    with pytest.raises(WrongState) as err:
        offer(service, price=1)
    assert err.value.details["state"] == "HELD"


def test_order_is_paid_at_most_once_whatever_the_key(service: PaymentService) -> None:
    """A second payment with a new key is refused with 6060 and moves nothing."""
    funded_buyer(service, 1000)
    offer(service, price=100)
    pay(service, key="first")
    with pytest.raises(AlreadyPaid) as err:
        pay(service, key="second")
    assert err.value.code == 6060 and err.value.details["state"] == "HELD"
    assert service.balance("user:bob", "CNY") == 900


def test_full_refund_accepted_returns_money(service: PaymentService) -> None:
    """Refund request then acceptance: the buyer gets everything back, no fee."""
    funded_buyer(service, 1000)
    offer(service, price=400)
    pay(service)
    service.request_refund(buyer(), order_id="o1", amount=400, reason="wrong size")
    done = service.answer_refund(agent(), order_id="o1", accept=True)
    assert (done.state, done.buyer_refund, done.seller_gross) == (OrderState.REFUNDED, 400, 0)
    assert service.balance("user:bob", "CNY") == 1000
    assert service.balance("shop:s1", "CNY") == 0


def test_partial_refund_releases_remainder(service: PaymentService) -> None:
    """A partial refund pays the rest to the shop."""
    funded_buyer(service, 1000)
    offer(service, price=400)
    pay(service)
    service.ship(agent(), order_id="o1")
    service.request_refund(buyer(), order_id="o1", amount=150, reason="one cup broken")
    service.answer_refund(agent(), order_id="o1", accept=True)
    assert service.balance("user:bob", "CNY") == 750
    assert service.balance("shop:s1", "CNY") == 250


def test_refund_larger_than_held_is_refused(service: PaymentService) -> None:
    """A refund request can ask for at most what is held."""
    funded_buyer(service)
    offer(service, price=100)
    pay(service)
    with pytest.raises(InvalidAmount):
        service.request_refund(buyer(), order_id="o1", amount=101, reason="x")
    assert service.get_order("o1").state is OrderState.HELD


def test_refused_refund_then_confirm(service: PaymentService) -> None:
    """After a refused refund the buyer may still confirm."""
    funded_buyer(service)
    offer(service, price=100)
    pay(service)
    service.request_refund(buyer(), order_id="o1", amount=100, reason="changed mind")
    refused = service.answer_refund(agent(), order_id="o1", accept=False)
    assert refused.state is OrderState.REFUND_REFUSED
    assert service.confirm(buyer(), order_id="o1").state is OrderState.RELEASED


@pytest.mark.parametrize(
    ("outcome", "buyer_amount", "to_buyer", "to_shop"),
    [("release", None, 0, 100), ("refund", None, 100, 0), ("split", 30, 30, 70)],
)
def test_arbiter_decides_dispute(
    service: PaymentService, outcome, buyer_amount, to_buyer, to_shop
) -> None:
    """A dispute ends with the arbiter's release, refund or split."""
    funded_buyer(service, 100)
    offer(service, price=100)
    pay(service)
    service.request_refund(buyer(), order_id="o1", amount=100, reason="not as described")
    service.answer_refund(agent(), order_id="o1", accept=False)
    service.dispute(agent(), order_id="o1", reason="buyer is wrong")
    done = service.decide(ARBITER, order_id="o1", outcome=outcome, buyer_amount=buyer_amount)
    assert (done.state, done.outcome) == (OrderState.RESOLVED, outcome)
    assert service.balance("user:bob", "CNY") == to_buyer
    assert service.balance("shop:s1", "CNY") == to_shop


def test_split_must_leave_both_sides_something(service: PaymentService) -> None:
    """A split giving the buyer everything is refused (that is a refund)."""
    funded_buyer(service, 100)
    offer(service, price=100)
    pay(service)
    service.request_refund(buyer(), order_id="o1", amount=100, reason="r")
    service.answer_refund(agent(), order_id="o1", accept=False)
    service.dispute(buyer(), order_id="o1", reason="r")
    with pytest.raises(InvalidAmount):
        service.decide(ARBITER, order_id="o1", outcome="split", buyer_amount=100)
    with pytest.raises(InvalidRequest):
        service.decide(ARBITER, order_id="o1", outcome="refund", buyer_amount=5)
    assert service.get_order("o1").state is OrderState.DISPUTED


def test_terminal_states_never_change(service: PaymentService) -> None:
    """After release no action changes the order, and the error names RELEASED."""
    funded_buyer(service)
    offer(service, price=100)
    pay(service)
    service.confirm(buyer(), order_id="o1")
    attempts = [
        lambda: service.confirm(buyer(), order_id="o1"),
        lambda: service.ship(agent(), order_id="o1"),
        lambda: service.request_refund(buyer(), order_id="o1", amount=1, reason="r"),
        lambda: service.answer_refund(agent(), order_id="o1", accept=True),
        lambda: service.dispute(buyer(), order_id="o1", reason="r"),
        lambda: service.decide(ARBITER, order_id="o1", outcome="refund"),
        lambda: service.cancel(buyer(), order_id="o1"),
        lambda: service.extend(buyer(), order_id="o1"),
    ]
    for attempt in attempts:
        with pytest.raises(WrongState) as err:
            attempt()
        assert err.value.details["state"] == "RELEASED"
    assert service.get_order("o1").version == 3


def test_cancel_unpaid_offer(service: PaymentService) -> None:
    """An unpaid offer can be cancelled, and a cancelled order cannot be paid."""
    funded_buyer(service)
    offer(service)
    assert service.cancel(buyer(), order_id="o1").state is OrderState.CANCELLED
    with pytest.raises(WrongState) as err:
        pay(service)
    assert err.value.code == 6021


def test_only_the_buyer_pays_confirms_extends_and_asks_refund(service: PaymentService) -> None:
    """Another buyer, the shop's agent or an arbiter cannot act as the buyer."""
    funded_buyer(service)
    funded_buyer(service, user_id="mallory")
    offer(service, price=100)
    for intruder in (buyer("mallory"), agent(), ARBITER):
        with pytest.raises(Forbidden) as err:
            service.pay(intruder, order_id="o1", pin=PIN, idem_key="x")
        assert err.value.code == 6022
    pay(service)
    service.ship(agent(), order_id="o1")
    for intruder in (buyer("mallory"), agent(), ARBITER):
        for attempt in (
            lambda a=intruder: service.confirm(a, order_id="o1"),
            lambda a=intruder: service.extend(a, order_id="o1"),
            lambda a=intruder: service.request_refund(a, order_id="o1", amount=1, reason="r"),
        ):
            with pytest.raises(Forbidden):
                attempt()
    assert service.get_order("o1").state is OrderState.SHIPPED


def test_only_the_shops_agents_offer_ship_and_answer(service: PaymentService) -> None:
    """Agents of another shop and buyers cannot offer, ship or answer refunds."""
    funded_buyer(service)
    with pytest.raises(Forbidden):
        service.offer(agent("s2"), order_id="o1", conversation_id="c", shop_id="s1",
                      buyer_id="bob", listing_id="l", title="t", unit_price=1, quantity=1,
                      currency="CNY")
    offer(service, price=100)
    with pytest.raises(Forbidden):
        offer(service, price=5, shop_id="s2")
    pay(service)
    for intruder in (agent("s2"), buyer(), ARBITER):
        with pytest.raises(Forbidden):
            service.ship(intruder, order_id="o1")
    service.request_refund(buyer(), order_id="o1", amount=100, reason="r")
    for intruder in (agent("s2"), buyer(), ARBITER):
        with pytest.raises(Forbidden):
            service.answer_refund(intruder, order_id="o1", accept=True)
    assert service.answer_refund(agent("s1", "another-agent"), order_id="o1",
                                 accept=False).state is OrderState.REFUND_REFUSED


def test_only_an_arbiter_decides(service: PaymentService) -> None:
    """Neither party can settle its own dispute."""
    funded_buyer(service)
    offer(service, price=100)
    pay(service)
    service.request_refund(buyer(), order_id="o1", amount=100, reason="r")
    service.answer_refund(agent(), order_id="o1", accept=False)
    service.dispute(buyer(), order_id="o1", reason="r")
    for intruder in (buyer(), agent()):
        with pytest.raises(Forbidden):
            service.decide(intruder, order_id="o1", outcome="split", buyer_amount=50)
    assert service.get_order("o1").state is OrderState.DISPUTED


def test_dispute_only_after_refused_refund(service: PaymentService) -> None:
    """A dispute needs a refused refund first; an arbiter cannot decide before it."""
    funded_buyer(service)
    offer(service, price=100)
    pay(service)
    with pytest.raises(WrongState):
        service.dispute(buyer(), order_id="o1", reason="r")
    with pytest.raises(WrongState):
        service.decide(ARBITER, order_id="o1", outcome="refund")


def test_extend_only_once(service: PaymentService, clock) -> None:
    """The buyer may extend the auto-confirm deadline once, by the extension period."""
    funded_buyer(service)
    offer(service, price=100)
    pay(service)
    shipped = service.ship(agent(), order_id="o1")
    extended = service.extend(buyer(), order_id="o1")
    assert extended.auto_confirm_at == shipped.auto_confirm_at + 5 * DAY
    with pytest.raises(WrongState):
        service.extend(buyer(), order_id="o1")


def test_unknown_order_is_not_found(service: PaymentService) -> None:
    """Commands on an unknown order say 6020."""
    funded_buyer(service)
    with pytest.raises(NotFound) as err:
        service.confirm(buyer(), order_id="nope")
    assert err.value.code == 6020


def test_each_order_has_its_own_escrow_and_older_orders_settle_from_the_pool(service: PaymentService, store) -> None:
    """A payment lands in the order's own escrow account (no shared row to wait on); an order
    paid before per-order escrow, whose money sits in the pooled account, still settles."""
    from payments.ledger import TxKind, escrow_hold, move, pooled_escrow
    from payments.repository import Repo

    funded_buyer(service, 1000)
    offer(service, price=300)
    offer(service, "o2", price=200)
    pay(service)
    pay(service, "o2", "k2")
    assert service.balance("platform", "CNY", "escrow_hold") == 500
    rows = store.read(lambda sql: sql.rows(
        "SELECT owner, balance FROM accounts WHERE kind = 'escrow_hold' ORDER BY owner"))
    assert [tuple(r) for r in rows] == [("order:o1", 300), ("order:o2", 200)]
    # o2 as an older release left it: its money in the pool (moved without an order reference).
    store.write(lambda sql: Repo(sql).post(
        move(TxKind.TRANSFER, escrow_hold("CNY", "o2"), pooled_escrow("CNY"), 200), 1, None))
    check_invariants(store)
    service.confirm(buyer(), order_id="o2")
    service.confirm(buyer(), order_id="o1")
    assert service.balance("shop:s1", "CNY") == 500 and service.balance("platform", "CNY", "escrow_hold") == 0
    check_invariants(store)
