"""The small connection context every request handler works over.

A handler is a plain function ``(connection, frame, request id) -> None``: it reads
who is asking (``me``), checks access (``conversation``), calls the store or a
service, and answers with ``reply``. Errors are raised as ``ProtocolError`` and
turned into ``error`` frames by the connection. ``chat.session.Session`` is the
implementation; tests or other transports may provide their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ..auth import Identity
from ..hub import Hub
from ..outbox import Outbox
from ..ratelimit import RateLimiter
from ..store.base import ConversationRecord


class Connection(Protocol):
    hub: Hub
    id: str
    outbox: Outbox
    limiter: RateLimiter

    @property
    def me(self) -> Identity: ...

    def reply(self, frame: dict[str, Any]) -> None: ...

    async def conversation(self, conv_id: str, *, evidence: bool = False) -> ConversationRecord:
        """The conversation if this user may use it (``evidence``: an arbiter may read a
        disputed one); else NOT_FOUND / FORBIDDEN."""
        ...

    async def follow(self, buyer: str, shop: str) -> None:
        """Follow the counterpart's presence in this conversation (once) and send its state."""

    def claim_follow(self, buyer: str, shop: str) -> str | None:
        """Reserve that follow now (returns the entity, or None if already followed), so the
        ``presence`` frame can be sent later by ``follow_entity`` in a chosen order."""
        ...

    async def follow_entity(self, entity: str) -> None: ...

    async def set_status(self, status: str) -> None: ...


Handler = Callable[[Connection, Any, int | None], Awaitable[None]]
"""``handler(connection, frame, rid)``: answer one validated request."""
