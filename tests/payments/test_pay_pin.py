"""Payment PINs: argon2 hashes, attempt counting and locking."""

from __future__ import annotations

import pytest
from paysupport import PIN, buyer, funded_buyer, offer

from payments import PaymentService
from payments.errors import PinFormat, PinLocked, PinNotSet, PinWrong
from payments.settings import HOUR


def test_pin_is_stored_hashed(service: PaymentService) -> None:
    """Only an argon2id hash of the PIN is stored."""
    service.set_pin(buyer(), PIN)
    stored = service.store.read(lambda sql: sql.rows("SELECT hash FROM pins"))[0][0]
    assert stored.startswith("$argon2id$") and PIN not in stored


@pytest.mark.parametrize("pin", ["12345", "1234567", "abcdef", "12 456", "", 123456, "１２３４５６"])
def test_pin_format(service: PaymentService, pin) -> None:
    """A PIN is exactly six ASCII digits (6043)."""
    with pytest.raises(PinFormat) as err:
        service.set_pin(buyer(), pin)
    assert err.value.code == 6043


def test_pay_without_pin_set(service: PaymentService) -> None:
    """Paying before setting a PIN is 6042."""
    service.deposit("user:bob", 100, "CNY", "d")
    offer(service)
    with pytest.raises(PinNotSet) as err:
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    assert err.value.code == 6042


def test_wrong_pin_moves_nothing_and_counts(service: PaymentService) -> None:
    """A wrong PIN is 6040 with the attempts left; the order stays OFFERED."""
    funded_buyer(service, 100)
    offer(service)
    with pytest.raises(PinWrong) as err:
        service.pay(buyer(), order_id="o1", pin="000000", idem_key="k")
    assert err.value.code == 6040 and err.value.details["attempts_left"] == 4
    assert service.balance("user:bob", "CNY") == 100
    assert service.get_order("o1").state.value == "OFFERED"


def test_five_wrong_pins_lock_then_unlock(service: PaymentService, clock) -> None:
    """The 5th wrong PIN locks payments for pin_lock_ms, even with the right PIN."""
    funded_buyer(service, 100)
    offer(service)
    for _ in range(4):
        with pytest.raises(PinWrong):
            service.pay(buyer(), order_id="o1", pin="000000", idem_key="k")
    with pytest.raises(PinLocked):
        service.pay(buyer(), order_id="o1", pin="000000", idem_key="k")
    with pytest.raises(PinLocked) as err:
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    assert err.value.code == 6041
    clock.advance(3 * HOUR)
    assert service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k").state.value == "HELD"


def test_correct_pin_resets_failures(service: PaymentService) -> None:
    """Successes reset the count, so 4 wrong + 1 right + 4 wrong does not lock."""
    funded_buyer(service, 1000)
    offer(service, "o1")
    offer(service, "o2")
    for order_id in ("o1", "o2"):
        for _ in range(4):
            with pytest.raises(PinWrong):
                service.pay(buyer(), order_id=order_id, pin="000000", idem_key=order_id)
        service.pay(buyer(), order_id=order_id, pin=PIN, idem_key=order_id)


def test_change_pin_needs_current(service: PaymentService) -> None:
    """Changing the PIN requires the current PIN; the old one stops working."""
    funded_buyer(service, 100)
    with pytest.raises(PinWrong):
        service.set_pin(buyer(), "246802")
    with pytest.raises(PinWrong):
        service.set_pin(buyer(), "246802", current_pin="000000")
    service.set_pin(buyer(), "246802", current_pin=PIN)
    offer(service)
    with pytest.raises(PinWrong):
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    service.pay(buyer(), order_id="o1", pin="246802", idem_key="k")


def test_transfer_checks_pin(service: PaymentService) -> None:
    """Transfers need the PIN too."""
    funded_buyer(service, 100)
    with pytest.raises(PinWrong):
        service.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=1,
                         currency="CNY", pin="000000", idem_key="t")
    assert service.balance("user:bob", "CNY") == 100
