"""What the store's side parts return: follows and broadcasts, the shop's notes and closed
conversations, and agents' profiles (re-exported by :mod:`chat.store.base`,
where the interfaces that return them live)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FollowRecord:
    """A buyer following a shop. ``conv`` is the conversation the shop's broadcasts go to:
    the one the buyer followed from (or its latest with the shop then); None when it had
    none, and broadcasts then open the buyer's shop conversation (listing ``@shop``)."""

    shop: str
    buyer: str
    conv: str | None
    created_at: int
    blocked: bool = False
    """Either side blocks the other now (filled by ``followers``; broadcasts skip them)."""


@dataclass(frozen=True, slots=True)
class BroadcastRecord:
    """A shop's message to its followers and how far its fan-out got."""

    id: int
    shop: str
    key: str
    """The agent's idempotency key: the same key returns this job, never a second one."""
    by: str
    body: dict[str, Any]
    created_at: int
    total: int
    """Followers when it was recorded (progress bars divide by it)."""
    cursor: str = ""
    """The last follower (buyer id, in code point order) whose message is stored."""
    delivered: int = 0
    skipped: int = 0
    """Followers passed over because either side blocks the other."""
    done: bool = False
    finished_at: int | None = None


@dataclass(frozen=True, slots=True)
class BuyerProfileRecord:
    """A shop's private note and tags on one buyer, shared by all its agents."""

    shop: str
    buyer: str
    note: str
    tags: tuple[str, ...]
    version: int
    """1 on the first save, one more on each: an edit names the version it started from."""
    updated_by: str
    updated_at: int


@dataclass(frozen=True, slots=True)
class ClosedRecord:
    """A conversation an agent took out of the shop's active inbox."""

    conv: str
    by: str
    at: int
    seq: int
    """The conversation's last seq when it was closed: a buyer message above it reopens it."""


@dataclass(frozen=True, slots=True)
class AgentProfileRecord:
    """How others see an agent: its last token's ``name`` and ``avatar`` (checked by :mod:`chat.auth`)."""

    shop: str
    agent: str
    name: str | None
    avatar: str | None
