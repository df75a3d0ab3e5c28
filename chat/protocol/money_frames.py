"""The money commands of protocol v1 (client → server), registered in :mod:`.frames`' unions.

Every money command carries ``key``: the client's idempotency key, scoped to the user in
their role and kept as long as the ledger. Resending the same command with the same key
(after a dropped connection, say) returns the first answer and moves money once; the same
key with other parameters is refused (6030).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .fields import Amount, Id, Key, Pin, Reason, RequestId
from .fields import Frame as _Frame


class Offer(_Frame):
    """Shop agent: offer the conversation's listing at a (bargained) price, or re-price an open offer."""

    type: Literal["offer"]
    id: RequestId | None = None
    conv: Id
    order: Id | None = None
    """Omit to make a new offer; name an offer still open to change its price."""
    price: Annotated[int, Field(ge=1, le=10**13)]
    """Unit price in minor units of the listing's currency."""
    quantity: Annotated[int, Field(ge=1, le=9999)] = 1
    key: Key


class Pay(_Frame):
    """Buyer: pay an offer (or, without ``order``, the listing price) into escrow."""

    type: Literal["pay"]
    id: RequestId | None = None
    conv: Id
    order: Id | None = None
    amount: Amount | None = None
    """The total the buyer was shown; if the shop re-priced since, the payment is refused (6023)."""
    pin: Pin | None = None
    """Omit only for a payment quick pay covers (``set_quick_pay``); otherwise 6044."""
    key: Key


class Ship(_Frame):
    """Shop agent: mark a paid order shipped; starts the auto-confirm timer."""

    type: Literal["ship"]
    id: RequestId | None = None
    conv: Id
    order: Id
    tracking: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    key: Key


class OrderAction(_Frame):
    """Buyer: ``confirm`` receipt (releases the money) or ``extend`` the auto-confirm timer
    once; buyer or agent: ``cancel`` an offer nobody paid."""

    type: Literal["confirm", "extend", "cancel"]
    id: RequestId | None = None
    conv: Id
    order: Id
    key: Key


class RequestRefund(_Frame):
    """Buyer: ask for all or part of the held money back; pauses the timer."""

    type: Literal["refund"]
    id: RequestId | None = None
    conv: Id
    order: Id
    amount: Amount
    reason: Reason
    key: Key


class AnswerRefund(_Frame):
    """Shop agent: accept (money goes back) or refuse (the buyer may dispute) a refund request."""

    type: Literal["refund_answer"]
    id: RequestId | None = None
    conv: Id
    order: Id
    accept: bool
    key: Key


class ClaimAfterSale(_Frame):
    """Buyer: within the after-sale period of a released order, claim up to what was paid
    back (售后); once per order."""

    type: Literal["after_sale"]
    id: RequestId | None = None
    conv: Id
    order: Id
    amount: Amount
    reason: Reason
    key: Key


class AnswerAfterSale(_Frame):
    """Shop agent: pay an after-sale claim (from the shop's balance, then its deposit) or
    refuse it (the buyer may dispute)."""

    type: Literal["after_sale_answer"]
    id: RequestId | None = None
    conv: Id
    order: Id
    accept: bool
    key: Key


class Dispute(_Frame):
    """Buyer or shop agent: ask the platform's arbiter to decide a refused refund (the buyer
    also a refused after-sale claim)."""

    type: Literal["dispute"]
    id: RequestId | None = None
    conv: Id
    order: Id
    reason: Reason
    key: Key


class Decide(_Frame):
    """Arbiter: settle a dispute by releasing, refunding, or splitting the held money (for an
    after-sale dispute: keeping the money with the shop, paying the claim, or part of it)."""

    type: Literal["decide"]
    id: RequestId | None = None
    conv: Id
    order: Id
    outcome: Literal["release", "refund", "split"]
    buyer_amount: Amount | None = None
    """With ``split``: what the buyer gets back; the rest goes to the shop."""
    key: Key


class SendTransfer(_Frame):
    """Send money to the other side of the conversation; it waits for them to accept."""

    type: Literal["transfer"]
    id: RequestId | None = None
    conv: Id
    amount: Amount
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    pin: Pin
    key: Key


class AnswerTransfer(_Frame):
    """Recipient: accept (credited) or decline (returned) a transfer."""

    type: Literal["transfer_answer"]
    id: RequestId | None = None
    conv: Id
    transfer: Id
    accept: bool
    key: Key


class Rate(_Frame):
    """Buyer or agent: rate the other side of a released order of this conversation once
    (a bad or neutral rating may be changed to good once), within the rating window."""

    type: Literal["rate"]
    id: RequestId | None = None
    conv: Id
    order: Id
    score: Literal["good", "neutral", "bad"]
    comment: Annotated[str, StringConstraints(max_length=500)] | None = None
    item: Annotated[int, Field(ge=1, le=5)] | None = None
    """Buyer only, like ``service`` and ``shipping``: 1 to 5."""
    service: Annotated[int, Field(ge=1, le=5)] | None = None
    shipping: Annotated[int, Field(ge=1, le=5)] | None = None


class SetPin(_Frame):
    """Set (or, with ``current``, change) the 6-digit payment PIN."""

    type: Literal["set_pin"]
    id: RequestId | None = None
    pin: Pin
    current: Pin | None = None


class SetQuickPay(_Frame):
    """Buyer: pay small amounts without PIN (on, with caps and the current PIN) or not (off)."""

    type: Literal["set_quick_pay"]
    id: RequestId | None = None
    enabled: bool
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    """Required to switch on; to switch off, omit for every currency."""
    per_payment: Amount | None = None
    """Most one payment without PIN may be, minor units (switching on)."""
    daily: Amount | None = None
    """Most all payments without PIN may add up to in the rolling day, minor units (switching on)."""
    pin: Pin | None = None
    """The current payment PIN (switching on)."""


class Wallet(_Frame):
    """Your balances (and, for agents, the shop's)."""

    type: Literal["wallet"]
    id: RequestId | None = None
