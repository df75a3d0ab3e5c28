"""Idempotency keys: one effect, the first answer forever, conflicts refused."""

from __future__ import annotations

import threading

import pytest
from paysupport import PIN, agent, buyer, funded_buyer, offer

from payments import PaymentService, check_invariants
from payments.errors import IdempotencyConflict, InsufficientBalance, InvalidRequest


def test_pay_replay_returns_first_response_after_state_changed(
    service: PaymentService,
) -> None:
    """A replayed pay returns the HELD view even after the order was released."""
    funded_buyer(service, 1000)
    offer(service, price=100)
    first = service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    service.confirm(buyer(), order_id="o1")
    for _ in range(3):
        assert service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k") == first
    assert service.balance("user:bob", "CNY") == 900
    assert service.balance("shop:s1", "CNY") == 100


def test_replay_needs_no_pin_check_but_moves_nothing(service: PaymentService) -> None:
    """A replay answers from the stored response without counting a PIN attempt."""
    funded_buyer(service, 1000)
    offer(service, price=100)
    first = service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    assert service.pay(buyer(), order_id="o1", pin="000000", idem_key="k") == first
    failures = service.store.read(lambda sql: sql.rows("SELECT failures FROM pins"))
    assert failures == [(0,)]


def test_same_key_other_params_refused(service: PaymentService) -> None:
    """Reusing a key for another order, amount or operation is 6030; nothing moves."""
    actor = funded_buyer(service, 1000)
    offer(service, "o1", price=100)
    offer(service, "o2", price=100)
    service.pay(actor, order_id="o1", pin=PIN, idem_key="k")
    with pytest.raises(IdempotencyConflict) as err:
        service.pay(actor, order_id="o2", pin=PIN, idem_key="k")
    assert err.value.code == 6030
    with pytest.raises(IdempotencyConflict):
        service.transfer(actor, conversation_id="c", to_account="user:carol", amount=5,
                         currency="CNY", pin=PIN, idem_key="k")
    service.deposit("user:bob", 10, "CNY", "d")
    with pytest.raises(IdempotencyConflict):
        service.deposit("user:bob", 11, "CNY", "d")
    assert service.balance("user:bob", "CNY") == 910
    assert service.get_order("o2").state.value == "OFFERED"


def test_keys_are_scoped_per_user(service: PaymentService) -> None:
    """Two users may use the same key string independently."""
    funded_buyer(service, 1000, "bob")
    funded_buyer(service, 1000, "dan")
    offer(service, "o1", buyer_id="bob")
    offer(service, "o2", buyer_id="dan")
    service.pay(buyer("bob"), order_id="o1", pin=PIN, idem_key="same")
    service.pay(buyer("dan"), order_id="o2", pin=PIN, idem_key="same")
    assert service.get_order("o2").state.value == "HELD"


def test_refused_command_keeps_key_free(service: PaymentService) -> None:
    """A pay refused for balance stores nothing: after a top-up the same key works."""
    actor = funded_buyer(service, 50)
    offer(service, price=100)
    with pytest.raises(InsufficientBalance) as err:
        service.pay(actor, order_id="o1", pin=PIN, idem_key="k")
    assert err.value.code == 6010
    service.deposit("user:bob", 50, "CNY", "top-up")
    assert service.pay(actor, order_id="o1", pin=PIN, idem_key="k").state.value == "HELD"


def test_optional_keys_on_transitions(service: PaymentService) -> None:
    """confirm with a key replays its RELEASED answer instead of a wrong-state error."""
    funded_buyer(service, 1000)
    offer(service, price=100)
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    service.ship(agent(), order_id="o1", idem_key="ship-1")
    first = service.confirm(buyer(), order_id="o1", idem_key="c1")
    assert service.confirm(buyer(), order_id="o1", idem_key="c1") == first


@pytest.mark.parametrize("key", ["", "x" * 201, None, 17])
def test_bad_keys(service: PaymentService, key) -> None:
    """Money commands need a key of 1-200 characters."""
    with pytest.raises(InvalidRequest):
        service.deposit("user:bob", 1, "CNY", key)


def test_concurrent_replays_execute_once(service: PaymentService) -> None:
    """20 threads sending the same pay at once: one effect, 20 identical answers."""
    funded_buyer(service, 1000)
    offer(service, price=100)
    barrier = threading.Barrier(20)
    answers: list[object] = []

    def go() -> None:
        barrier.wait()
        answers.append(service.pay(buyer(), order_id="o1", pin=PIN, idem_key="same"))

    threads = [threading.Thread(target=go) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 20 and all(a == answers[0] for a in answers)
    assert service.balance("user:bob", "CNY") == 900
    check_invariants(service.store)


def test_concurrent_deposits_same_key(service: PaymentService) -> None:
    """20 concurrent deposits with one key credit once and return one receipt."""
    barrier = threading.Barrier(20)
    answers: list[object] = []

    def go() -> None:
        barrier.wait()
        answers.append(service.deposit("user:bob", 70, "CNY", "dep"))

    threads = [threading.Thread(target=go) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 20 and all(a == answers[0] for a in answers)
    assert service.balance("user:bob", "CNY") == 70


def _offer(service: PaymentService, price: int, key: str | None, order_id: str = "o1"):
    return service.offer(agent(), order_id=order_id, conversation_id="c-o1", shop_id="s1", buyer_id="bob",
                         listing_id="l1", title="Green tea", unit_price=price, quantity=1, currency="CNY",
                         idem_key=key)


def test_an_offer_replay_returns_its_first_answer_and_never_reprices_back(service: PaymentService) -> None:
    """Offer at 100 with key K, re-price to 120, resend K: the answer is the first one and
    the order stays at 120; K with other terms is refused."""
    first = _offer(service, 100, "k1")
    assert _offer(service, 120, "k2").amount == 120
    assert _offer(service, 100, "k1") == first
    assert service.get_order("o1").amount == 120
    with pytest.raises(IdempotencyConflict):
        _offer(service, 90, "k1")
    funded_buyer(service, 1000)
    held = service.pay(buyer(), order_id="o1", pin=PIN, idem_key="p1")
    assert _offer(service, 100, "k1") == first  # even once paid, a replay is an answer, not an error
    assert service.paid_with(buyer(), "p1") == held
    assert service.paid_with(agent(), "k1") is None  # an offer's key is not a payment's
    assert service.paid_with(agent(), "p1") is None  # nor is another principal's key
