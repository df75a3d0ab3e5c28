"""Per-transaction and rolling daily limits, configurable per currency."""

from __future__ import annotations

import pytest
from paysupport import DAY, PIN, buyer, funded_buyer, offer, settings

from payments import PaymentService, SpendLimits, check_invariants
from payments.errors import LimitExceeded

LIMITS = {"CNY": SpendLimits(per_transaction=500, daily=1000)}


@pytest.fixture
def limited(store, clock):
    service = PaymentService(store, clock=clock, settings=settings(limits=LIMITS))
    yield service
    check_invariants(store)


def test_per_transaction_limit(limited: PaymentService) -> None:
    """A payment above the per-transaction limit is 6050; at the limit it passes."""
    funded_buyer(limited, 5000)
    offer(limited, "big", price=501)
    with pytest.raises(LimitExceeded) as err:
        limited.pay(buyer(), order_id="big", pin=PIN, idem_key="k1")
    assert err.value.code == 6050 and err.value.details["limit"] == "per_transaction"
    offer(limited, "ok", price=500)
    limited.pay(buyer(), order_id="ok", pin=PIN, idem_key="k2")


def test_daily_limit_counts_payments_and_transfers(limited: PaymentService, clock) -> None:
    """Payments and transfers share the rolling 24 h budget; it frees up a day later."""
    funded_buyer(limited, 5000)
    offer(limited, "o1", price=500)
    limited.pay(buyer(), order_id="o1", pin=PIN, idem_key="k1")
    clock.advance(1000)
    limited.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=400,
                     currency="CNY", pin=PIN, idem_key="t1")
    with pytest.raises(LimitExceeded) as err:
        limited.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=101,
                         currency="CNY", pin=PIN, idem_key="t2")
    assert err.value.details == {"limit": "daily", "remaining": 100}
    limited.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=100,
                     currency="CNY", pin=PIN, idem_key="t3")
    clock.advance(DAY - 1000)  # the payment left the window, the transfers did not
    limited.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=500,
                     currency="CNY", pin=PIN, idem_key="t4")
    with pytest.raises(LimitExceeded):
        limited.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=1,
                         currency="CNY", pin=PIN, idem_key="t5")


def test_limits_are_per_currency(limited: PaymentService) -> None:
    """USD has no limit configured here, so a big USD payment passes."""
    funded_buyer(limited, 10**7, currency="USD")
    offer(limited, "usd", price=10**6, currency="USD")
    assert limited.pay(buyer(), order_id="usd", pin=PIN, idem_key="k").held == 10**6


def test_default_limits_cover_every_currency() -> None:
    """By default every known currency has a limit, scaled by its exponent."""
    defaults = settings().limits
    assert defaults["CNY"].per_transaction == 5_000_000
    assert defaults["JPY"].per_transaction == 50_000
