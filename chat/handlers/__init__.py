"""Request handlers, grouped by concern, and the one dispatch table built at start-up.

Each module maps frame types to plain handler functions over a
:class:`~chat.handlers.context.Connection`; money registers its own table the
same way (``chat.money``) when payments are enabled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..protocol import frames as f
from ..protocol.errors import ErrorCode, ProtocolError
from . import agents, arbiter, conversations, follows, inbox, messages, safety, search
from .context import Connection, Handler

__all__ = ["Connection", "Handler", "dispatch_table"]


async def payments_disabled(c: Connection, frame: Any, rid: int | None) -> None:
    raise ProtocolError(ErrorCode.UNAVAILABLE, "payments are not enabled on this server")


def dispatch_table(money: Mapping[type, Handler] | None = None) -> dict[type, Handler]:
    """Frame type → handler for every client frame but ``auth`` (the connection's own)."""
    table: dict[type, Handler] = {**conversations.HANDLERS, **messages.HANDLERS, **agents.HANDLERS}
    table.update(safety.HANDLERS)  # after conversations: ``open`` gets the block check
    table.update(follows.HANDLERS)
    table.update(inbox.HANDLERS)
    table.update(search.HANDLERS)
    table.update(arbiter.HANDLERS)  # before money: with payments, two are replaced by ledger ones
    table.update(money if money is not None else dict.fromkeys(f.MONEY_FRAME_TYPES, payments_disabled))
    return table
