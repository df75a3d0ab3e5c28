"""After-sale refunds (售后) and the shop's deposit (保证金): a claim after the release is
paid by the shop's balance, then its deposit, never below zero; unanswered claims are
granted, refused ones may go to the arbiter or close, each by a deadline."""

from __future__ import annotations

import pytest
from paysupport import ARBITER, DAY, PIN, agent, buyer, funded_buyer, offer, settings

from payments import OrderState, PaymentService, check_invariants
from payments.errors import Forbidden, InvalidAmount, InvalidRequest, ShopFundsShort, WrongState


def released(service: PaymentService, price: int = 500) -> None:
    funded_buyer(service, 10_000)
    offer(service, price=price)
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="pay-1")
    service.confirm(buyer(), order_id="o1")


def test_the_shop_pays_a_claim_from_its_balance_then_its_deposit(service: PaymentService, store) -> None:
    released(service, 500)
    service.withdraw("shop:s1", 400, "CNY", "payout-1")  # the shop keeps only 100
    service.deposit("deposit:s1", 1000, "CNY", "fund-deposit")
    claim = service.claim_after_sale(buyer(), order_id="o1", amount=300, reason="broke after a week", idem_key="as-1")
    assert claim.state is OrderState.AFTER_SALE_REQUESTED and claim.after_sale_amount == 300
    assert claim.deadline_at == service.clock() + 2 * DAY
    paid = service.answer_after_sale(agent(), order_id="o1", accept=True, idem_key="as-ok")
    assert (paid.state, paid.after_sale_refund, paid.after_sale_from_deposit) == (
        OrderState.AFTER_SALE_REFUNDED, 300, 200)
    assert service.balance("shop:s1", "CNY") == 0
    assert service.balance("deposit:s1", "CNY") == 800
    assert service.balance("user:bob", "CNY") == 10_000 - 500 + 300
    assert service.answer_after_sale(agent(), order_id="o1", accept=True, idem_key="as-ok") == paid
    check_invariants(store)


def test_a_claim_is_once_within_the_window_and_at_most_what_was_paid(service: PaymentService, clock) -> None:
    released(service, 500)
    with pytest.raises(InvalidAmount):
        service.claim_after_sale(buyer(), order_id="o1", amount=501, reason="r")
    with pytest.raises(InvalidRequest):
        service.claim_after_sale(buyer(), order_id="o1", amount=5, reason=" ")
    with pytest.raises(Forbidden):
        service.claim_after_sale(agent(), order_id="o1", amount=5, reason="not the buyer")
    clock.advance(15 * DAY + 1)
    with pytest.raises(WrongState) as late:
        service.claim_after_sale(buyer(), order_id="o1", amount=5, reason="too late")
    assert "period" in late.value.message


def test_an_unanswered_claim_is_granted_and_a_short_shop_goes_to_the_arbiter(
    service: PaymentService, clock, store
) -> None:
    """The timer grants what the shop leaves unanswered; when its balance and deposit fall
    short, the claim goes to the arbiter, who may decide only what they cover until the
    marketplace funds the deposit."""
    released(service, 500)
    service.withdraw("shop:s1", 450, "CNY", "payout-1")
    service.claim_after_sale(buyer(), order_id="o1", amount=400, reason="never worked")
    clock.advance(2 * DAY)
    changes = service.run_due()
    assert [(c.action, c.state) for c in changes] == [("after_sale_escalated", "AFTER_SALE_DISPUTED")]
    order = service.get_order("o1")
    assert order.deadline_at == clock() + 7 * DAY and order.after_sale_refund == 0
    assert order.disputed_by == "system" and "deposit" in (order.dispute_reason or "")
    with pytest.raises(ShopFundsShort) as short:
        service.decide(ARBITER, order_id="o1", outcome="refund", idem_key="d-1")
    assert short.value.code == 6011 and short.value.details["covered"] == 50
    service.deposit("deposit:s1", 350, "CNY", "top-up")
    done = service.decide(ARBITER, order_id="o1", outcome="refund", idem_key="d-1")
    assert (done.state, done.after_sale_refund, done.after_sale_from_deposit) == (
        OrderState.AFTER_SALE_RESOLVED, 400, 350)
    assert service.balance("shop:s1", "CNY") == 0 and service.balance("deposit:s1", "CNY") == 0
    check_invariants(store)


