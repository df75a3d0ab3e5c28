"""One connection's requests: authenticate, check access, call the store, reply.

Frames are handled one at a time in arrival order, so a client's messages get
increasing seqs in the order it sent them. Every failure becomes an ``error``
frame answering the request's ``id``; only repeated protocol garbage, a bad
token or an expired one closes the connection.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from .arbiter_access import arbiter_may_read
from .auth import Identity
from .backends.base import Status
from .clock import epoch_seconds
from .handlers import Handler
from .hub import Hub
from .outbox import Outbox, Transport
from .protocol import frames as f
from .protocol.codec import CLIENT_TYPES, request_id, unpack, validate
from .protocol.errors import CloseCode, ErrorCode, ProtocolError
from .protocol.views import error_frame, presence_frame
from .ratelimit import RateLimiter
from .routing import can_access, presence_channel, shop_entity, user_entity
from .store.base import ConversationRecord, MessageRecord

log = logging.getLogger(__name__)


class Session:
    """One websocket connection: the :class:`~chat.subscriber.Subscriber` the hub routes to
    and the :class:`~chat.handlers.Connection` its requests are handled over."""

    # Slots: a node holds tens of thousands of these (bench/idle.py counts the bytes).
    __slots__ = ("_background", "_handlers", "bad_frames", "closing", "ended", "following", "hub", "id",
                 "identity", "limiter", "outbox", "status", "watched")

    def __init__(
        self, hub: Hub, transport: Transport, limiter: RateLimiter, handlers: dict[type, Handler]
    ) -> None:
        self.hub = hub
        self.id = uuid.uuid4().hex
        self.identity: Identity | None = None
        self.status: Status = "online"
        self.watched: set[str] = set()
        self.following: set[str] = set()
        """Counterpart presence entities this connection follows (or is starting to)."""
        self.bad_frames = 0
        self.closing = False
        """A close was decided (bad token, too many bad frames): later frames are not handled."""
        self.ended = False
        """The connection is gone and the session detached: nothing may subscribe it again."""
        self._background: set[asyncio.Task[None]] | None = None
        """Work running beside the request loop; made on first use (most connections never
        have any, and an empty set is 216 bytes on every idle connection)."""
        self.limiter = limiter
        self._handlers = handlers
        self.outbox = Outbox(
            transport,
            self._fetch_between,
            limit_bytes=hub.config.outbox_bytes,
            on_write=self._observe,
            on_slow=hub.metrics.slow_consumers.inc,
            on_gap=hub.metrics.gap_fills.inc,
        )

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

    def deliver(self, data: bytes) -> None:
        self.outbox.send_bytes(data)

    def error(self, exc: ProtocolError, rid: int | None) -> None:
        self.hub.metrics.errors.labels(code=str(exc.code)).inc()
        self.reply(error_frame(rid, exc.code, exc.message, exc.details))

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
        if self._background is None:
            self._background = set()
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
            self.hub.metrics.frame_in(kind if kind in CLIENT_TYPES else "unknown")
            if kind == "send" and self.identity is not None:
                # Admitted before the frame is even validated: refusing must cost little,
                # since an overloaded node refuses more than it takes (chat.admission).
                retry = self.hub.admission.enter()
                if retry is not None:
                    raise ProtocolError(ErrorCode.OVERLOADED, details={"retry_after_ms": retry})
                try:
                    await self._dispatch(obj, rid)
                finally:
                    self.hub.admission.leave()
            else:
                await self._dispatch(obj, rid)
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

    async def _dispatch(self, obj: Any, rid: int | None) -> None:
        frame = validate(obj)
        if isinstance(frame, f.Auth):
            await self.authenticate(frame.token, rid)
            return
        if self.identity is None:
            raise ProtocolError(ErrorCode.NOT_AUTHENTICATED)
        await self._handlers[type(frame)](self, frame, rid)

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
            identity = self.hub.tokens.verify(token)
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
        for task in list(self._background or ()):
            task.cancel()
        await self.hub.detach(self)

    # --- access ---------------------------------------------------------------

    async def conversation(self, conv_id: str, *, evidence: bool = False) -> ConversationRecord:
        """The conversation if this user may read and write it (``evidence``: an arbiter may
        read one that is or was disputed, or was reported); else NOT_FOUND / FORBIDDEN."""
        ident = self.me
        record = await self.hub.conversation(conv_id)
        if record is None:
            raise ProtocolError(ErrorCode.NOT_FOUND)
        # An arbiter reads (never writes) a conversation whose order is or was disputed, or
        # that a party reported (chat.arbiter_access).
        if evidence and ident.role == "arbiter" and await arbiter_may_read(self.hub, record.id):
            return record
        if not can_access(ident, record):
            # Same answer whether or not it exists would leak less, but clients need
            # to tell "wrong id" from "not yours"; ids are unguessable anyway.
            raise ProtocolError(ErrorCode.FORBIDDEN)
        return record

    def _counterpart(self, buyer: str, shop: str) -> str:
        """The presence entity this user watches in a conversation: the shop, or the buyer."""
        return shop_entity(shop) if self.me.role == "buyer" else user_entity(buyer)

    def claim_follow(self, buyer: str, shop: str) -> str | None:
        """The counterpart entity to start following, or None if this connection already does
        (claimed synchronously, so a concurrent notice cannot start a second follow)."""
        entity = self._counterpart(buyer, shop)
        if entity in self.following:
            return None
        self.following.add(entity)
        return entity

    async def follow(self, buyer: str, shop: str) -> None:
        """Watch the counterpart's presence and send its current state once."""
        entity = self.claim_follow(buyer, shop)
        if entity is not None:
            await self.follow_entity(entity)

    async def follow_entity(self, entity: str) -> None:
        await self.watch(presence_channel(entity))
        now = self.hub.clock.now_ms()
        state = (await self.hub.presence.get([entity], now))[entity]
        self.reply(presence_frame(entity, state.status, state.last_seen))

    def on_message(
        self, conv: str, seq: int, frame: bytes, origin: str | None, t0: float, buyer: str, shop: str
    ) -> None:
        """A message notice from the hub (any node)."""
        self.outbox.message(conv, seq, frame, echo=origin != self.id, t0=t0)
        if self.identity is not None and self._counterpart(buyer, shop) not in self.following:
            self.spawn(self._follow_quietly(buyer, shop))

    async def _follow_quietly(self, buyer: str, shop: str) -> None:
        try:
            await self.follow(buyer, shop)
        except Exception:
            log.warning("could not follow presence", exc_info=True)

    async def set_status(self, status: str) -> None:
        await self.hub.set_status(self, "away" if status == "away" else "online")
