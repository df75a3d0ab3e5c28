"""Payment PINs: keyed hashes (pepper rotation, argon2id migration), attempt counting, locking."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from argon2 import PasswordHasher
from paysupport import PG_URL, PIN, FakeClock, buyer, funded_buyer, offer, settings

from payments import PaymentService, check_invariants
from payments.errors import PinFormat, PinLocked, PinNotSet, PinUnavailable, PinWrong
from payments.pin import HMAC_SCHEME, key_id
from payments.postgres_store import PostgresStore
from payments.repository import Repo
from payments.settings import DEV_PIN_PEPPER, HOUR
from payments.sqlite_store import SqliteStore
from payments.store import Store

NEW_PEPPER = "rotated-pepper-0123456789abcdef"


def stored(service: PaymentService) -> tuple[str, str, str | None, int]:
    rows = service.store.read(lambda sql: sql.rows("SELECT hash, scheme, key_id, version FROM pins"))
    assert len(rows) == 1
    return rows[0][0], rows[0][1], rows[0][2], rows[0][3]


def test_pin_is_stored_as_a_keyed_hash(service: PaymentService) -> None:
    """An HMAC-SHA256 under the pepper, salted per record; the record names the pepper by a
    fingerprint and never holds the pepper or the PIN."""
    service.set_pin(buyer(), PIN)
    pin_hash, scheme, kid, _ = stored(service)
    assert scheme == HMAC_SCHEME and kid == key_id(DEV_PIN_PEPPER.encode())
    assert PIN not in pin_hash and DEV_PIN_PEPPER not in pin_hash and DEV_PIN_PEPPER not in (kid or "")
    service.set_pin(buyer("carol"), PIN)
    hashes = service.store.read(lambda sql: sql.rows("SELECT hash FROM pins"))
    assert hashes[0][0] != hashes[1][0]  # same PIN, different users: different hashes


def test_keyed_verification_needs_no_slow_hash(service: PaymentService) -> None:
    """The point of the change: a keyed PIN is checked by one HMAC, argon2 is never set up
    (the rate is measured by bench/payments_rate.py, not asserted here)."""
    funded_buyer(service, 100)
    offer(service)
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k1")
    record = service.store.read(lambda sql: Repo(sql).get_pin(buyer().principal))
    assert record is not None
    assert service.pins.hasher.verify(buyer().principal, record, PIN) == (True, False)
    assert service.pins.hasher.verify(buyer().principal, record, "000000") == (False, False)
    assert "_argon2" not in vars(service.pins.hasher)


def test_a_stolen_table_without_the_pepper_verifies_nothing(store: Store, clock: FakeClock) -> None:
    """The same row under another pepper (an attacker's guess) does not verify the PIN."""
    first = PaymentService(store, clock=clock, settings=settings())
    funded_buyer(first, 100)
    other = PaymentService(store, clock=clock, settings=settings(
        pin_pepper="attacker-guess-0123456789", pin_pepper_previous="another-guess-0123456789"))
    offer(first)
    with pytest.raises(PinUnavailable) as err:
        other.pay(buyer(), order_id="o1", pin=PIN, idem_key="k")
    assert err.value.code == 6045
    # Not the buyer's fault: no failure was counted.
    assert store.read(lambda sql: sql.rows("SELECT failures FROM pins"))[0][0] == 0
    assert first.pay(buyer(), order_id="o1", pin=PIN, idem_key="k").state.value == "HELD"
    check_invariants(store)


def test_pepper_rotation_rekeys_on_next_use(store: Store, clock: FakeClock) -> None:
    """After rotation the previous pepper still verifies; the successful payment re-keys the
    hash with the new pepper in its own transaction, and the PIN's version stays."""
    before = PaymentService(store, clock=clock, settings=settings())
    funded_buyer(before, 1000)
    old_hash, _, old_kid, version = stored(before)
    rotated = PaymentService(store, clock=clock, settings=settings(
        pin_pepper=NEW_PEPPER, pin_pepper_previous=DEV_PIN_PEPPER))
    offer(rotated, "o1")
    with pytest.raises(PinWrong):  # a wrong PIN re-keys nothing
        rotated.pay(buyer(), order_id="o1", pin="000000", idem_key="k1")
    assert stored(rotated)[2] == old_kid
    rotated.pay(buyer(), order_id="o1", pin=PIN, idem_key="k1")
    new_hash, scheme, kid, new_version = stored(rotated)
    assert scheme == HMAC_SCHEME and kid == key_id(NEW_PEPPER.encode()) != old_kid
    assert new_hash != old_hash and new_version == version
    # Once re-keyed, the previous pepper can be dropped.
    only_new = PaymentService(store, clock=clock, settings=settings(pin_pepper=NEW_PEPPER))
    offer(only_new, "o2")
    assert only_new.pay(buyer(), order_id="o2", pin=PIN, idem_key="k2").state.value == "HELD"
    check_invariants(store)


def test_argon2_hash_keeps_working_and_migrates_on_use(store: Store, clock: FakeClock) -> None:
    """A PIN stored before keyed hashing (argon2id, scheme backfilled on open) still pays;
    that payment stores the keyed hash instead."""
    service = PaymentService(store, clock=clock, settings=settings())
    service.deposit("user:bob", 1000, "CNY", "fund")
    legacy = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PIN)
    store.write(lambda sql: sql.run(
        "INSERT INTO pins (user_id, hash, failures, locked_until, version, updated_at) "
        "VALUES (?, ?, 0, NULL, 3, 0)", (buyer().principal, legacy)))
    store.write(lambda sql: sql.run("UPDATE pins SET scheme = 'argon2id' WHERE scheme IS NULL"))
    assert stored(service)[1] == "argon2id"
    offer(service, "o1")
    with pytest.raises(PinWrong):
        service.pay(buyer(), order_id="o1", pin="000000", idem_key="k1")
    assert stored(service)[0] == legacy
    service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k1")
    _, scheme, kid, version = stored(service)
    assert scheme == HMAC_SCHEME and kid == key_id(DEV_PIN_PEPPER.encode()) and version == 3
    offer(service, "o2")
    assert service.pay(buyer(), order_id="o2", pin=PIN, idem_key="k2").state.value == "HELD"
    offer(service, "o3")
    with pytest.raises(PinWrong):  # the keyed hash refuses a wrong PIN too
        service.pay(buyer(), order_id="o3", pin="000000", idem_key="k3")
    check_invariants(store)


