"""A shop's broadcast to many followers: fan-out throughput, and live chat's latency meanwhile.

    .venv/bin/python bench/broadcast.py [--followers 20000] [--pairs 20] [--rate 100]
                                        [--batch 500] [--pause-ms 20] [--baseline 10] [--online 100]

One hub process on the embedded default (SQLite file, WAL, synchronous=FULL; in-memory
presence and routing; payments off), which runs the broadcast runner itself
(``BROADCASTS_IN_HUB=on``). Before it starts, ``--followers`` buyers are written into its
file, each with a conversation with the shop and following it. Then, over websockets:

* live chat: ``--pairs`` buyer/agent pairs of another shop, the buyers sending ``--rate``
  messages per second in all (open loop, paced), each measured from ``send`` to ``ack``
  (stored) and to the agent receiving the ``msg`` (delivered);
* ``--online`` of the followers connected, to count the broadcast arriving live;
* ``--baseline`` seconds of live chat alone (after 2 s of warm-up), then one ``broadcast`` from an agent of the
  followed shop, with live chat going on until the runner reports the job done.

Printed (JSON): the broadcast's time to the ``broadcast`` reply, its duration and throughput
(followers per second), and live chat's p50/p99/max ack and delivery latency with and
without the broadcast running. Loopback only; the data directory is removed.
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
from pathlib import Path
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import PY, SECRET, cpu_seconds, free_port, load1, machine, raise_nofile, wait_quiet  # noqa: E402
from chat.auth import mint  # noqa: E402
from chat.store.sqlite import SQLiteStore  # noqa: E402

SHOP = "bshop"
LIVE_SHOP = "lshop"
LISTING = {"id": "l-1", "title": "Tea", "price": 12800, "currency": "CNY", "verified": False}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def figures(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_ms": pct(values, 0.5), "p99_ms": pct(values, 0.99),
            "max_ms": round(max(values), 2) if values else None}


async def seed(path: str, followers: int) -> float:
    """Every follower with a conversation with SHOP, following it; seconds taken."""
    t0 = time.perf_counter()
    store = SQLiteStore(path, synchronous="NORMAL")
    await store.start()
    step = 1000
    for start in range(0, followers, step):
        buyers = [f"f{i:06d}" for i in range(start, min(followers, start + step))]
        opened = await asyncio.gather(*(store.open_conversation(f"cf{b}", b, SHOP, LISTING, None, 1) for b in buyers))
        await asyncio.gather(*(store.follow(SHOP, r.buyer, r.id, 2) for r, _ in opened))
    await store.close()
    return time.perf_counter() - t0


class Peer:
    """A websocket client: requests answered by ``re``, pushed ``msg`` frames to a callback."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.on_msg: Any = None
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, user: str, role: str = "buyer", shop: str | None = None) -> Peer:
        token = mint(SECRET, user, role, shop=shop, ttl=3600)  # type: ignore[arg-type]
        ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None,
                           compression=None)
        peer = cls(ws)
        await peer.request({"type": "sync"})
        return peer

    async def _read(self) -> None:
        async for data in self.ws:
            frame = msgpack.unpackb(data, raw=False)
            re = frame.get("re")
            if re is not None and re in self.waiting:
                self.waiting.pop(re).set_result(frame)
            elif frame.get("type") == "msg" and self.on_msg is not None:
                self.on_msg(frame)

    async def request(self, frame: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        self.next_id += 1
        rid = self.next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[rid] = fut
        await self.ws.send(msgpack.packb({**frame, "id": rid}, use_bin_type=True))
        return await asyncio.wait_for(fut, timeout)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


class LiveChat:
    """Buyers of LIVE_SHOP sending at a fixed total rate; latencies recorded per phase."""

    def __init__(self, pairs: list[tuple[Peer, Peer, str]], rate: float) -> None:
        self.pairs = pairs
        self.rate = rate
        self.phase = "baseline"
        self.acks: dict[str, list[float]] = {"baseline": [], "broadcast": []}
        self.deliveries: dict[str, list[float]] = {"baseline": [], "broadcast": []}
        self.sent_at: dict[str, tuple[float, str]] = {}
        self.errors = 0
        for _, agent, _ in pairs:
            agent.on_msg = self._delivered

    def _delivered(self, frame: dict[str, Any]) -> None:
        cmid = frame.get("cmid")
        if cmid in self.sent_at:
            t0, phase = self.sent_at.pop(cmid)
            self.deliveries[phase].append((time.perf_counter() - t0) * 1000)

    async def _one(self, i: int) -> None:
        buyer, _, conv = self.pairs[i % len(self.pairs)]
        cmid = f"m{i}"
        phase = self.phase
        t0 = time.perf_counter()
        self.sent_at[cmid] = (t0, phase)
        body = {"kind": "text", "text": f"hi {i}"}
        reply = await buyer.request({"type": "send", "conv": conv, "cmid": cmid, "body": body})
        if reply.get("type") != "ack":
            self.errors += 1
            return
        self.acks[phase].append((time.perf_counter() - t0) * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        interval = 1 / self.rate
        start = time.perf_counter()
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while not stop.is_set():
            due = start + i * interval
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self._one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        await asyncio.gather(*tasks, return_exceptions=True)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    raise_nofile()
    quiet = wait_quiet()
    tmp = tempfile.TemporaryDirectory(prefix="bench-broadcast-")
    db = os.path.join(tmp.name, "chat.db")
    seeded = await seed(db, args.followers)
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "DATABASE_URL": f"sqlite:///{db}",
           "TOKEN_SECRET": SECRET, "PAYMENTS": "off", "DEMO": "off", "RATE_PER_SECOND": "1000",
           "RATE_BURST": "1000", "BROADCAST_LIMIT": "0", "BROADCAST_BATCH": str(args.batch),
           "BROADCAST_PAUSE_MS": str(args.pause_ms), "BROADCASTS_IN_HUB": "on", "LOG_LEVEL": "WARNING",
           "OUTBOX_BYTES": str(64 * 1024 * 1024), "NODE_ID": "bench"}
    hub = subprocess.Popen([PY, "-m", "chat", "serve"], cwd=str(ROOT), env=env)
    url = f"ws://127.0.0.1:{port}/ws"
    try:
        for _ in range(200):
            try:
                probe = await Peer.connect(url, "probe")
                await probe.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        pairs = []
        for p in range(args.pairs):
            agent = await Peer.connect(url, f"la{p}", "agent", LIVE_SHOP)
            buyer = await Peer.connect(url, f"lb{p}")
            opened = await buyer.request({"type": "open", "shop": LIVE_SHOP, "listing": {**LISTING, "id": f"l{p}"}})
            pairs.append((buyer, agent, opened["conversation"]["id"]))
        received = 0

        def got(frame: dict[str, Any]) -> None:
            nonlocal received
            if frame.get("kind") == "broadcast":
                received += 1

        spread = max(1, args.followers // max(1, args.online))
        online = [await Peer.connect(url, f"f{i:06d}") for i in range(0, args.followers, spread)][: args.online]
        for peer in online:
            peer.on_msg = got
        shop_agent = await Peer.connect(url, "ba0", "agent", SHOP)
        live = LiveChat(pairs, args.rate)
        stop = asyncio.Event()
        running = asyncio.create_task(live.run(stop))
        await asyncio.sleep(2)  # warm-up, not counted
        live.acks["baseline"].clear()
        live.deliveries["baseline"].clear()
        await asyncio.sleep(args.baseline)
        cpu0 = cpu_seconds(hub.pid)
        live.phase = "broadcast"
        t0 = time.perf_counter()
        reply = await shop_agent.request({"type": "broadcast", "key": "bench-000001", "text": "New spring tea",
                                          "listing": {k: v for k, v in LISTING.items() if k != "verified"},
                                          "offer": {"price": 9900, "currency": "CNY", "valid_hours": 48}})
        recorded_ms = (time.perf_counter() - t0) * 1000
        job_id = reply["broadcast"]["id"]
        job: dict[str, Any] = reply["broadcast"]
        while not job["done"]:
            await asyncio.sleep(0.2)
            page = await shop_agent.request({"type": "broadcasts", "limit": 1})
            job = next(b for b in page["broadcasts"] if b["id"] == job_id)
        took = time.perf_counter() - t0
        cpu = cpu_seconds(hub.pid) - cpu0
        stop.set()
        await running
        await asyncio.sleep(0.5)
        for peer in [*online, shop_agent, *(p for pair in pairs for p in pair[:2])]:
            await peer.close()
        return {
            "machine": {**machine(), "load1_at_start": round(quiet, 2), "load1_at_end": round(load1(), 2)},
            "settings": {"followers": args.followers, "batch": args.batch, "pause_ms": args.pause_ms,
                         "live_pairs": args.pairs, "live_rate_per_s": args.rate, "online_followers": len(online),
                         "store": "sqlite (WAL, synchronous=FULL)"},
            "seed_s": round(seeded, 1),
            "broadcast": {"reply_ms": round(recorded_ms, 2), "duration_s": round(took, 2),
                          "delivered": job["delivered"], "skipped": job["skipped"],
                          "followers_per_s": round(job["delivered"] / took), "hub_cpu_s": round(cpu, 2),
                          "hub_cpu_us_per_follower": round(cpu / max(1, job["delivered"]) * 1e6),
                          "received_live_by_online_followers": received},
            "live_chat": {phase: {"ack": figures(live.acks[phase]), "delivery": figures(live.deliveries[phase])}
                          for phase in ("baseline", "broadcast")},
            "live_errors": live.errors,
        }
    finally:
        hub.terminate()
        try:
            hub.wait(10)
        except subprocess.TimeoutExpired:
            hub.kill()
        tmp.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=100, help="live messages per second, all pairs together")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pause-ms", type=int, default=20)
    parser.add_argument("--baseline", type=float, default=10, help="seconds of live chat before the broadcast")
    parser.add_argument("--online", type=int, default=100, help="followers connected during the broadcast")
    print(json.dumps(asyncio.run(bench(parser.parse_args())), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
