"""The two backend interfaces a hub node needs, and what each must guarantee.

Each has an in-memory implementation (one node, the embedded default) and a
Redis one (many nodes). ``tests/chat/test_backends_contract.py`` runs the same
suite against both, so these docstrings are promises, not hopes.

None of them is the source of truth for messages: the store is. A lost broker
message costs latency (the receiving connection fills the gap from the store
when the next message arrives, or on its next sync), never data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
    * Outages: while the backend is unreachable ``publish`` drops and ``subscribe``
      fails within a bounded time (a client waiting on it gets an answer); once it is
      back, every channel still subscribed delivers again without the hub's help.
    """

    async def start(self, on_message: Callable[[str, bytes], None]) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def subscribe(self, channel: str) -> None:
        """Returns once payloads published afterwards will be delivered to this node.

        Raises if that cannot be confirmed in a couple of seconds (backend away); a
        channel this call added is then not subscribed."""

    async def unsubscribe(self, channel: str) -> None: ...

    def publish(self, channel: str, payload: bytes) -> None: ...


def combine(statuses: Iterable[Status]) -> Status:
    """Online if any entry is online, away if every entry is away, else offline (also for
    none). The one rule every presence backend applies to a user's or a shop's entries."""
    listed = list(statuses)
    if "online" in listed:
        return "online"
    if listed and all(s == "away" for s in listed):
        return "away"
    return "offline"


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
    * ``touch`` is also the repair path: it re-creates entries the backend lost
      (a Redis restarted empty, a sweep that ran while heartbeats were late), so
      connected users come back within one heartbeat.
    * Every method that changes an entity's combined status returns the new
      :class:`PresenceState` so the caller can tell the counterparts; exactly
      one caller sees each change.
    """

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def set(self, entity: str, member: str, conn: str, status: Status, now: int) -> PresenceState | None:
        """Add or update a connection's entry; returns the new state if it changed."""

    async def remove(self, entity: str, member: str, conn: str, now: int) -> PresenceState | None: ...

    async def touch(self, entries: list[tuple[str, str, str, Status]], now: int) -> list[PresenceState]:
        """Heartbeat for live connections: each (entity, member, conn, status) entry lives
        ``ttl_ms`` from ``now``. An existing entry keeps its status (``set`` changes it, and a
        heartbeat built before a ``set`` must not undo it); a missing one is created with the
        given status. Returns the changes this caused (a re-created entry can turn its entity
        from offline to online or away)."""

    async def expire(self, now: int) -> list[PresenceState]:
        """Drop entries not touched within the TTL; returns the resulting changes."""

    async def get(self, entities: list[str], now: int) -> dict[str, PresenceState]: ...

    async def members(self, entity: str, now: int) -> dict[str, Status]:
        """Members with a live entry and their combined status (a shop's online agents)."""
