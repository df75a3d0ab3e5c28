"""The outbox: one event per state change, in the same transaction, never twice."""

from __future__ import annotations

import pytest
from paysupport import DAY, PIN, agent, buyer, funded_buyer, offer

from payments import PaymentService
from payments.errors import InsufficientBalance


def test_event_per_state_change_with_full_view(service: PaymentService, clock) -> None:
    """Each change writes one event whose payload is the whole view plus the actor."""
    funded_buyer(service)
    offer(service, price=100)
    held = service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    service.ship(agent(), order_id="o1")
    clock.advance(10 * DAY)
    service.run_due()
    events = service.events_after(0)
    assert [(e.id, e.action, e.state) for e in events] == [
        (1, "offered", "OFFERED"), (2, "paid", "HELD"), (3, "shipped", "SHIPPED"),
        (4, "released", "RELEASED")]
    paid = events[1]
    assert paid.entity_kind == "order" and paid.conversation_id == "c-o1"
    assert paid.payload["version"] == held.version and paid.payload["held"] == 100
    assert paid.payload["actor"] == {"user_id": "bob", "role": "buyer", "shop_id": None}
    assert events[3].payload["actor"]["role"] == "system"
    assert events[2].payload["auto_confirm_at"] == events[2].created_at + 10 * DAY


def test_cursor_paging(service: PaymentService) -> None:
    """events_after(cursor, limit) pages in id order."""
    for i in range(5):
        offer(service, f"o{i}")
    first = service.events_after(0, limit=2)
    rest = service.events_after(first[-1].id, limit=10)
    assert [e.id for e in first + rest] == [1, 2, 3, 4, 5]


def test_no_event_when_refused(service: PaymentService) -> None:
    """A refused payment writes no event."""
    funded_buyer(service, 10)
    offer(service, price=100)
    with pytest.raises(InsufficientBalance):
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    assert [e.action for e in service.events_after(0)] == ["offered"]


def test_replay_writes_no_second_event(service: PaymentService) -> None:
    """Replaying a payment does not repeat the 'paid' event."""
    funded_buyer(service)
    offer(service, price=100)
    for _ in range(3):
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    assert [e.action for e in service.events_after(0)].count("paid") == 1


def test_transfer_events(service: PaymentService) -> None:
    """Transfers report pending then accepted, with amounts and deadline."""
    funded_buyer(service)
    t = service.transfer(buyer(), conversation_id="c9", to_account="user:carol", amount=5,
                         currency="CNY", pin=PIN, idem_key="t")
    service.accept_transfer(buyer("carol"), transfer_id=t.transfer_id)
    events = [e for e in service.events_after(0) if e.entity_kind == "transfer"]
    assert [(e.action, e.state, e.conversation_id) for e in events] == [
        ("pending", "PENDING", "c9"), ("accepted", "ACCEPTED", "c9")]
    assert events[0].payload["expires_at"] == t.expires_at
    assert events[0].payload["amount"] == 5
