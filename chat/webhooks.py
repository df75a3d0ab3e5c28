"""Webhooks to the marketplace: signed HTTP POSTs of the ledger's events, at least once.

The state lives in the ledger's database (:mod:`payments.webhooks`); this module only
sends. Each attempt is a POST of the stored JSON body with:

* ``Tradechat-Event-Id``: the delivery id; the same on every attempt, so the receiver
  deduplicates on it (delivery is at least once).
* ``Tradechat-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]``: HMAC-SHA256 with each
  active secret over ``"<t>.<body>"``. During a rotation both the new
  (``WEBHOOK_SECRET``) and the old (``WEBHOOK_SECRET_PREVIOUS``) secret sign, so a
  receiver that knows either accepts it; it should also refuse a ``t`` too far from now.

A 2xx answer within ``timeout`` is a delivery; anything else (an error status, a refused
connection, a timeout) is retried with exponential backoff and full jitter, up to
``retry_for_ms`` from the first attempt; then the delivery is kept as failed until it is
replayed through the server API. Any number of senders may run (hub nodes, workers): the
outbox hands each attempt to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from payments.webhooks import Delivery, WebhookOutbox, event_body

from .store.chat_events import ChatEvent, ChatEvents
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)

PRUNE_EVERY = 3600.0
"""Seconds between two prunings of delivered webhooks."""

SIGNATURE_HEADER = "Tradechat-Signature"
EVENT_ID_HEADER = "Tradechat-Event-Id"


def sign(body: bytes, secrets: Sequence[str], timestamp: int) -> str:
    """The signature header's value for ``body`` at ``timestamp`` (unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    parts = [f"t={timestamp}"]
    parts += [f"v1={hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()}" for s in secrets if s]
    return ",".join(parts)


def verify(body: bytes, header: str, secret: str, *, now: float | None = None, tolerance: int = 300) -> bool:
    """What a receiver does: some ``v1`` matches ``secret`` and ``t`` is recent. Kept here
    as the reference (the tests and the README use it)."""
    fields = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in fields if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamps[0])) > tolerance:
        return False
    expected = sign(body, [secret], int(stamps[0])).split(",", 1)[1].removeprefix("v1=")
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in fields)


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    secrets: tuple[str, ...]
    """Current secret first, then the previous one during a rotation."""
    timeout: float = 10.0
    retry_for_ms: int = 72 * 3_600_000
    base_delay_ms: int = 5_000
    max_delay_ms: int = 3_600_000
    concurrency: int = 16
    interval: float = 0.5
    coalesce: float = 0.05
    """Seconds a pass waits after being woken, so the events of a burst go in one pass:
    each pass costs a few transactions whatever it carries."""
    retention_ms: int = 30 * 86_400_000
    """Delivered webhooks are forgotten this long after they arrived (failed ones never)."""


def chat_event_body(event: ChatEvent) -> str:
    """The signed JSON of one chat event: the envelope of every webhook, with the
    conversation (and the message's seq, when there is one) first in ``data``."""
    data: dict[str, Any] = {"conversation_id": event.conv}
    if event.seq:
        data["seq"] = event.seq
    data.update(event.data)
    return event_body(event.event_id, event.type, event.created_at, data)


async def move_chat_events(store: ChatEvents, outbox: WebhookOutbox, limit: int = 500) -> int:
    """Queue pending chat events as webhooks, then drop them from the store; returns how
    many were moved (``limit``: there may be more). Safe to run in many processes at once
    (see :mod:`chat.store.chat_events`)."""
    events = await store.pending_events(limit)
    if events:
        await asyncio.to_thread(outbox.queue, [(e.event_id, e.type, chat_event_body(e)) for e in events])
        await store.drop_events([e.id for e in events])
    return len(events)


def backoff_ms(attempts: int, base_ms: int, cap_ms: int, rng: random.Random | None = None) -> int:
    """Exponential backoff with "full jitter" (uniform up to the exponential step), so a
    receiver that comes back is not hit by every sender's retries in the same second."""
    step = min(cap_ms, base_ms * 2 ** max(0, attempts - 1))
    return max(1, int((rng or random).uniform(step / 2, step)))


