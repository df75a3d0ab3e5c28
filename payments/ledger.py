"""Accounts and postings of the double-entry ledger.

Account owners follow one convention, so a balance is never ambiguous:

* ``user:<user_id>`` - a person's wallet (kind ``available``);
* ``shop:<shop_id>`` - a shop's proceeds, shared by its agents (kind ``available``);
* ``deposit:<shop_id>`` - the shop's deposit (保证金) the marketplace funds (kind
  ``available``): it pays after-sale refunds the shop's balance cannot;
* ``order:<order_id>`` - one order's escrow (kind ``escrow_hold``): what the buyer paid
  until it is settled. One account per order, as TigerBeetle keeps pending amounts apart,
  so payments to different orders never wait on one pooled row, and an order's escrow is
  its account's balance;
* ``platform`` - money the platform holds for others: ``pending_transfer`` (transfers not
  yet accepted), ``fees`` (its revenue) and, for orders paid before per-order escrow,
  the pooled ``escrow_hold`` they are settled from;
* ``world`` - the outside world (kind ``world``): deposits debit it and withdrawals
  credit it, so it is the only account that may go negative.

A balance is credits minus debits, so the accounts of one currency always sum to zero.
A :class:`Posting` is one journal transaction: legs in one currency whose debits equal
their credits, each with a positive amount and a distinct account.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from payments.errors import InvalidRequest


class AccountKind(StrEnum):
    AVAILABLE = "available"
    ESCROW_HOLD = "escrow_hold"
    PENDING_TRANSFER = "pending_transfer"
    FEES = "fees"
    WORLD = "world"


class TxKind(StrEnum):
    """Why a journal transaction exists; settlement kinds close an order's escrow."""

    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"
    PAYOUT = "payout"
    """A withdrawal's money leaves the payout clearing account for the world."""
    PAYOUT_REVERSAL = "payout_reversal"
    """A failed withdrawal's money goes back to its owner."""
    PAY = "pay"
    RELEASE = "release"
    REFUND = "refund"
    RESOLVE = "resolve"
    AFTER_SALE_REFUND = "after_sale_refund"
    """A refund after the release, paid by the shop's balance and then its deposit."""
    TRANSFER = "transfer"
    TRANSFER_ACCEPT = "transfer_accept"
    TRANSFER_DECLINE = "transfer_decline"
    TRANSFER_EXPIRE = "transfer_expire"


SETTLEMENT_KINDS: Final = frozenset({TxKind.RELEASE, TxKind.REFUND, TxKind.RESOLVE})
TRANSFER_RETURN_KINDS: Final = frozenset(
    {TxKind.TRANSFER_ACCEPT, TxKind.TRANSFER_DECLINE, TxKind.TRANSFER_EXPIRE}
)
#: Journal kinds that count against a user's daily spending limit.
SPENDING_KINDS: Final = (TxKind.PAY, TxKind.TRANSFER)

PLATFORM: Final = "platform"
WORLD: Final = "world"
MAX_ID_LENGTH: Final = 64
ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
"""The one rule for ids (users, shops, orders, conversations), the same as the chat
protocol's ``Id``: an id a websocket client cannot have is refused here too."""


def check_id(value: object, field: str) -> str:
    """Return ``value`` if it is a well-formed id, else refuse."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"The {field} must be 1-{MAX_ID_LENGTH} characters from A-Z a-z 0-9 _ . : @ -.", field=field
        )
    return value


def user_owner(user_id: str) -> str:
    return f"user:{check_id(user_id, 'user id')}"


def shop_owner(shop_id: str) -> str:
    return f"shop:{check_id(shop_id, 'shop id')}"


def deposit_owner(shop_id: str) -> str:
    return f"deposit:{check_id(shop_id, 'shop id')}"


def check_owner(owner: object) -> str:
    """Accept ``user:<id>``, ``shop:<id>`` or ``deposit:<shop id>``: the owners whose money
    can be funded."""
    if isinstance(owner, str):
        prefix, _, rest = owner.partition(":")
        if prefix in ("user", "shop", "deposit") and ID_PATTERN.fullmatch(rest):
            return owner
    raise InvalidRequest(
        f"Owner {owner!r} must look like 'user:<id>', 'shop:<id>' or 'deposit:<shop id>'.", field="owner"
    )


@dataclass(frozen=True, order=True)
class AccountKey:
    owner: str
    kind: AccountKind
    currency: str

    @property
    def may_go_negative(self) -> bool:
        return self.kind is AccountKind.WORLD


def available(owner: str, currency: str) -> AccountKey:
    return AccountKey(owner, AccountKind.AVAILABLE, currency)


ORDER_ESCROW_PREFIX: Final = "order:"


def escrow_hold(currency: str, order_id: str) -> AccountKey:
    """The escrow account of one order."""
    return AccountKey(ORDER_ESCROW_PREFIX + order_id, AccountKind.ESCROW_HOLD, currency)


def pooled_escrow(currency: str) -> AccountKey:
    """The escrow of orders paid before per-order escrow; nothing new is paid into it."""
    return AccountKey(PLATFORM, AccountKind.ESCROW_HOLD, currency)


def pending_transfer(currency: str) -> AccountKey:
    return AccountKey(PLATFORM, AccountKind.PENDING_TRANSFER, currency)


def fees(currency: str) -> AccountKey:
    return AccountKey(PLATFORM, AccountKind.FEES, currency)


def world(currency: str) -> AccountKey:
    return AccountKey(WORLD, AccountKind.WORLD, currency)


@dataclass(frozen=True)
class Leg:
    account: AccountKey
    direction: Literal["D", "C"]
    amount: int


@dataclass(frozen=True)
class Posting:
    """One balanced journal transaction, checked on construction."""

    kind: TxKind
    currency: str
    legs: tuple[Leg, ...]
    ref_kind: str | None = None
    ref_id: str | None = None

    def __post_init__(self) -> None:
        debits = sum(leg.amount for leg in self.legs if leg.direction == "D")
        credits = sum(leg.amount for leg in self.legs if leg.direction == "C")
        accounts = [leg.account for leg in self.legs]
        if (
            not self.legs
            or debits != credits
            or any(type(leg.amount) is not int or leg.amount <= 0 for leg in self.legs)
            or any(a.currency != self.currency for a in accounts)
            or len(set(accounts)) != len(accounts)
        ):
            raise ValueError(f"unbalanced or malformed posting: {self!r}")

    @property
    def accounts(self) -> list[AccountKey]:
        """The accounts touched, in the fixed order in which they are locked."""
        return sorted(leg.account for leg in self.legs)


def move(
    kind: TxKind,
    source: AccountKey,
    target: AccountKey,
    amount: int,
    ref: tuple[str, str] | None = None,
) -> Posting:
    """A two-leg posting: debit ``source``, credit ``target``."""
    return Posting(
        kind,
        source.currency,
        (Leg(source, "D", amount), Leg(target, "C", amount)),
        *(ref or (None, None)),
    )


def split(
    kind: TxKind,
    source: AccountKey,
    targets: Iterable[tuple[AccountKey, int]],
    ref: tuple[str, str],
) -> Posting:
    """Debit ``source`` by the total and credit each non-zero target share."""
    shares = [(account, amount) for account, amount in targets if amount > 0]
    total = sum(amount for _, amount in shares)
    legs = (Leg(source, "D", total), *(Leg(a, "C", amount) for a, amount in shares))
    return Posting(kind, source.currency, legs, *ref)
