"""One hub node: local connections, broker channels, fan-out and presence.

The hub routes; it does not interpret requests (``handlers/`` do) or keep
messages (the store does). For each committed message it publishes the encoded
``msg`` frame once per channel; every node subscribed to that channel hands it
to its local connections' outboxes, which keep per-conversation order. What a
device missed while away is found in the store (``sync``), never here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import msgpack

from .admission import Admission
from .auth import VerifiedTokens
from .backends.base import Broker, Presence, PresenceState, Status
from .clock import Clock, epoch_seconds
from .config import Config
from .loopwatch import LoopWatch
from .metrics import Metrics
from .protocol.codec import encode
from .protocol.views import msg_frame, presence_frame
from .routing import (
    live_channels,
    presence_channel,
    shop_channel,
    shop_entity,
    user_channel,
    user_entity,
)
from .store.base import BlockRecord, ConversationRecord, MessageRecord, Store
from .subscriber import Subscriber
from .tasks import cancel_and_wait

log = logging.getLogger(__name__)

MSG, EVENT = 0, 1
"""Envelope kinds on broker channels: a stored message notice, or a ready frame."""

BEAT_SLICE = 500
"""Connections whose presence one heartbeat step refreshes before letting other work run."""


def _presence(state: PresenceState) -> dict[str, Any]:
    return presence_frame(state.entity, state.status, state.last_seen)


class Hub:
    def __init__(
        self,
        config: Config,
        store: Store,
        broker: Broker,
        presence: Presence,
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.broker = broker
        self.presence = presence
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.tokens = VerifiedTokens(config.token_secret)
        self.node = config.node_id
        self._subs: dict[str, set[Subscriber]] = {}
        self._pending_subs: dict[str, asyncio.Future[None]] = {}
        self._subscribers: set[Subscriber] = set()
        self._conversations: dict[str, ConversationRecord] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._detached: set[asyncio.Task[None]] = set()
        self._auto_replies: dict[tuple[str, str], tuple[int, str | None]] = {}
        self._blocks: dict[tuple[str, str], list[BlockRecord]] = {}
        self._blocks_generation = 0
        self.caches: dict[str, object] = {}
        """Per-node state a handler module keeps between requests, by the module's name
        (the hub does not interpret it)."""
        self.alone = False
        """This node is the store's only writer (the embedded default: no broker to other
        nodes), so what it caches of the store cannot be changed behind its back."""
        self._backend_warned: dict[str, float] = {}
        self.unreachable: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
        """What backends raise while they cannot be reached: such a failure is an outage to
        report once (and answer 5002), not a bug to log with a traceback per request."""
        self._loop_watch: LoopWatch | None = None
        self.admission = Admission(config.overload_ms, config.overload_min_pending)
        """Whether a ``send`` is taken now or refused for overload (:mod:`chat.admission`)."""
        self.webhooks: Callable[[], None] | None = None
        """Set while a webhook sender in this process moves chat events (it wakes it): then
        requests write their events (:mod:`chat.webhook_events`); otherwise none are written."""
        self.disputed: Callable[[str], Awaitable[bool]] | None = None
        """Whether a conversation's order is or was disputed (its arbiters may then read it);
        set where payments are enabled."""

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        await self.store.start()
        await self.broker.start(self._on_broker)
        if self.config.loop_stall_ms > 0:
            self._loop_watch = LoopWatch(self.metrics, self.config.loop_stall_ms / 1000, self.admission)
            self._loop_watch.start()
        self._tasks.append(asyncio.create_task(self._presence_loop(), name="presence-loop"))

    async def stop(self) -> None:
        for task in self._detached:
            task.cancel()
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()
        if self._loop_watch is not None:
            await self._loop_watch.stop()
        now = self.clock.now_ms()
        for subscriber in list(self._subscribers):
            await self._presence_gone(subscriber, now)
        await self.broker.close()
        await self.presence.close()
        await self.store.close()

    async def ready(self) -> dict[str, bool]:
        """Each backend's reachability, for ``/readyz``."""
        checks: dict[str, bool] = {}
        for name, probe in (
            ("store", self.store.ping),
            ("broker", self.broker.ping),
            ("presence", self.presence.ping),
        ):
            try:
                checks[name] = bool(await asyncio.wait_for(probe(), 2.0))
            except Exception:
                checks[name] = False
        return checks

    # --- conversations cache --------------------------------------------------

    async def conversation(self, conv_id: str) -> ConversationRecord | None:
        """Buyer and shop never change, so a cached record is safe for access checks;
        its ``agent`` may be stale (hand-overs on other nodes): read the store for that."""
        record = self._conversations.get(conv_id)
        if record is None:
            record = await self.store.get_conversation(conv_id)
            if record is not None:
                self.remember(record)
        return record

    def run_detached(self, work: Coroutine[Any, Any, None]) -> None:
        """Run work that must outlive the connection that caused it (an agent's auto-reply
        to a buyer who left at once); it stops with the node."""
        task = asyncio.ensure_future(work)
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)

    def remember(self, record: ConversationRecord) -> None:
        if len(self._conversations) > 100_000:
            self._conversations.clear()
        self._conversations[record.id] = record

    # --- agents' away messages ------------------------------------------------

    AUTO_REPLY_TTL_MS = 10_000

    def cached_auto_reply(self, shop: str, agent: str) -> tuple[bool, str | None]:
        """(known, text) without I/O: buyer messages check this on every send."""
        entry = self._auto_replies.get((shop, agent))
        if entry is None or self.clock.now_ms() - entry[0] > self.AUTO_REPLY_TTL_MS:
            return False, None
        return True, entry[1]

    async def auto_reply(self, shop: str, agent: str) -> str | None:
        """The agent's away message if switched on; read through a short per-node cache
        (a change made on another node shows here within ``AUTO_REPLY_TTL_MS``)."""
        known, text = self.cached_auto_reply(shop, agent)
        if not known:
            text = await self.store.auto_reply(shop, agent)
            self.remember_auto_reply(shop, agent, text)
        return text

    def remember_auto_reply(self, shop: str, agent: str, text: str | None) -> None:
        if len(self._auto_replies) > 100_000:
            self._auto_replies.clear()
        self._auto_replies[(shop, agent)] = (self.clock.now_ms(), text)

    # --- blocks between buyers and shops ------------------------------------------

    async def blocks_between(self, shop: str, buyer: str) -> list[BlockRecord]:
        """The pair's blocks. Every ``send`` checks them and they almost never change, so a
        node alone on its store caches them (changes go through :meth:`blocks_changed`).
        Nodes that share a store read it every time: a block made on another node must stop
        the very next message here, which no broker announcement could promise."""
        if not self.alone:
            return await self.store.blocks_between(shop, buyer)
        key = (shop, buyer)
        cached = self._blocks.get(key)
        if cached is not None:
            return cached
        generation = self._blocks_generation
        blocks = await self.store.blocks_between(shop, buyer)
        # A change made while the store was read may not be in what it returned.
        if generation == self._blocks_generation:
            if len(self._blocks) > 100_000:
                self._blocks.clear()
            self._blocks[key] = blocks
        return blocks

    def blocks_changed(self, shop: str, buyer: str) -> None:
        """Call once the store has committed a block or its removal."""
        self._blocks_generation += 1
        self._blocks.pop((shop, buyer), None)

    # --- channels -------------------------------------------------------------

    async def watch(self, subscriber: Subscriber, channel: str) -> None:
        """Deliver ``channel`` to this subscriber; subscribes the node on first interest."""
        subscribers = self._subs.get(channel)
        if subscribers is None:
            subscribers = self._subs[channel] = set()
            fut = asyncio.get_running_loop().create_future()
            self._pending_subs[channel] = fut
            try:
                await self.broker.subscribe(channel)
                fut.set_result(None)
            except BaseException as exc:
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: the caller sees it below
                self._subs.pop(channel, None)
                raise
            finally:
                self._pending_subs.pop(channel, None)
        else:
            pending = self._pending_subs.get(channel)
            if pending is not None:
                await asyncio.shield(pending)
        subscribers.add(subscriber)

    async def unwatch(self, subscriber: Subscriber, channel: str) -> None:
        subscribers = self._subs.get(channel)
        if subscribers is None:
            return
        subscribers.discard(subscriber)
        if not subscribers and channel not in self._pending_subs:
            del self._subs[channel]
            with contextlib.suppress(Exception):
                await self.broker.unsubscribe(channel)

    def _on_broker(self, channel: str, payload: bytes) -> None:
        subscribers = self._subs.get(channel)
        if not subscribers:
            return
        try:
            envelope = msgpack.unpackb(payload, raw=False)
            if envelope[0] == MSG:
                _, conv, seq, frame, origin, t0, buyer, shop = envelope
                for subscriber in list(subscribers):
                    subscriber.on_message(conv, seq, frame, origin, t0, buyer, shop)
            else:
                for subscriber in list(subscribers):
                    subscriber.deliver(envelope[1])
        except Exception:
            log.exception("dropping a malformed broker payload on %s", channel)

    def publish_event(self, channels: Iterable[str], frame: dict[str, Any]) -> None:
        payload = msgpack.packb([EVENT, encode(frame)], use_bin_type=True)
        for channel in channels:
            self.broker.publish(channel, payload)

    # --- messages -------------------------------------------------------------

    async def fan_out(
        self,
        conv: ConversationRecord,
        message: MessageRecord,
        agent: str | None,
        origin: str | None,
        t0: float,
    ) -> None:
        """Tell every live device of a committed message (offline ones find it in the store)."""
        payload = self._notice(conv, message, origin, t0)
        for channel in live_channels(conv.buyer, conv.shop, agent, message.sender):
            self.broker.publish(channel, payload)

    def notify(self, channel: str, conv: ConversationRecord, message: MessageRecord) -> None:
        """Publish one message notice on one more channel (a hand-over's previous agent)."""
        self.broker.publish(channel, self._notice(conv, message, None, epoch_seconds()))

    @staticmethod
    def _notice(conv: ConversationRecord, message: MessageRecord, origin: str | None, t0: float) -> bytes:
        data: bytes = msgpack.packb(
            [MSG, message.conv, message.seq, encode(msg_frame(message)), origin, t0, conv.buyer, conv.shop],
            use_bin_type=True,
        )
        return data

    # --- subscribers and presence ------------------------------------------------

    def presence_entries(self, subscriber: Subscriber) -> list[tuple[str, str]]:
        """(entity, member) pairs a connection keeps alive: the user, and an agent's shop."""
        ident = subscriber.me
        entries = [(user_entity(ident.user), ident.user)]
        if ident.role == "agent" and ident.shop:
            entries.append((shop_entity(ident.shop), ident.user))
        return entries

    async def attach(self, subscriber: Subscriber) -> None:
        """Route the user's and (agents) the shop's channels to this connection, register an
        agent, and set it online. All or nothing: on a failure what was done is undone."""
        ident = subscriber.me
        self._subscribers.add(subscriber)
        self.metrics.connections.set(len(self._subscribers))
        try:
            await subscriber.watch(user_channel(ident.user))
            if ident.role == "agent" and ident.shop:
                await subscriber.watch(shop_channel(ident.shop))  # the shop's unassigned conversations
                await self.store.register_agent(ident.shop, ident.user, self.clock.now_ms())
                await self.store.set_agent_profile(ident.shop, ident.user, ident.name, ident.avatar)
            await self.set_status(subscriber, "online")
        except BaseException:
            await self.detach(subscriber)
            raise

    async def detach(self, subscriber: Subscriber) -> None:
        if subscriber not in self._subscribers:
            return
        self._subscribers.discard(subscriber)
        self.metrics.connections.set(len(self._subscribers))
        for channel in list(subscriber.watched):
            await self.unwatch(subscriber, channel)
        subscriber.watched.clear()
        await self._presence_gone(subscriber, self.clock.now_ms())

    def backend_failed(self, what: str, exc: BaseException) -> None:
        """One warning line per failure kind and outage, not a traceback per request."""
        now = time.monotonic()
        if now - self._backend_warned.get(what, -1e9) > 30:
            self._backend_warned[what] = now
            log.warning("a backend failed during %s: %s (further failures for 30 s are not logged)",
                        what, exc or type(exc).__name__)

    async def set_status(self, subscriber: Subscriber, status: Status) -> None:
        subscriber.status = status
        now = self.clock.now_ms()
        for entity, member in self.presence_entries(subscriber):
            change = await self.presence.set(entity, member, subscriber.id, status, now)
            if change is not None:
                self.publish_event([presence_channel(change.entity)], _presence(change))

    async def _presence_gone(self, subscriber: Subscriber, now: int) -> None:
        if subscriber.identity is None:
            return
        for entity, member in self.presence_entries(subscriber):
            try:
                change = await self.presence.remove(entity, member, subscriber.id, now)
            except Exception as exc:
                self.backend_failed("presence removal", exc)
                continue
            if change is not None:
                self.publish_event([presence_channel(change.entity)], _presence(change))

    async def _presence_loop(self) -> None:
        """Keep this node's entries alive and turn other nodes' dead ones offline.

        Heartbeats carry each connection's status, so entries the backend lost (a Redis
        restarted empty) come back within one beat, and the followers are told. A failing
        backend is logged once per outage, not with a traceback every beat."""
        interval = max(0.05, self.config.presence_ttl / 3)
        statuses: dict[str, Status] = {"online": "online", "away": "away", "offline": "offline"}
        failures = 0
        this = asyncio.current_task()
        while True:
            if this is not None and this.cancelling():
                # Python 3.11's asyncio.wait_for, which redis-py writes with, can swallow a
                # cancellation; going on would make stop() wait for this task forever.
                raise asyncio.CancelledError
            await asyncio.sleep(interval)
            now = self.clock.now_ms()
            try:
                subscribers = [s for s in list(self._subscribers) if s.identity is not None]
                # In slices, yielding between them: one beat for 10,000 connections must not
                # hold the loop (everyone's chat) for the tens of milliseconds it takes.
                for start in range(0, len(subscribers), BEAT_SLICE):
                    part = subscribers[start:start + BEAT_SLICE]
                    entries = [
                        (entity, member, s.id, statuses.get(s.status, "online"))
                        for s in part
                        for entity, member in self.presence_entries(s)
                    ]
                    for change in await self.presence.touch(entries, now):
                        self.publish_event([presence_channel(change.entity)], _presence(change))
                    await asyncio.sleep(0)
                # A connection that closed while the beat was in flight may have had its
                # entries re-created after its removal: remove them again.
                for s in subscribers:
                    if s not in self._subscribers:
                        await self._presence_gone(s, self.clock.now_ms())
                for change in await self.presence.expire(now):
                    self.publish_event([presence_channel(change.entity)], _presence(change))
            except Exception as e:
                failures += 1
                if failures == 1:
                    log.warning("presence heartbeat failed (%s: %s); retrying every %.1f s",
                                type(e).__name__, e, interval)
                else:
                    log.debug("presence heartbeat failed again", exc_info=True)
                continue
            if failures:
                log.info("presence heartbeat works again after %d failed beats", failures)
                failures = 0

    def subscribers(self) -> set[Subscriber]:
        return set(self._subscribers)
