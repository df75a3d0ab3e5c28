"""Helpers of ``bench/webhooks.py``: the local receiver, the stores, and the chat events' runs.

``--source chat``: a chat store (SQLite in a temp dir, or a fresh PostgreSQL schema) gets
messages appended with one ``message.to_offline`` event each, as the hub writes them
(``store.append(..., events=[NewEvent(...)])``), and ``WebhookSender(..., chat_events=store)``
moves them into the ledger's webhook outbox (same kind of database) and delivers them.

``--send-path``: the embedded hub (``python -m chat serve``, ``PAYMENTS=on``,
``OVERLOAD_MS=0``) under ``python -m chat.loadtest`` with shops that have no agent, so every
message is to an offline shop and carries an event; runs alternate ``WEBHOOK_URL`` unset and
set (a receiver in this process answers 204).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from chat.store.chat_events import NewEvent
from chat.webhooks import WebhookSender, WebhookSettings
from payments.store import Store as Ledger
from payments.webhooks import WebhookOutbox

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
LISTING = {"id": "l1", "title": "Tea", "price": 100, "currency": "CNY"}
CONVERSATIONS = 100
WAIT_S = 120


def time_ms() -> int:
    return int(time.time() * 1000)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def bench_settings(url: str) -> WebhookSettings:
    return WebhookSettings(url=url, secrets=("bench-secret",), timeout=5, base_delay_ms=20,
                           max_delay_ms=200, interval=0.01, concurrency=32)


class Receiver:
    """A local aiohttp receiver: 204 at once, or 503 for every ``fail_every``-th request
    whose id it has not taken yet. Keeps each id's first arrival (wall ms) and ``created``."""

    def __init__(self, fail_every: int = 0) -> None:
        self.fail_every = fail_every
        self.arrived: dict[str, float] = {}
        self.created: dict[str, int] = {}
        self.types: Counter[str] = Counter()
        self.duplicates = 0
        self.requests = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = json.loads(await request.read())
        if self.fail_every and self.requests % self.fail_every == 0 and body["id"] not in self.arrived:
            return web.Response(status=503)
        if body["id"] in self.arrived:
            self.duplicates += 1
        else:
            self.arrived[body["id"]] = time.time() * 1000
            self.created[body["id"]] = body["created"]
            self.types[body["type"]] += 1
        return web.Response(status=204)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def drop_schemas(schemas: list[str]) -> None:
    if schemas:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def open_ledger(kind: str, tmp: str) -> tuple[Ledger, str | None]:
    if kind == "sqlite":
        from payments.sqlite_store import SqliteStore

        return SqliteStore(os.path.join(tmp, "payments.db")), None
    from payments.postgres_store import PostgresStore

    schema = f"bench_wh_{uuid.uuid4().hex[:10]}"
    return PostgresStore(PG_URL, schema=schema, pool_size=8), schema


def open_chat_store(kind: str, tmp: str) -> tuple[Any, str | None]:
    """As ``tests/chat/test_store_contract.py`` makes them (SQLite with its default FULL sync)."""
    if kind == "sqlite":
        from chat.store.sqlite import SQLiteStore

        return SQLiteStore(os.path.join(tmp, "chat.db")), None
    from chat.store.postgres import PostgresStore

    schema = f"bench_whc_{uuid.uuid4().hex[:10]}"
    return PostgresStore(PG_URL, schema=schema, pool_size=4), schema


def offline_event(i: int) -> NewEvent:
    """What ``chat.webhook_events.for_message`` writes for a buyer's text to an offline shop."""
    c = i % CONVERSATIONS
    return NewEvent("message.to_offline", {
        "to": "shop", "buyer": f"b{c}", "shop": f"s{c}", "agent": None, "sender": f"b{c}", "role": "buyer",
        "kind": "text", "status": "offline", "last_seen": None, "preview": f"is it still available? #{i}"})


