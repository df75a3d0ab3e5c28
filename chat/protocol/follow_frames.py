"""Frames of following a shop and of the shop's broadcasts to its followers (protocol v1),
registered in :mod:`.frames`' unions (imported there once ``Listing`` is defined)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from .fields import Frame as _Frame
from .fields import Id, Key, RequestId
from .frames import Listing

# --- client → server ---------------------------------------------------------


class Follow(_Frame):
    """Buyer: follow a shop, so its broadcasts reach you. ``conv`` names the conversation the
    broadcasts go to (one of yours with this shop; default: your latest with it)."""

    type: Literal["follow"]
    id: RequestId | None = None
    shop: Id
    conv: Id | None = None


class Unfollow(_Frame):
    """Buyer: stop following a shop (every broadcast carries this frame as ``unsubscribe``)."""

    type: Literal["unfollow"]
    id: RequestId | None = None
    shop: Id


class FollowState(_Frame):
    """Buyer: whether you follow a shop."""

    type: Literal["follow_state"]
    id: RequestId | None = None
    shop: Id


class Followers(_Frame):
    """Shop agent: the shop's follower count and a page of its followers (by buyer id)."""

    type: Literal["followers"]
    id: RequestId | None = None
    after: Id | None = None
    """The last buyer id of the previous page."""
    limit: Annotated[int, Field(ge=1, le=200)] = 50


class BroadcastOffer(_Frame):
    """A price for the broadcast's listing, valid for a period."""

    price: Annotated[int, Field(ge=0, le=10**13)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    valid_hours: Annotated[int, Field(ge=1, le=720)]


class SendBroadcast(_Frame):
    """Shop agent: send a message to every follower of the shop (text, a listing card, or a
    price offer for a listing), delivered by the worker into each follower's conversation."""

    type: Literal["broadcast"]
    id: RequestId | None = None
    key: Key
    """Idempotency key: sending the same key again returns the first broadcast."""
    text: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None
    listing: Listing | None = None
    offer: BroadcastOffer | None = None


class Broadcasts(_Frame):
    """Shop agent: the shop's latest broadcasts and how far each got."""

    type: Literal["broadcasts"]
    id: RequestId | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 10


class ClaimOffer(_Frame):
    """Buyer: buy at a broadcast's price ("Buy at this price"). Names the broadcast (its id,
    ``body.broadcast`` of the message) in the conversation it reached you in; the shop's offer
    is made there for you, once per broadcast and buyer, and you pay it with ``pay``."""

    type: Literal["claim_offer"]
    id: RequestId | None = None
    conv: Id
    broadcast: Annotated[int, Field(ge=1, le=2**53)]


# --- server → client ---------------------------------------------------------


class Following(_Frame):
    """Reply to ``follow``, ``unfollow`` and ``follow_state``."""

    type: Literal["following"] = "following"
    re: int | None = None
    shop: str
    following: bool
    since: int | None = None
    """When you started following (epoch ms)."""
    conv: str | None = None
    """The conversation the shop's broadcasts go to."""


class FollowerView(_Frame):
    buyer: str
    since: int
    conv: str | None
    blocked: bool
    """Either side blocks the other: broadcasts skip this follower."""


class FollowersPage(_Frame):
    type: Literal["followers"] = "followers"
    re: int | None = None
    shop: str
    count: int
    """Every follower of the shop."""
    followers: list[FollowerView]
    more: bool


class BroadcastView(_Frame):
    id: int
    shop: str
    by: str
    key: str
    body: dict[str, Any]
    """What each follower's ``broadcast`` message carries (text, listing, offer)."""
    created_at: int
    total: int
    """Followers when it was sent."""
    delivered: int
    skipped: int
    """Followers passed over because either side blocks the other."""
    done: bool
    finished_at: int | None


class BroadcastResult(_Frame):
    """Reply to ``broadcast``: the job is recorded; delivery runs in the background."""

    type: Literal["broadcast"] = "broadcast"
    re: int | None = None
    broadcast: BroadcastView
    duplicate: bool = False


class BroadcastsPage(_Frame):
    type: Literal["broadcasts"] = "broadcasts"
    re: int | None = None
    broadcasts: list[BroadcastView]
