"""Deposits, withdrawals, balances and statements (the backend's server API)."""

from __future__ import annotations

import pytest

from payments import PaymentService
from payments.errors import InsufficientBalance, InvalidRequest


def test_deposit_and_withdraw(service: PaymentService) -> None:
    """Deposits credit the owner from the world; withdrawals go back out once paid out."""
    r = service.deposit("user:bob", 500, "CNY", "d1")
    assert (r.kind, r.balance_after) == ("deposit", 500)
    r = service.withdraw("user:bob", 200, "CNY", "w1")
    assert (r.kind, r.balance_after) == ("withdraw", 300) and r.withdrawal_id is not None
    assert service.balance("user:bob", "CNY") == 300
    assert service.balance("world", "CNY", "world") == -500  # not out until the payout is confirmed
    service.withdrawals.complete(r.withdrawal_id, "bank-ref-1")
    assert service.balance("world", "CNY", "world") == -300


def test_withdraw_never_below_zero(service: PaymentService) -> None:
    """Withdrawing more than the balance is 6010 and moves nothing."""
    service.deposit("shop:s1", 100, "CNY", "d1")
    with pytest.raises(InsufficientBalance) as err:
        service.withdraw("shop:s1", 101, "CNY", "w1")
    assert err.value.code == 6010 and err.value.details["available"] == 100
    assert service.balance("shop:s1", "CNY") == 100


def test_balances_are_per_currency(service: PaymentService) -> None:
    """A USD deposit does not show in CNY."""
    service.deposit("user:bob", 100, "USD", "d1")
    assert service.balance("user:bob", "CNY") == 0
    assert service.balance("user:bob", "USD") == 100


@pytest.mark.parametrize("owner", ["bob", "platform", "world", "user:", "admin:x", ""])
def test_owner_convention_enforced(service: PaymentService, owner: str) -> None:
    """Only user:<id> and shop:<id> can be funded."""
    with pytest.raises(InvalidRequest):
        service.deposit(owner, 1, "CNY", "d")


def test_platform_accounts_need_platform_owner(service: PaymentService) -> None:
    """escrow_hold belongs to 'platform', not to a user."""
    with pytest.raises(InvalidRequest):
        service.balance("user:bob", "CNY", "escrow_hold")
    with pytest.raises(InvalidRequest):
        service.balance("platform", "CNY", "savings")


def test_statement_pages_with_running_balance(service: PaymentService, clock) -> None:
    """Statement lines are newest first with signed amounts and running balances."""
    for i in range(5):
        clock.advance(1)
        service.deposit("user:bob", 100 * (i + 1), "CNY", f"d{i}")
    service.withdraw("user:bob", 50, "CNY", "w")
    page = service.statement("user:bob", "CNY", limit=4)
    assert [line.amount for line in page.lines] == [-50, 500, 400, 300]
    assert [line.balance_after for line in page.lines] == [1450, 1500, 1000, 600]
    assert page.balance == 1450 and page.next_before is not None
    rest = service.statement("user:bob", "CNY", limit=4, before=page.next_before)
    assert [line.balance_after for line in rest.lines] == [300, 100]
    assert rest.next_before is None


def test_balances_lists_every_used_currency(service: PaymentService) -> None:
    """balances() gives each currency the owner has an account in, and nothing for others."""
    assert service.balances("user:bob") == {}
    service.deposit("user:bob", 100, "USD", "d1")
    service.deposit("user:bob", 250, "CNY", "d2")
    assert service.balances("user:bob") == {"CNY": 250, "USD": 100}
    with pytest.raises(InvalidRequest):
        service.balances("bob")


def test_has_pin(service: PaymentService) -> None:
    """has_pin tells whether a user set a payment PIN, without revealing anything else."""
    from payments import Actor

    bob = Actor(user_id="bob", role="buyer")
    assert service.has_pin(bob) is False
    service.set_pin(bob, "123456")
    assert service.has_pin(bob) is True
    # The same person id acting as an agent (or for another shop) is another principal.
    assert service.has_pin(Actor(user_id="bob", role="agent", shop_id="s1")) is False
