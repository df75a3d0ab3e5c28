"""Requests about messages in one conversation: send, history, read, typing, recall,
and the hand-over note that a first answer or an ``assign`` posts."""

from __future__ import annotations

import dataclasses
import logging

from .. import presend, webhook_events
from ..clock import epoch_seconds
from ..detect import screen as offplatform
from ..hub import Hub
from ..protocol import frames as f
from ..protocol.errors import ErrorCode, ProtocolError
from ..protocol.views import ack_frame, msg_frame, ok_frame, receipt_frame, typing_frame
from ..routing import counterpart_channels, shop_channel, user_channel, user_entity
from ..store.base import ClientIdReused, ConversationRecord, NotFound, RecallRefused, Role, side_of
from . import safety
from .context import Connection, Handler

log = logging.getLogger(__name__)

AUTO_REPLY_PERIOD_MS = 30 * 60_000
"""An away agent's auto-reply goes out at most once per conversation in each such period."""

_RECALL_ERRORS = {
    "window": ErrorCode.RECALL_WINDOW_PASSED,
    "sender": ErrorCode.NOT_YOUR_MESSAGE,
    "kind": ErrorCode.NOT_RECALLABLE,
}


async def send(c: Connection, frame: f.Send, rid: int | None) -> None:
    """Store and route a message (the session has admitted it: see ``chat.admission``)."""
    ident = c.me
    hub = c.hub
    now = hub.clock.now_ms()
    t0 = epoch_seconds()
    record = await c.conversation(frame.conv)
    if not c.limiter.allow(ident.user, now):
        retry = int(1000 / max(0.001, hub.config.rate_per_second))
        raise ProtocolError(ErrorCode.RATE_LIMITED, details={"retry_after_ms": retry})
    body = frame.body.model_dump(exclude_defaults=True)  # "auto" only when it is true
    kind = body.pop("kind")
    if kind == "product":  # a shared card is never the marketplace's signed word: that is the hub's to say
        body["listing"] = {k: v for k, v in body["listing"].items() if k not in ("verified", "signed_at")}
    role: Role = "buyer" if ident.role == "buyer" else "agent"
    await safety.check_not_blocked(hub, record, ident.role)
    if kind == "text":  # may add flags, mask, or refuse (OFF_PLATFORM_ACTION), then ask PRESEND_URL
        try:
            await offplatform.screen(hub, record.id, ident.user, body, frame.cmid)
        except ProtocolError as exc:
            if exc.code == ErrorCode.OFF_PLATFORM_BLOCKED and hub.webhooks is not None:
                flags = list(exc.details["flags"]) if isinstance(exc.details, dict) else []
                await hub.store.add_events(
                    record.id, [webhook_events.blocked(hub, record, ident.user, frame.cmid, flags)], now)
                hub.webhooks()
            raise
        await presend.check(hub, record.id, ident.user, role, body, frame.cmid)
    # Only while webhooks go out: the offline check is a presence read per message.
    events = () if hub.webhooks is None else await webhook_events.for_message(
        hub, record, ident.user, role, kind, body, now)
    c.outbox.posting(record.id, ident.user, frame.cmid)
    try:
        done = await hub.store.append(record.id, ident.user, role, kind, body, frame.cmid, now, events)
    except ClientIdReused as exc:
        raise ProtocolError(ErrorCode.CLIENT_ID_REUSED) from exc
    if events and hub.webhooks is not None:
        hub.webhooks()
    if not done.duplicate:
        hub.metrics.messages.inc()
    if done.agent != record.agent:  # a hand-over made on another node: refresh the cache
        record = dataclasses.replace(record, agent=done.agent)
        hub.remember(record)
    # A duplicate fans out again: if the first attempt died between commit and
    # notice, this is what gets the message to the other side (cursors dedupe).
    await hub.fan_out(record, done.message, done.agent, c.id, t0)
    if not done.duplicate and offplatform.should_warn(hub, body):
        hub.run_detached(offplatform.warn_buyer(hub, record))
    # The ack must not overtake a lower seq on its way to this connection (a client's
    # resume cursor counts acked seqs): if one is still in flight between nodes, the
    # outbox fills it from the store and the ack queues behind it.
    c.outbox.message(record.id, done.message.seq, b"", echo=False)
    if done.agent is None and ident.role == "agent" and not done.duplicate:
        # An unassigned conversation belongs to the first agent who answers it.
        await hand_to(hub, record, ident.user, ident.user, f"{ident.user} is now looking after this conversation")
    message = done.message
    c.reply(ack_frame(rid, record.id, frame.cmid, message.seq, message.ts, done.duplicate))
    if ident.role == "buyer" and not done.duplicate and done.agent is not None:
        known, text = hub.cached_auto_reply(record.shop, done.agent)
        if known and not text:
            return  # the common case: no away message, and no work per message
        hub.run_detached(_auto_reply(hub, record, done.agent))


