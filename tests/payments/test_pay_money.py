"""Amounts and currencies are refused at the boundary with the right code."""

from __future__ import annotations

from decimal import Decimal

import pytest
from paysupport import ARBITER, PIN, agent, buyer, funded_buyer, offer

from payments import PaymentService
from payments.errors import (
    CurrencyMismatch,
    InsufficientBalance,
    InvalidAmount,
    UnknownCurrency,
)
from payments.money import MAX_AMOUNT, check_amount, check_currency, format_amount

BAD_AMOUNTS = [0, -1, -(10**6), 1.0, 0.5, True, False, "100", Decimal(100), None,
               MAX_AMOUNT + 1, 10**30]


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_check_amount_refuses(amount: object) -> None:
    """Zero, negative, float, bool, str, Decimal, None and oversize are 6001."""
    with pytest.raises(InvalidAmount) as err:
        check_amount(amount)
    assert err.value.code == 6001


def test_check_amount_accepts_bounds() -> None:
    """1 and the maximum are fine."""
    assert check_amount(1) == 1
    assert check_amount(MAX_AMOUNT) == MAX_AMOUNT


@pytest.mark.parametrize("currency", ["XXX", "cny", "", None, 156, "RMB"])
def test_unknown_currency(currency: object) -> None:
    """Only codes of the ISO 4217 table are accepted (6002)."""
    with pytest.raises(UnknownCurrency) as err:
        check_currency(currency)
    assert err.value.code == 6002


def test_format_amount_uses_exponent() -> None:
    """Minor units are shown with the currency's decimals."""
    assert format_amount(12345, "CNY") == "123.45 CNY"
    assert format_amount(500, "JPY") == "500 JPY"
    assert format_amount(1001, "KWD") == "1.001 KWD"


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_service_refuses_bad_amounts_everywhere(service: PaymentService, amount) -> None:
    """Deposit, withdraw, transfer, offer and refund all refuse bad amounts; nothing moves."""
    actor = funded_buyer(service, 1000)
    calls = [
        lambda: service.deposit("user:bob", amount, "CNY", "d"),
        lambda: service.withdraw("user:bob", amount, "CNY", "w"),
        lambda: service.transfer(actor, conversation_id="c", to_account="user:carol", amount=amount,
                                 currency="CNY", pin=PIN, idem_key="t"),
        lambda: service.offer(agent(), order_id="o9", conversation_id="c", shop_id="s1",
                              buyer_id="bob", listing_id="l", title="t", unit_price=amount,
                              quantity=1, currency="CNY"),
    ]
    for call in calls:
        with pytest.raises(InvalidAmount):
            call()
    offer(service, price=100)
    service.pay(actor, order_id="o1", pin=PIN, idem_key="k")
    with pytest.raises(InvalidAmount):
        service.request_refund(actor, order_id="o1", amount=amount, reason="r")
    assert service.balance("user:bob", "CNY") == 900
    assert service.get_order("o1").state.value == "HELD"


def test_service_refuses_unknown_currency(service: PaymentService) -> None:
    """An unknown currency is 6002 for deposits, transfers and offers."""
    actor = funded_buyer(service, 1000)
    with pytest.raises(UnknownCurrency):
        service.deposit("user:bob", 1, "XBT", "d")
    with pytest.raises(UnknownCurrency):
        service.transfer(actor, conversation_id="c", to_account="user:carol", amount=1,
                         currency="XBT", pin=PIN, idem_key="t")
    with pytest.raises(UnknownCurrency):
        offer(service, currency="XBT")


def test_order_total_overflow_is_refused(service: PaymentService) -> None:
    """unit_price x quantity above the maximum is refused even if each part is fine."""
    with pytest.raises(InvalidAmount):
        offer(service, price=MAX_AMOUNT, qty=2)


def test_no_cross_currency_money(service: PaymentService) -> None:
    """A USD wallet cannot pay a CNY order: the CNY balance is what counts (6010)."""
    funded_buyer(service, 10_000, currency="USD")
    service.set_pin(buyer("carol"), PIN)
    offer(service, price=100, currency="CNY")
    with pytest.raises(InsufficientBalance) as err:
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    assert err.value.code == 6010
    assert service.balance("user:bob", "USD") == 10_000


def test_reoffer_in_another_currency_is_refused(service: PaymentService) -> None:
    """Bargaining changes the price, never the currency (6003)."""
    offer(service, price=100, currency="CNY")
    with pytest.raises(CurrencyMismatch) as err:
        offer(service, price=15, currency="USD")
    assert err.value.code == 6003
    assert service.get_order("o1").currency == "CNY"


def test_arbiter_split_amount_validated(service: PaymentService) -> None:
    """A split needs a proper buyer amount."""
    with pytest.raises(InvalidAmount):
        service.decide(ARBITER, order_id="o1", outcome="split", buyer_amount=1.5)  # type: ignore[arg-type]
