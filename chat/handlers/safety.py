"""Reporting and blocking: ``report``, ``block``, ``unblock``, and the block check on ``open`` and ``send``.

A block is kept per side between a buyer and a shop (:class:`chat.store.base.BlockRecord`):
a buyer blocks the shop of one of its conversations, an agent blocks the buyer of one of
the shop's conversations for the whole shop. While either side's block stands, the buyer
cannot open a conversation with the shop and neither side can send in their conversations:
both get ``BLOCKED`` (4008), whose ``details`` say which side blocked, so an agent sees that
it is the buyer who blocked the shop (and a buyer that it is the shop). History stays readable
(it is evidence). Only the side that blocked can lift its block.

Everything is addressed through a conversation the asker may access, so nobody reports or
blocks a party they have no conversation with, or a message of a conversation not theirs.
Reports and blocks are listed for the marketplace by the server API (``chat.api``).
"""

from __future__ import annotations

from typing import Any

from .. import webhook_events
from ..hub import Hub
from ..protocol import frames as f
from ..protocol import safety_frames as sf
from ..protocol.errors import ErrorCode, ProtocolError
from ..protocol.views import ok_frame
from ..store.base import BlockRecord, ConversationRecord, Side, side_of
from .context import Connection, Handler
from .conversations import open_conversation

_OTHER: dict[Side, Side] = {"buyer": "shop", "shop": "buyer"}


def _blocked_error(blocks: list[BlockRecord], asking: Side | None) -> ProtocolError:
    sides = [b.side for b in blocks]
    if asking is not None and sides == [asking]:
        text = "you blocked the other party: unblock to write to them"
    elif "buyer" in sides:
        text = "the buyer has blocked this shop" if asking == "shop" else "you have blocked this shop"
    else:
        text = "this shop has blocked you" if asking == "buyer" else "the shop has blocked this buyer"
    details: dict[str, Any] = {"blocked_by": sides, "buyer": blocks[0].buyer, "shop": blocks[0].shop}
    return ProtocolError(ErrorCode.BLOCKED, text, details=details)


async def check_not_blocked(hub: Hub, record: ConversationRecord, role: str) -> None:
    """Refuse (4008) a message between a buyer and a shop while either side blocks the other."""
    blocks = await hub.blocks_between(record.shop, record.buyer)
    if blocks:
        raise _blocked_error(blocks, side_of(role))


async def open_unless_blocked(c: Connection, frame: f.Open, rid: int | None) -> None:
    """``open``, refused while the buyer and the shop block each other (either side)."""
    ident = c.me
    if ident.role == "buyer":
        blocks = await c.hub.blocks_between(frame.shop, ident.user)
        if blocks:
            raise _blocked_error(blocks, "buyer")
    await open_conversation(c, frame, rid)


def _side(c: Connection) -> Side:
    side = side_of(c.me.role)
    if side is None:
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only a buyer or a shop agent can report or block")
    return side


async def report(c: Connection, frame: sf.Report, rid: int | None) -> None:
    side = _side(c)
    record = await c.conversation(frame.conv)
    store = c.hub.store
    seq = frame.seq or 0
    if seq:
        found = await store.messages(record.id, after=seq - 1, limit=1)
        if not found or found[0].seq != seq:
            raise ProtocolError(ErrorCode.NOT_FOUND)
        if side_of(found[0].role) != _OTHER[side]:
            raise ProtocolError(ErrorCode.FORBIDDEN, "only a message of the other party can be reported")
    hub = c.hub
    events = () if hub.webhooks is None else webhook_events.reported(record, c.me.user, side, frame.reason)
    done, created = await store.add_report(
        record.id, seq, c.me.user, side, record.buyer, record.shop, frame.reason, hub.clock.now_ms(), events
    )
    if created and hub.webhooks is not None:
        hub.webhooks()
    c.reply({"type": "reported", "re": rid, "report": done.id, "duplicate": not created})


async def block(c: Connection, frame: sf.Block, rid: int | None) -> None:
    side = _side(c)
    record = await c.conversation(frame.conv)
    await c.hub.store.set_block(record.shop, record.buyer, side, c.me.user, frame.reason, c.hub.clock.now_ms())
    c.hub.blocks_changed(record.shop, record.buyer)
    c.reply(ok_frame(rid))


async def unblock(c: Connection, frame: sf.Unblock, rid: int | None) -> None:
    side = _side(c)
    record = await c.conversation(frame.conv)
    await c.hub.store.remove_block(record.shop, record.buyer, side)
    c.hub.blocks_changed(record.shop, record.buyer)
    c.reply(ok_frame(rid))


HANDLERS: dict[type, Handler] = {
    f.Open: open_unless_blocked,
    sf.Report: report,
    sf.Block: block,
    sf.Unblock: unblock,
}
"""Registered after the conversation handlers: ``open`` is replaced by its guarded form."""
