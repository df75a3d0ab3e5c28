"""Requests about people rather than one message: presence, hand-over, an agent's away
reply, the shop's response figures, agents' display names, and the application ping."""

from __future__ import annotations

from ..protocol import frames as f
from ..protocol.errors import ErrorCode, ProtocolError
from ..protocol.views import ok_frame
from ..responsiveness import DAY_MS, summarize
from .context import Connection, Handler
from .messages import hand_to


async def set_presence(c: Connection, frame: f.SetPresence, rid: int | None) -> None:
    await c.set_status(frame.status)
    c.reply(ok_frame(rid))


async def assign(c: Connection, frame: f.Assign, rid: int | None) -> None:
    ident = c.me
    if ident.role != "agent":
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only the shop's agents hand conversations over")
    record = await c.conversation(frame.conv)
    if frame.agent not in await c.hub.store.agent_loads(record.shop):
        raise ProtocolError(ErrorCode.NOT_FOUND, "no such agent in this shop")
    text = f"{ident.user} handed the conversation over to {frame.agent}"
    await hand_to(c.hub, record, frame.agent, ident.user, text)
    c.reply(ok_frame(rid))


async def set_auto_reply(c: Connection, frame: f.AutoReply, rid: int | None) -> None:
    ident = c.me
    if ident.role != "agent" or ident.shop is None:
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only the shop's agents have auto-replies")
    stored = await c.hub.store.set_auto_reply(ident.shop, ident.user, frame.active, frame.text)
    c.hub.remember_auto_reply(ident.shop, ident.user, stored if frame.active else None)
    if frame.active and not stored:
        problem = [{"field": "text", "problem": "required the first time it is switched on"}]
        raise ProtocolError(ErrorCode.INVALID_FIELDS, details=problem)
    c.reply(ok_frame(rid))


async def stats(c: Connection, frame: f.Stats, rid: int | None) -> None:
    ident = c.me
    if ident.role != "agent" or ident.shop is None:
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only the shop's agents see its response figures")
    since = c.hub.clock.now_ms() - frame.days * DAY_MS
    times = await c.hub.store.first_responses(ident.shop, since)
    c.reply({"type": "stats", "re": rid, **summarize(ident.shop, since, times)})


async def agents(c: Connection, frame: f.AgentsRequest, rid: int | None) -> None:
    """Names and avatars of a shop's agents, so clients never show raw ids; only to whoever
    talks with that shop (a buyer with a conversation there, its own agents, arbiters)."""
    ident = c.me
    if ident.role == "agent" and ident.shop != frame.shop:
        raise ProtocolError(ErrorCode.FORBIDDEN, "agents see only their own shop's agents")
    if ident.role == "buyer" and not any(
        conv.shop == frame.shop for conv in await c.hub.store.conversations_of_buyer(ident.user)
    ):
        raise ProtocolError(ErrorCode.FORBIDDEN, "you have no conversation with this shop")
    profiles = await c.hub.store.agent_profiles(frame.shop)
    views = {agent: {"name": p.name, "avatar": p.avatar} for agent, p in sorted(profiles.items())}
    c.reply({"type": "agents", "re": rid, "shop": frame.shop, "agents": views})


async def ping(c: Connection, frame: f.Ping, rid: int | None) -> None:
    c.reply({"type": "pong", "re": rid, "ts": c.hub.clock.now_ms()})


HANDLERS: dict[type, Handler] = {
    f.SetPresence: set_presence,
    f.Assign: assign,
    f.AutoReply: set_auto_reply,
    f.Stats: stats,
    f.Ping: ping,
    f.AgentsRequest: agents,
}
