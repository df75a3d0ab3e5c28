"""Small-amount payments without PIN (小额免密): opt-in, two caps, a rolling window."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from paysupport import DAY, PIN, FakeClock, agent, buyer, funded_buyer, offer, settings

from payments import PaymentService, SpendLimits, check_invariants
from payments.errors import InvalidAmount, InvalidRequest, PaymentError, PinLocked, PinRequired, PinWrong
from payments.quickpay import QuickPayCaps
from payments.store import Store


def quick(service: PaymentService, per_payment: int = 100, daily: int = 250) -> None:
    service.quick_pay.configure(buyer(), enabled=True, currency="CNY", per_payment=per_payment,
                                daily=daily, pin=PIN)


def test_off_by_default_a_payment_without_pin_needs_the_pin(service: PaymentService) -> None:
    """Without opting in, ``pay`` without PIN is 6044 (reason off) and moves nothing."""
    funded_buyer(service, 1000)
    offer(service, price=10)
    with pytest.raises(PinRequired) as err:
        service.pay(buyer(), order_id="o1", pin=None, idem_key="k1")
    assert err.value.code == 6044 and err.value.details["reason"] == "off"
    assert service.balance("user:bob", "CNY") == 1000
    assert service.get_order("o1").state.value == "OFFERED"
    # The refusal stored nothing under the key: the same key pays with the PIN.
    assert service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k1").state.value == "HELD"


def test_switching_on_needs_the_current_pin_and_caps_within_the_platform(service: PaymentService) -> None:
    funded_buyer(service, 1000)
    with pytest.raises(PinRequired):
        service.quick_pay.configure(buyer(), enabled=True, currency="CNY", per_payment=100, daily=200)
    with pytest.raises(PinWrong):
        service.quick_pay.configure(buyer(), enabled=True, currency="CNY", per_payment=100, daily=200,
                                    pin="000000")
    platform = service.settings.quick_pay_caps["CNY"]
    with pytest.raises(InvalidAmount) as err:
        quick(service, per_payment=platform.per_transaction + 1, daily=platform.daily)
    assert err.value.details["field"] == "per_payment"
    with pytest.raises(InvalidAmount):
        quick(service, per_payment=100, daily=platform.daily + 1)
    with pytest.raises(InvalidAmount):
        quick(service, per_payment=300, daily=200)
    with pytest.raises(InvalidRequest):
        service.quick_pay.configure(buyer(), enabled=True, per_payment=100, daily=200, pin=PIN)
    with pytest.raises(InvalidRequest):  # only buyers pay orders
        service.quick_pay.configure(agent(), enabled=True, currency="CNY", per_payment=1, daily=1, pin=PIN)
    assert service.quick_pay.state(buyer()) == {}
    quick(service)
    assert service.quick_pay.state(buyer()) == {"CNY": QuickPayCaps(100, 250, 250)}


def test_within_both_caps_pays_without_pin_over_the_window_it_needs_the_pin(
    service: PaymentService, clock: FakeClock
) -> None:
    funded_buyer(service, 10_000)
    quick(service, per_payment=100, daily=250)
    for i, price in enumerate((100, 100, 60, 30, 50)):
        offer(service, f"o{i}", price=price)
    assert service.pay(buyer(), order_id="o0", pin=None, idem_key="k0").state.value == "HELD"
    assert service.pay(buyer(), order_id="o1", pin=None, idem_key="k1").state.value == "HELD"
    with pytest.raises(PinRequired) as err:  # 200 + 60 > 250
        service.pay(buyer(), order_id="o2", pin=None, idem_key="k2")
    assert err.value.details == {"reason": "daily", "remaining": 50}
    # A payment with the PIN does not use the window's room ...
    service.pay(buyer(), order_id="o2", pin=PIN, idem_key="k2")
    assert service.pay(buyer(), order_id="o3", pin=None, idem_key="k3").state.value == "HELD"
    assert service.quick_pay.state(buyer())["CNY"].remaining == 20
    # ... and the window rolls: a day after the first payments their room is back.
    clock.advance(DAY)
    assert service.pay(buyer(), order_id="o4", pin=None, idem_key="k4").state.value == "HELD"
    assert service.balance("user:bob", "CNY") == 10_000 - 340
    offer(service, "big", price=101)
    with pytest.raises(PinRequired) as err:
        service.pay(buyer(), order_id="big", pin=None, idem_key="kb")
    assert err.value.details["reason"] == "per_payment"


def test_old_pin_less_payments_are_forgotten_once_no_window_can_count_them(
    service: PaymentService, store: Store, clock: FakeClock
) -> None:
    funded_buyer(service, 10_000)
    quick(service, per_payment=100, daily=250)
    offer(service, "o1", price=100)
    service.pay(buyer(), order_id="o1", pin=None, idem_key="k1")
    rows = lambda: store.read(lambda sql: sql.rows("SELECT COUNT(*) FROM quick_payments"))[0][0]  # noqa: E731
    service.run_due()
    clock.advance(2 * DAY - 1)
    service.run_due()  # within two windows of the payment: kept
    assert rows() == 1
    clock.advance(3_600_000)
    service.run_due()
    assert rows() == 0
    assert service.quick_pay.state(buyer())["CNY"].remaining == 250


def test_a_resend_without_pin_replays_the_first_answer(service: PaymentService) -> None:
    funded_buyer(service, 1000)
    quick(service)
    offer(service, price=80)
    first = service.pay(buyer(), order_id="o1", pin=None, idem_key="k1")
    again = service.pay(buyer(), order_id="o1", pin=None, idem_key="k1")
    assert again == first and service.balance("user:bob", "CNY") == 920
    assert service.quick_pay.state(buyer())["CNY"].remaining == 170  # counted once


def test_switching_off_needs_no_pin(service: PaymentService) -> None:
    funded_buyer(service, 1000)
    quick(service)
    service.quick_pay.configure(buyer(), enabled=False)
    assert service.quick_pay.state(buyer()) == {}
    offer(service, price=10)
    with pytest.raises(PinRequired):
        service.pay(buyer(), order_id="o1", pin=None, idem_key="k1")


def test_a_locked_pin_stops_quick_pay(service: PaymentService) -> None:
    funded_buyer(service, 1000)
    quick(service)
    offer(service, "o1", price=10)
    offer(service, "o2", price=10)
    for _ in range(5):
        with pytest.raises((PinWrong, PinLocked)):
            service.pay(buyer(), order_id="o1", pin="000000", idem_key="k1")
    with pytest.raises(PinLocked):
        service.pay(buyer(), order_id="o2", pin=None, idem_key="k2")
    assert service.balance("user:bob", "CNY") == 1000


def test_a_lowered_platform_cap_applies_to_buyers_who_opted_in(store: Store, clock: FakeClock) -> None:
    generous = PaymentService(store, clock=clock, settings=settings())
    funded_buyer(generous, 10_000)
    quick(generous, per_payment=500, daily=1000)
    strict = PaymentService(store, clock=clock, settings=settings(
        quick_pay_caps={"CNY": SpendLimits(per_transaction=50, daily=80)}))
    assert strict.quick_pay.state(buyer())["CNY"] == QuickPayCaps(50, 80, 80)
    offer(strict, "o1", price=60)
    with pytest.raises(PinRequired):
        strict.pay(buyer(), order_id="o1", pin=None, idem_key="k1")
    none = PaymentService(store, clock=clock, settings=settings(quick_pay_caps={}))
    assert none.quick_pay.state(buyer()) == {}
    with pytest.raises(PinRequired):
        none.pay(buyer(), order_id="o1", pin=None, idem_key="k1")
    check_invariants(store)


def test_concurrent_payments_never_exceed_the_daily_cap(service: PaymentService) -> None:
    """Eight PIN-less payments of 40 race against a cap of 200: exactly five commit."""
    funded_buyer(service, 10_000)
    quick(service, per_payment=100, daily=200)
    for i in range(8):
        offer(service, f"o{i}", price=40)

    def pay(i: int) -> int:
        try:
            service.pay(buyer(), order_id=f"o{i}", pin=None, idem_key=f"k{i}")
            return 1
        except PinRequired:
            return 0

    with ThreadPoolExecutor(8) as pool:
        paid = sum(pool.map(pay, range(8)))
    assert paid == 5
    assert service.balance("user:bob", "CNY") == 10_000 - 200
    assert service.quick_pay.state(buyer())["CNY"].remaining == 0


def test_quick_pay_keeps_the_ledger_limits_and_balance(service: PaymentService) -> None:
    """Quick pay only replaces the PIN: the balance still has to cover the payment."""
    funded_buyer(service, 50)
    quick(service)
    offer(service, price=60)
    with pytest.raises(PaymentError) as err:
        service.pay(buyer(), order_id="o1", pin=None, idem_key="k1")
    assert err.value.code == 6010
    assert service.quick_pay.state(buyer())["CNY"].remaining == 250