class WebhookSender:
    """Ingests ledger events into the outbox and sends due deliveries, forever; with
    ``chat_events`` (a hub node's chat store) it also moves the chat's events into the
    outbox (:mod:`chat.webhook_events`). ``deliver=False`` only moves chat events: a hub
    whose timers run elsewhere leaves sending to the processes that run them."""

    def __init__(self, outbox: WebhookOutbox, settings: WebhookSettings, *,
                 chat_events: ChatEvents | None = None, deliver: bool = True) -> None:
        self.outbox = outbox
        self.settings = settings
        self.chat_events = chat_events
        self.deliver = deliver
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._task = asyncio.create_task(self._loop(), name="webhook-sender")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def poke(self) -> None:
        """Something new may be due (a command committed): look now, not at the next tick."""
        self._wake.set()

    async def _loop(self) -> None:
        pruned_at = 0.0
        while True:
            try:
                await self.run_once()
                if self.deliver and time.monotonic() - pruned_at > PRUNE_EVERY:
                    pruned_at = time.monotonic()
                    await self._prune()
            except Exception:
                log.warning("webhook delivery pass failed; retrying", exc_info=True)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.interval)
                await asyncio.sleep(self.settings.coalesce)  # let the rest of a burst join this pass

    async def _prune(self) -> None:
        before = self.outbox.clock() - self.settings.retention_ms  # the clock delivered_at is in
        for _ in range(1000):  # a thousand rows per transaction, a million per pruning at most
            if await asyncio.to_thread(self.outbox.prune, before) < 1000:
                return

    async def run_once(self) -> int:
        """One pass: queue new events, then send everything due; returns attempts made."""
        if self.chat_events is not None:
            while await move_chat_events(self.chat_events, self.outbox) >= 500:
                pass
        if not self.deliver:
            return 0
        while await asyncio.to_thread(self.outbox.ingest) >= 500:
            pass
        # A lease longer than one attempt can take, so a live sender's attempt is never
        # handed to another one; a dead sender's comes back when it ends.
        lease_ms = int(self.settings.timeout * 1000) * 2 + 5_000
        made = 0
        while True:
            due = await asyncio.to_thread(self.outbox.claim, lease_ms, self.settings.concurrency)
            if not due:
                return made
            errors = await asyncio.gather(*(self._attempt(d) for d in due))
            done = [d.id for d, error in zip(due, errors, strict=True) if error is None]
            if done:
                await asyncio.to_thread(self.outbox.delivered, *done)
            made += len(due)
            if len(due) < self.settings.concurrency:
                return made  # that was all that was due: no second claim to find nothing

    async def _attempt(self, delivery: Delivery) -> str | None:
        """Send once; None when the receiver took it, else the error (already scheduled)."""
        if self._session is None:
            raise RuntimeError("the webhook sender is not started")
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: delivery.id,
            SIGNATURE_HEADER: sign(body, self.settings.secrets, int(time.time())),
            "User-Agent": "tradechat-webhooks/1",
        }
        error: str | None = None
        try:
            async with self._session.post(self.settings.url, data=body, headers=headers) as resp:
                await resp.read()
                if not 200 <= resp.status < 300:
                    error = f"HTTP {resp.status}"
        except TimeoutError:
            error = f"no answer within {self.settings.timeout:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            return None
        delay = backoff_ms(delivery.attempts, self.settings.base_delay_ms, self.settings.max_delay_ms)
        state = await asyncio.to_thread(
            self.outbox.attempt_failed, delivery, error, delay, self.settings.retry_for_ms)
        if state == "failed":
            log.warning("webhook %s failed for good after %d attempts: %s", delivery.id, delivery.attempts, error)
        else:
            log.info("webhook %s attempt %d failed (%s); next in %.1f s",
                     delivery.id, delivery.attempts, error, delay / 1000)
        return error
