"""Conversation search: a shop's agents over the shop's conversations, a buyer over their own.

The store is asked only for the asker's conversations (by shop or by buyer), so nobody finds
what is not theirs; arbiters, who have no conversations to list, get ``ROLE_NOT_ALLOWED``.
Hits carry the same conversation views as ``conversations`` (unread counts from the asker's
side), so the inbox renders them like any row.
"""

from __future__ import annotations

from ..protocol.errors import ErrorCode, ProtocolError
from ..protocol.search_frames import Search
from .context import Connection, Handler
from .conversations import views


async def search(c: Connection, frame: Search, rid: int | None) -> None:
    ident = c.me
    if ident.role not in ("buyer", "agent") or (ident.role == "agent" and not ident.shop):
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only buyers and shop agents search conversations")
    before = None if frame.before_ts is None else (frame.before_ts, frame.before_id or "")
    owner = {"buyer": ident.user} if ident.role == "buyer" else {"shop": ident.shop or ""}
    hits = await c.hub.store.search_conversations(frame.q, **owner, before=before, limit=frame.limit + 1)
    page = hits[: frame.limit]
    listed = await views(c, [h.conversation for h in page])
    results = [
        {"conversation": view, "fields": list(h.fields), "seqs": list(h.seqs), "snippet": h.snippet}
        for view, h in zip(listed, page, strict=True)
    ]
    c.reply({"type": "search", "re": rid, "q": frame.q, "results": results, "more": len(hits) > frame.limit})


HANDLERS: dict[type, Handler] = {Search: search}
