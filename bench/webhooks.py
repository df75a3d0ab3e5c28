"""Webhook delivery: events per second through the sender and the delay to the receiver.

    .venv/bin/python bench/webhooks.py [--events 3000] [--senders 1 2] [--store sqlite postgres]

A ledger (SQLite in a temp dir, or a fresh PostgreSQL schema) gets ``--events`` order
events (offers), then ``--senders`` webhook senders in this process deliver them to a
local aiohttp receiver that answers 204 at once. Reported: delivered events/s, the delay
from the event's commit to its arrival at the receiver (p50, p99, p999, max), and
duplicates (expected 0 with a healthy receiver). A second run makes every tenth request
fail once, to show the cost of retries. Bounded and self-stopping.

    .venv/bin/python bench/webhooks.py --source chat [--events 3000] [--rate 500] [--store sqlite postgres]

The chat's own events instead (``bench/webhooks_chat.py``): a chat store gets ``--events``
messages with a ``message.to_offline`` event each, which ``WebhookSender(chat_events=store)``
moves into the ledger's outbox and delivers. Backlog drain, then live at ``--rate`` appends/s
(delay from the append's commit to arrival; also with no sender, the appends' own CPU), then
live with every tenth request failing once.

    .venv/bin/python bench/webhooks.py --send-path [--runs 2] [--rate 1000] [--buyers 500] [--duration 8]

What the chat events cost the send path: the embedded hub under ``python -m chat.loadtest``
(open load, shops with no agent online so every message carries an event), runs alternating
``WEBHOOK_URL`` unset and set; hub CPU µs per acked message and the ack's p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from webhooks_chat import Receiver, bench_settings, chat_table, drop_schemas, open_ledger, pct, send_path_table, time_ms

from chat.webhooks import WebhookSender
from payments import Actor, PaymentService, PaymentSettings, PinHashing
from payments.webhooks import WebhookOutbox


async def run(kind: str, events: int, senders: int, fail_every: int, backlog: bool) -> dict[str, Any]:
    """``backlog``: the events exist before the senders start (drain rate); otherwise they
    are made while the senders run (delay to the receiver at the ledger's own pace)."""
    receiver = Receiver(fail_every)
    url = await receiver.start()
    with tempfile.TemporaryDirectory() as tmp:
        store, schema = open_ledger(kind, tmp)
        service = PaymentService(store, settings=PaymentSettings(pin_hashing=PinHashing(
            time_cost=1, memory_cost_kib=8, parallelism=1)))
        agent = Actor(user_id="a", role="agent", shop_id="s")
        workers = [WebhookSender(WebhookOutbox(store, time_ms), bench_settings(url)) for _ in range(senders)]

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
        while len(receiver.arrived) < events and time.monotonic() < deadline:  # noqa: ASYNC110 (a bounded poll)
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        for w in workers:
            await w.stop()
        store.close()
        drop_schemas([schema] if schema else [])
    await receiver.stop()
    arrivals = receiver.arrived
    delays = [arrivals[k] - receiver.created[k] for k in arrivals]
    return {"mode": "backlog" if backlog else "live", "store": kind, "senders": senders,
            "fail_every": fail_every, "events": events,
            "delivered": len(arrivals), "duplicates": receiver.duplicates, "seconds": round(elapsed, 2),
            "per_s": round(len(arrivals) / elapsed), "cpu_us_per_event": round(cpu / max(1, len(arrivals)) * 1e6),
            "p50_ms": round(pct(delays, 0.5), 1), "p99_ms": round(pct(delays, 0.99), 1),
            "p999_ms": round(pct(delays, 0.999), 1), "max_ms": round(max(delays, default=float("nan")), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--senders", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--store", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--source", choices=["order", "chat"], default="order",
                        help="the ledger's order events (default) or the chat store's events")
    parser.add_argument("--rate", type=float, help="chat live mode: appends/s (500); send path: msg/s (1000)")
    parser.add_argument("--send-path", action="store_true", help="the hub's send path, webhooks off vs on")
    parser.add_argument("--runs", type=int, default=2, help="send path: runs of each side, alternated")
    parser.add_argument("--buyers", type=int, default=500, help="send path: buyer connections (one shop each)")
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    args = parser.parse_args()
    if args.send_path:
        args.rate = args.rate or 1000
        send_path_table(args)
        return
    if args.source == "chat":
        chat_table(args.store, args.events, args.senders, args.rate or 500)
        return
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