async def run_chat(kind: str, events: int, senders: int, fail_every: int, backlog: bool,
                   rate: float) -> dict[str, Any]:
    """``backlog``: all messages are appended before the senders start (drain rate; the
    appends' own CPU is reported apart); otherwise ``rate`` appends per second while they run."""
    receiver = Receiver(fail_every)
    url = await receiver.start()
    committed: dict[str, float] = {}
    schemas: list[str] = []
    tmp = tempfile.mkdtemp(prefix="bench-whc-")
    chat, schema = open_chat_store(kind, tmp)
    schemas += [schema] if schema else []
    ledger, schema = await asyncio.to_thread(open_ledger, kind, tmp)
    schemas += [schema] if schema else []
    workers: list[WebhookSender] = []
    try:
        await chat.start()
        for c in range(CONVERSATIONS):
            await chat.open_conversation(f"c{c}", f"b{c}", f"s{c}", LISTING, None, time_ms())
        workers = [WebhookSender(WebhookOutbox(ledger, time_ms), bench_settings(url), chat_events=chat)
                   for _ in range(senders)]
        passes = 0

        def counted(run_once: Any) -> Any:
            async def pass_() -> int:
                nonlocal passes
                passes += 1
                return int(await run_once())

            return pass_

        for w in workers:
            w.run_once = counted(w.run_once)  # type: ignore[method-assign]  # passes, for events per pass

        async def append(i: int) -> None:
            event = offline_event(i)
            c = i % CONVERSATIONS
            await chat.append(f"c{c}", f"b{c}", "buyer", "text", {"text": event.data["preview"]}, f"m{i}",
                              time_ms(), [event])
            committed[event.event_id] = time.time() * 1000
            if sending and workers:
                workers[i % senders].poke()  # the node that stored it wakes its own sender

        sending = False
        make_cpu = float("nan")
        if backlog:
            cpu0 = time.process_time()
            for lo in range(0, events, 100):
                await asyncio.gather(*(append(i) for i in range(lo, min(events, lo + 100))))
            make_cpu = time.process_time() - cpu0
        for w in workers:
            await w.start()
        sending = True
        start = time.perf_counter()
        cpu0 = time.process_time()
        tasks: list[asyncio.Task[None]] = []
        if not backlog:
            for i in range(events):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(append(i)))
            await asyncio.gather(*tasks)
        deadline = time.monotonic() + WAIT_S
        while workers and len(receiver.arrived) < events and time.monotonic() < deadline:  # noqa: ASYNC110 (a bounded poll)
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        made_passes = passes
        left = len(await chat.pending_events(events + 1))
    finally:
        for w in workers:
            await w.stop()
        await chat.close()
        await asyncio.to_thread(ledger.close)
        drop_schemas(schemas)
        shutil.rmtree(tmp, ignore_errors=True)
        await receiver.stop()
    delays = [receiver.arrived[k] - committed[k] for k in receiver.arrived if k in committed]
    got = len(receiver.arrived)
    return {"mode": "backlog" if backlog else "live", "store": kind, "senders": senders, "fail_every": fail_every,
            "events": events, "delivered": got, "duplicates": receiver.duplicates, "left_in_store": left,
            "seconds": round(elapsed, 2), "per_s": round(got / elapsed),
            "cpu_us_per_event": round(cpu / max(1, got if senders else events) * 1e6),
            "events_per_pass": round(got / made_passes, 1) if made_passes else None,
            "append_cpu_us": round(make_cpu / events * 1e6) if backlog else None,
            "p50_ms": round(pct(delays, 0.5), 1), "p99_ms": round(pct(delays, 0.99), 1),
            "p999_ms": round(pct(delays, 0.999), 1), "max_ms": round(max(delays, default=float("nan")), 1)}


def chat_table(stores: list[str], events: int, senders_list: list[int], rate: float) -> None:
    print("mode     store     senders fail  events  delivered dup left  events/s  ev/pass  CPU µs/ev  append µs  "
          "p50 ms  p99 ms  p999 ms  max ms")
    # Live with no sender: what the appends alone cost (the rest of a live row is the sender's).
    runs = [(b, k, n, f) for b in (True, False) for k in stores for n in ([0, *senders_list] if not b else senders_list)
            for f in (0, 10) if not ((b or n == 0) and f)]
    for backlog, kind, senders, fail_every in runs:
        r = asyncio.run(run_chat(kind, events, senders, fail_every, backlog, rate))
        mode = r["mode"] if backlog else f"live@{rate:g}"
        print(f"{mode:8} {r['store']:9} {r['senders']:7} {('1/' + str(fail_every)) if fail_every else '-':>4} "
              f"{r['events']:7} {r['delivered']:10} {r['duplicates']:3} {r['left_in_store']:4} {r['per_s']:9} "
              f"{r['events_per_pass']!s:>8} {r['cpu_us_per_event']:10} {r['append_cpu_us'] if backlog else '-':>10} "
              f"{r['p50_ms']:7} {r['p99_ms']:7} {r['p999_ms']:8} {r['max_ms']:7}", flush=True)


# --- the send path: the embedded hub with webhooks off and on ---------------------------


