"""The public API of the payments package is pinned."""

from __future__ import annotations

import inspect

import payments
from payments import PaymentService
from payments.errors import PaymentError


def test_exported_members() -> None:
    """payments exports exactly these names."""
    assert sorted(payments.__all__) == sorted([
        "AccountKind", "Actor", "Change", "FundingReceipt", "Order", "OrderAction",
        "OrderState", "PaymentError", "PaymentEvent", "PaymentService", "PaymentSettings",
        "PinHashing", "SpendLimits", "Statement", "StatementLine", "Store", "Transfer",
        "TransferState", "check_invariants", "open_store", "shop_owner", "user_owner"])


def test_service_methods() -> None:
    """PaymentService offers these public methods."""
    public = {n for n, _ in inspect.getmembers(PaymentService, inspect.isfunction)
              if not n.startswith("_")}
    assert public == {
        "offer", "cancel", "pay", "ship", "extend", "confirm", "request_refund",
        "answer_refund", "dispute", "decide", "get_order", "transfer", "accept_transfer",
        "decline_transfer", "get_transfer", "deposit", "withdraw", "balance", "balances", "statement", "has_pin", "orders_in_conversation",
        "events_after", "set_pin", "run_due", "paid_with", "reconciliation", "disputed_orders",
        "claim_after_sale", "answer_after_sale"}


def test_error_codes_are_stable_and_unique() -> None:
    """Every concrete error has its documented code in 6000-6999, none shared."""
    def leaves(cls: type[PaymentError]) -> list[type[PaymentError]]:
        subs = cls.__subclasses__()
        return [cls, *[c for s in subs for c in leaves(s)]]

    codes = {cls.__name__: cls.code for cls in leaves(PaymentError)
             if cls.__name__ not in ("PaymentError", "PinError")}
    assert codes == {
        "InvalidRequest": 6000, "InvalidAmount": 6001, "UnknownCurrency": 6002,
        "CurrencyMismatch": 6003, "InsufficientBalance": 6010, "ShopFundsShort": 6011, "NotFound": 6020,
        "WrongState": 6021, "OfferChanged": 6023, "AlreadyPaid": 6060, "Forbidden": 6022,
        "IdempotencyConflict": 6030, "PinWrong": 6040, "PinLocked": 6041,
        "PinNotSet": 6042, "PinFormat": 6043, "PinRequired": 6044, "PinUnavailable": 6045,
        "LimitExceeded": 6050,
        "StoreUnavailable": 6090}
    assert all(str(code) in (payments.errors.__doc__ or "") for code in codes.values())
