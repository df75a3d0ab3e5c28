"""The three backend interfaces a hub node needs, and what each must guarantee.

Each has an in-memory implementation (one node, the embedded default) and a
Redis one (many nodes). ``tests/chat/test_backends_contract.py`` runs the same
suite against both, so these docstrings are promises, not hopes.

None of them is the source of truth for messages: the store is. A lost broker
message costs latency (the receiving connection fills the gap from the store
when the next message arrives, or on its next sync), never data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

Status = Literal["online", "away", "offline"]


class Broker(Protocol):
    """Routes opaque payloads between hub nodes by channel name.

    * At-most-once, no persistence: a node that is not subscribed when a payload
      is published never sees it.
    * Payloads one node publishes to one channel arrive at every subscribed node
      in the order they were published.
    * ``publish`` never blocks the caller; implementations batch and pipeline.
    * ``subscribe``/``unsubscribe`` are per node, not per connection: the hub
      counts its local interest and calls them on the first and the last.
    """

    async def start(self, on_message: Callable[[str, bytes], None]) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def subscribe(self, channel: str) -> None:
        """Returns once payloads published afterwards will be delivered to this node."""

    async def unsubscribe(self, channel: str) -> None: ...

    def publish(self, channel: str, payload: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class PresenceState:
    entity: str
    status: Status
    last_seen: int | None
    """Epoch ms when the entity was last online; None if never seen."""


class Presence(Protocol):
    """Who is connected, combined across devices and nodes.

    An *entity* is a user (``u:<id>``) or a shop (``s:<id>``, whose members are
    its agents). Each connection registers one entry per entity with a status.
    The combined status is ``online`` if any entry is online, ``away`` if all
    entries are away, else ``offline`` with ``last_seen``.

    * Entries live ``ttl_ms`` after their last ``touch``: a node that dies stops
      touching, and ``expire`` (called periodically by every node) removes its
      entries, so its users go offline within ``ttl_ms`` plus one sweep.
    * Every method that changes an entity's combined status returns the new
      :class:`PresenceState` so the caller can tell the counterparts; exactly
      one caller sees each change.
    """

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def set(self, entity: str, member: str, conn: str, status: Status, now: int) -> PresenceState | None:
        """Add or update a connection's entry; returns the new state if it changed."""

    async def remove(self, entity: str, member: str, conn: str, now: int) -> PresenceState | None: ...

    async def touch(self, entries: list[tuple[str, str, str]], now: int) -> None:
        """Extend the life of these (entity, member, conn) entries."""

    async def expire(self, now: int) -> list[PresenceState]:
        """Drop entries not touched within the TTL; returns the resulting changes."""

    async def get(self, entities: list[str], now: int) -> dict[str, PresenceState]: ...

    async def members(self, entity: str, now: int) -> dict[str, Status]:
        """Members with a live entry and their combined status (a shop's online agents)."""


class Inbox(Protocol):
    """Per-user queue of delivery notices that outlives connections.

    Every event that concerns a user is appended to the user's inbox whether
    the user is online or not; a reconnecting device reads the inbox after its
    cursor to learn what changed while it was away.

    * Ids are opaque strings, increasing per user in append order.
    * ``read`` after a cursor returns the entries appended after it, in order;
      it returns ``None`` when the cursor is unknown or older than the
      retention (the caller then falls back to a full sync from the store).
    * Retention is bounded by count and age; the Redis implementation survives
      a hub restart, the memory one does not (its cursors then read as unknown).
    """

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def append(self, entries: list[tuple[str, bytes]]) -> list[str]:
        """Append (user, payload) pairs in order; returns their ids."""

    async def tail(self, user: str) -> str:
        """A cursor that reads nothing older than now (the newest id, or a zero mark)."""

    async def read(self, user: str, after: str, limit: int) -> list[tuple[str, bytes]] | None: ...
