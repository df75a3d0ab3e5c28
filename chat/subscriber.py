"""What the hub needs of a connection: the small interface routing depends on.

The hub routes payloads to subscribers and keeps their presence; it knows nothing
of requests, handlers or websockets (``chat.session`` implements this).
"""

from __future__ import annotations

from typing import Protocol

from .auth import Identity
from .backends.base import Status


class Subscriber(Protocol):
    id: str
    """Unique per connection: presence entries and a message's origin name it."""
    identity: Identity | None
    status: Status
    watched: set[str]
    """Broker channels this connection receives; the hub unwatches them when it leaves."""

    @property
    def me(self) -> Identity:
        """The authenticated identity (raises for a connection that has none yet)."""
        ...

    async def watch(self, channel: str) -> None: ...

    def on_message(
        self, conv: str, seq: int, frame: bytes, origin: str | None, t0: float, buyer: str, shop: str
    ) -> None:
        """A stored message's notice: ``frame`` is the encoded ``msg``; ``origin`` the sender's
        connection id (that connection has the ack and gets no echo)."""

    def deliver(self, data: bytes) -> None:
        """An encoded ephemeral frame (receipt, typing, presence) to write as it is."""
