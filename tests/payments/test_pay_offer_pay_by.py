"""An offer made from a shop's time-limited price (a broadcast's): ``pay_by`` is its pay-by
deadline instead of the usual offer expiry, longer or shorter, and part of its key."""

from __future__ import annotations

import pytest
from paysupport import DAY, PIN, FakeClock, agent, buyer, funded_buyer

from payments import PaymentService
from payments.errors import IdempotencyConflict, InvalidRequest, WrongState

HOUR = DAY // 24


def offer(service: PaymentService, pay_by: int | None, key: str | None = "broadcast/1/bob") -> str:
    order = service.offer(agent(), order_id="o1", conversation_id="c1", shop_id="s1", buyer_id="bob",
                          listing_id="l1", title="tea", unit_price=8800, quantity=1, currency="CNY",
                          idem_key=key, pay_by=pay_by)
    return order.order_id


def test_a_long_price_is_payable_past_the_usual_expiry(service: PaymentService, clock: FakeClock) -> None:
    funded_buyer(service, 100_000)
    until = clock.now + 10 * DAY
    offer(service, until)
    assert service.get_order("o1").deadline_at == until
    clock.advance(5 * DAY)  # past the usual 3 days
    assert service.run_due() == []
    assert service.pay(buyer(), order_id="o1", pin=PIN, idem_key="pay-1").state == "HELD"


def test_a_short_price_lapses_with_it(service: PaymentService, clock: FakeClock) -> None:
    funded_buyer(service, 100_000)
    until = clock.now + 2 * HOUR
    offer(service, until)
    clock.advance(2 * HOUR)
    with pytest.raises(WrongState):
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="pay-1")
    assert service.get_order("o1").state == "CANCELLED"
    assert service.balance("user:bob", "CNY") == 100_000


def test_pay_by_is_part_of_the_offer_key(service: PaymentService, clock: FakeClock) -> None:
    until = clock.now + DAY
    offer(service, until)
    assert offer(service, until) == "o1"  # a retry replays
    with pytest.raises(IdempotencyConflict):
        offer(service, until + 1)
    with pytest.raises(InvalidRequest):
        offer(service, -1, key="other-key")
