"""Delivering a shop's broadcasts to its followers: a background runner, in batches.

A ``broadcast`` request only records a job (:meth:`chat.store.base.Follows.add_broadcast`)
and returns. A :class:`BroadcastRunner` (every hub node runs one with
``BROADCASTS_IN_HUB=on``; ``python -m chat worker`` runs one too) leases the oldest
unfinished job, walks the shop's followers in buyer-id order ``BROADCAST_BATCH`` at a time,
appends one ``broadcast`` message to each follower's conversation with the shop, stores the
job's cursor after every batch and pauses ``BROADCAST_PAUSE_MS`` so live chat keeps its turn
at the store.

Crash safety. Each follower's message has the client id ``~broadcast:<job id>`` in its
conversation, so a batch run again after a crash (the cursor was stored before it) finds the
messages already stored (``duplicate``) and writes nothing twice; the lease runs out
(``LEASE_MS``) and another runner, or the restarted node of the same ``NODE_ID`` at once,
continues from the cursor. Followers who follow after the job was recorded are not in it;
those who unfollow before their batch, or block (or are blocked by) the shop, get nothing.

Live delivery. A broadcast message is pushed only on the buyer's channel: the shop's agents
see it in the conversation's history, not as 100,000 live messages in the back office.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from typing import Any

from .hub import Hub
from .routing import user_channel
from .store.base import BroadcastRecord, ConversationRecord, FollowRecord
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)

LEASE_MS = 30_000
"""How long a runner holds a job without storing progress before another may take it."""
CHUNK = 50
"""Appends in flight at once within a batch (the store commits them together)."""
SHOP_LISTING_ID = "@shop"
"""The listing id of a buyer's conversation with the shop itself, opened for a follower who
has no conversation with the shop (``@`` never starts a marketplace listing id here)."""

_RUNNERS: weakref.WeakKeyDictionary[Hub, BroadcastRunner] = weakref.WeakKeyDictionary()


def runner_of(hub: Hub) -> BroadcastRunner | None:
    """The runner started for this hub (a ``broadcast`` request pokes it), if any."""
    return _RUNNERS.get(hub)


def message_cmid(broadcast_id: int) -> str:
    """The client id of a broadcast's message in each follower's conversation ("~" never
    appears in a client's cmid, so it cannot collide with one)."""
    return f"~broadcast:{broadcast_id}"


def message_body(job: BroadcastRecord) -> dict[str, Any]:
    """What every follower's ``broadcast`` message carries: the job's content, its id, and
    the ``unfollow`` frame that unsubscribes in one step."""
    return {**job.body, "broadcast": job.id, "shop": job.shop,
            "unsubscribe": {"type": "unfollow", "shop": job.shop}}


def shop_listing(shop: str) -> dict[str, Any]:
    return {"id": SHOP_LISTING_ID, "title": shop, "price": 0, "currency": "CNY", "verified": False}


class BroadcastRunner:
    def __init__(self, hub: Hub, *, owner: str | None = None, batch: int | None = None,
                 pause_ms: int | None = None, lease_ms: int = LEASE_MS, poll: float = 2.0,
                 chunk: int = CHUNK) -> None:
        self.hub = hub
        self.owner = owner or f"{hub.node}:{uuid.uuid4().hex[:8]}"
        self.batch = max(1, batch if batch is not None else hub.config.broadcast_batch)
        self.pause = max(0, pause_ms if pause_ms is not None else hub.config.broadcast_pause_ms) / 1000
        self.lease_ms = lease_ms
        self.poll = poll
        self.chunk = max(1, chunk)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        _RUNNERS[self.hub] = self
        self._task = asyncio.create_task(self._loop(), name="broadcasts")

    async def stop(self) -> None:
        if _RUNNERS.get(self.hub) is self:
            del _RUNNERS[self.hub]
        await cancel_and_wait(self._task)
        self._task = None

    def poke(self) -> None:
        """A job was recorded here: look now instead of at the next poll."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                worked = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.hub.backend_failed("broadcast delivery", exc)
                worked = False
            if not worked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll)
                self._wake.clear()

    async def run_once(self) -> bool:
        """Lease one unfinished job and work it to the end (or until the lease is lost);
        False when there was none."""
        store = self.hub.store
        job = await store.claim_broadcast(self.owner, self.hub.clock.now_ms(), self.lease_ms)
        if job is None:
            return False
        await self._work(job)
        return True

    async def _work(self, job: BroadcastRecord) -> None:
        store = self.hub.store
        cursor, delivered, skipped = job.cursor, job.delivered, job.skipped
        body = message_body(job)
        while True:
            page = await store.followers(job.shop, after=cursor, limit=self.batch, since_before=job.created_at)
            for start in range(0, len(page), self.chunk):
                part = page[start:start + self.chunk]
                chunk = [f for f in part if not f.blocked]
                skipped += len(part) - len(chunk)
                await asyncio.gather(*(self._deliver(job, body, f) for f in chunk))
                delivered += len(chunk)
            if page:
                cursor = page[-1].buyer
            finished = len(page) < self.batch
            if not await store.advance_broadcast(job.id, self.owner, cursor, delivered, skipped, finished,
                                                 self.hub.clock.now_ms(), self.lease_ms):
                log.info("broadcast %d: lease lost at %r, another runner continues", job.id, cursor)
                return
            if finished:
                log.info("broadcast %d of %s: %d delivered, %d skipped", job.id, job.shop, delivered, skipped)
                return
            if self.pause:
                await asyncio.sleep(self.pause)

    async def _deliver(self, job: BroadcastRecord, body: dict[str, Any], follow: FollowRecord) -> None:
        hub = self.hub
        record = await self._conversation(follow)
        done = await hub.store.append(record.id, job.by, "agent", "broadcast", body, message_cmid(job.id),
                                      hub.clock.now_ms())
        # A replayed batch's duplicates are pushed again: harmless (outboxes dedupe by seq),
        # and what reaches a buyer whose first push died with the process.
        hub.notify(user_channel(record.buyer), record, done.message)

    async def _conversation(self, follow: FollowRecord) -> ConversationRecord:
        hub = self.hub
        if follow.conv is not None:
            record = await hub.conversation(follow.conv)
            if record is not None:
                return record
        record, card = await hub.store.open_conversation(
            "c_" + uuid.uuid4().hex[:20], follow.buyer, follow.shop, shop_listing(follow.shop), None,
            hub.clock.now_ms(),
        )
        hub.remember(record)
        if card is not None:
            hub.notify(user_channel(record.buyer), record, card)
        return record


__all__ = ["BroadcastRunner", "message_body", "message_cmid", "runner_of"]
