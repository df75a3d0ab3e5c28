"""Frames of the arbiter's desk (protocol v1), registered in :mod:`.frames`' unions: the
reports parties made, the open disputes, and a conversation's signed evidence package.
Arbiters only; every other role gets ``3003``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from .fields import Frame as _Frame
from .fields import Id, RequestId

# --- client → server ---------------------------------------------------------


class ReportsRequest(_Frame):
    """Arbiter: a page of the reports buyers and agents made, oldest first, from ``after``."""

    type: Literal["reports"]
    id: RequestId | None = None
    after: Annotated[int, Field(ge=0, le=2**53)] = 0
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class DisputesRequest(_Frame):
    """Arbiter: the open disputes (orders in ``DISPUTED``), nearest decision deadline first."""

    type: Literal["disputes"]
    id: RequestId | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 100


class EvidenceRequest(_Frame):
    """Arbiter: the signed evidence package of a disputed or reported conversation."""

    type: Literal["evidence"]
    id: RequestId | None = None
    conv: Id


# --- server → client ---------------------------------------------------------


class ReportEntry(_Frame):
    """One report in ``reports``."""

    id: int
    conv: str
    seq: int
    """The message reported; 0: the whole conversation."""
    reporter: str
    side: Literal["buyer", "shop"]
    buyer: str
    shop: str
    reason: str
    created_at: int
    message: dict[str, Any] | None
    """The reported message as a ``msg`` (MessageView); None for a conversation."""


class ReportsPage(_Frame):
    """Reply to ``reports``."""

    type: Literal["reports"] = "reports"
    re: int | None = None
    reports: list[ReportEntry]
    next_after: int | None
    """Ask again with this ``after`` for the next page; None when this page was the last."""


class DisputeEntry(_Frame):
    """One open dispute in ``disputes``."""

    order: str
    conv: str
    shop: str
    buyer: str
    title: str
    amount: int
    held: int
    """What the escrow holds (what a decision divides)."""
    currency: str
    refund_amount: int | None
    dispute_reason: str | None
    disputed_by: str | None
    deadline_at: int | None
    """When the platform promised to decide."""
    updated_at: int
    state: Literal["DISPUTED", "AFTER_SALE_DISPUTED"]
    """A refused refund (``decide`` divides ``held``) or an after-sale claim (``decide`` pays
    from the shop's money; ``held`` is 0)."""
    after_sale_amount: int | None
    after_sale_reason: str | None


class DisputesPage(_Frame):
    """Reply to ``disputes``."""

    type: Literal["disputes"] = "disputes"
    re: int | None = None
    disputes: list[DisputeEntry]
    more: bool


class EvidencePackage(_Frame):
    """Reply to ``evidence``: the package, exactly as ``GET /api/v1/conversations/<id>/evidence``."""

    type: Literal["evidence"] = "evidence"
    re: int | None = None
    conv: str
    package: dict[str, Any]
