"""Races between threads (and connections): one winner, the ledger intact."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from paysupport import DAY, PIN, FakeClock, agent, buyer, funded_buyer, offer, settings

from payments import PaymentError, PaymentService, check_invariants
from payments.sqlite_store import SqliteStore


def race(calls: list[Callable[[], Any]]) -> list[Any]:
    """Start all calls at once on their own threads; return results or PaymentErrors."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except PaymentError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def hundred_payments_of_sixty(service: PaymentService) -> None:
    funded_buyer(service, 100)
    for i in range(100):
        offer(service, f"o{i}", price=60)
    results = race([
        lambda i=i: service.pay(buyer(), order_id=f"o{i}", pin=PIN, idem_key=f"k{i}")
        for i in range(100)])
    codes = Counter(getattr(r, "code", "ok") for r in results)
    assert codes == {"ok": 1, 6010: 99}
    assert service.balance("user:bob", "CNY") == 40
    assert service.balance("platform", "CNY", "escrow_hold") == 60
    check_invariants(service.store)


def test_hundred_concurrent_payments_one_succeeds(service: PaymentService) -> None:
    """Balance 100, 100 threads each paying a different offer of 60: exactly one wins."""
    hundred_payments_of_sixty(service)


def test_hundred_payments_sqlite_without_process_lock(tmp_path, clock) -> None:
    """The same on SQLite with 100 connections and only SQLite's own locking."""
    store = SqliteStore(os.path.join(tmp_path, "p.db"), process_lock=False)
    try:
        hundred_payments_of_sixty(PaymentService(store, clock=clock, settings=settings()))
    finally:
        store.close()


def test_hundred_withdrawals_never_overdraw(service: PaymentService) -> None:
    """100 concurrent withdrawals of 30 from 100: three succeed, the balance is 10."""
    service.deposit("shop:s1", 100, "CNY", "d")
    results = race([lambda i=i: service.withdraw("shop:s1", 30, "CNY", f"w{i}")
                    for i in range(100)])
    assert Counter(getattr(r, "code", "ok") for r in results) == {"ok": 3, 6010: 97}
    assert service.balance("shop:s1", "CNY") == 10


@pytest.mark.parametrize("round_", range(4))
def test_confirm_vs_timer_vs_refund(service: PaymentService, clock: FakeClock, round_) -> None:
    """At the deadline, confirm, run_due and a refund request race: one outcome only."""
    funded_buyer(service)
    offer(service, price=100)
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    order = service.ship(agent(), order_id="o1")
    assert order.auto_confirm_at is not None
    # Half the rounds race exactly at the deadline, half just before it.
    clock.now = order.auto_confirm_at - (round_ % 2)
    calls: list[Callable[[], Any]] = []
    for _ in range(3):
        calls += [
            lambda: service.confirm(buyer(), order_id="o1"),
            lambda: service.run_due(),
            lambda: service.request_refund(buyer(), order_id="o1", amount=100, reason="r"),
        ]
    before = service.events_after(0)[-1].id
    results = race(calls)
    final = service.get_order("o1")
    # Exactly one change happened; it was returned to its caller, or it was the timer
    # applied by a late command (which then lost, like the others).
    assert [e.state for e in service.events_after(before)] == [final.state.value]
    winners = [r for r in results if not isinstance(r, PaymentError) and r != []]
    assert len(winners) == 1 or (not winners and final.settled_by == "timer")
    losers = [r for r in results if isinstance(r, PaymentError)]
    assert all(e.details.get("state") == final.state.value for e in losers)
    assert final.state.value in ("RELEASED", "REFUND_REQUESTED")
    if final.state.value == "RELEASED":
        assert service.balance("shop:s1", "CNY") == 100
    # The outcome is stable: a release stays released; a refund request the shop leaves
    # unanswered is granted by its own timer, never released.
    clock.advance(30 * DAY)
    service.run_due()
    later = {"RELEASED": "RELEASED", "REFUND_REQUESTED": "REFUNDED"}[final.state.value]
    assert service.get_order("o1").state.value == later


@pytest.mark.parametrize("offset", [-1, 0])
def test_accept_decline_expiry_race(service: PaymentService, clock: FakeClock, offset) -> None:
    """At (or 1 ms before) expiry, accept, decline and run_due race: one outcome."""
    funded_buyer(service, 100)
    t = service.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=40,
                         currency="CNY", pin=PIN, idem_key="t")
    clock.now = t.expires_at + offset
    calls: list[Callable[[], Any]] = []
    for _ in range(3):
        calls += [
            lambda: service.accept_transfer(buyer("carol"), transfer_id=t.transfer_id),
            lambda: service.decline_transfer(buyer("carol"), transfer_id=t.transfer_id),
            lambda: service.run_due(),
        ]
    before = service.events_after(0)[-1].id
    results = race(calls)
    final = service.get_transfer(t.transfer_id)
    assert [e.state for e in service.events_after(before)] == [final.state.value]
    winners = [r for r in results if not isinstance(r, PaymentError) and r != []]
    assert len(winners) == 1 or (not winners and final.state.value == "EXPIRED")
    losers = [r for r in results if isinstance(r, PaymentError)]
    assert all(e.details.get("state") == final.state.value for e in losers)
    if offset == 0:
        assert final.state.value == "EXPIRED"
    got = service.balance("user:carol", "CNY")
    assert got == (40 if final.state.value == "ACCEPTED" else 0)
    assert service.balance("user:bob", "CNY") == 100 - 40 + (40 - got)


def test_concurrent_offers_and_payments_on_many_orders(service: PaymentService) -> None:
    """Many buyers paying and shops shipping at once keeps every invariant."""
    buyers = [f"b{i}" for i in range(8)]
    for b in buyers:
        funded_buyer(service, 1000, user_id=b)
        offer(service, f"o-{b}", price=100, buyer_id=b)
    calls: list[Callable[[], Any]] = []
    for b in buyers:
        calls.append(lambda b=b: service.pay(buyer(b), order_id=f"o-{b}", pin=PIN,
                                             idem_key="k"))
        calls.append(lambda b=b: service.transfer(buyer(b), conversation_id="c",
                                                  to_account="user:carol", amount=50, currency="CNY",
                                                  pin=PIN, idem_key="t"))
    results = race(calls)
    assert not [r for r in results if isinstance(r, PaymentError)]
    assert service.balance("platform", "CNY", "escrow_hold") == 800
    assert service.balance("platform", "CNY", "pending_transfer") == 400
