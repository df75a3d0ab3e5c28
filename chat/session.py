"""One connection's requests: authenticate, check access, call the store, reply.

Frames are handled one at a time in arrival order, so a client's messages get
increasing seqs in the order it sent them. Every failure becomes an ``error``
frame answering the request's ``id``; only repeated protocol garbage, a bad
token or an expired one closes the connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from .auth import Identity, verify, verify_listing
from .hub import Hub, epoch_seconds
from .outbox import Outbox, Transport
from .protocol import frames as f
from .protocol.codec import CLIENT_TYPES, encode, request_id, unpack, validate
from .protocol.errors import CloseCode, ErrorCode, ProtocolError
from .ratelimit import RateLimiter
from .responsiveness import DAY_MS, summarize
from .routing import (
    can_access,
    choose_agent,
    counterpart_channels,
    presence_channel,
    shop_channel,
    shop_entity,
    user_channel,
    user_entity,
)
from .store.base import (
    ClientIdReused,
    ConversationRecord,
    MessageRecord,
    NotFound,
    RecallRefused,
    Role,
    side_of,
)

log = logging.getLogger(__name__)

AUTO_REPLY_PERIOD_MS = 30 * 60_000
"""An away agent's auto-reply goes out at most once per conversation in each such period."""

SYNC_CONVERSATIONS = 200
"""Conversation summaries in a full ``synced``; older ones are paged with ``conversations``."""

_RECALL_ERRORS = {
    "window": ErrorCode.RECALL_WINDOW_PASSED,
    "sender": ErrorCode.NOT_YOUR_MESSAGE,
    "kind": ErrorCode.NOT_RECALLABLE,
}


