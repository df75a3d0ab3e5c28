"""The injected clock: deadlines, pauses, backwards steps and last-millisecond races."""

from __future__ import annotations

import pytest
from paysupport import DAY, PIN, agent, buyer, funded_buyer, offer, settings

from payments import OrderState, PaymentService, TransferState, check_invariants
from payments.errors import WrongState


def shipped(service: PaymentService, order_id: str = "o1"):
    offer(service, order_id, price=100)
    service.pay(buyer(), order_id=order_id, pin=PIN, idem_key=f"pay-{order_id}")
    return service.ship(agent(), order_id=order_id)


def test_nothing_released_before_deadline(service: PaymentService, clock) -> None:
    """run_due one millisecond before auto_confirm_at does nothing; at it, releases."""
    funded_buyer(service)
    order = shipped(service)
    assert order.auto_confirm_at == clock.now + 10 * DAY
    assert service.run_due(order.auto_confirm_at - 1) == []
    assert service.get_order("o1").state is OrderState.SHIPPED
    changes = service.run_due(order.auto_confirm_at)
    assert [(c.entity_id, c.state) for c in changes] == [("o1", "RELEASED")]
    released = service.get_order("o1")
    assert (released.settled_by, released.settled_at) == ("timer", order.auto_confirm_at)
    assert service.balance("shop:s1", "CNY") == 100


def test_run_due_twice_changes_nothing_twice(service: PaymentService, clock) -> None:
    """A second run at the same or a later time finds nothing to do."""
    funded_buyer(service)
    shipped(service)
    clock.advance(10 * DAY)
    assert len(service.run_due()) == 1
    assert service.run_due() == []
    assert service.run_due(clock.now + 100 * DAY) == []


def test_clock_stepping_backwards_releases_nothing(service: PaymentService, clock) -> None:
    """After the clock steps back a day, a due-looking time releases nothing early."""
    funded_buyer(service)
    order = shipped(service)
    clock.advance(9 * DAY)
    clock.advance(-2 * DAY)
    assert service.run_due() == []
    assert order.auto_confirm_at is not None
    clock.now = order.auto_confirm_at - 1
    assert service.run_due() == []
    assert service.get_order("o1").state is OrderState.SHIPPED


def test_extend_moves_the_deadline(service: PaymentService, clock) -> None:
    """After an extension, the old deadline releases nothing."""
    funded_buyer(service)
    order = shipped(service)
    service.extend(buyer(), order_id="o1")
    assert service.run_due(order.auto_confirm_at) == []
    assert len(service.run_due(order.auto_confirm_at + 5 * DAY)) == 1


def test_refund_request_pauses_and_refusal_resumes(service: PaymentService, clock) -> None:
    """A refund request stores the time left; a refusal restarts it from now."""
    funded_buyer(service)
    shipped(service)
    clock.advance(7 * DAY)
    paused = service.request_refund(buyer(), order_id="o1", amount=100, reason="late")
    assert (paused.auto_confirm_at, paused.paused_remaining_ms) == (None, 3 * DAY)
    assert paused.deadline_at == clock.now + 2 * DAY  # the shop's time to answer
    clock.advance(2 * DAY - 1)
    assert service.run_due() == []
    resumed = service.answer_refund(agent(), order_id="o1", accept=False)
    assert resumed.auto_confirm_at == clock.now + 3 * DAY
    assert service.run_due(clock.now + 3 * DAY - 1) == []
    assert len(service.run_due(clock.now + 3 * DAY)) == 1
    assert service.get_order("o1").state is OrderState.RELEASED


def test_resume_gives_at_least_the_minimum(service: PaymentService, clock) -> None:
    """A refund asked in the last minute resumes with resume_min_period_ms (1 day)."""
    funded_buyer(service)
    order = shipped(service)
    clock.now = order.auto_confirm_at - 60_000
    service.request_refund(buyer(), order_id="o1", amount=1, reason="r")
    resumed = service.answer_refund(agent(), order_id="o1", accept=False)
    assert resumed.auto_confirm_at == clock.now + DAY


def test_dispute_pauses_the_timer(service: PaymentService, clock) -> None:
    """While DISPUTED no deadline releases the money; only the arbiter does."""
    funded_buyer(service)
    shipped(service)
    service.request_refund(buyer(), order_id="o1", amount=100, reason="r")
    service.answer_refund(agent(), order_id="o1", accept=False)
    disputed = service.dispute(buyer(), order_id="o1", reason="r")
    assert disputed.auto_confirm_at is None and disputed.paused_remaining_ms is not None
    clock.advance(365 * DAY)
    assert service.run_due() == []
    assert service.get_order("o1").state is OrderState.DISPUTED


def test_unshipped_order_has_no_timer(service: PaymentService, clock) -> None:
    """A paid but unshipped order waits for the seller; nothing auto-releases."""
    funded_buyer(service)
    offer(service, price=100)
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    clock.advance(365 * DAY)
    assert service.run_due() == []


def test_late_command_applies_the_timeout_first(service: PaymentService, clock) -> None:
    """A refund asked after the deadline loses to the timer, which is committed."""
    funded_buyer(service)
    order = shipped(service)
    clock.now = order.auto_confirm_at
    with pytest.raises(WrongState) as err:
        service.request_refund(buyer(), order_id="o1", amount=100, reason="too late")
    assert err.value.details["state"] == "RELEASED"
    assert service.get_order("o1").settled_by == "timer"
    assert service.run_due() == []


