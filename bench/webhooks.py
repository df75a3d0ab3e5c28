"""Webhook delivery: events per second through the sender and the delay to the receiver.

    .venv/bin/python bench/webhooks.py [--events 3000] [--senders 1 2] [--store sqlite postgres]

A ledger (SQLite in a temp dir, or a fresh PostgreSQL schema) gets ``--events`` order
events (offers), then ``--senders`` webhook senders in this process deliver them to a
local aiohttp receiver that answers 204 at once. Reported: delivered events/s, the delay
from the event's commit to its arrival at the receiver (p50, p99, p999, max), and
duplicates (expected 0 with a healthy receiver). A second run makes every tenth request
fail once, to show the cost of retries. Bounded and self-stopping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chat.webhooks import WebhookSender, WebhookSettings
from payments import Actor, PaymentService, PaymentSettings, PinHashing
from payments.store import Store
from payments.webhooks import WebhookOutbox

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def open_ledger(kind: str, tmp: str) -> tuple[Store, str | None]:
    if kind == "sqlite":
        from payments.sqlite_store import SqliteStore

        return SqliteStore(os.path.join(tmp, "payments.db")), None
    from payments.postgres_store import PostgresStore

    schema = f"bench_wh_{uuid.uuid4().hex[:10]}"
    return PostgresStore(PG_URL, schema=schema, pool_size=8), schema


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(kind: str, events: int, senders: int, fail_every: int, backlog: bool) -> dict[str, Any]:
    """``backlog``: the events exist before the senders start (drain rate); otherwise they
    are made while the senders run (delay to the receiver at the ledger's own pace)."""
    arrivals: dict[str, float] = {}
    duplicates = 0
    seen_requests = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal duplicates, seen_requests
        seen_requests += 1
        body = json.loads(await request.read())
        if fail_every and seen_requests % fail_every == 0 and body["id"] not in arrivals:
            return web.Response(status=503)
        if body["id"] in arrivals:
            duplicates += 1
        else:
            arrivals[body["id"]] = time.time() * 1000 - body["created"]
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    with tempfile.TemporaryDirectory() as tmp:
        store, schema = open_ledger(kind, tmp)
        service = PaymentService(store, settings=PaymentSettings(pin_hashing=PinHashing(
            time_cost=1, memory_cost_kib=8, parallelism=1)))
        agent = Actor(user_id="a", role="agent", shop_id="s")
        settings = WebhookSettings(url=url, secrets=("bench-secret",), timeout=5, base_delay_ms=20,
                                   max_delay_ms=200, interval=0.01, concurrency=32)
        workers = [WebhookSender(WebhookOutbox(store, time_ms), settings) for _ in range(senders)]

        def make() -> None:
            for i in range(events):
                service.offer(agent, order_id=f"o{i}", conversation_id="c", shop_id="s", buyer_id="b",
                              listing_id="l", title="tea", unit_price=100 + i, quantity=1, currency="CNY")

        if backlog:
            await asyncio.to_thread(make)
        for w in workers:
            await w.start()
        start = time.perf_counter()
        cpu0 = time.process_time()
        if not backlog:
            await asyncio.to_thread(make)
        deadline = time.monotonic() + 120
        while len(arrivals) < events and time.monotonic() < deadline:  # noqa: ASYNC110 (a bounded poll)
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        for w in workers:
            await w.stop()
        store.close()
        if schema is not None:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await runner.cleanup()
    delays = list(arrivals.values())
    return {"mode": "backlog" if backlog else "live", "store": kind, "senders": senders,
            "fail_every": fail_every, "events": events,
            "delivered": len(arrivals), "duplicates": duplicates, "seconds": round(elapsed, 2),
            "per_s": round(len(arrivals) / elapsed), "cpu_us_per_event": round(cpu / max(1, len(arrivals)) * 1e6),
            "p50_ms": round(pct(delays, 0.5), 1), "p99_ms": round(pct(delays, 0.99), 1),
            "p999_ms": round(pct(delays, 0.999), 1), "max_ms": round(max(delays, default=float("nan")), 1)}


def time_ms() -> int:
    return int(time.time() * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--store", nargs="+", default=["sqlite", "postgres"])
    args = parser.parse_args()
    print("mode     store     senders fail  events  delivered dup  events/s  CPU µs/ev  "
          "p50 ms  p99 ms  p999 ms  max ms")
    runs = [(b, k, n, f) for b in (False, True) for k in args.store for n in args.senders for f in (0, 10)]
    for backlog, kind, senders, fail_every in runs:
        r = asyncio.run(run(kind, args.events, senders, fail_every, backlog))
        print(f"{r['mode']:8} {r['store']:9} {r['senders']:7} {('1/' + str(fail_every)) if fail_every else '-':>4} "
              f"{r['events']:7} {r['delivered']:10} {r['duplicates']:3} {r['per_s']:9} "
              f"{r['cpu_us_per_event']:10} {r['p50_ms']:7} {r['p99_ms']:7} {r['p999_ms']:8} {r['max_ms']:7}",
              flush=True)


if __name__ == "__main__":
    main()
