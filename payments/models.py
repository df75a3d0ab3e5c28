"""What commands take and return: the actor and frozen views of orders and transfers.

Views are pydantic models so they serialise losslessly to JSON: the same JSON is the
stored first response of an idempotent command and the payload of the outbox event.
Times are epoch milliseconds; amounts are minor units of ``currency``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from payments.errors import Forbidden
from payments.escrow import OrderState
from payments.ledger import shop_owner, user_owner
from payments.transfers import TransferState


class View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(View):
    """Who is acting, as authenticated by the caller (the chat hub).

    ``role="agent"`` means a sub-account of ``shop_id``; ``role="arbiter"`` is platform
    staff deciding disputes. The payments package trusts this value and only checks that
    it fits the entity (the buyer of *this* order, an agent of *this* shop).
    """

    user_id: str
    role: Literal["buyer", "agent", "arbiter"]
    shop_id: str | None = None

    @model_validator(mode="after")
    def _agent_has_shop(self) -> Actor:
        if not self.user_id:
            raise ValueError("user_id must not be empty")
        if self.role == "agent" and not self.shop_id:
            raise ValueError("an agent acts for a shop: shop_id is required")
        return self

    @property
    def principal(self) -> str:
        """Who acts, as one key for PINs and idempotency records. The same person id can be a
        buyer in one token and an agent of some shop in another; each is its own principal.
        ``/`` never occurs in an id, so no two principals (and no bare legacy id) collide."""
        if self.role == "agent":
            return f"agent/{self.shop_id}/{self.user_id}"
        return f"{self.role}/{self.user_id}"

    @property
    def key_scope(self) -> str:
        """The namespace of the actor's idempotency keys. A buyer's is the one it always had
        (``user:<id>``), so a retry that straddles an upgrade still finds its first answer;
        agents and arbiters get their principal, apart from any buyer with the same id."""
        return f"user:{self.user_id}" if self.role == "buyer" else self.principal

    @property
    def account(self) -> str:
        """The marketplace account whose money this actor moves: a buyer's own, an agent's
        shop's (never the agent's person). Arbiters decide disputes and hold no money."""
        if self.role == "buyer":
            return user_owner(self.user_id)
        if self.role == "agent" and self.shop_id:
            return shop_owner(self.shop_id)
        raise Forbidden("An arbiter has no wallet.")


class Order(View):
    """An escrowed order as it stands after a command; ``version`` grows on each change."""

    order_id: str
    conversation_id: str
    shop_id: str
    buyer_id: str
    listing_id: str
    title: str
    unit_price: int
    quantity: int
    amount: int
    currency: str
    state: OrderState
    version: int
    held: int = 0
    tracking_note: str | None = None
    extended: bool = False
    auto_confirm_at: int | None = None
    paused_remaining_ms: int | None = None
    deadline_at: int | None = None
    """The current state's other deadline (see :data:`payments.escrow.DEADLINES`): pay by,
    ship by, answer the refund by, decide by; ``None`` in states without one."""
    refund_amount: int | None = None
    refund_reason: str | None = None
    dispute_reason: str | None = None
    disputed_by: str | None = None
    outcome: str | None = None
    buyer_refund: int = 0
    seller_gross: int = 0
    fee: int = 0
    settled_by: str | None = None
    created_at: int
    updated_at: int
    paid_at: int | None = None
    shipped_at: int | None = None
    settled_at: int | None = None
    after_sale_amount: int | None = None
    """What the buyer claims back after the release (售后), while a claim exists."""
    after_sale_reason: str | None = None
    after_sale_refund: int = 0
    """What the shop paid back after the release: ``after_sale_from_deposit`` of it from
    the shop's deposit, the rest from its balance."""
    after_sale_from_deposit: int = 0


class Transfer(View):
    """A transfer between two accounts waiting for (or settled by) its recipient.

    ``from_account``/``to_account`` are the owners whose money moves (``user:<id>`` or
    ``shop:<id>``); ``from_user`` is the person who sent it and ``to_user`` the recipient's
    id (a buyer or a shop), kept for display."""

    transfer_id: str
    conversation_id: str
    from_user: str
    to_user: str
    from_account: str
    to_account: str
    amount: int
    currency: str
    state: TransferState
    version: int
    expires_at: int
    created_at: int
    updated_at: int
    settled_at: int | None = None


class FundingReceipt(View):
    """Result of a deposit or withdrawal; ``balance_after`` is as of that operation."""

    tx_id: int
    owner: str
    kind: Literal["deposit", "withdraw"]
    amount: int
    currency: str
    balance_after: int
    created_at: int
    withdrawal_id: str | None = None
    """A withdrawal's id: it is ``PENDING`` until the payout is confirmed or fails."""


class StatementLine(View):
    """One journal entry on an account: ``amount`` is signed (+ credit, - debit)."""

    entry_id: int
    tx_id: int
    tx_kind: str
    ref_kind: str | None
    ref_id: str | None
    amount: int
    balance_after: int
    created_at: int


class Statement(View):
    """Newest first; pass ``next_before`` as ``before`` to read the next page."""

    owner: str
    currency: str
    balance: int
    lines: list[StatementLine]
    next_before: int | None


class Change(View):
    """One timeout applied by ``run_due``."""

    entity_kind: Literal["order", "transfer"]
    entity_id: str
    action: str
    state: str


class PaymentEvent(View):
    """An outbox row: written in the same database transaction as the change it reports."""

    id: int
    entity_kind: Literal["order", "transfer"]
    entity_id: str
    conversation_id: str
    action: str
    state: str
    payload: dict[str, Any]
    created_at: int