def test_accept_at_last_millisecond_wins(service: PaymentService, clock) -> None:
    """Accepting at expires_at - 1 succeeds; expiry then has nothing to do."""
    funded_buyer(service)
    t = service.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=10,
                         currency="CNY", pin=PIN, idem_key="t")
    clock.now = t.expires_at - 1
    assert service.accept_transfer(buyer("carol"), transfer_id=t.transfer_id).state is (
        TransferState.ACCEPTED)
    assert service.run_due(t.expires_at) == []


def test_accept_at_expiry_loses(service: PaymentService, clock) -> None:
    """Accepting at expires_at is too late: the transfer expires and the error says so."""
    funded_buyer(service, 100)
    t = service.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=10,
                         currency="CNY", pin=PIN, idem_key="t")
    clock.now = t.expires_at
    with pytest.raises(WrongState) as err:
        service.accept_transfer(buyer("carol"), transfer_id=t.transfer_id)
    assert err.value.details["state"] == "EXPIRED"
    assert service.balance("user:bob", "CNY") == 100


def test_periods_are_configurable(store, clock) -> None:
    """Auto-confirm, extension and transfer expiry follow the settings."""
    service = PaymentService(store, clock=clock, settings=settings(
        auto_confirm_period_ms=3 * DAY, extension_period_ms=DAY, transfer_expiry_ms=60_000))
    funded_buyer(service)
    order = shipped(service)
    assert order.auto_confirm_at == clock.now + 3 * DAY
    assert service.extend(buyer(), order_id="o1").auto_confirm_at == clock.now + 4 * DAY
    t = service.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=1,
                         currency="CNY", pin=PIN, idem_key="t")
    assert t.expires_at == clock.now + 60_000
    check_invariants(store)


def test_an_unpaid_offer_lapses(service: PaymentService, clock) -> None:
    """OFFERED waits offer_expiry_ms (3 days) for payment, then the timer cancels it; a
    re-price restarts the wait; paying a lapsed offer is refused and moves nothing."""
    funded_buyer(service)
    offer(service, price=100)
    clock.advance(2 * DAY)
    offer(service, price=120)  # re-priced: a fresh 3 days
    clock.advance(2 * DAY)
    assert service.run_due() == []
    clock.advance(DAY)
    assert [(c.action, c.state) for c in service.run_due()] == [("expired", "CANCELLED")]
    assert service.run_due() == []  # safe to run twice
    with pytest.raises(WrongState):
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="late-pay")
    assert service.balance("user:bob", "CNY") == 10_000


def test_a_lapsed_offer_is_cancelled_by_the_command_that_finds_it(service: PaymentService, clock) -> None:
    """Before the timer runs, a pay or re-offer on a lapsed offer applies the expiry first."""
    funded_buyer(service)
    offer(service, price=100)
    clock.advance(3 * DAY)
    with pytest.raises(WrongState):
        offer(service, price=90)
    assert service.get_order("o1").state is OrderState.CANCELLED
    assert service.run_due() == []


def test_an_unanswered_refund_request_is_granted(service: PaymentService, clock) -> None:
    """REFUND_REQUESTED waits refund_answer_period_ms (2 days) for the shop, then the timer
    refunds the amount asked (a partial one sends the rest to the shop)."""
    funded_buyer(service)
    shipped(service)
    asked = service.request_refund(buyer(), order_id="o1", amount=40, reason="damaged")
    assert asked.deadline_at == clock.now + 2 * DAY
    clock.advance(2 * DAY)
    assert [(c.action, c.state) for c in service.run_due()] == [("refund_granted", "REFUNDED")]
    assert service.balance("user:bob", "CNY") == 10_000 - 100 + 40
    assert service.balance("shop:s1", "CNY") == 60
    assert service.get_order("o1").settled_by == "timer"


def test_not_shipped_in_time_a_refund_is_granted_at_once(service: PaymentService, clock) -> None:
    """HELD gives the shop ship_period_ms (2 days); after it the buyer's refund request is
    granted without the shop; before it, it waits for the shop as usual."""
    funded_buyer(service)
    offer(service, price=100)
    held = service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    assert held.deadline_at == clock.now + 2 * DAY
    clock.advance(2 * DAY)
    done = service.request_refund(buyer(), order_id="o1", amount=100, reason="never shipped")
    assert done.state is OrderState.REFUNDED and done.settled_by == "timer"
    assert service.balance("user:bob", "CNY") == 10_000
    assert service.events_after(0)[-1].action == "refund_granted"


def test_a_refused_refund_of_an_unshipped_order_still_ends(service: PaymentService, clock) -> None:
    """A refusal always starts the dispute window (at least resume_min_period_ms), even with
    no countdown paused: then the money is released, never left waiting."""
    funded_buyer(service)
    offer(service, price=100)
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    service.request_refund(buyer(), order_id="o1", amount=100, reason="r")
    refused = service.answer_refund(agent(), order_id="o1", accept=False)
    assert refused.auto_confirm_at == clock.now + DAY and refused.deadline_at is None
    clock.advance(DAY)
    assert [(c.action, c.state) for c in service.run_due()] == [("released", "RELEASED")]


def test_a_dispute_shows_the_arbiters_deadline(service: PaymentService, clock) -> None:
    funded_buyer(service)
    shipped(service)
    service.request_refund(buyer(), order_id="o1", amount=100, reason="r")
    service.answer_refund(agent(), order_id="o1", accept=False)
    disputed = service.dispute(buyer(), order_id="o1", reason="r")
    assert disputed.deadline_at == clock.now + 7 * DAY
    clock.advance(30 * DAY)
    assert service.run_due() == []  # the money waits for the arbiter, not for a timer
