"""Amounts and currencies.

Money is an integer count of a currency's minor unit (fen, cents, yen), tagged with an
ISO 4217 code. Floats round, ``Decimal`` invites fractional minor units and ``bool`` is an
``int`` subclass by accident, so :func:`check_amount` accepts plain ``int`` only. Every
amount is checked at the boundary, before any store is touched.
"""

from __future__ import annotations

from typing import Final

from payments.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency

#: ISO 4217 code -> number of decimal places of the minor unit.
CURRENCIES: Final[dict[str, int]] = {
    "AED": 2,
    "AUD": 2,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "IDR": 2,
    "INR": 2,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MOP": 2,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "PHP": 2,
    "PLN": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TRY": 2,
    "TWD": 2,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
}

#: Largest amount accepted in one operation, in minor units. Far below 2**63 so that
#: sums of many operations still fit a 64-bit column.
MAX_AMOUNT: Final = 10**13


def check_currency(currency: object) -> str:
    """Return ``currency`` if it is a known ISO 4217 code, else raise ``UnknownCurrency``."""
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise UnknownCurrency(f"Currency {currency!r} is not supported.")
    return currency


def check_amount(amount: object, *, field: str = "amount", maximum: int = MAX_AMOUNT) -> int:
    """Return ``amount`` if it is a plain int in ``1..maximum``, else raise ``InvalidAmount``."""
    if type(amount) is not int:
        raise InvalidAmount(
            f"The {field} must be a whole number of the currency's smallest unit, "
            f"not {type(amount).__name__}."
        )
    if amount <= 0:
        raise InvalidAmount(f"The {field} must be greater than zero.")
    if amount > maximum:
        raise InvalidAmount(f"The {field} is larger than the allowed maximum of {maximum}.")
    return amount


def check_same_currency(expected: str, got: str) -> None:
    """Refuse to mix currencies: there is no conversion anywhere in this package."""
    if expected != got:
        raise CurrencyMismatch(f"This is priced in {expected}; {got} cannot be used.")


def format_amount(amount: int, currency: str) -> str:
    """Render minor units for people, e.g. ``12345, "CNY"`` -> ``"123.45 CNY"``."""
    exponent = CURRENCIES[currency]
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**exponent)
    if exponent == 0:
        return f"{sign}{whole} {currency}"
    return f"{sign}{whole}.{frac:0{exponent}d} {currency}"
