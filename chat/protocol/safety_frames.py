"""Frames of reporting and blocking (protocol v1), registered in :mod:`.frames`' unions."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .fields import Frame as _Frame
from .fields import Id, Reason, RequestId

# --- client → server ---------------------------------------------------------


class Report(_Frame):
    """Buyer or shop agent: report a message of the other side (``seq``), or the whole
    conversation (no ``seq``), to the marketplace, with a reason."""

    type: Literal["report"]
    id: RequestId | None = None
    conv: Id
    seq: Annotated[int, Field(ge=1, le=2**53)] | None = None
    reason: Reason


class Block(_Frame):
    """Block the other party of a conversation: a buyer blocks its shop, an agent blocks its
    buyer for the shop. Either way no new message passes between them, and the buyer cannot
    open a conversation with the shop, until the side that blocked unblocks (4008)."""

    type: Literal["block"]
    id: RequestId | None = None
    conv: Id
    reason: Reason | None = None
    """Kept with the block; the shop sees it in its block list (server API)."""


class Unblock(_Frame):
    """Lift your side's block of the other party of a conversation (the other side's stays)."""

    type: Literal["unblock"]
    id: RequestId | None = None
    conv: Id


# --- server → client ---------------------------------------------------------


class Reported(_Frame):
    """Reply to ``report``: the report's id (the server API lists reports by it)."""

    type: Literal["reported"] = "reported"
    re: int | None = None
    report: int
    duplicate: bool = False
    """True when you had already reported this message (or conversation): nothing new was stored."""
