"""The shop's inbox bookkeeping: notes and tags on a buyer, closing and reopening conversations.

Everything here is the shop's own and private: only agents act (buyers and arbiters get
``ROLE_NOT_ALLOWED``), always through a conversation of their shop (``conversation`` checks
it), and nothing is sent to the buyer or written into the conversation. A change one agent
makes is pushed to every agent of the shop on its shop channel (``buyer_profile`` or
``conv_state``), so colleagues' screens follow without asking.

Notes are edited over the version the agent read: a save over an older one is refused with
``EDIT_CONFLICT`` (4010) carrying the current profile, so an agent never silently overwrites a
colleague's words. A closed conversation reopens by itself when the buyer writes (the store
derives it from the messages), so the send path needs no change and no buyer message is ever
hidden from the inbox.
"""

from __future__ import annotations

from typing import Any

from ..protocol import backoffice_frames as bf
from ..protocol.errors import ErrorCode, ProtocolError
from ..protocol.views import ok_frame
from ..routing import shop_channel
from ..store.base import BuyerProfileRecord, ClosedRecord, NotFound
from .context import Connection, Handler


def _agent_shop(c: Connection) -> str:
    ident = c.me
    if ident.role != "agent" or not ident.shop:
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only the shop's agents keep notes and close conversations")
    return ident.shop


def profile_view(shop: str, buyer: str, record: BuyerProfileRecord | None) -> dict[str, Any]:
    """The ``buyer_profile`` frame's fields (an empty profile at version 0 before any save)."""
    if record is None:
        return {"shop": shop, "buyer": buyer, "note": "", "tags": [], "version": 0, "updated_by": None,
                "updated_at": None}
    return {"shop": record.shop, "buyer": record.buyer, "note": record.note, "tags": list(record.tags),
            "version": record.version, "updated_by": record.updated_by, "updated_at": record.updated_at}


def _state_frame(closed: ClosedRecord, is_closed: bool, by: str, at: int) -> dict[str, Any]:
    return {"type": "conv_state", "conv": closed.conv, "closed": is_closed, "by": by, "at": at, "seq": closed.seq}


def _clean_tags(tags: list[str]) -> tuple[str, ...]:
    """Tags as typed, without surrounding spaces or repeats, in their first order."""
    out: list[str] = []
    for tag in (t.strip() for t in tags):
        if tag and tag not in out:
            out.append(tag)
    return tuple(out)


async def buyer_profile(c: Connection, frame: bf.GetBuyerProfile, rid: int | None) -> None:
    shop = _agent_shop(c)
    record = await c.conversation(frame.conv)
    found = await c.hub.store.buyer_profile(shop, record.buyer)
    c.reply({"type": "buyer_profile", "re": rid, **profile_view(shop, record.buyer, found)})


async def edit_buyer_profile(c: Connection, frame: bf.EditBuyerProfile, rid: int | None) -> None:
    shop = _agent_shop(c)
    record = await c.conversation(frame.conv)
    hub = c.hub
    saved, done = await hub.store.save_buyer_profile(
        shop, record.buyer, frame.note.strip(), _clean_tags(frame.tags), c.me.user, hub.clock.now_ms(),
        expected_version=frame.version,
    )
    view = profile_view(shop, record.buyer, saved)
    if not done:
        raise ProtocolError(ErrorCode.EDIT_CONFLICT, details=view)
    c.reply({"type": "buyer_profile", "re": rid, **view})
    hub.publish_event([shop_channel(shop)], {"type": "buyer_profile", "re": None, **view})


async def close(c: Connection, frame: bf.CloseConversation, rid: int | None) -> None:
    shop = _agent_shop(c)
    record = await c.conversation(frame.conv)
    hub = c.hub
    try:
        closed = await hub.store.close_conversation(record.id, c.me.user, hub.clock.now_ms())
    except NotFound as exc:
        raise ProtocolError(ErrorCode.NOT_FOUND) from exc
    c.reply(ok_frame(rid))
    hub.publish_event([shop_channel(shop)], _state_frame(closed, True, closed.by, closed.at))


async def reopen(c: Connection, frame: bf.ReopenConversation, rid: int | None) -> None:
    shop = _agent_shop(c)
    record = await c.conversation(frame.conv)
    hub = c.hub
    lifted = await hub.store.reopen_conversation(record.id)
    c.reply(ok_frame(rid))
    if lifted is not None:
        hub.publish_event([shop_channel(shop)], _state_frame(lifted, False, c.me.user, hub.clock.now_ms()))


async def closed_states(c: Connection, frame: bf.ConversationStates, rid: int | None) -> None:
    """Which of the asked conversations are closed; ids that are not the shop's are left out,
    as if open, so nothing is learnt about other shops' conversations."""
    shop = _agent_shop(c)
    store = c.hub.store
    ours = [r.id for r in await store.conversations(list(dict.fromkeys(frame.convs))) if r.shop == shop]
    found = await store.closed_conversations(ours) if ours else {}
    closed = [{"conv": r.conv, "by": r.by, "at": r.at, "seq": r.seq}
              for r in sorted(found.values(), key=lambda r: r.conv)]
    c.reply({"type": "closed", "re": rid, "closed": closed})


HANDLERS: dict[type, Handler] = {
    bf.GetBuyerProfile: buyer_profile,
    bf.EditBuyerProfile: edit_buyer_profile,
    bf.CloseConversation: close,
    bf.ReopenConversation: reopen,
    bf.ConversationStates: closed_states,
}
