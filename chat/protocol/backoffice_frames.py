"""Frames of the seller back office (protocol v1), registered in :mod:`.frames`' unions:
the buyer's credit beside a conversation, the shop's private notes and tags on a buyer,
and closing a conversation out of the shop's inbox."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .fields import Frame as _Frame
from .fields import Id, RequestId

Tag = Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=r"^[^,\n]+$")]
"""One tag: short, one line, no commas (the back office types them comma-separated); the hub
trims spaces and drops repeats."""

# --- client → server ---------------------------------------------------------


class CreditRequest(_Frame):
    """Shop agent: the credit of the buyer of one of the shop's conversations (the buyer's level,
    positive rate, completed trades and disputes), to weigh an offer or a refund."""

    type: Literal["credit"]
    id: RequestId | None = None
    conv: Id


class GetBuyerProfile(_Frame):
    """Shop agent: the shop's private note and tags on the buyer of a conversation."""

    type: Literal["buyer_profile"]
    id: RequestId | None = None
    conv: Id


class EditBuyerProfile(_Frame):
    """Shop agent: replace the note and tags on the buyer of a conversation. ``version`` is the
    one the agent edited (0 for none yet): a profile saved by another agent since is refused
    (4009) with the current one, so no edit is lost silently."""

    type: Literal["edit_buyer_profile"]
    id: RequestId | None = None
    conv: Id
    version: Annotated[int, Field(ge=0, le=2**53)]
    note: Annotated[str, StringConstraints(max_length=2000)]
    tags: Annotated[list[Tag], Field(max_length=20)]


class CloseConversation(_Frame):
    """Shop agent: take a conversation out of the shop's active inbox until the buyer writes."""

    type: Literal["close"]
    id: RequestId | None = None
    conv: Id


class ReopenConversation(_Frame):
    """Shop agent: bring a closed conversation back into the shop's active inbox."""

    type: Literal["reopen"]
    id: RequestId | None = None
    conv: Id


class ConversationStates(_Frame):
    """Shop agent: which of these conversations are closed (the inbox asks for the ones it lists)."""

    type: Literal["closed"]
    id: RequestId | None = None
    convs: Annotated[list[Id], Field(max_length=500)]


# --- server → client ---------------------------------------------------------


class CreditView(_Frame):
    """Reply to ``credit``: the buyer's credit on the platform (every shop's ratings count)."""

    type: Literal["credit"] = "credit"
    re: int | None = None
    conv: str
    subject: str
    """``user:<buyer id>``."""
    score: int
    level: str | None
    """``"3 hearts"``, ``"1 diamond"``, ``"2 crowns"``…; None below a score of 4."""
    positive_rate_bps: int | None
    ratings: int
    trades: int
    """Orders of this buyer released to a shop (completed trades), every shop."""
    disputes: int
    """Orders of this buyer that went to the platform's arbiter, every shop."""
    disputes_lost: int = 0
    """Of those, the ones the arbiter decided against the buyer (released to the shop)."""


class BuyerProfileView(_Frame):
    """Reply to ``buyer_profile`` and ``edit_buyer_profile``; also pushed to every agent of the
    shop when one of them saves it (``re`` null)."""

    type: Literal["buyer_profile"] = "buyer_profile"
    re: int | None = None
    shop: str
    buyer: str
    note: str
    tags: list[str]
    version: int
    """0 until someone saves it; send it back with ``edit_buyer_profile``."""
    updated_by: str | None
    """The agent who saved it last."""
    updated_at: int | None


class ClosedConversation(_Frame):
    conv: str
    by: str
    """The agent who closed it."""
    at: int
    seq: int
    """The conversation's last seq when it was closed: a buyer message above it reopens it."""


class ConversationStatesView(_Frame):
    """Reply to ``closed``: the asked conversations that are closed (the others are open)."""

    type: Literal["closed"] = "closed"
    re: int | None = None
    closed: list[ClosedConversation]


class ConversationState(_Frame):
    """Pushed to every agent of the shop when a conversation is closed or reopened by an agent."""

    type: Literal["conv_state"] = "conv_state"
    conv: str
    closed: bool
    by: str
    at: int
    seq: int