async def _auto_reply(hub: Hub, record: ConversationRecord, agent: str) -> None:
    """Answer for an agent who is away or offline, at most once per conversation per period.

    The message id names the period, so every node (and a retried buyer message)
    agrees on whether the reply was already sent: the store keeps one."""
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


async def hand_to(hub: Hub, record: ConversationRecord, agent: str, by: str, text: str) -> None:
    """Assign and post the system note that tells everyone (and routes it live)."""
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


async def history(c: Connection, frame: f.History, rid: int | None) -> None:
    record = await c.conversation(frame.conv, evidence=True)
    before = frame.before
    if before is None and frame.after is None:
        before = 2**53  # the latest page
    messages = await c.hub.store.messages(record.id, after=frame.after or 0, before=before, limit=frame.limit + 1)
    more = len(messages) > frame.limit
    if more:
        messages = messages[1:] if before is not None else messages[: frame.limit]
    page = [msg_frame(m) for m in messages]
    c.reply({"type": "history", "re": rid, "conv": record.id, "messages": page, "more": more})


async def read(c: Connection, frame: f.Read, rid: int | None) -> None:
    ident = c.me
    record = await c.conversation(frame.conv)
    side = side_of(ident.role)
    if side is None:  # arbiters read evidence; they have no read mark
        raise ProtocolError(ErrorCode.FORBIDDEN)
    hub, store = c.hub, c.hub.store
    mark = await store.set_read(record.id, side, frame.seq)
    unread = (await store.unread_counts([record.id], side))[record.id]
    current = await store.get_conversation(record.id) or record
    own = [user_channel(ident.user)]
    if side == "shop" and current.agent and current.agent != ident.user:
        own.append(user_channel(current.agent))
    hub.publish_event(own, receipt_frame(record.id, ident.user, side, mark, unread))
    hub.publish_event(counterpart_channels(ident, current), receipt_frame(record.id, ident.user, side, mark))
    c.reply(ok_frame(rid))


async def typing(c: Connection, frame: f.Typing, rid: int | None) -> None:
    ident = c.me
    record = await c.conversation(frame.conv)
    # The cached record: a typing flag sent to an agent who just handed over is harmless,
    # and a store read per keystroke is not.
    c.hub.publish_event(counterpart_channels(ident, record), typing_frame(record.id, ident.user, frame.active))
    if rid is not None:
        c.reply(ok_frame(rid))


async def recall(c: Connection, frame: f.Recall, rid: int | None) -> None:
    ident = c.me
    record = await c.conversation(frame.conv)
    hub = c.hub
    try:
        done = await hub.store.recall(
            record.id, frame.seq, ident.user, hub.clock.now_ms(), int(hub.config.recall_window * 1000)
        )
    except NotFound as exc:
        raise ProtocolError(ErrorCode.NOT_FOUND) from exc
    except RecallRefused as exc:
        raise ProtocolError(_RECALL_ERRORS[exc.reason]) from exc
    await hub.fan_out(record, done.message, done.agent, None, epoch_seconds())
    c.reply(ok_frame(rid))


HANDLERS: dict[type, Handler] = {
    f.Send: send,
    f.History: history,
    f.Read: read,
    f.Typing: typing,
    f.Recall: recall,
}
