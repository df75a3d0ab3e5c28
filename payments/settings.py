"""Every period, limit and cost of the payments package, in one validated model.

Periods are milliseconds, like the injected clock. Defaults follow the field numbers:
auto-confirm 10 days after shipping (the buyer may extend once by 5), unaccepted
transfers returned after 24 hours, 5 wrong PINs lock payments for 3 hours.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from payments.money import CURRENCIES, MAX_AMOUNT

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

Period = Annotated[int, Field(gt=0, le=3650 * DAY, strict=True)]


class SpendLimits(BaseModel):
    """What one user may pay and transfer in one currency (minor units)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_transaction: Annotated[int, Field(gt=0, le=MAX_AMOUNT, strict=True)]
    daily: Annotated[int, Field(gt=0, strict=True)]


class PinHashing(BaseModel):
    """argon2id cost of the PIN hashes stored before keyed hashing (:mod:`payments.pin`).

    No new hash uses it: an old hash carries its own parameters and is re-keyed on its
    next successful use. Kept so existing configurations still load."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time_cost: Annotated[int, Field(ge=1)] = 3
    memory_cost_kib: Annotated[int, Field(ge=8)] = 65536
    parallelism: Annotated[int, Field(ge=1)] = 4


DEV_PIN_PEPPER = "dev-pin-pepper-change-me-0123456789"
"""The development pepper: fine for tests and a laptop, refused by the hub in production."""

Pepper = Annotated[SecretStr, Field(min_length=16)]


def default_quick_pay_caps() -> dict[str, SpendLimits]:
    """Platform maximums of PIN-less payments: 1,000 per payment and 2,000 per day in major
    units (Alipay lets buyers choose from 200 to 2,000 yuan per payment)."""
    return {
        code: SpendLimits(per_transaction=1_000 * 10**exp, daily=2_000 * 10**exp)
        for code, exp in CURRENCIES.items()
    }


def default_limits() -> dict[str, SpendLimits]:
    """50,000 per payment and 200,000 per day in major units of every known currency."""
    return {
        code: SpendLimits(per_transaction=50_000 * 10**exp, daily=200_000 * 10**exp)
        for code, exp in CURRENCIES.items()
    }


class PaymentSettings(BaseModel):
    """Configuration of :class:`~payments.service.PaymentService`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auto_confirm_period_ms: Period = 10 * DAY
    extension_period_ms: Period = 5 * DAY
    #: When a paused timer resumes (refund refused), the buyer gets at least this long.
    resume_min_period_ms: Annotated[int, Field(ge=0, le=3650 * DAY, strict=True)] = DAY
    transfer_expiry_ms: Period = DAY
    #: An offer not paid in this time is cancelled (Taobao closes unpaid orders after 72 h).
    offer_expiry_ms: Period = 3 * DAY
    #: After payment the shop ships within this; later, a buyer's refund request is
    #: granted at once (Taobao's default delivery promise is 48 h).
    ship_period_ms: Period = 2 * DAY
    #: A refund request the shop does not answer in this time is granted.
    refund_answer_period_ms: Period = 2 * DAY
    #: After a release, how long each side may rate the other (and amend bad to good).
    rating_window_ms: Period = 15 * DAY
    #: After a release, how long the buyer may claim an after-sale refund (Taobao: 15 days).
    after_sale_period_ms: Period = 15 * DAY
    #: An after-sale claim the shop does not answer in this time is granted.
    after_sale_answer_period_ms: Period = 2 * DAY
    #: After the shop refuses an after-sale claim, how long the buyer may take it to the arbiter.
    after_sale_dispute_period_ms: Period = 7 * DAY
    #: The arbiter's promised decision time for a dispute, shown to both sides.
    arbiter_period_ms: Period = 7 * DAY
    #: Platform fee on money released to a seller, in basis points (0 = no fee).
    fee_bps: Annotated[int, Field(ge=0, le=10_000, strict=True)] = 0
    pin_max_attempts: Annotated[int, Field(ge=1, le=100, strict=True)] = 5
    pin_lock_ms: Period = 3 * HOUR
    pin_hashing: PinHashing = PinHashing()
    #: Server-side secret that keys PIN hashes (:mod:`payments.pin`); never stored in the
    #: ledger. The previous one is still accepted, and its hashes are re-keyed on use.
    pin_pepper: Pepper = SecretStr(DEV_PIN_PEPPER)
    pin_pepper_previous: Pepper | None = None
    #: Platform maximums of small payments without PIN per currency (a buyer opts in with
    #: lower or equal caps); a currency without an entry offers no PIN-less payments.
    quick_pay_caps: dict[str, SpendLimits] = Field(default_factory=default_quick_pay_caps)
    #: Spending limits per currency; a currency without an entry has no limit.
    limits: dict[str, SpendLimits] = Field(default_factory=default_limits)
    #: Length of the rolling window of the daily limit.
    daily_window_ms: Period = DAY

    @field_validator("limits", "quick_pay_caps")
    @classmethod
    def _known_currencies(cls, value: dict[str, SpendLimits]) -> dict[str, SpendLimits]:
        unknown = sorted(set(value) - set(CURRENCIES))
        if unknown:
            raise ValueError(f"limits for unknown currencies: {unknown}")
        return value
