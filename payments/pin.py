"""Payment PINs: six digits, stored only as a salted argon2id hash.

Hashing is deliberately slow, so verification runs *outside* the ledger's write
transaction (never while holding SQLite's write lock); the service re-checks inside the
transaction that the PIN it verified is still the current one and is not locked.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from payments.clock import Clock
from payments.errors import PinFormat, PinLocked, PinNotSet, PinWrong
from payments.repository import Repo
from payments.settings import PaymentSettings, PinHashing
from payments.store import Sql, Store


def check_pin_format(pin: object) -> str:
    if not isinstance(pin, str) or len(pin) != 6 or not pin.isascii() or not pin.isdigit():
        raise PinFormat()
    return pin


class PinHasher:
    def __init__(self, cost: PinHashing) -> None:
        self._hasher = PasswordHasher(
            time_cost=cost.time_cost,
            memory_cost=cost.memory_cost_kib,
            parallelism=cost.parallelism,
        )

    def hash(self, pin: str) -> str:
        return self._hasher.hash(check_pin_format(pin))

    def verify(self, pin_hash: str, pin: str) -> bool:
        try:
            return self._hasher.verify(pin_hash, pin)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


class PinGuard:
    """PIN checks for commands: slow verification outside, a cheap re-check inside."""

    def __init__(self, store: Store, clock: Clock, settings: PaymentSettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self._hasher = PinHasher(settings.pin_hashing)

    def verify(self, user_id: str, pin: str) -> int:
        """Check the PIN outside any write transaction; count and lock on failure."""
        check_pin_format(pin)
        record = self.store.read(lambda sql: Repo(sql).get_pin(user_id))
        if record is None:
            raise PinNotSet()
        now = self.clock()
        if record.locked_until is not None and now < record.locked_until:
            raise PinLocked(locked_until=record.locked_until)
        if self._hasher.verify(record.hash, pin):
            return record.version
        after = self.store.write(lambda sql: Repo(sql).pin_failed(
            user_id, now, self.settings.pin_max_attempts, self.settings.pin_lock_ms))
        if after.locked_until is not None and now < after.locked_until:
            raise PinLocked(locked_until=after.locked_until)
        left = self.settings.pin_max_attempts - after.failures
        raise PinWrong(f"The payment PIN is wrong; {left} attempt(s) left.", attempts_left=left)

    def recheck(self, repo: Repo, user_id: str, version: int, now: int) -> None:
        """Inside the money transaction: the verified PIN is still current and unlocked."""
        record = repo.get_pin(user_id, lock=True)
        if record is None or record.version != version:
            raise PinWrong("The payment PIN was changed meanwhile; please try again.")
        if record.locked_until is not None and now < record.locked_until:
            raise PinLocked(locked_until=record.locked_until)
        repo.pin_succeeded(user_id)

    def set(self, user_id: str, pin: str, current_pin: str | None) -> None:
        """Set the PIN; changing an existing one requires (and verifies) the current one."""
        check_pin_format(pin)
        existing = self.store.read(lambda sql: Repo(sql).get_pin(user_id))
        version = None
        if existing is not None:
            if current_pin is None:
                raise PinWrong("Enter your current payment PIN to change it.")
            version = self.verify(user_id, current_pin)
        pin_hash = self._hasher.hash(pin)

        def txn(sql: Sql) -> None:
            repo = Repo(sql)
            record = repo.get_pin(user_id, lock=True)
            if (record.version if record else None) != version:
                raise PinWrong("The payment PIN was changed meanwhile; please try again.")
            repo.put_pin(user_id, pin_hash, self.clock())

        self.store.write(txn)
