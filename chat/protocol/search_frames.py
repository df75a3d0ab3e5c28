"""Frames of conversation search (protocol v1), registered in :mod:`.frames`' unions: a
shop's agents search the shop's conversations, a buyer their own, by buyer, listing or the
text of the messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StringConstraints

from .fields import Frame as _Frame
from .fields import Id, RequestId

if TYPE_CHECKING:
    from .frames import ConversationView

# --- client → server ---------------------------------------------------------


class Search(_Frame):
    """Find conversations whose buyer, listing (id or title) or message text contains ``q``
    (letters without case), most recently active first; page on with the last hit's
    ``updated_at`` and ``id``."""

    type: Literal["search"]
    id: RequestId | None = None
    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    before_ts: Annotated[int, Field(ge=0, le=2**62)] | None = None
    before_id: Id | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 20


# --- server → client ---------------------------------------------------------


class SearchHitView(_Frame):
    conversation: ConversationView
    fields: list[Literal["buyer", "listing", "text"]]
    """What matched."""
    seqs: list[int]
    """Matching text messages, newest first (at most 5): open the conversation at the first."""
    snippet: str | None
    """Text around the match in the newest matching message; None without a text match."""


class SearchResults(_Frame):
    """Reply to ``search``."""

    type: Literal["search"] = "search"
    re: int | None = None
    q: str
    results: list[SearchHitView]
    more: bool