def test_a_refused_claim_goes_to_the_arbiter_or_closes(service: PaymentService, clock, store) -> None:
    released(service, 500)
    service.claim_after_sale(buyer(), order_id="o1", amount=200, reason="scratched")
    refused = service.answer_after_sale(agent(), order_id="o1", accept=False)
    assert refused.state is OrderState.AFTER_SALE_REFUSED and refused.deadline_at == clock() + 7 * DAY
    with pytest.raises(Forbidden):
        service.dispute(agent(), order_id="o1", reason="the shop cannot escalate its own refusal")
    disputed = service.dispute(buyer(), order_id="o1", reason="photos in the chat")
    assert disputed.state is OrderState.AFTER_SALE_DISPUTED
    with pytest.raises(InvalidAmount):
        service.decide(ARBITER, order_id="o1", outcome="split", buyer_amount=200)
    split = service.decide(ARBITER, order_id="o1", outcome="split", buyer_amount=80)
    assert (split.state, split.after_sale_refund, split.outcome) == (OrderState.AFTER_SALE_RESOLVED, 80, "split")
    assert service.balance("shop:s1", "CNY") == 420

    offer(service, "o2", price=100)
    service.pay(buyer(), order_id="o2", pin=PIN, idem_key="pay-2")
    service.confirm(buyer(), order_id="o2")
    service.claim_after_sale(buyer(), order_id="o2", amount=100, reason="r")
    service.answer_after_sale(agent(), order_id="o2", accept=False)
    clock.advance(7 * DAY)
    assert [(c.entity_id, c.action) for c in service.run_due()] == [("o2", "after_sale_closed")]
    assert service.get_order("o2").state is OrderState.AFTER_SALE_CLOSED
    with pytest.raises(WrongState):
        service.dispute(buyer(), order_id="o2", reason="too late")
    check_invariants(store)


def test_a_rejected_after_sale_dispute_moves_nothing(service: PaymentService, store) -> None:
    released(service, 500)
    service.claim_after_sale(buyer(), order_id="o1", amount=500, reason="r")
    service.answer_after_sale(agent(), order_id="o1", accept=False)
    service.dispute(buyer(), order_id="o1", reason="r")
    kept = service.decide(ARBITER, order_id="o1", outcome="release")
    assert (kept.state, kept.after_sale_refund) == (OrderState.AFTER_SALE_RESOLVED, 0)
    assert service.balance("shop:s1", "CNY") == 500
    check_invariants(store)


def test_deposits_are_funded_and_withdrawn_by_the_marketplace_but_never_a_transfer_target(
    service: PaymentService,
) -> None:
    service.deposit("deposit:s1", 700, "CNY", "fund")
    assert service.balance("deposit:s1", "CNY") == 700
    service.withdraw("deposit:s1", 200, "CNY", "return-part")
    assert service.balance("deposit:s1", "CNY") == 500
    funded_buyer(service, 1000)
    with pytest.raises(InvalidRequest):
        service.transfer(buyer(), conversation_id="c1", to_account="deposit:s1", amount=5, currency="CNY",
                         pin=PIN, idem_key="t-1")


def test_after_sale_periods_are_settings(store, clock) -> None:
    service = PaymentService(store, clock=clock, settings=settings(
        after_sale_period_ms=DAY, after_sale_answer_period_ms=3 * DAY, after_sale_dispute_period_ms=4 * DAY))
    released(service, 100)
    clock.advance(DAY - 1)
    claim = service.claim_after_sale(buyer(), order_id="o1", amount=10, reason="r")
    assert claim.deadline_at == clock() + 3 * DAY
    assert service.answer_after_sale(agent(), order_id="o1", accept=False).deadline_at == clock() + 4 * DAY


def test_an_order_with_a_claim_is_still_a_trade_to_rate_and_count(service: PaymentService, store) -> None:
    from payments.trade_record import buyer_trade_record

    released(service, 500)
    service.claim_after_sale(buyer(), order_id="o1", amount=100, reason="one cup chipped")
    rating = service.ratings.rate(buyer(), order_id="o1", score="neutral")
    assert rating.score == "neutral"
    assert buyer_trade_record(store, "bob").trades == 1
