"""Withdrawals as a process: pending until the payout is confirmed or fails, each
confirmation acting once, the clearing account always holding exactly what is pending."""

from __future__ import annotations

import threading

import pytest

from payments import PaymentService, check_invariants
from payments.errors import InvalidRequest, NotFound, WrongState
from payments.store import Store
from payments.withdrawals import WithdrawalState


def pending_in_clearing(store: Store) -> int:
    rows = store.read(lambda sql: sql.rows(
        "SELECT COALESCE(SUM(balance), 0) FROM accounts WHERE owner = 'payouts' AND currency = 'CNY'"))
    return int(rows[0][0])


def test_a_payout_completes_or_fails_and_money_ends_where_it_should(service: PaymentService, store: Store) -> None:
    service.deposit("shop:s1", 1_000, "CNY", "d1")
    out = service.withdraw("shop:s1", 300, "CNY", "w1")
    back = service.withdraw("shop:s1", 200, "CNY", "w2")
    assert out.withdrawal_id and back.withdrawal_id
    assert service.withdrawals.get(out.withdrawal_id).state is WithdrawalState.PENDING
    assert pending_in_clearing(store) == 500 and service.balance("shop:s1", "CNY") == 500
    assert {w.withdrawal_id for w in service.withdrawals.pending()} == {out.withdrawal_id, back.withdrawal_id}

    done = service.withdrawals.complete(out.withdrawal_id, "ICBC-20261202-0001")
    assert (done.state, done.reference) == (WithdrawalState.COMPLETED, "ICBC-20261202-0001")
    failed = service.withdrawals.fail(back.withdrawal_id, "account closed")
    assert (failed.state, failed.reason) == (WithdrawalState.FAILED, "account closed")
    assert service.balance("shop:s1", "CNY") == 700  # the failed 200 came back
    assert service.balance("world", "CNY", "world") == -700
    assert pending_in_clearing(store) == 0 and service.withdrawals.pending() == []
    check_invariants(store)


def test_a_confirmation_acts_once_and_the_opposite_one_is_refused(service: PaymentService, store: Store) -> None:
    service.deposit("user:bob", 100, "CNY", "d1")
    w = service.withdraw("user:bob", 100, "CNY", "w1").withdrawal_id
    assert w is not None
    first = service.withdrawals.complete(w, "ref-1")
    assert service.withdrawals.complete(w, "ref-1") == first  # a retried confirmation
    with pytest.raises(WrongState):
        service.withdrawals.fail(w, "too late")
    assert service.balance("user:bob", "CNY") == 0
    with pytest.raises(NotFound):
        service.withdrawals.complete("w_nope", "ref")
    with pytest.raises(InvalidRequest):
        service.withdrawals.fail(w, "")
    # Replaying the withdrawal request itself returns the same withdrawal.
    assert service.withdraw("user:bob", 100, "CNY", "w1").withdrawal_id == w
    check_invariants(store)


def test_racing_complete_and_fail_settle_once(service: PaymentService, store: Store) -> None:
    service.deposit("user:bob", 10_000, "CNY", "d1")
    ids = [service.withdraw("user:bob", 100, "CNY", f"w{i}").withdrawal_id for i in range(20)]
    outcomes: list[str] = []

    def settle(wid: str, complete: bool) -> None:
        try:
            if complete:
                service.withdrawals.complete(wid, "ref")
            else:
                service.withdrawals.fail(wid, "bounced")
            outcomes.append("ok")
        except WrongState:
            outcomes.append("refused")

    threads = [threading.Thread(target=settle, args=(wid, c)) for wid in ids for c in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 20 and outcomes.count("refused") == 20
    completed = sum(service.withdrawals.get(w).state is WithdrawalState.COMPLETED for w in ids if w)
    assert service.balance("user:bob", "CNY") == 10_000 - 100 * completed
    assert pending_in_clearing(store) == 0
    check_invariants(store)
