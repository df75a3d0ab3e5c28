"""The reconciliation report adds up: openings, movements and closings per account, the
period's transactions by kind, and consecutive periods that join without a gap."""

from __future__ import annotations

import pytest
from paysupport import DAY, PIN, buyer, funded_buyer, offer

from payments import PaymentService
from payments.errors import InvalidRequest


def test_a_day_of_trade_reconciles(service: PaymentService, clock) -> None:
    start = clock.now
    funded_buyer(service, 10_000)  # deposit 10,000 into user:bob
    offer(service, price=2_500)
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k1")
    middle = clock.advance(DAY)
    service.confirm(buyer(), order_id="o1")  # 2,500 to shop:s1
    service.withdraw("shop:s1", 1_000, "CNY", "w1")
    end = clock.advance(1)

    whole = service.reconciliation("CNY", start, end + 1)
    assert whole.balanced
    lines = {(a.owner, a.kind): a for a in whole.accounts}
    bob = lines[("user:bob", "available")]
    assert (bob.opening, bob.credits, bob.debits, bob.closing) == (0, 10_000, 2_500, 7_500)
    shop = lines[("shop:s1", "available")]
    assert (shop.credits, shop.debits, shop.closing) == (2_500, 1_000, 1_500)
    assert lines[("platform", "escrow_hold")].closing == 0
    assert {k.kind: (k.transactions, k.amount) for k in whole.by_kind} == {
        "deposit": (1, 10_000), "pay": (1, 2_500), "release": (1, 2_500), "withdraw": (1, 1_000)}

    first, second = service.reconciliation("CNY", start, middle), service.reconciliation("CNY", middle, end + 1)
    assert first.balanced and second.balanced
    closed = {(a.owner, a.kind): a.closing for a in first.accounts}
    opened = {(a.owner, a.kind): a.opening for a in second.accounts}
    assert all(opened.get(key, 0) == value for key, value in closed.items())  # no gap between periods
    assert closed[("platform", "escrow_hold")] == 2_500
    assert service.reconciliation("USD", start, end + 1).accounts == []


@pytest.mark.parametrize(("since", "until"), [(5, 5), (9, 1), (-1, 3)])
def test_a_bad_period_is_refused(service: PaymentService, since: int, until: int) -> None:
    with pytest.raises(InvalidRequest):
        service.reconciliation("CNY", since, until)


def test_an_empty_ledger_reconciles(service: PaymentService) -> None:
    report = service.reconciliation("CNY", 0, 1)
    assert report.balanced and report.accounts == [] and report.by_kind == []