class ThreadReceiver:
    """A :class:`Receiver` on its own event loop in a thread of this process."""

    def __init__(self) -> None:
        self.receiver = Receiver()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="receiver", daemon=True)

    def __enter__(self) -> ThreadReceiver:
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self.receiver.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class OneHub:
    """The embedded hub as ``common.generate`` expects a deployment (one node, SQLite FULL),
    with the ledger on, the overload control off and, with ``webhook_url``, webhooks on."""

    kind = "embedded"

    def __init__(self, webhook_url: str | None) -> None:
        from common import HUB_SRC, PY, SECRET, Server, free_port

        self.dir = Path(tempfile.mkdtemp(prefix="chatbench-wh-"))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOK_")}
        env.update({
            "HOST": "127.0.0.1", "PORT": str(port), "NODE_ID": "bench-0",
            "DATABASE_URL": f"sqlite:///{self.dir}/chat.db", "SQLITE_SYNCHRONOUS": "FULL",
            "TOKEN_SECRET": SECRET, "RATE_PER_SECOND": "100000", "RATE_BURST": "100000", "LOG_LEVEL": "WARNING",
            "OVERLOAD_MS": "0", "PAYMENTS": "on", "TIMERS_IN_HUB": "on", "API_PORT": str(free_port()),
            "PAYMENTS_DATABASE_URL": f"sqlite:///{self.dir}/payments.db",
            "PIN_PEPPER": "bench-pepper-0123456789abcdef", "PYTHONPATH": str(HUB_SRC),
        })
        if webhook_url:
            env.update({"WEBHOOK_URL": webhook_url, "WEBHOOK_SECRET": "bench-webhook-secret"})
        self.server = Server([PY, "-m", "chat", "serve"], env, port, "hub", self.dir / "hub.log", cwd=HUB_SRC)
        self.urls = [f"ws://127.0.0.1:{port}/ws"]
        self.pids = [self.server.pid]
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def send_run(hooks: bool, rx: ThreadReceiver, args: Any) -> dict[str, Any]:
    from common import generate, load1, wait_quiet

    before = wait_quiet(patience=5)
    got0 = rx.receiver.types["message.to_offline"]
    hub = OneHub(rx.url if hooks else None)
    try:
        rep = generate(cast(Any, hub), [
            "--mix", "messages", "--shops", str(args.buyers), "--agents-per-shop", "0", "--buyers", str(args.buyers),
            "--user-rate", "100000", "--user-burst", "100000", "--duration", str(args.duration),
            "--warmup", str(args.warmup), "--ramp", "2000", "--rate", str(args.rate)])
        acked = rep["counts"].get("acked_messages", 0)
        deadline = time.monotonic() + 30
        while hooks and rx.receiver.types["message.to_offline"] - got0 < acked and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        hub.close()
    ack = rep["types"].get("ack", {})
    cpu = (rep.get("hub") or {}).get("cpu_seconds")
    return {"webhooks": "on" if hooks else "off", "acked_per_s": round(ack.get("count", 0) / rep["measured_seconds"]),
            "hub_us_per_msg": round(cpu / ack["count"] * 1e6) if cpu and ack.get("count") else None,
            "hub_cpu_pct": (rep.get("hub") or {}).get("cpu_percent"),
            "p50_ms": ack.get("p50_ms"), "p99_ms": ack.get("p99_ms"), "max_ms": ack.get("max_ms"),
            "acked": acked, "webhooks_got": rx.receiver.types["message.to_offline"] - got0,
            "errors": sum(rep["errors"].values()), "gen_saturated": rep["generator"]["saturated"],
            "load_before": round(before, 2), "load_after": round(load1(), 2)}


def send_path_table(args: Any) -> None:
    print(f"load before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    print("run webhooks  acked/s  hub µs/msg  hub CPU%  ack p50 ms  ack p99 ms  max ms   acked  webhooks  errors  "
          "load1 before/after")
    with ThreadReceiver() as rx:
        for n in range(args.runs):
            for hooks in (False, True):
                r = send_run(hooks, rx, args)
                print(f"{n + 1:3} {r['webhooks']:8} {r['acked_per_s']:8} {r['hub_us_per_msg']!s:>11} "
                      f"{r['hub_cpu_pct']!s:>9} {r['p50_ms']!s:>11} {r['p99_ms']!s:>11} {r['max_ms']!s:>7} "
                      f"{r['acked']:7} {r['webhooks_got']:9} {r['errors']:7}  {r['load_before']}/{r['load_after']}"
                      f"{'  (generator saturated)' if r['gen_saturated'] else ''}", flush=True)
    print(f"load after: {Path('/proc/loadavg').read_text().strip()}", flush=True)
