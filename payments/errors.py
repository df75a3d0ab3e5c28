"""The payment exception tree.

Every refusal is a :class:`PaymentError` with a stable numeric ``code`` in 6000-6999 (the
chat hub forwards it to clients as is, so codes never change meaning) and a ``message``
a buyer can read. ``details`` carries machine-readable context, e.g. the current state
of an order for the loser of a race::

    PaymentError
    ├── InvalidRequest          6000  malformed argument (ids, quantity, self-transfer)
    │   ├── InvalidAmount       6001  not a positive int within the maximum
    │   ├── UnknownCurrency     6002  not in the ISO 4217 table
    │   └── CurrencyMismatch    6003  two currencies in one operation
    ├── InsufficientBalance     6010  available balance too low
    │   └── ShopFundsShort      6011  the shop's balance and deposit cannot pay a decided after-sale refund
    ├── NotFound                6020  no such order or transfer
    ├── WrongState              6021  not allowed in the entity's current state
    │   ├── OfferChanged        6023  the offer was re-priced after the buyer saw it
    │   └── AlreadyPaid         6060  the order or transfer was already paid
    ├── Forbidden               6022  this actor may not do this
    ├── IdempotencyConflict     6030  key reused with different parameters
    ├── PinError                      payment PIN problems
    │   ├── PinWrong            6040
    │   ├── PinLocked           6041
    │   ├── PinNotSet           6042
    │   ├── PinFormat           6043
    │   ├── PinRequired         6044  no PIN sent and quick pay does not cover the payment
    │   └── PinUnavailable      6045  the PIN's key is not configured (not counted as wrong)
    ├── LimitExceeded           6050  per-transaction or daily limit
    └── StoreUnavailable        6090  the store could not commit; safe to retry the same key

A refused command moves no money and stores nothing under its idempotency key, so the
same key may be retried once the cause is fixed.
"""

from __future__ import annotations

from typing import Any, ClassVar


class PaymentError(Exception):
    """Base of every refusal; ``code`` is stable, ``message`` is for people."""

    code: ClassVar[int] = 6999
    default_message: ClassVar[str] = "The payment could not be completed."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """Wire form: ``{"code": ..., "message": ..., **details}``."""
        return {"code": self.code, "message": self.message, **self.details}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code}, message={self.message!r})"


class InvalidRequest(PaymentError):
    code = 6000
    default_message = "The request is not valid."


class InvalidAmount(InvalidRequest):
    code = 6001
    default_message = "The amount is not valid."


class UnknownCurrency(InvalidRequest):
    code = 6002
    default_message = "This currency is not supported."


class CurrencyMismatch(InvalidRequest):
    code = 6003
    default_message = "The currencies do not match."


class InsufficientBalance(PaymentError):
    code = 6010
    default_message = "Your balance is not enough for this payment."


class ShopFundsShort(InsufficientBalance):
    """An after-sale refund the arbiter decided is more than the shop's balance and deposit
    hold together (``details["covered"]``): decide less, or the marketplace funds the deposit."""

    code = 6011
    default_message = "The shop's balance and deposit do not cover this refund."


class NotFound(PaymentError):
    code = 6020
    default_message = "No such order or transfer."


class WrongState(PaymentError):
    """The entity is not in a state that allows the action; ``details["state"]`` says which."""

    code = 6021
    default_message = "This can no longer be done."


class OfferChanged(WrongState):
    code = 6023
    default_message = "The seller changed the offer; please check the new price."


class AlreadyPaid(WrongState):
    code = 6060
    default_message = "This has already been paid."


class Forbidden(PaymentError):
    code = 6022
    default_message = "You are not allowed to do this."


class IdempotencyConflict(PaymentError):
    code = 6030
    default_message = "This request key was already used for a different request."


class PinError(PaymentError):
    """Base of payment-PIN refusals."""


class PinWrong(PinError):
    code = 6040
    default_message = "The payment PIN is wrong."


class PinLocked(PinError):
    code = 6041
    default_message = "Too many wrong PIN attempts; payments are locked for a while."


class PinNotSet(PinError):
    code = 6042
    default_message = "Please set a payment PIN first."


class PinFormat(PinError):
    code = 6043
    default_message = "The payment PIN must be 6 digits."


class PinRequired(PinError):
    """``pay`` without PIN that small-amount quick pay does not cover; ``details["reason"]``
    is ``off``, ``per_payment`` or ``daily`` (then ``remaining``). Ask for the PIN."""

    code = 6044
    default_message = "Please enter your payment PIN for this payment."


class PinUnavailable(PinError):
    code = 6045
    default_message = "Payment PINs cannot be checked right now; please try again later."


class LimitExceeded(PaymentError):
    code = 6050
    default_message = "This exceeds your payment limit."


class StoreUnavailable(PaymentError):
    code = 6090
    default_message = "Payments are busy right now; please try again."
