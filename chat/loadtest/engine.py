"""The simulation: buyers and shop agents on lean websocket connections.

One :class:`Engine` drives one process's share of the population. Everything
runs on one event loop; the hot path is raw msgpack, dict lookups and
websockets' sans-I/O framing (no pydantic, no awaiting per frame).

Correctness ledger: every ``ack`` a sender gets records ``seq → sender`` for its
conversation and, unless the counterpart already has it, puts the seq in the
conversation's *undelivered* set; every ``msg`` a participant receives takes it
out. A seq received twice by the same user is a duplicate (except a resend on
a new connection above the cursor it resumed from: the cursor stops below the
first hole, so the hub owes what lies beyond it again); a seq at or below the
last one a connection received in that conversation is a reordering; whatever
is still undelivered after the final drain is lost.

Latency is measured on one clock: the sender's ``perf_counter`` when it wrote
``send`` (or ``typing``, ``read``) and the receiving participant's when the
``msg`` (``typing``, ``receipt``) arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

import msgpack
from websockets.typing import BytesLike

from ..auth import mint
from .options import Options
from .stats import Results, Window, cpu_seconds, proc_cpu_seconds
from .wsclient import CLOSE_TIMEOUT, WsClient, connect

perf = time.perf_counter
_pack = msgpack.Packer(use_bin_type=True).pack
_unpack = msgpack.unpackb


class RequestFailed(Exception):
    """The hub answered a request with an ``error`` frame, or the connection went away."""


class Conv:
    __slots__ = ("acked", "active", "agent", "buyer", "id", "next_seq", "read_at", "sent_at", "typing_at",
                 "undelivered")

    def __init__(self, conv_id: str, buyer: Actor, agent: Actor | None) -> None:
        self.id = conv_id
        self.buyer = buyer
        self.agent = agent
        self.acked: dict[int, str] = {}
        self.undelivered: set[int] = set()
        self.sent_at: dict[str, float] = {}
        self.typing_at: dict[str, float] = {}
        self.read_at: dict[tuple[str, int], float] = {}
        self.active = False
        self.next_seq = 0
        """Relay target only: the seq a sender stamps on its frames (the hub assigns them otherwise)."""

    def other(self, actor: Actor) -> Actor | None:
        return self.agent if actor is self.buyer else self.buyer


class Actor:
    """One user with (at most) one connection at a time."""

    __slots__ = ("conn", "convs", "cursor", "departed", "engine", "gen", "inbox", "last", "leaving", "node", "online",
                 "own",
                 "pending", "received", "requests", "rid", "role", "shop", "stamp", "token", "tokens", "user")

    def __init__(self, engine: Engine, user: str, role: str, shop: str, node: int, token: str) -> None:
        self.engine = engine
        self.user = user
        self.role = role
        self.shop = shop
        self.node = node
        self.token = token
        self.conn: WsClient | None = None
        self.gen = 0
        self.online = False
        self.leaving = False
        self.departed = False
        self.convs: list[Conv] = []
        self.received: dict[str, set[int]] = {}
        self.own: dict[str, set[int]] = {}
        self.cursor: dict[str, int] = {}
        """Highest seq per conversation up to which this user has everything (the resume cursor)."""
        self.last: dict[str, int] = {}
        """Highest seq received per conversation on the current connection (the order check)."""
        self.inbox: str | None = None
        self.pending: dict[str, tuple[Conv, bytes, float]] = {}
        """Sends not acknowledged yet: resent with the same cmid after a reconnect."""
        self.requests: dict[int, tuple[str, float, Any]] = {}
        self.rid = 0
        self.tokens = engine.opt.user_burst
        self.stamp = 0.0

    # --- connection ----------------------------------------------------------

    def url(self) -> str:
        eng = self.engine
        if eng.opt.target == "relay":
            return eng.urls[self.node].rstrip("/") + f"/{self.shop}"
        return eng.urls[self.node]

    async def connect(self) -> None:
        """Connect, authenticate and sync (resuming from cursors); resend what was never acknowledged."""
        eng = self.engine
        self.gen += 1
        gen = self.gen
        t0 = perf()

        def on_frame(data: BytesLike) -> None:
            if gen == self.gen:
                self.on_frame(data)

        def on_close(code: int | None, reason: str) -> None:
            if gen == self.gen:
                self.closed(code, reason)

        self.conn = await connect(self.url(), on_frame, on_close)
        eng.results.counts["connections"] += 1
        if eng.opt.target == "hub":
            await self.request({"type": "auth", "token": self.token}, "auth")
            eng.sample("connect", perf() - t0)
            cursors = {c.id: self.cursor.get(c.id, 0) for c in self.convs}
            self.last = dict(cursors)
            frame: dict[str, Any] = {"type": "sync", "cursors": cursors}
            if self.inbox is not None:
                frame["inbox"] = self.inbox
            synced = await self.request(frame, "sync")
            self.inbox = synced.get("inbox")
        else:
            eng.sample("connect", perf() - t0)
        if gen != self.gen or self.conn is None or not self.conn.open:
            raise RequestFailed("closed while connecting")
        self.online = True
        eng.online += 1
        for _, data, _ in list(self.pending.values()):
            self.conn.send(data)
            eng.results.counts["resent"] += 1

    def request(self, frame: dict[str, Any], kind: str) -> asyncio.Future[dict[str, Any]]:
        if self.conn is None:
            raise RequestFailed("not connected")
        self.rid += 1
        frame["id"] = self.rid
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.requests[self.rid] = (kind, perf(), fut)
        self.conn.send(_pack(frame))
        self.engine.requests += 1
        return fut

    def closed(self, code: int | None, reason: str) -> None:
        eng = self.engine
        if self.online:
            self.online = False
            eng.online -= 1
        self.conn = None
        for kind, _, fut in self.requests.values():
            if isinstance(fut, asyncio.Future) and not fut.done():
                fut.set_exception(RequestFailed(f"{kind}: connection closed ({code})"))
        self.requests.clear()
        if code == 4999 or self.leaving or eng.stopping_connections:
            return  # we closed it
        if code == 4998:
            eng.results.counts["churned"] += 1
        else:
            eng.results.error(f"closed:{code}", f"{self.user}: {reason}")
        eng.reconnect_later(self)

    def drop(self) -> None:
        """Churn: lose the connection without a goodbye (as a phone changing networks does)."""
        conn = self.conn
        if conn is not None and self.online:
            conn.close_code = 4998
            conn.abort()

    def close(self) -> None:
        conn = self.conn
        if conn is not None:
            conn.close_code = 4999
            conn.close()

    # --- sending -------------------------------------------------------------

    def take(self, now: float) -> bool:
        """The generator's own per-user rate limit, so the hub's is never what gets measured."""
        opt = self.engine.opt
        self.tokens = min(opt.user_burst, self.tokens + (now - self.stamp) * opt.user_rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def send_text(self, conv: Conv) -> None:
        eng = self.engine
        if not eng.sending or not conv.active:
            return
        self.rid += 1
        eng.cmid += 1
        cmid = f"{eng.run_id}.{eng.cmid}"
        body = {"kind": "text", "text": eng.text}
        now = perf()
        if eng.opt.target == "relay":
            conv.next_seq += 1
            seq = conv.next_seq
            data = _pack({"type": "msg", "conv": conv.id, "seq": seq, "sender": self.user, "cmid": cmid,
                          "body": body})
            conv.sent_at[cmid] = now
            if self.conn is not None:
                self.conn.send(data)
            self.acked(conv, seq)
        else:
            data = _pack({"type": "send", "id": self.rid, "conv": conv.id, "cmid": cmid, "body": body})
            conv.sent_at[cmid] = now
            self.pending[cmid] = (conv, data, now)
            eng.outstanding_acks += 1
            self.requests[self.rid] = ("send", now, cmid)
            if self.online and self.conn is not None:
                self.conn.send(data)
        eng.requests += 1
        eng.window.sent += 1

    def send_typing(self, conv: Conv) -> None:
        if self.online and self.conn is not None:
            conv.typing_at[self.user] = perf()
            self.conn.send(_pack({"type": "typing", "conv": conv.id, "active": True}))
            self.engine.results.counts["typing_sent"] += 1

    def send_read(self, conv: Conv) -> None:
        eng = self.engine
        seq = self.last.get(conv.id, 0)
        if not (eng.sending and conv.active and self.online and self.conn is not None) or seq == 0:
            return
        self.rid += 1
        now = perf()
        conv.read_at[(self.user, seq)] = now
        self.requests[self.rid] = ("read", now, None)
        self.conn.send(_pack({"type": "read", "id": self.rid, "conv": conv.id, "seq": seq}))
        eng.requests += 1

    # --- receiving -----------------------------------------------------------

    def on_frame(self, data: BytesLike) -> None:
        frame = _unpack(data)
        kind = frame["type"]
        if kind == "msg":
            self.on_msg(frame)
        elif kind == "ack":
            self.on_ack(frame)
        elif kind == "typing":
            conv = self.engine.convs.get(frame["conv"])
            if conv is not None:
                t0 = conv.typing_at.pop(frame["user"], None)
                if t0 is not None:
                    self.engine.sample("typing", perf() - t0)
        elif kind == "receipt":
            if frame["user"] != self.user:
                conv = self.engine.convs.get(frame["conv"])
                if conv is not None:
                    t0 = conv.read_at.pop((frame["user"], frame["seq"]), None)
                    if t0 is not None:
                        self.engine.sample("receipt", perf() - t0)
        elif kind == "presence":
            self.engine.results.counts["presence"] += 1
        else:
            self.on_reply(kind, frame)

    def on_reply(self, kind: str, frame: dict[str, Any]) -> None:
        eng = self.engine
        req = self.requests.pop(frame.get("re") or -1, None)
        if kind == "error":
            what = req[0] if req else "push"
            eng.results.error(f"hub:{frame.get('code')}:{what}", str(frame.get("message")))
            eng.window.errors += 1
            if req is not None:
                if isinstance(req[2], asyncio.Future):
                    if not req[2].done():
                        req[2].set_exception(RequestFailed(f"{what}: {frame.get('code')} {frame.get('message')}"))
                elif what == "send":
                    pending = self.pending.pop(req[2], None)
                    if pending is not None:
                        eng.outstanding_acks -= 1
                        pending[0].sent_at.pop(req[2], None)
            return
        if req is None:
            return
        what, t0, fut = req
        eng.sample(what, perf() - t0)
        if isinstance(fut, asyncio.Future) and not fut.done():
            fut.set_result(frame)

    def on_ack(self, frame: dict[str, Any]) -> None:
        eng = self.engine
        now = perf()
        self.requests.pop(frame.get("re") or -1, None)
        cmid = frame["cmid"]
        pending = self.pending.pop(cmid, None)
        if pending is None:
            return
        eng.outstanding_acks -= 1
        eng.sample("ack", now - pending[2])
        if frame.get("duplicate"):
            eng.results.counts["duplicate_acks"] += 1
        self.acked(pending[0], frame["seq"])

    def acked(self, conv: Conv, seq: int) -> None:
        if seq in conv.acked:
            return
        conv.acked[seq] = self.user
        own = self.own.get(conv.id)
        if own is None:
            own = self.own[conv.id] = set()
        own.add(seq)
        self.advance(conv.id)
        other = conv.other(self)
        if other is not None and other.departed:
            # Acknowledged after the other side left for good: nobody can receive it.
            self.engine.results.counts["acked_after_recipient_left"] += 1
            return
        if other is not None and seq not in other.received.get(conv.id, ()):
            conv.undelivered.add(seq)
            self.engine.outstanding += 1

    def opened(self, conv_id: str, last_seq: int) -> None:
        """Start the resume cursor of a conversation this connection just opened.

        The hub goes live from the view's ``last_seq`` (what came before is history, not
        owed to this connection), so a new conversation's cursor starts there and then
        moves only through :meth:`advance`. A conversation this user already resumes
        keeps its cursor: seqs between it and ``last_seq`` may never have reached it,
        and a cursor above them would skip them on the next resume.
        """
        if all(c.id != conv_id for c in self.convs):
            self.cursor[conv_id] = max(self.cursor.get(conv_id, 0), last_seq)
        self.advance(conv_id)
        self.last[conv_id] = max(self.last.get(conv_id, 0), last_seq)  # the hub's live start on this connection

    def advance(self, conv_id: str) -> None:
        """Move the resume cursor over seqs received or acknowledged, stopping at the first hole."""
        c = self.cursor.get(conv_id, 0)
        received = self.received.get(conv_id, ())
        own = self.own.get(conv_id, ())
        while c + 1 in received or c + 1 in own:
            c += 1
        self.cursor[conv_id] = c

    def on_msg(self, frame: dict[str, Any]) -> None:
        eng = self.engine
        now = perf()
        conv_id = frame["conv"]
        seq = frame["seq"]
        received = self.received.get(conv_id)
        if received is None:
            received = self.received[conv_id] = set()
        if seq in received:
            if seq > self.last.get(conv_id, 0):
                # New on this connection and above the cursor it resumed from: the cursor stopped
                # below a hole (an unacknowledged send of ours), so the hub rightly sends it again.
                self.last[conv_id] = seq
                eng.results.counts["repushed"] += 1
                return
            eng.results.violation("duplicate", f"{self.user} got {conv_id}#{seq} twice")
            return
        if seq <= self.last.get(conv_id, 0):
            eng.results.violation("reordered", f"{self.user} got {conv_id}#{seq} after #{self.last[conv_id]}")
        else:
            self.last[conv_id] = seq
        received.add(seq)
        self.advance(conv_id)
        if frame["sender"] == self.user:
            return  # our own message pushed back on a resume
        conv = eng.convs.get(conv_id)
        if conv is None:
            return  # a new conversation's card, before the buyer's ``opened``
        if seq in conv.undelivered:
            conv.undelivered.discard(seq)
            eng.outstanding -= 1
        cmid = frame.get("cmid")
        if cmid is not None:
            t0 = conv.sent_at.pop(cmid, None)
            if t0 is not None:
                eng.delivered(now - t0)
                if eng.closed_loop:
                    sender = conv.other(self)
                    if sender is not None:
                        sender.send_text(conv)
        opt = eng.opt
        if opt.read > 0 and eng.rng.random() < opt.read:
            eng.later(eng.rng.uniform(*opt.read_delay), self.send_read, conv)


class Engine:
    def __init__(self, opt: Options, on_window: Callable[[Window, int], None] | None = None) -> None:
        self.opt = opt
        self.on_window = on_window
        self.urls = opt.urls
        self.run_id = opt.run_id
        self.rng = random.Random(opt.seed)
        self.results = Results()
        self.window = Window()
        self.text = ("How soon can you ship this? " * 200)[: max(1, opt.text_bytes)]
        self.convs: dict[str, Conv] = {}
        self.active: list[Conv] = []
        self.agents: dict[str, Actor] = {}
        self.shop_agents: dict[str, list[Actor]] = {}
        self.buyers: list[Actor] = []
        self.cmid = 0
        self.online = 0
        self.requests = 0
        self.outstanding = 0
        self.outstanding_acks = 0
        self.sending = False
        self.measuring = False
        self.closed_loop = opt.window > 0
        self.stopping_connections = False
        self.buyer_count = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connect_slots = asyncio.Semaphore(max(1, opt.connect_concurrency))

    # --- measurements --------------------------------------------------------

    def sample(self, kind: str, seconds: float) -> None:
        if self.measuring:
            self.results.sample(kind, int(seconds * 1_000_000))

    def delivered(self, seconds: float) -> None:
        if self.measuring:
            micros = int(seconds * 1_000_000)
            self.results.sample("msg", micros)
            self.window.latencies.append(micros)
        self.window.delivered += 1

    def later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        asyncio.get_running_loop().call_later(delay, fn, *args)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- population ----------------------------------------------------------

    def _node(self, shop_index: int, role: str) -> int:
        n = len(self.urls)
        placement = self.opt.placement
        if placement == "random" and self.opt.target == "hub":
            return self.rng.randrange(n)
        if placement == "split" and role == "agent":
            return (shop_index + 1) % n
        return shop_index % n

    def _token(self, user: str, role: str, shop: str | None) -> str:
        if self.opt.target == "relay":
            return ""
        ttl = int(self.opt.duration + self.opt.warmup + 3600)
        return mint(self.opt.secret, user, role, shop=shop, ttl=ttl)  # type: ignore[arg-type]

    def _shop(self, j: int) -> str:
        return f"{self.run_id}s{j}"

    def make_agents(self) -> None:
        for j in range(self.opt.shops):
            shop = self._shop(j)
            team = self.shop_agents[shop] = []
            for k in range(self.opt.agents_per_shop):
                user = f"{self.run_id}a{j}.{k}"
                actor = Actor(self, user, "agent", shop, self._node(j, "agent"), self._token(user, "agent", shop))
                self.agents[user] = actor
                team.append(actor)

    def new_buyer(self) -> Actor:
        i = self.buyer_count
        self.buyer_count += 1
        j = i % self.opt.shops
        user = f"{self.run_id}b{i}"
        actor = Actor(self, user, "buyer", self._shop(j), self._node(j, "buyer"), self._token(user, "buyer", None))
        self.buyers.append(actor)
        return actor

    async def start_actor(self, actor: Actor) -> bool:
        async with self._connect_slots:
            try:
                await actor.connect()
            except (OSError, RequestFailed, TimeoutError) as exc:
                if not (actor.leaving or self.stopping_connections):  # else: we closed it ourselves
                    self.results.error(f"connect:{type(exc).__name__}", f"{actor.user}: {exc}")
                if actor.conn is not None:
                    actor.close()
                return False
        if actor.role == "buyer":
            return await self.open_conversation(actor)
        return True

    async def open_conversation(self, buyer: Actor) -> bool:
        if self.opt.target == "relay":
            team = self.shop_agents[buyer.shop]
            conv = Conv(buyer.shop, buyer, team[0])
            buyer.convs.append(conv)
            team[0].convs.append(conv)
            self.convs[conv.id] = conv
            self.activate(conv)
            return True
        j = int(buyer.shop[len(self.run_id) + 1:])
        listing = {"id": f"l{self.rng.randrange(max(1, self.opt.listings))}", "title": f"Listing of shop {j}",
                   "price": 100 + self.rng.randrange(100_000), "currency": "CNY"}
        try:
            opened = await buyer.request({"type": "open", "shop": buyer.shop, "listing": listing}, "open")
        except RequestFailed as exc:
            self.results.error("open", str(exc))
            return False
        view = opened["conversation"]
        agent = self.agents.get(view.get("agent") or "")
        conv = Conv(view["id"], buyer, agent)
        self.convs[conv.id] = conv
        buyer.opened(conv.id, int(view["last_seq"]))
        buyer.convs.append(conv)
        if agent is None:
            self.results.counts["unassigned_conversations"] += 1
        else:
            agent.convs.append(conv)
        self.activate(conv)
        return True

    def activate(self, conv: Conv) -> None:
        conv.active = True
        self.active.append(conv)

    def deactivate(self, conv: Conv) -> None:
        conv.active = False
        with contextlib.suppress(ValueError):
            self.active.remove(conv)

    def reconnect_later(self, actor: Actor) -> None:
        if actor.leaving:
            return
        delay = self.rng.uniform(*self.opt.reconnect_delay)

        async def again() -> None:
            await asyncio.sleep(delay)
            for attempt in range(20):
                if actor.online or actor.leaving:
                    return
                if self.opt.placement == "random" and len(self.urls) > 1:
                    actor.node = self.rng.randrange(len(self.urls))
                try:
                    await actor.connect()
                    self.results.counts["resumed"] += 1
                    return
                except (OSError, RequestFailed, TimeoutError) as exc:
                    self.results.error(f"reconnect:{type(exc).__name__}", f"{actor.user}: {exc}")
                    if actor.conn is not None:
                        actor.close()
                    await asyncio.sleep(min(2.0, 0.1 * 2**attempt))

        self.spawn(again())

    # --- load ----------------------------------------------------------------

    def fire(self) -> None:
        """One arrival of the open model: someone in an active conversation says something."""
        opt, rng = self.opt, self.rng
        now = perf()
        for _ in range(4):
            if not self.active:
                self.results.counts["skipped_no_conversation"] += 1
                return
            conv = self.active[rng.randrange(len(self.active))]
            sender = conv.agent if conv.agent is not None and rng.random() < opt.agent_share else conv.buyer
            if not sender.online:
                self.results.counts["skipped_offline"] += 1
                continue
            if not sender.take(now):
                self.results.counts["skipped_user_rate"] += 1
                continue
            if opt.typing > 0 and rng.random() < opt.typing:
                sender.send_typing(conv)
                self.later(rng.uniform(*opt.think), sender.send_text, conv)
            else:
                sender.send_text(conv)
            return
        self.results.counts["dropped_arrivals"] += 1

    async def arrivals(self, until: float) -> None:
        rate = self.opt.rate
        if rate <= 0:
            return
        rng = self.rng
        lag = self.results.sched_lag
        next_t = perf()
        while self.sending:
            now = perf()
            if now >= until:
                return
            while next_t <= now:
                if self.measuring:
                    lag.add(int((now - next_t) * 1_000_000))
                self.fire()
                next_t += rng.expovariate(rate)
            # Timers are millisecond-grained: sleeping less would spin; arrivals due meanwhile
            # go out together on the next pass (their lag is measured).
            await asyncio.sleep(max(0.001, next_t - perf()))

    def kick_closed_loop(self) -> None:
        for conv in list(self.active):
            for actor in (conv.buyer, conv.agent):
                if actor is not None:
                    for _ in range(self.opt.window):
                        actor.send_text(conv)

    async def churn(self, until: float) -> None:
        rate = self.opt.churn
        if rate <= 0:
            return
        everyone = list(self.agents.values())
        while self.sending and perf() < until:
            population = len(everyone) + len(self.buyers)
            await asyncio.sleep(self.rng.expovariate(rate * max(1, population)))
            pool = everyone if self.rng.random() < len(everyone) / max(1, population) else self.buyers
            if pool and self.sending:
                pool[self.rng.randrange(len(pool))].drop()

    async def turnover(self, until: float) -> None:
        """Buyers leave after their lifetime; new buyers arrive in their place."""
        mean = self.opt.buyer_lifetime
        if mean <= 0:
            return
        leave_at = {id(b): perf() + self.rng.expovariate(1 / mean) for b in self.buyers}
        while self.sending and perf() < until:
            await asyncio.sleep(0.1)
            now = perf()
            for buyer in [b for b in self.buyers if not b.leaving and leave_at.get(id(b), now + 1) <= now]:
                self.spawn(self.leave(buyer))
                newcomer = self.new_buyer()
                leave_at[id(newcomer)] = now + self.rng.expovariate(1 / mean)
                self.spawn(self.start_actor(newcomer))

    async def leave(self, buyer: Actor) -> None:
        buyer.leaving = True
        for conv in buyer.convs:
            self.deactivate(conv)
        if not buyer.online:
            # A buyer who dropped off comes back once to collect what was sent meanwhile,
            # so a departure never counts as a loss (and exercises resume once more).
            with contextlib.suppress(Exception):
                await buyer.connect()
        deadline = perf() + 10
        for _ in range(100):  # polls the ledger; bounded by the deadline
            if perf() >= deadline or not (buyer.pending or any(c.undelivered for c in buyer.convs)):
                break
            await asyncio.sleep(0.2)
        self.results.counts["buyers_left"] += 1
        buyer.departed = True
        buyer.close()
        self.buyers.remove(buyer)

    async def progress(self) -> None:
        interval = self.opt.progress
        if interval <= 0 or self.on_window is None:
            return
        while True:
            await asyncio.sleep(interval)
            window, self.window = self.window, Window()
            self.on_window(window, self.online)

    # --- the run -------------------------------------------------------------

    async def run(self) -> Results:
        opt = self.opt
        res = self.results
        t_begin, cpu_begin = perf(), cpu_seconds()
        ticker = asyncio.ensure_future(self.progress())
        try:
            self.make_agents()
            await self._ramp(list(self.agents.values()))
            buyers = [self.new_buyer() for _ in range(opt.buyers)]
            await self._ramp(buyers)
            res.peak_connections = self.online
            self.sending = True
            t_load = perf()
            until = t_load + opt.warmup + opt.duration
            if self.closed_loop:
                self.kick_closed_loop()
            else:
                self.spawn(self.arrivals(until))
            self.spawn(self.churn(until))
            self.spawn(self.turnover(until))
            await asyncio.sleep(opt.warmup)
            self.measuring = True
            t_measure, cpu_measure = perf(), cpu_seconds()
            hub_cpu = self._hub_cpu()
            await asyncio.sleep(max(0.0, until - perf()))
            self.measuring = False
            if hub_cpu is not None:
                res.hub_cpu_seconds = (self._hub_cpu() or 0.0) - hub_cpu
            self.sending = False
            res.measured_seconds = perf() - t_measure
            res.cpu_seconds = cpu_seconds() - cpu_measure
            res.peak_connections = max(res.peak_connections, self.online)
            await self._drain()
            self._finalize()
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self.sending = False
            self.stopping_connections = True
            for task in list(self._tasks):
                task.cancel()
            actors = [*self.agents.values(), *self.buyers]
            closing = [a.conn.done for a in actors if a.conn is not None]
            for actor in actors:
                actor.close()
            if closing:  # the closing handshakes: the hub closes TCP, or the client aborts
                await asyncio.wait(closing, timeout=CLOSE_TIMEOUT + 0.5)
        res.wall_seconds = perf() - t_begin
        res.counts["cpu_total_ms"] = int((cpu_seconds() - cpu_begin) * 1000)
        res.counts["requests"] = self.requests
        return res

    def _hub_cpu(self) -> float | None:
        if not self.opt.hub_pids or self.opt.worker != 0:
            return None
        return sum(proc_cpu_seconds(pid) for pid in self.opt.hub_pids)

    async def _ramp(self, actors: list[Actor]) -> None:
        gap = 1.0 / self.opt.ramp if self.opt.ramp > 0 else 0.0
        tasks = []
        start = perf()
        for i, actor in enumerate(actors):
            due = start + i * gap
            if due > perf():
                await asyncio.sleep(due - perf())
            tasks.append(asyncio.ensure_future(self.start_actor(actor)))
        await asyncio.gather(*tasks)

    async def _drain(self) -> None:
        deadline = perf() + self.opt.drain
        while perf() < deadline:  # polls the ledger; bounded by the deadline
            if not (self.outstanding > 0 or self.outstanding_acks > 0 or self._reconnecting()):
                break
            await asyncio.sleep(0.05)

    def _reconnecting(self) -> bool:
        return any(not a.online and not a.leaving for a in [*self.agents.values(), *self.buyers])

    def _finalize(self) -> None:
        res = self.results
        res.counts["conversations"] = len(self.convs)
        res.counts["acked_messages"] = sum(len(c.acked) for c in self.convs.values())
        if not self.opt.check:
            return
        for conv in self.convs.values():
            for seq in sorted(conv.undelivered):
                res.violation("lost", f"{conv.id}#{seq} from {conv.acked[seq]} never reached the other side")
        for actor in [*self.agents.values(), *self.buyers]:
            for cmid, (conv, _, _) in actor.pending.items():
                res.error("unacked", f"{actor.user} {conv.id} {cmid}")
