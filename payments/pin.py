"""Payment PINs: six digits, stored as an HMAC-SHA256 keyed by a server-side pepper.

Why not a slow hash. A 6-digit PIN has a million values. Whoever holds a stored hash
and whatever else the hash needs tries them all: argon2id at the hub's old cost
(~20 ms) makes that about 5 CPU-hours per PIN, which protects nobody, while every
payment paid those 20 ms of CPU. What protects a PIN is (1) the attempt limit, online
(``pin_max_attempts`` wrong PINs lock payments), and (2) a secret that is *not* in the
database: the pepper (``PaymentSettings.pin_pepper``, ``PIN_PEPPER`` in the hub). Without
the pepper (a long random secret) a stolen ``pins`` table cannot be tested offline at any speed; with it,
no hash cost would help. So the hash is an HMAC-SHA256 keyed by the pepper over a random
per-record salt, the principal and the PIN: microseconds to verify (compared in constant
time), different for two users with the same PIN. A cheap argon2 with the pepper would
add nothing an HMAC lacks and cost more.

Stored record: ``scheme`` (``hmac-sha256``; ``argon2id`` for hashes made before),
``key_id`` (a fingerprint of the pepper that keyed it, never the pepper) and ``hash``
(``<salt hex>$<mac hex>``). Rotation: set the new pepper as ``pin_pepper`` and the old
one as ``pin_pepper_previous``; a hash under the previous pepper still verifies and, like
an argon2id hash, is re-keyed with the current pepper in the transaction that commits its
next successful use (without changing the PIN's ``version``).

Verification still runs outside the ledger's write transaction (an argon2id hash may be
met until every PIN was used once); the command re-checks inside the transaction that the
verified PIN is still the current one and not locked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from payments.clock import Clock
from payments.errors import PinFormat, PinLocked, PinNotSet, PinUnavailable, PinWrong
from payments.repository import PinRecord, Repo
from payments.settings import PaymentSettings
from payments.store import Sql, Store

log = logging.getLogger(__name__)

HMAC_SCHEME = "hmac-sha256"
ARGON2_SCHEME = "argon2id"


def check_pin_format(pin: object) -> str:
    if not isinstance(pin, str) or len(pin) != 6 or not pin.isascii() or not pin.isdigit():
        raise PinFormat()
    return pin


def key_id(pepper: bytes) -> str:
    """A public name of a pepper: which one keyed a hash, without revealing it."""
    return hmac.new(pepper, b"tradechat pin pepper id", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class StoredPin:
    """What the ``pins`` row holds for one PIN."""

    hash: str
    scheme: str
    key_id: str | None


@dataclass(frozen=True)
class Verified:
    """A PIN that matched: the record's ``version`` (re-checked inside the command's
    transaction) and, for an old scheme or pepper, the hash to store instead."""

    version: int
    rekey: StoredPin | None = None


class PinHasher:
    """Keyed hashes under the current pepper; verifies the previous pepper and argon2id."""

    def __init__(self, settings: PaymentSettings) -> None:
        current = settings.pin_pepper.get_secret_value().encode()
        self._current = (key_id(current), current)
        self._keys = {self._current[0]: current}
        if settings.pin_pepper_previous is not None:
            previous = settings.pin_pepper_previous.get_secret_value().encode()
            self._keys.setdefault(key_id(previous), previous)

    @property
    def current_key_id(self) -> str:
        return self._current[0]

    @cached_property
    def _argon2(self) -> PasswordHasher:
        return PasswordHasher()  # verify() reads the cost from each hash

    @staticmethod
    def _mac(pepper: bytes, salt: bytes, principal: str, pin: str) -> bytes:
        message = b"\x1f".join((b"pin", salt, principal.encode(), pin.encode()))
        return hmac.new(pepper, message, hashlib.sha256).digest()

    def hash(self, principal: str, pin: str) -> StoredPin:
        check_pin_format(pin)
        salt = secrets.token_bytes(16)
        ident, pepper = self._current
        mac = self._mac(pepper, salt, principal, pin)
        return StoredPin(f"{salt.hex()}${mac.hex()}", HMAC_SCHEME, ident)

    def verify(self, principal: str, record: PinRecord, pin: str) -> tuple[bool, bool]:
        """(matches, should be re-keyed). An unknown pepper raises :class:`PinUnavailable`:
        the operator dropped a pepper still in use, and the buyer is not to blame."""
        if record.scheme == ARGON2_SCHEME:
            try:
                return self._argon2.verify(record.hash, pin), True
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False, False
        pepper = self._keys.get(record.key_id or "") if record.scheme == HMAC_SCHEME else None
        if pepper is None:
            log.error("PIN of %s is hashed with %s under key %s, which is not configured",
                      principal, record.scheme, record.key_id)
            raise PinUnavailable()
        salt_hex, _, mac_hex = record.hash.partition("$")
        try:
            salt, mac = bytes.fromhex(salt_hex), bytes.fromhex(mac_hex)
        except ValueError:
            return False, False
        ok = hmac.compare_digest(self._mac(pepper, salt, principal, pin), mac)
        return ok, ok and record.key_id != self.current_key_id


class PinGuard:
    """PIN checks for commands: verification outside, a cheap re-check (and re-key) inside."""

    def __init__(self, store: Store, clock: Clock, settings: PaymentSettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.hasher = PinHasher(settings)

    def verify(self, user_id: str, pin: str) -> Verified:
        """Check the PIN outside any write transaction; count and lock on failure."""
        check_pin_format(pin)
        record = self.store.read(lambda sql: Repo(sql).get_pin(user_id))
        if record is None:
            raise PinNotSet()
        now = self.clock()
        if record.locked_until is not None and now < record.locked_until:
            raise PinLocked(locked_until=record.locked_until)
        ok, stale = self.hasher.verify(user_id, record, pin)
        if ok:
            return Verified(record.version, self.hasher.hash(user_id, pin) if stale else None)
        after = self.store.write(lambda sql: Repo(sql).pin_failed(
            user_id, now, self.settings.pin_max_attempts, self.settings.pin_lock_ms))
        if after.locked_until is not None and now < after.locked_until:
            raise PinLocked(locked_until=after.locked_until)
        left = self.settings.pin_max_attempts - after.failures
        raise PinWrong(f"The payment PIN is wrong; {left} attempt(s) left.", attempts_left=left)

    def recheck(self, repo: Repo, user_id: str, verified: Verified, now: int) -> None:
        """Inside the money transaction: the verified PIN is still current and unlocked;
        an old hash is replaced by the keyed one in this same transaction."""
        record = repo.get_pin(user_id, lock=True)
        if record is None or record.version != verified.version:
            raise PinWrong("The payment PIN was changed meanwhile; please try again.")
        if record.locked_until is not None and now < record.locked_until:
            raise PinLocked(locked_until=record.locked_until)
        repo.pin_succeeded(user_id)
        new = verified.rekey
        if new is not None and new.key_id is not None and (
                record.scheme, record.key_id) != (new.scheme, new.key_id):
            repo.rekey_pin(user_id, record.version, new.hash, new.scheme, new.key_id)

    def check_unlocked(self, repo: Repo, user_id: str, now: int) -> None:
        """A payment without PIN is refused while the PIN is locked (someone is guessing)."""
        record = repo.get_pin(user_id)
        if record is not None and record.locked_until is not None and now < record.locked_until:
            raise PinLocked(locked_until=record.locked_until)

    def set(self, user_id: str, pin: str, current_pin: str | None) -> None:
        """Set the PIN; changing an existing one requires (and verifies) the current one."""
        check_pin_format(pin)
        existing = self.store.read(lambda sql: Repo(sql).get_pin(user_id))
        version = None
        if existing is not None:
            if current_pin is None:
                raise PinWrong("Enter your current payment PIN to change it.")
            version = self.verify(user_id, current_pin).version
        stored = self.hasher.hash(user_id, pin)

        def txn(sql: Sql) -> None:
            repo = Repo(sql)
            record = repo.get_pin(user_id, lock=True)
            if (record.version if record else None) != version:
                raise PinWrong("The payment PIN was changed meanwhile; please try again.")
            repo.put_pin(user_id, stored.hash, self.clock(), stored.scheme, stored.key_id)

        self.store.write(txn)
