"""The simulation: buyers and shop agents on lean websocket connections.

One :class:`Engine` drives one process's share of the population: it creates
the actors (:mod:`.actor`), ramps their connections, schedules the load (open
arrivals or a closed window), churn and buyer turnover, drains, and checks the
ledger at the end. Everything runs on one event loop; the hot path is raw
msgpack, dict lookups and websockets' sans-I/O framing (no pydantic, no
awaiting per frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

from ..auth import mint
from .actor import Actor, Conv, RequestFailed, perf
from .options import Options
from .stats import Results, Window, cpu_seconds, proc_cpu_seconds
from .wsclient import CLOSE_TIMEOUT

__all__ = ["Actor", "Conv", "Engine", "RequestFailed"]


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

    def delivered(self, seconds: float, resumed: bool = False) -> None:
        """A message reached its recipient: live (``msg``, the routing latency the figures
        report) or through a reconnect of either side (``msg_resumed``, reported apart: its
        latency is mostly the reconnect delay the generator drew)."""
        if self.measuring:
            micros = int(seconds * 1_000_000)
            if resumed:
                self.results.sample("msg_resumed", micros)
            else:
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