class Session:
    def __init__(self, hub: Hub, transport: Transport, limiter: RateLimiter) -> None:
        self.hub = hub
        self.id = uuid.uuid4().hex
        self.identity: Identity | None = None
        self.status: str = "online"
        self.watched: set[str] = set()
        self.following: set[str] = set()
        """Counterpart presence entities this connection follows (or is starting to)."""
        self.bad_frames = 0
        self.closing = False
        """A close was decided (bad token, too many bad frames): later frames are not handled."""
        self.ended = False
        """The connection is gone and the session detached: nothing may subscribe it again."""
        self._background: set[asyncio.Task[None]] = set()
        self._limiter = limiter
        self.outbox = Outbox(
            transport,
            self._fetch_between,
            limit_bytes=hub.config.outbox_bytes,
            on_write=self._observe,
            on_slow=hub.metrics.slow_consumers.inc,
            on_gap=hub.metrics.gap_fills.inc,
        )
        self._handlers: dict[type, Any] = {
            f.Open: self._open,
            f.Send: self._send,
            f.Sync: self._sync,
            f.History: self._history,
            f.ListConversations: self._list,
            f.Read: self._read,
            f.Typing: self._typing,
            f.Recall: self._recall,
            f.SetPresence: self._presence,
            f.Assign: self._assign,
            f.AutoReply: self._set_auto_reply,
            f.Stats: self._stats,
            f.Ping: self._ping,
        }

    # --- plumbing -------------------------------------------------------------

    def _observe(self, t0: float | None) -> None:
        self.hub.metrics.frames_out.inc()
        if t0 is not None:
            self.hub.metrics.delivery.observe(max(0.0, epoch_seconds() - t0))

    async def _fetch_between(self, conv: str, after: int, before: int) -> list[MessageRecord]:
        return await self.hub.store.messages(conv, after=after, limit=min(200, before - after - 1))

    @property
    def me(self) -> Identity:
        """Who this connection is; requests reach handlers only once it is known."""
        if self.identity is None:
            raise ProtocolError(ErrorCode.NOT_AUTHENTICATED)
        return self.identity

    def reply(self, frame: dict[str, Any]) -> None:
        self.outbox.send(frame)

    def error(self, exc: ProtocolError, rid: int | None) -> None:
        self.hub.metrics.errors.labels(code=str(exc.code)).inc()
        self.reply({"type": "error", "re": rid, "code": exc.code, "message": exc.message, "details": exc.details})

    async def watch(self, channel: str) -> None:
        if self.ended or channel in self.watched:
            return
        self.watched.add(channel)
        await self.hub.watch(self, channel)
        if self.ended:  # closed while the broker subscribed: do not stay subscribed
            await self.hub.unwatch(self, channel)

    def close_with(self, code: int, reason: str) -> None:
        """Decide to close (once): stop handling frames and count one close."""
        if self.closing:
            return
        self.closing = True
        self.hub.metrics.closes.labels(code=str(code)).inc()
        self.outbox.transport.close(code, reason)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run work beside the request loop; it is cancelled when the connection ends."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- entry point ----------------------------------------------------------

    async def handle(self, data: bytes | str) -> None:
        """Handle one websocket frame; never raises for the client's mistakes."""
        rid: int | None = None
        if self.closing:
            return
        try:
            if isinstance(data, str):
                raise ProtocolError(ErrorCode.TEXT_FRAME)
            if len(data) > self.hub.config.max_frame_bytes:
                raise ProtocolError(ErrorCode.TOO_LARGE, details={"max_bytes": self.hub.config.max_frame_bytes})
            obj = unpack(data)
            rid = request_id(obj)
            kind = obj.get("type") if isinstance(obj, dict) else None
            # Only known types become label values: a client must not grow the metrics.
            self.hub.metrics.frames_in.labels(type=kind if kind in CLIENT_TYPES else "unknown").inc()
            frame = validate(obj)
            if isinstance(frame, f.Auth):
                await self.authenticate(frame.token, rid)
                return
            if self.identity is None:
                raise ProtocolError(ErrorCode.NOT_AUTHENTICATED)
            handler = self._handlers.get(type(frame))
            if handler is not None:
                await handler(frame, rid)
            elif self.hub.money is not None:
                await self.hub.money.handle(self, frame, rid)
            else:
                raise ProtocolError(ErrorCode.UNAVAILABLE, "payments are not enabled on this server")
        except ProtocolError as exc:
            self.error(exc, rid)
            if exc.code < 2000:
                self.bad_frames += 1
                if self.bad_frames > self.hub.config.max_bad_frames:
                    self.close_with(CloseCode.TOO_MANY_ERRORS, "too many malformed frames")
        except self.hub.unreachable as exc:
            self.hub.backend_failed("a request", exc)
            self.error(ProtocolError(ErrorCode.UNAVAILABLE), rid)
        except Exception:
            log.exception("request failed")
            self.error(ProtocolError(ErrorCode.INTERNAL), rid)

    async def handle_bearer(self, token: str) -> None:
        """Authenticate from the upgrade request's ``Authorization: Bearer`` header."""
        try:
            await self.authenticate(token, None)
        except Exception:
            log.exception("authentication failed")
            self.error(ProtocolError(ErrorCode.INTERNAL), None)
            self.close_with(CloseCode.BACKEND_UNAVAILABLE, "could not authenticate; reconnect")

    async def authenticate(self, token: str, rid: int | None) -> None:
        if self.identity is not None:
            raise ProtocolError(ErrorCode.ALREADY_AUTHENTICATED)
        try:
            identity = verify(self.hub.config.token_secret, token)
        except ProtocolError as exc:
            self.error(exc, rid)
            expired = exc.code == ErrorCode.TOKEN_EXPIRED
            self.close_with(CloseCode.TOKEN_EXPIRED if expired else CloseCode.AUTH_FAILED, exc.message)
            return
        self.identity = identity
        try:
            await self.hub.attach(self)
        except Exception as exc:
            # Redis (presence, routing) or the store is unreachable: a connection that cannot
            # be routed to is no use. Say so at once, with a code that means "retry".
            self.hub.backend_failed("attach", exc)
            self.error(ProtocolError(ErrorCode.UNAVAILABLE, "a backend is unavailable; reconnect shortly"), rid)
            self.close_with(CloseCode.BACKEND_UNAVAILABLE, "a backend is unavailable; reconnect")
            return
        cfg = self.hub.config
        self.reply(
            {
                "type": "welcome", "re": rid, "user": identity.user, "role": identity.role,
                "shop": identity.shop, "node": self.hub.node, "server_time": self.hub.clock.now_ms(),
                "recall_window_ms": int(cfg.recall_window * 1000), "max_frame_bytes": cfg.max_frame_bytes,
                "rate_per_second": float(cfg.rate_per_second), "rate_burst": cfg.rate_burst,
            }
        )

    async def close(self) -> None:
        """The connection is gone: stop background work, then leave the hub."""
        self.ended = True
        self.outbox.closed = True
        for task in list(self._background):
            task.cancel()
        await self.hub.detach(self)

    # --- access ---------------------------------------------------------------

    async def conversation(self, conv_id: str) -> ConversationRecord:
        """The conversation if this user may read and write it; else NOT_FOUND / FORBIDDEN."""
        return await self._conversation(conv_id)

    async def _conversation(self, conv_id: str, *, evidence: bool = False) -> ConversationRecord:
        ident = self.me
        record = await self.hub.conversation(conv_id)
        if record is None:
            raise ProtocolError(ErrorCode.NOT_FOUND)
        # An arbiter reads (never writes) a conversation whose order is or was disputed.
        money = self.hub.money
        if evidence and ident.role == "arbiter" and money is not None and await money.disputed(record.id):
            return record
        if not can_access(ident, record):
            # Same answer whether or not it exists would leak less, but clients need
            # to tell "wrong id" from "not yours"; ids are unguessable anyway.
            raise ProtocolError(ErrorCode.FORBIDDEN)
        return record

    def _counterpart(self, buyer: str, shop: str) -> str:
        """The presence entity this user watches in a conversation: the shop, or the buyer."""
        return shop_entity(shop) if self.me.role == "buyer" else user_entity(buyer)

    def _claim_follow(self, buyer: str, shop: str) -> str | None:
        """The counterpart entity to start following, or None if this connection already does
        (claimed synchronously, so a concurrent notice cannot start a second follow)."""
        entity = self._counterpart(buyer, shop)
        if entity in self.following:
            return None
        self.following.add(entity)
        return entity

    async def _follow(self, buyer: str, shop: str) -> None:
        """Watch the counterpart's presence and send its current state once."""
        entity = self._claim_follow(buyer, shop)
        if entity is not None:
            await self._follow_entity(entity)

    async def _follow_entity(self, entity: str) -> None:
        await self.watch(presence_channel(entity))
        now = self.hub.clock.now_ms()
        state = (await self.hub.presence.get([entity], now))[entity]
        self.reply({"type": "presence", "entity": entity, "status": state.status, "last_seen": state.last_seen})

    def on_message(
        self, conv: str, seq: int, frame: bytes, origin: str | None, t0: float, buyer: str, shop: str
    ) -> None:
        """A message notice from the hub (any node)."""
        self.outbox.message(conv, seq, frame, echo=origin != self.id, t0=t0)
        if self.identity is not None and self._counterpart(buyer, shop) not in self.following:
            self.spawn(self._follow_quietly(buyer, shop))

    async def _follow_quietly(self, buyer: str, shop: str) -> None:
        try:
            await self._follow(buyer, shop)
        except Exception:
            log.warning("could not follow presence", exc_info=True)

    # --- views ----------------------------------------------------------------

    async def _views(self, records: list[ConversationRecord]) -> list[dict[str, Any]]:
        side = side_of(self.me.role) or "buyer"
        ids = [r.id for r in records]
        store = self.hub.store
        marks = await store.read_marks(ids)
        unread = await store.unread_counts(ids, side)
        last = await store.last_messages(ids)
        views = []
        for r in records:
            msg = last.get(r.id)
            views.append(
                {
                    "id": r.id, "buyer": r.buyer, "shop": r.shop, "listing": r.listing, "agent": r.agent,
                    "last_seq": msg.seq if msg else r.last_seq, "unread": unread.get(r.id, 0),
                    "read": marks.get(r.id, {"buyer": 0, "shop": 0}), "created_at": r.created_at,
                    "updated_at": r.updated_at,
                    "last_message": msg.view() if msg else None,
                }
            )
        return views

    # --- requests ---------------------------------------------------------------

    async def _open(self, frame: f.Open, rid: int | None) -> None:
        ident = self.me
        if ident.role != "buyer":
            raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only buyers open conversations with a shop")
        hub = self.hub
        now = hub.clock.now_ms()
        listing = {**frame.listing.model_dump(), "verified": False}
        if frame.listing_token is not None:
            signed_shop, signed = verify_listing(hub.config.token_secret, frame.listing_token)
            if signed_shop != frame.shop or signed.get("id") != frame.listing.id:
                raise ProtocolError(ErrorCode.TOKEN_INVALID, "the listing token is for another shop or listing")
            try:
                checked = f.Listing.model_validate({**signed, "verified": True})
            except ValueError as exc:
                raise ProtocolError(ErrorCode.TOKEN_INVALID, "the listing token's card is not valid") from exc
            listing = checked.model_dump()
        agent = None
        if await hub.store.find_conversation(ident.user, frame.shop, frame.listing.id) is None:
            # Only a new conversation needs an agent: every listing-page visit opens, and the
            # load count scans the shop's conversations.
            online = await hub.presence.members(shop_entity(frame.shop), now)
            agent = choose_agent(await hub.store.agent_loads(frame.shop), online)
        record, card = await hub.store.open_conversation(
            "c_" + uuid.uuid4().hex[:20], ident.user, frame.shop, listing, agent, now
        )
        hub.remember(record)
        # Claimed before the card's notice can arrive, so ``presence`` follows ``opened``.
        follow = self._claim_follow(record.buyer, record.shop)
        self.outbox.hold()
        try:
            self.outbox.set_cursor(record.id, record.last_seq)
            if card is not None:
                await hub.fan_out(record, card, record.agent, self.id, epoch_seconds())
            view = (await self._views([record]))[0]
            self.reply({"type": "opened", "re": rid, "conversation": view, "created": card is not None})
        finally:
            self.outbox.release()
        if follow is not None:
            await self._follow_entity(follow)

    async def _send(self, frame: f.Send, rid: int | None) -> None:
        ident = self.me
        hub = self.hub
        now = hub.clock.now_ms()
        t0 = epoch_seconds()
        record = await self._conversation(frame.conv)
        if not self._limiter.allow(ident.user, now):
            retry = int(1000 / max(0.001, hub.config.rate_per_second))
            raise ProtocolError(ErrorCode.RATE_LIMITED, details={"retry_after_ms": retry})
        body = frame.body.model_dump(exclude_defaults=True)  # "auto" only when it is true
        kind = body.pop("kind")
        role: Role = "buyer" if ident.role == "buyer" else "agent"
        self.outbox.posting(record.id, ident.user, frame.cmid)
        try:
            done = await hub.store.append(record.id, ident.user, role, kind, body, frame.cmid, now)
        except ClientIdReused as exc:
            raise ProtocolError(ErrorCode.CLIENT_ID_REUSED) from exc
        if not done.duplicate:
            hub.metrics.messages.inc()
        if done.agent != record.agent:  # a hand-over made on another node: refresh the cache
            record = dataclasses.replace(record, agent=done.agent)
            hub.remember(record)
        # A duplicate fans out again: if the first attempt died between commit and
        # notice, this is what gets the message to the other side (cursors dedupe).
        await hub.fan_out(record, done.message, done.agent, self.id, t0)
        # The ack must not overtake a lower seq on its way to this connection (a client's
        # resume cursor counts acked seqs): if one is still in flight between nodes, the
        # outbox fills it from the store and the ack queues behind it.
        self.outbox.message(record.id, done.message.seq, b"", echo=False)
        if done.agent is None and ident.role == "agent" and not done.duplicate:
            # An unassigned conversation belongs to the first agent who answers it.
            await self._hand_to(record, ident.user, f"{ident.user} is now looking after this conversation")
        message = done.message
        self.reply(
            {"type": "ack", "re": rid, "conv": record.id, "cmid": frame.cmid, "seq": message.seq,
             "ts": message.ts, "duplicate": done.duplicate}
        )
        if ident.role == "buyer" and not done.duplicate and done.agent is not None:
            known, text = hub.cached_auto_reply(record.shop, done.agent)
            if known and not text:
                return  # the common case: no away message, and no work per message
            hub.run_detached(self._auto_reply(record, done.agent))

    async def _auto_reply(self, record: ConversationRecord, agent: str) -> None:
        """Answer for an agent who is away or offline, at most once per conversation per period.

        The message id names the period, so every node (and a retried buyer message)
        agrees on whether the reply was already sent: the store keeps one."""
        hub = self.hub
        try:
            text = await hub.auto_reply(record.shop, agent)
            if not text:
                return
            now = hub.clock.now_ms()
            entity = user_entity(agent)
            if (await hub.presence.get([entity], now))[entity].status == "online":
                return
            cmid = f"~auto:{now // AUTO_REPLY_PERIOD_MS}"
            body = {"text": text, "auto": True}
            done = await hub.store.append(record.id, agent, "agent", "text", body, cmid, now)
            if not done.duplicate:
                await hub.fan_out(record, done.message, done.agent, None, epoch_seconds())
        except ClientIdReused:
            pass  # the text changed within the period: one auto-reply per period is enough
        except Exception:
            log.warning("auto-reply failed in %s", record.id, exc_info=True)

    async def _sync(self, frame: f.Sync, rid: int | None) -> None:
        """Set this connection's cursors, push what the client missed, then ``synced``.

        With a usable ``inbox`` token (the store's change position at the previous sync)
        only the conversations written since are listed (the fast path); otherwise every
        conversation is (full). Either way the store decides, so nothing a cache or a
        Redis outage forgot can be skipped.
        """
        ident = self.me
        if ident.role == "arbiter":
            raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "arbiters have no conversations to sync")
        hub, store, outbox = self.hub, self.hub.store, self.outbox
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
                outbox.message(r.id, message.seq, encode(message.view()))
            if len(missed) == limit:
                # Too much to push: the client pages the rest with ``history``.
                outbox.set_cursor(r.id, r.last_seq)
        listed = sorted(records, key=lambda r: (r.updated_at, r.id), reverse=True)[:SYNC_CONVERSATIONS]
        views = await self._views(listed)
        full = changed is None
        self.reply(
            {"type": "synced", "re": rid, "conversations": views, "full": full, "inbox": token,
             "more": len(records) > len(listed),
             "total_unread": await self._total_unread(records) if full else None}
        )
        for r in listed:  # presence of the counterparts the user is likely to look at
            if ident.role == "buyer" or r.agent in (ident.user, None):
                await self._follow(r.buyer, r.shop)

    async def _total_unread(self, records: list[ConversationRecord]) -> int:
        side = side_of(self.me.role) or "buyer"
        return sum((await self.hub.store.unread_counts([r.id for r in records], side)).values())

    async def _list(self, frame: f.ListConversations, rid: int | None) -> None:
        ident = self.me
        if ident.role == "arbiter":
            raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "arbiters have no conversations to list")
        before = None if frame.before_ts is None else (frame.before_ts, frame.before_id or "")
        owner = {"buyer": ident.user} if ident.role == "buyer" else {"shop": ident.shop or ""}
        page = await self.hub.store.recent_conversations(**owner, before=before, limit=frame.limit + 1)
        views = await self._views(page[: frame.limit])
        self.reply({"type": "conversations", "re": rid, "conversations": views, "more": len(page) > frame.limit})

    async def _history(self, frame: f.History, rid: int | None) -> None:
        record = await self._conversation(frame.conv, evidence=True)
        before = frame.before
        if before is None and frame.after is None:
            before = 2**53  # the latest page
        messages = await self.hub.store.messages(
            record.id, after=frame.after or 0, before=before, limit=frame.limit + 1
        )
        more = len(messages) > frame.limit
        if more:
            messages = messages[1:] if before is not None else messages[: frame.limit]
        self.reply(
            {"type": "history", "re": rid, "conv": record.id, "messages": [m.view() for m in messages], "more": more}
        )

    async def _read(self, frame: f.Read, rid: int | None) -> None:
        ident = self.me
        record = await self._conversation(frame.conv)
        side = side_of(ident.role)
        if side is None:  # arbiters read evidence; they have no read mark
            raise ProtocolError(ErrorCode.FORBIDDEN)
        store = self.hub.store
        mark = await store.set_read(record.id, side, frame.seq)
        unread = (await store.unread_counts([record.id], side))[record.id]
        current = await store.get_conversation(record.id) or record
        receipt = {"type": "receipt", "conv": record.id, "user": ident.user, "side": side, "seq": mark}
        own = [user_channel(ident.user)]
        if side == "shop" and current.agent and current.agent != ident.user:
            own.append(user_channel(current.agent))
        self.hub.publish_event(own, {**receipt, "unread": unread})
        self.hub.publish_event(counterpart_channels(ident, current), receipt)
        self.reply({"type": "ok", "re": rid})

    async def _typing(self, frame: f.Typing, rid: int | None) -> None:
        ident = self.me
        record = await self._conversation(frame.conv)
        # The cached record: a typing flag sent to an agent who just handed over is harmless,
        # and a store read per keystroke is not.
        self.hub.publish_event(
            counterpart_channels(ident, record),
            {"type": "typing", "conv": record.id, "user": ident.user, "active": frame.active},
        )
        if rid is not None:
            self.reply({"type": "ok", "re": rid})

    async def _recall(self, frame: f.Recall, rid: int | None) -> None:
        ident = self.me
        record = await self._conversation(frame.conv)
        hub = self.hub
        try:
            done = await hub.store.recall(
                record.id, frame.seq, ident.user, hub.clock.now_ms(), int(hub.config.recall_window * 1000)
            )
        except NotFound as exc:
            raise ProtocolError(ErrorCode.NOT_FOUND) from exc
        except RecallRefused as exc:
            raise ProtocolError(_RECALL_ERRORS[exc.reason]) from exc
        await hub.fan_out(record, done.message, done.agent, None, epoch_seconds())
        self.reply({"type": "ok", "re": rid})

    async def _presence(self, frame: f.SetPresence, rid: int | None) -> None:
        await self.hub.set_status(self, frame.status)
        self.reply({"type": "ok", "re": rid})

    async def _assign(self, frame: f.Assign, rid: int | None) -> None:
        ident = self.me
        if ident.role != "agent":
            raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only the shop's agents hand conversations over")
        record = await self._conversation(frame.conv)
        if frame.agent not in await self.hub.store.agent_loads(record.shop):
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such agent in this shop")
        await self._hand_to(record, frame.agent, f"{ident.user} handed the conversation over to {frame.agent}")
        self.reply({"type": "ok", "re": rid})

    async def _hand_to(self, record: ConversationRecord, agent: str, text: str) -> None:
        """Assign and post the system note that tells everyone (and routes it live)."""
        hub = self.hub
        by = self.me.user
        before = await hub.store.get_conversation(record.id)
        updated = await hub.store.assign(record.id, agent)
        hub.remember(updated)
        body = {"text": text, "event": "assigned", "agent": agent, "by": by}
        done = await hub.store.append(record.id, "system", "system", "system", body, None, hub.clock.now_ms())
        await hub.fan_out(updated, done.message, done.agent, None, epoch_seconds())
        if before is not None and before.agent != done.agent:
            # Whoever received it live until now (the previous agent, or the whole shop
            # while unassigned) is told this last time.
            previous = user_channel(before.agent) if before.agent else shop_channel(record.shop)
            hub.notify(previous, updated, done.message)

    async def _set_auto_reply(self, frame: f.AutoReply, rid: int | None) -> None:
        ident = self.me
        if ident.role != "agent" or ident.shop is None:
            raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only the shop's agents have auto-replies")
        stored = await self.hub.store.set_auto_reply(ident.shop, ident.user, frame.active, frame.text)
        self.hub.remember_auto_reply(ident.shop, ident.user, stored if frame.active else None)
        if frame.active and not stored:
            problem = [{"field": "text", "problem": "required the first time it is switched on"}]
            raise ProtocolError(ErrorCode.INVALID_FIELDS, details=problem)
        self.reply({"type": "ok", "re": rid})

    async def _stats(self, frame: f.Stats, rid: int | None) -> None:
        ident = self.me
        if ident.role != "agent" or ident.shop is None:
            raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only the shop's agents see its response figures")
        since = self.hub.clock.now_ms() - frame.days * DAY_MS
        times = await self.hub.store.first_responses(ident.shop, since)
        self.reply({"type": "stats", "re": rid, **summarize(ident.shop, since, times)})

    async def _ping(self, frame: f.Ping, rid: int | None) -> None:
        self.reply({"type": "pong", "re": rid, "ts": self.hub.clock.now_ms()})

