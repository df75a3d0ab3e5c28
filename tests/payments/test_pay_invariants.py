"""The invariant checker catches corruption, and the journal cannot be rewritten."""

from __future__ import annotations

import pytest
from paysupport import PIN, buyer, funded_buyer, offer, settings

from payments import PaymentService, check_invariants


def tamper(service: PaymentService, statement: str) -> None:
    """Change the tables behind the ledger's back (triggers stay on)."""
    service.store.write(lambda sql: sql.run(statement))


@pytest.fixture
def busy(store, clock) -> PaymentService:
    """A ledger with a deposit and a paid order (no invariant check at teardown)."""
    service = PaymentService(store, clock=clock, settings=settings())
    funded_buyer(service, 1000)
    offer(service, price=100)
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    check_invariants(service.store)
    return service


@pytest.mark.parametrize(
    ("statement", "broken"),
    [
        ("UPDATE accounts SET balance = balance + 1 WHERE owner = 'user:bob'", "1 conservation"),
        ("UPDATE orders SET held = 0, state = 'RELEASED'", "5 escrow-hold balance"),
        ("UPDATE orders SET state = 'OFFERED'", "5 an order holds"),
        ("UPDATE orders SET state = 'SHIPPED'", "12 each entity's latest event"),
        ("UPDATE event_seq SET last_id = last_id + 1", "12 event ids"),
        ("UPDATE idempotency SET response = NULL", "7 every stored idempotency key"),
        ("DELETE FROM idempotency", "7 every journal transaction made under a key"),
    ],
)
def test_checker_detects(busy: PaymentService, statement: str, broken: str) -> None:
    """Each kind of tampering is reported by name."""
    tamper(busy, statement)
    with pytest.raises(AssertionError, match=broken):
        check_invariants(busy.store)


@pytest.mark.parametrize("statement", [
    "UPDATE entries SET amount = amount + 1",
    "DELETE FROM entries",
    "UPDATE journal SET kind = 'deposit'",
    "DELETE FROM journal",
    "UPDATE events SET state = 'RELEASED'",
    "DELETE FROM events",
])
def test_journal_is_append_only(busy: PaymentService, statement: str) -> None:
    """UPDATE and DELETE on journal, entries and events are refused by the database."""
    with pytest.raises(Exception, match="append-only"):
        tamper(busy, statement)
    check_invariants(busy.store)


def test_balance_check_constraint(busy: PaymentService) -> None:
    """The CHECK (balance >= 0) backstop refuses a negative user balance."""
    with pytest.raises(Exception, match=r"(?i)check"):
        tamper(busy, "UPDATE accounts SET balance = -1 WHERE owner = 'user:bob'")
