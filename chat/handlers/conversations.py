"""Requests about conversations as a whole: open one, resume (sync), list them."""

from __future__ import annotations

import uuid
from typing import Any

from .. import webhook_events
from ..auth import verify_listing
from ..clock import epoch_seconds
from ..protocol import frames as f
from ..protocol.codec import encode
from ..protocol.errors import ErrorCode, ProtocolError
from ..protocol.views import conversation_view, msg_frame
from ..routing import choose_agent, shop_entity
from ..store.base import ConversationRecord, side_of
from .context import Connection, Handler

SYNC_CONVERSATIONS = 200
"""Conversation summaries in a full ``synced``; older ones are paged with ``conversations``."""


async def views(c: Connection, records: list[ConversationRecord]) -> list[dict[str, Any]]:
    """Conversation views from the asking user's side (unread counts and marks)."""
    side = side_of(c.me.role) or "buyer"
    ids = [r.id for r in records]
    store = c.hub.store
    marks = await store.read_marks(ids)
    unread = await store.unread_counts(ids, side)
    last = await store.last_messages(ids)
    return [
        conversation_view(r, last.get(r.id), unread.get(r.id, 0), marks.get(r.id, {"buyer": 0, "shop": 0}))
        for r in records
    ]


async def open_conversation(c: Connection, frame: f.Open, rid: int | None) -> None:
    ident = c.me
    if ident.role != "buyer":
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only buyers open conversations with a shop")
    hub = c.hub
    now = hub.clock.now_ms()
    # ``verified`` and ``signed_at`` are the hub's to set, never a client's.
    listing = {**frame.listing.model_dump(exclude={"signed_at"}), "verified": False}
    if frame.listing_token is not None:
        signed_shop, signed, signed_at = verify_listing(hub.config.token_secret, frame.listing_token)
        if signed_shop != frame.shop or signed.get("id") != frame.listing.id:
            raise ProtocolError(ErrorCode.TOKEN_INVALID, "the listing token is for another shop or listing")
        try:
            checked = f.Listing.model_validate({**signed, "verified": True, "signed_at": signed_at})
        except ValueError as exc:
            raise ProtocolError(ErrorCode.TOKEN_INVALID, "the listing token's card is not valid") from exc
        listing = checked.model_dump()
    agent = None
    if await hub.store.find_conversation(ident.user, frame.shop, frame.listing.id) is None:
        # Only a new conversation needs an agent: every listing-page visit opens, and the
        # load count scans the shop's conversations.
        online = await hub.presence.members(shop_entity(frame.shop), now)
        agent = choose_agent(await hub.store.agent_loads(frame.shop), online)
    events = () if hub.webhooks is None else webhook_events.opened(ident.user, frame.shop, agent, listing)
    record, card = await hub.store.open_conversation(
        "c_" + uuid.uuid4().hex[:20], ident.user, frame.shop, listing, agent, now, events
    )
    if card is not None and hub.webhooks is not None:
        hub.webhooks()
    hub.remember(record)
    # Claimed before the card's notice can arrive, so ``presence`` follows ``opened``.
    follow = c.claim_follow(record.buyer, record.shop)
    c.outbox.hold()
    try:
        c.outbox.set_cursor(record.id, record.last_seq)
        if card is not None:
            await hub.fan_out(record, card, record.agent, c.id, epoch_seconds())
        view = (await views(c, [record]))[0]
        c.reply({"type": "opened", "re": rid, "conversation": view, "created": card is not None})
    finally:
        c.outbox.release()
    if follow is not None:
        await c.follow_entity(follow)


async def sync(c: Connection, frame: f.Sync, rid: int | None) -> None:
    """Set this connection's cursors, push what the client missed, then ``synced``.

    With a usable ``inbox`` token (the store's change position at the previous sync)
    only the conversations written since are listed (the fast path); otherwise every
    conversation is (full). Either way the store decides, so nothing a cache or a
    Redis outage forgot can be skipped.
    """
    ident = c.me
    if ident.role == "arbiter":
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "arbiters have no conversations to sync")
    hub, store, outbox = c.hub, c.hub.store, c.outbox
    buyer, shop = (ident.user, None) if ident.role == "buyer" else (None, ident.shop or "")
    # Hold live notices while cursors are being set, so none slips between
    # the store read and the cursor it would be compared with.
    outbox.hold()
    try:
        # The token is taken before the reads: whatever commits later is listed next time.
        token = await store.change_token()
        changed = None if frame.inbox is None else await store.changed_since(frame.inbox, buyer=buyer, shop=shop)
        if changed is None:
            records = await (
                store.conversations_of_buyer(ident.user) if ident.role == "buyer"
                else store.conversations_of_shop(ident.shop or "")
            )
        else:
            records = changed
        # Conversations the client knows but the fast path does not list have not
        # moved: they keep the client's cursor.
        for conv, seq in frame.cursors.items():
            outbox.cursors[conv] = seq
        for r in records:
            hub.remember(r)
            outbox.cursors[r.id] = frame.cursors.get(r.id, r.last_seq)
        outbox.follow_new = True
    finally:
        outbox.release()
    limit = hub.config.sync_limit
    for r in records:
        after = frame.cursors.get(r.id)
        if after is None or after >= r.last_seq:
            continue
        missed = await store.messages(r.id, after=after, limit=limit)
        for message in missed:
            outbox.message(r.id, message.seq, encode(msg_frame(message)))
        if len(missed) == limit:
            # Too much to push: the client pages the rest with ``history``.
            outbox.set_cursor(r.id, r.last_seq)
    listed = sorted(records, key=lambda r: (r.updated_at, r.id), reverse=True)[:SYNC_CONVERSATIONS]
    full = changed is None
    c.reply(
        {"type": "synced", "re": rid, "conversations": await views(c, listed), "full": full, "inbox": token,
         "more": len(records) > len(listed), "total_unread": await _total_unread(c, records) if full else None}
    )
    watched = list(listed)
    if not full:
        # Nothing moved in the conversations the client already knows, but this is a new
        # connection: it must still learn and follow their counterparts' presence.
        listed_ids = {r.id for r in listed}
        known = [cid for cid in frame.cursors if cid not in listed_ids][: max(0, SYNC_CONVERSATIONS - len(listed))]
        watched += [r for r in await store.conversations(known) if r.buyer == buyer or r.shop == shop]
    # Presence of the counterparts the user is likely to look at: for an agent, every
    # listed buyer of the shop (the back office shows colleagues' chats too).
    for r in watched:
        await c.follow(r.buyer, r.shop)


async def _total_unread(c: Connection, records: list[ConversationRecord]) -> int:
    side = side_of(c.me.role) or "buyer"
    return sum((await c.hub.store.unread_counts([r.id for r in records], side)).values())


async def list_conversations(c: Connection, frame: f.ListConversations, rid: int | None) -> None:
    ident = c.me
    if ident.role == "arbiter":
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "arbiters have no conversations to list")
    before = None if frame.before_ts is None else (frame.before_ts, frame.before_id or "")
    owner = {"buyer": ident.user} if ident.role == "buyer" else {"shop": ident.shop or ""}
    page = await c.hub.store.recent_conversations(**owner, before=before, limit=frame.limit + 1)
    listed = await views(c, page[: frame.limit])
    c.reply({"type": "conversations", "re": rid, "conversations": listed, "more": len(page) > frame.limit})


HANDLERS: dict[type, Handler] = {
    f.Open: open_conversation,
    f.Sync: sync,
    f.ListConversations: list_conversations,
}
