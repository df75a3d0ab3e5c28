"""Group commit: many commands, one transaction; each still succeeds or fails alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from paysupport import PIN, FakeClock, buyer, funded_buyer, offer, settings

from payments import PaymentService, check_invariants
from payments.errors import InsufficientBalance, StoreUnavailable
from payments.group_commit import GroupCommitStore
from payments.store import Sql, Store


@pytest.fixture
def grouped(store: Store) -> Iterator[GroupCommitStore]:
    wrapped = GroupCommitStore(store)
    yield wrapped
    check_invariants(store)
    wrapped.close()


def hold_writer(grouped: GroupCommitStore) -> tuple[threading.Event, threading.Thread]:
    """Occupy the writer with a command that waits, so the next ones queue into one batch."""
    release, started = threading.Event(), threading.Event()

    def slow(sql: Sql) -> None:
        started.set()
        release.wait(10)

    thread = threading.Thread(target=grouped.write, args=(slow,))
    thread.start()
    started.wait(10)
    return release, thread


def run_queued(grouped: GroupCommitStore, calls: list[object]) -> list[object]:
    """Queue ``calls`` (callables) behind a held writer, release it, return results or errors."""
    release, holder = hold_writer(grouped)
    before = grouped.batches

    def call(fn: object) -> object:
        try:
            return fn()  # type: ignore[operator]
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = []
        for fn in calls:
            futures.append(pool.submit(call, fn))
            # Queue in this order: wait until the command is in the writer's queue.
            while grouped._queue.qsize() < len(futures):
                threading.Event().wait(0.001)
        release.set()
        results = [f.result() for f in futures]
    holder.join()
    assert grouped.batches - before == 2  # the held command, then all the others at once
    return results


def test_queued_payments_commit_together(grouped: GroupCommitStore, clock: FakeClock) -> None:
    service = PaymentService(grouped, clock=clock, settings=settings())
    funded_buyer(service, 1000)
    for i in range(6):
        offer(service, f"o{i}", price=100)
    results = run_queued(grouped, [
        (lambda i=i: service.pay(buyer(), order_id=f"o{i}", pin=PIN, idem_key=f"k{i}")) for i in range(6)])
    assert [r.state.value for r in results] == ["HELD"] * 6  # type: ignore[attr-defined]
    assert service.balance("user:bob", "CNY") == 400


def test_a_refused_command_rolls_back_alone(grouped: GroupCommitStore, clock: FakeClock) -> None:
    """In one batch: a payment the balance covers, one it does not, a deposit - the middle
    one fails with its own error and leaves nothing; the others commit."""
    service = PaymentService(grouped, clock=clock, settings=settings())
    funded_buyer(service, 150)
    offer(service, "o1", price=100)
    offer(service, "o2", price=100)
    results = run_queued(grouped, [
        lambda: service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k1"),
        lambda: service.pay(buyer(), order_id="o2", pin=PIN, idem_key="k2"),
        lambda: service.deposit("user:carol", 70, "CNY", "d1"),
    ])
    assert results[0].state.value == "HELD"  # type: ignore[attr-defined]
    assert isinstance(results[1], InsufficientBalance)
    assert results[2].balance_after == 70  # type: ignore[attr-defined]
    assert service.get_order("o2").state.value == "OFFERED"
    assert service.balance("user:bob", "CNY") == 50
    # The refused key stored nothing: it pays once the money is there.
    service.deposit("user:bob", 50, "CNY", "d2")
    assert service.pay(buyer(), order_id="o2", pin=PIN, idem_key="k2").state.value == "HELD"


def test_concurrent_payers_keep_the_invariants(grouped: GroupCommitStore, clock: FakeClock) -> None:
    service = PaymentService(grouped, clock=clock, settings=settings())
    payers = [f"p{i}" for i in range(6)]
    for p in payers:
        funded_buyer(service, 1000, user_id=p)
        for j in range(5):
            offer(service, f"{p}-{j}", price=150, buyer_id=p)

    def pay_all(p: str) -> int:
        paid = 0
        for j in range(5):
            try:
                service.pay(buyer(p), order_id=f"{p}-{j}", pin=PIN, idem_key=f"{p}-{j}")
                paid += 1
            except InsufficientBalance:
                pass
        return paid

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(pay_all, payers)) == [5] * 6
    assert all(service.balance(f"user:{p}", "CNY") == 250 for p in payers)


def test_closed_store_refuses_writes(store: Store) -> None:
    grouped = GroupCommitStore(store)
    grouped.close()
    with pytest.raises(StoreUnavailable):
        grouped.write(lambda sql: sql.run("SELECT 1"))
