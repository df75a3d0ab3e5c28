"""In-chat escrow payments: a double-entry ledger with idempotent, timed commands.

Start with :class:`PaymentService` over a store from :func:`open_store`::

    service = PaymentService(open_store("sqlite:///data/payments.db"))

Amounts are integers in a currency's minor unit; every refusal is a
:class:`~payments.errors.PaymentError` with a stable code; every state change writes an
outbox event (:meth:`PaymentService.events_after`) in the same transaction.
"""

from payments.errors import PaymentError
from payments.escrow import OrderAction, OrderState
from payments.invariants import check_invariants
from payments.ledger import AccountKind, shop_owner, user_owner
from payments.models import (
    Actor,
    Change,
    FundingReceipt,
    Order,
    PaymentEvent,
    Statement,
    StatementLine,
    Transfer,
)
from payments.service import PaymentService
from payments.settings import PaymentSettings, PinHashing, SpendLimits
from payments.store import Store, open_store
from payments.transfers import TransferState

__all__ = [
    "AccountKind",
    "Actor",
    "Change",
    "FundingReceipt",
    "Order",
    "OrderAction",
    "OrderState",
    "PaymentError",
    "PaymentEvent",
    "PaymentService",
    "PaymentSettings",
    "PinHashing",
    "SpendLimits",
    "Statement",
    "StatementLine",
    "Store",
    "Transfer",
    "TransferState",
    "check_invariants",
    "open_store",
    "shop_owner",
    "user_owner",
]
