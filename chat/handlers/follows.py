"""Following a shop and the shop's broadcasts: ``follow``, ``unfollow``, ``follow_state``
(buyers), ``followers``, ``broadcast``, ``broadcasts`` (the shop's agents).

A buyer follows a shop from one of its conversations with it (or, without ``conv``, its
latest one); that conversation is where the shop's broadcasts arrive. A ``broadcast`` only
records the job, at most ``BROADCAST_LIMIT`` per shop per ``BROADCAST_WINDOW_HOURS`` (else
``BROADCAST_LIMITED``, 4009, with ``retry_after_ms``), idempotent by the agent's ``key``, and
returns at once; :mod:`chat.broadcasts` delivers it in batches in the background.
"""

from __future__ import annotations

from typing import Any

from .. import broadcasts
from ..protocol import follow_frames as ff
from ..protocol.errors import ErrorCode, ProtocolError
from ..store.base import BroadcastRecord, BroadcastTooSoon, FollowRecord
from .context import Connection, Handler

HOUR_MS = 3_600_000


def following_frame(rid: int | None, shop: str, follow: FollowRecord | None) -> dict[str, Any]:
    return {"type": "following", "re": rid, "shop": shop, "following": follow is not None,
            "since": None if follow is None else follow.created_at, "conv": None if follow is None else follow.conv}


def broadcast_view(job: BroadcastRecord) -> dict[str, Any]:
    return {"id": job.id, "shop": job.shop, "by": job.by, "key": job.key, "body": job.body,
            "created_at": job.created_at, "total": job.total, "delivered": job.delivered,
            "skipped": job.skipped, "done": job.done, "finished_at": job.finished_at}


def _buyer(c: Connection) -> str:
    if c.me.role != "buyer":
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only buyers follow shops")
    return c.me.user


def _agent_shop(c: Connection) -> str:
    if c.me.role != "agent" or not c.me.shop:
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only the shop's agents see its followers and broadcast")
    return c.me.shop


async def follow(c: Connection, frame: ff.Follow, rid: int | None) -> None:
    buyer = _buyer(c)
    store = c.hub.store
    conv: str | None = None
    if frame.conv is not None:
        record = await c.conversation(frame.conv)
        if record.shop != frame.shop:
            problem = [{"field": "conv", "problem": "is a conversation with another shop"}]
            raise ProtocolError(ErrorCode.INVALID_FIELDS, details=problem)
        conv = record.id
    else:
        mine = [r for r in await store.conversations_of_buyer(buyer) if r.shop == frame.shop]
        if mine:
            conv = max(mine, key=lambda r: (r.updated_at, r.id)).id
    done, _ = await store.follow(frame.shop, buyer, conv, c.hub.clock.now_ms())
    c.reply(following_frame(rid, frame.shop, done))


async def unfollow(c: Connection, frame: ff.Unfollow, rid: int | None) -> None:
    buyer = _buyer(c)
    await c.hub.store.unfollow(frame.shop, buyer)
    c.reply(following_frame(rid, frame.shop, None))


async def follow_state(c: Connection, frame: ff.FollowState, rid: int | None) -> None:
    buyer = _buyer(c)
    c.reply(following_frame(rid, frame.shop, await c.hub.store.get_follow(frame.shop, buyer)))


async def followers(c: Connection, frame: ff.Followers, rid: int | None) -> None:
    shop = _agent_shop(c)
    store = c.hub.store
    page = await store.followers(shop, after=frame.after or "", limit=frame.limit + 1)
    listed = [{"buyer": r.buyer, "since": r.created_at, "conv": r.conv, "blocked": r.blocked}
              for r in page[: frame.limit]]
    c.reply({"type": "followers", "re": rid, "shop": shop, "count": await store.follower_count(shop),
             "followers": listed, "more": len(page) > frame.limit})


async def send_broadcast(c: Connection, frame: ff.SendBroadcast, rid: int | None) -> None:
    shop = _agent_shop(c)
    hub = c.hub
    if frame.text is None and frame.listing is None:
        problem = [{"field": "text", "problem": "text or listing is required"}]
        raise ProtocolError(ErrorCode.INVALID_FIELDS, details=problem)
    if frame.offer is not None and frame.listing is None:
        problem = [{"field": "listing", "problem": "an offer needs a listing"}]
        raise ProtocolError(ErrorCode.INVALID_FIELDS, details=problem)
    now = hub.clock.now_ms()
    body: dict[str, Any] = {}
    if frame.text is not None:
        body["text"] = frame.text
    if frame.listing is not None:
        body["listing"] = {**frame.listing.model_dump(exclude_none=True, exclude={"signed_at"}), "verified": False}
    if frame.offer is not None:
        body["offer"] = {"price": frame.offer.price, "currency": frame.offer.currency,
                         "valid_until": now + frame.offer.valid_hours * HOUR_MS}
    cfg = hub.config
    try:
        job, created = await hub.store.add_broadcast(
            shop, frame.key, c.me.user, body, await hub.store.follower_count(shop), now,
            limit=cfg.broadcast_limit, window_ms=int(cfg.broadcast_window_hours * HOUR_MS),
        )
    except BroadcastTooSoon as exc:
        raise ProtocolError(ErrorCode.BROADCAST_LIMITED, details={"retry_after_ms": exc.retry_after_ms}) from exc
    runner = broadcasts.runner_of(hub)
    if created and runner is not None:
        runner.poke()
    c.reply({"type": "broadcast", "re": rid, "broadcast": broadcast_view(job), "duplicate": not created})


async def list_broadcasts(c: Connection, frame: ff.Broadcasts, rid: int | None) -> None:
    shop = _agent_shop(c)
    jobs = await c.hub.store.broadcasts_of_shop(shop, limit=frame.limit)
    c.reply({"type": "broadcasts", "re": rid, "broadcasts": [broadcast_view(j) for j in jobs]})


HANDLERS: dict[type, Handler] = {
    ff.Follow: follow,
    ff.Unfollow: unfollow,
    ff.FollowState: follow_state,
    ff.Followers: followers,
    ff.SendBroadcast: send_broadcast,
    ff.Broadcasts: list_broadcasts,
}