def test_a_refused_payment_does_not_migrate(store: Store, clock: FakeClock) -> None:
    """The re-key belongs to the transaction that commits the payment: a payment refused
    after the PIN matched (balance too low) leaves the old hash."""
    service = PaymentService(store, clock=clock, settings=settings())
    legacy = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PIN)
    store.write(lambda sql: sql.run(
        "INSERT INTO pins (user_id, hash, failures, locked_until, version, updated_at, scheme) "
        "VALUES (?, ?, 0, NULL, 1, 0, 'argon2id')", (buyer().principal, legacy)))
    offer(service, "o1")
    with pytest.raises(Exception) as err:
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k1")
    assert getattr(err.value, "code", None) == 6010
    assert stored(service)[:2] == (legacy, "argon2id")


def test_pepper_settings_are_secret_and_long() -> None:
    """The pepper never shows in a settings repr and a short one is refused."""
    assert DEV_PIN_PEPPER not in repr(settings())
    with pytest.raises(ValueError):
        settings(pin_pepper="short")


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


def test_a_ledger_from_before_keyed_pins_upgrades_on_open(store: Store, clock: FakeClock) -> None:
    """A ledger without the scheme columns gains them on open, its hashes marked argon2id;
    the next payment verifies the old hash and re-keys it."""
    first = PaymentService(store, clock=clock, settings=settings())
    first.deposit("user:bob", 1000, "CNY", "fund")
    legacy = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PIN)
    drop = ["ALTER TABLE pins DROP COLUMN scheme", "ALTER TABLE pins DROP COLUMN key_id",
            f"INSERT INTO pins (user_id, hash, failures, locked_until, version, updated_at) "
            f"VALUES ('bob', '{legacy}', 0, NULL, 1, 0)"]  # keyed by the bare id, as before accounts
    store.close()
    if isinstance(store, SqliteStore):
        with sqlite3.connect(store.path) as conn:
            for stmt in drop:
                conn.execute(stmt)
        reopened: Store = SqliteStore(store.path)
    else:
        assert isinstance(store, PostgresStore)
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{store.schema}"')
            for stmt in drop:
                conn.execute(stmt)
        reopened = PostgresStore(PG_URL, schema=store.schema, pool_size=2)
    try:
        service = PaymentService(reopened, clock=clock, settings=settings())
        assert stored(service)[:3] == (legacy, "argon2id", None)
        offer(service)
        service.pay(buyer(), order_id="o1", pin=PIN, idem_key="k1")
        assert stored(service)[1:3] == (HMAC_SCHEME, key_id(DEV_PIN_PEPPER.encode()))
        check_invariants(reopened)
    finally:
        reopened.close()
