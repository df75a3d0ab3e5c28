"""Payments per second: through the ledger alone, and through the whole chat path.

    .venv/bin/python bench/payments_rate.py [--payments 400] [--buyers 20]

Ledger alone: ``PaymentService.pay`` on the default SQLite store (WAL,
synchronous=FULL), from 1 and from 4 threads, with the PIN hash at the hub's
default cost and at a negligible cost (so the ledger's own cost shows).

Whole path: a hub process on the embedded default; each buyer sends ``pay``
over its websocket and the clock stops when the shop's agent receives the
``card_update`` that shows the order HELD (websocket command → committed
ledger → outbox relay → card delivered). Every figure is printed with the
configuration that produced it; runs are bounded and stop by themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat.auth import mint  # noqa: E402
from payments import Actor, PaymentService, PaymentSettings, PinHashing, open_store  # noqa: E402

PIN = "135790"
SECRET = "bench-token-secret-0123456789abcdef"
SERVER_SECRET = "bench-server-secret-0123456789"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ledger_alone(payments: int, threads: int, hashing: PinHashing) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        service = PaymentService(open_store(f"sqlite:///{tmp}/ledger.db"),
                                 settings=PaymentSettings(pin_hashing=hashing))
        buyers = [f"b{i}" for i in range(threads)]
        for b in buyers:
            service.deposit(f"user:{b}", 10**12, "CNY", f"fund-{b}")
            service.set_pin(Actor(user_id=b, role="buyer"), PIN)
        agent = Actor(user_id="a1", role="agent", shop_id="s1")
        orders: dict[str, list[str]] = {b: [] for b in buyers}
        for i in range(payments):
            b = buyers[i % threads]
            oid = f"o{i}"
            service.offer(agent, order_id=oid, conversation_id=f"c-{b}", shop_id="s1", buyer_id=b,
                          listing_id="l1", title="Tea", unit_price=100, quantity=1, currency="CNY")
            orders[b].append(oid)

        def run(buyer: str) -> list[float]:
            actor = Actor(user_id=buyer, role="buyer")
            took = []
            for oid in orders[buyer]:
                t0 = time.perf_counter()
                service.pay(actor, order_id=oid, pin=PIN, idem_key=f"k-{oid}")
                took.append(time.perf_counter() - t0)
            return took

        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            latencies = [x for part in pool.map(run, buyers) for x in part]
        elapsed = time.perf_counter() - start
        return {"payments": payments, "threads": threads, "per_second": payments / elapsed,
                "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_post(port: int, path: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method="POST", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {SERVER_SECRET}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201


async def whole_path(buyers: int, per_buyer: int) -> dict[str, float]:
    import msgpack
    from websockets.asyncio.client import connect

    with tempfile.TemporaryDirectory() as tmp:
        port, api_port = free_port(), free_port()
        env = {**os.environ, "PORT": str(port), "API_PORT": str(api_port), "DATABASE_URL": f"sqlite:///{tmp}/chat.db",
               "PAYMENTS_DATABASE_URL": f"sqlite:///{tmp}/payments.db", "TOKEN_SECRET": SECRET,
               "SERVER_SECRET": SERVER_SECRET, "RATE_PER_SECOND": "10000", "RATE_BURST": "10000",
               "LOG_LEVEL": "WARNING"}
        hub = subprocess.Popen([sys.executable, "-m", "chat", "serve"], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            url = f"ws://127.0.0.1:{port}/"
            ids = iter(range(1, 10**9))

            async def call(ws: Any, frame: dict[str, Any], replies: dict[int, asyncio.Future[Any]]) -> Any:
                rid = next(ids)
                fut = asyncio.get_running_loop().create_future()
                replies[rid] = fut
                await ws.send(msgpack.packb({**frame, "id": rid}))
                return await asyncio.wait_for(fut, 30)

            held_at: dict[str, float] = {}
            held_event: dict[str, asyncio.Event] = {}

            async def reader(ws: Any, replies: dict[int, asyncio.Future[Any]]) -> None:
                async for data in ws:
                    frame = msgpack.unpackb(data)
                    if frame.get("re") in replies:
                        replies.pop(frame["re"]).set_result(frame)
                    elif frame.get("type") == "msg" and frame.get("kind") == "card_update":
                        body = frame["body"]
                        if body["state"] == "HELD" and body["id"] in held_event:
                            held_at[body["id"]] = time.perf_counter()
                            held_event[body["id"]].set()

            agent_ws = await connect(url)
            agent_replies: dict[int, asyncio.Future[Any]] = {}
            agent_task = asyncio.create_task(reader(agent_ws, agent_replies))
            await call(agent_ws, {"type": "auth", "token": mint(SECRET, "a1", "agent", shop="s1")}, agent_replies)
            await call(agent_ws, {"type": "sync"}, agent_replies)

            sessions = []
            for i in range(buyers):
                user = f"b{i}"
                await asyncio.to_thread(api_post, api_port, "/api/v1/deposits",
                                        {"owner": f"user:{user}", "amount": 10**10, "currency": "CNY", "key": f"f{i}"})
                ws = await connect(url)
                replies: dict[int, asyncio.Future[Any]] = {}
                task = asyncio.create_task(reader(ws, replies))
                await call(ws, {"type": "auth", "token": mint(SECRET, user, "buyer")}, replies)
                opened = await call(ws, {"type": "open", "shop": "s1", "listing": {
                    "id": "l1", "title": "Tea", "price": 100, "currency": "CNY"}}, replies)
                await call(ws, {"type": "set_pin", "pin": PIN}, replies)
                conv = opened["conversation"]["id"]
                orders = []
                for j in range(per_buyer):
                    offer = await call(agent_ws, {"type": "offer", "conv": conv, "price": 100 + j,
                                                  "key": f"offer-{i}-{j}"}, agent_replies)
                    orders.append(offer["view"]["order_id"])
                sessions.append((ws, replies, task, conv, orders))

            latencies: list[float] = []

            async def buyer_loop(
                ws: Any, replies: dict[int, asyncio.Future[Any]], conv: str, orders: list[str]
            ) -> None:
                for oid in orders:
                    held_event[oid] = asyncio.Event()
                    t0 = time.perf_counter()
                    reply = await call(ws, {"type": "pay", "conv": conv, "order": oid, "pin": PIN,
                                            "key": f"pay-{oid}"}, replies)
                    assert reply["type"] == "payment", reply
                    await asyncio.wait_for(held_event[oid].wait(), 30)
                    latencies.append(held_at[oid] - t0)

            start = time.perf_counter()
            await asyncio.gather(*(buyer_loop(ws, r, c, o) for ws, r, _, c, o in sessions))
            elapsed = time.perf_counter() - start
            for ws, _, task, _, _ in sessions:
                await ws.close()
                task.cancel()
            await agent_ws.close()
            agent_task.cancel()
            total = buyers * per_buyer
            return {"payments": total, "buyers": buyers, "per_second": total / elapsed,
                    "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000}
        finally:
            hub.terminate()
            hub.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=400, help="payments per ledger-alone run")
    parser.add_argument("--buyers", type=int, default=20, help="concurrent buyers on the whole path")
    parser.add_argument("--per-buyer", type=int, default=10, help="payments per buyer on the whole path")
    args = parser.parse_args()
    default = PinHashing(time_cost=2, memory_cost_kib=19456, parallelism=1)
    cheap = PinHashing(time_cost=1, memory_cost_kib=8, parallelism=1)
    rows = []
    for label, hashing in (("ledger, PIN at hub default cost", default), ("ledger, negligible PIN cost", cheap)):
        for threads in (1, 4):
            r = ledger_alone(args.payments, threads, hashing)
            rows.append((f"{label}, {threads} thread(s)", r))
    r = asyncio.run(whole_path(args.buyers, args.per_buyer))
    rows.append(("whole path: ws pay → ledger → card at agent (hub default PIN cost)", r))
    print(f"{'run':72} {'pay/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for label, r in rows:
        print(f"{label:72} {r['per_second']:8.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}")
    base = max(rows[0][1]["per_second"], rows[1][1]["per_second"])
    print(f"\nwhole path / best ledger-alone run at the same PIN cost: {rows[-1][1]['per_second'] / base:.2f}")
    print(json.dumps({label: r for label, r in rows}, indent=1))


if __name__ == "__main__":
    main()
