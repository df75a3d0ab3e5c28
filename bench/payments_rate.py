"""Payments per second: the ledger alone, and the whole chat path, before and after a change.

    .venv/bin/python bench/payments_rate.py [--before HEAD] [--only ledger|e2e] [--profile]

Two code trees are measured in one sitting: ``--before`` (a git revision, extracted with
``git archive`` into a temporary directory; default ``HEAD``) and this working tree. The
same load code (this file, this checkout's ``chat.loadtest.wsclient``) drives both; only
the ``payments``/``chat`` packages under test differ (each run is a child process whose
``sys.path`` starts with its tree).

(a) Ledger alone: ``PaymentService.pay`` (wallet → escrow: one transaction with the order,
two entries, the event and the idempotency record) from ``--threads`` (8) concurrent payer
threads, each its own buyer, on SQLite (WAL, synchronous=FULL) and on PostgreSQL (a fresh
schema, dropped afterwards); for this tree also over
:class:`~payments.group_commit.GroupCommitStore` (many payments per transaction).
Offers are made before the clock starts.
Figures: payments/s, p50/p99/max latency of one ``pay`` call.

(b) End to end: a hub (``python -m chat serve``, embedded default: SQLite chat store and
ledger) and ``--buyers`` (200) buyers on their own websockets, each in its conversation
with one shop whose agent is connected. The clock of one payment starts when the buyer
sends ``pay`` and stops when the agent receives the ``card_update`` that shows the order
HELD (websocket → committed ledger → outbox relay → card delivered). Closed loop: every
buyer pays its next offer as soon as its previous card arrived (max rate). Open loop:
``--rate`` (500) payments/s on a fixed schedule whatever the hub does (latency under
load). ``--ledger-url`` runs the hub's ledger on PostgreSQL instead. Hub CPU seconds per
payment come from ``/proc``.

``--profile`` runs the after-tree's hub under cProfile in every thread (the ledger runs
in worker threads) for one closed-loop run and prints where the time goes.

A benchmark prints figures; nothing here is a test and nothing fails on a slow machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
PIN = "135790"
SECRET = "bench-token-secret-0123456789abcdef"
SERVER_SECRET = "bench-server-secret-0123456789"
PEPPER = "bench-pin-pepper-0123456789abcdef"
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
ARGON2_HUB_DEFAULT = {"time_cost": 2, "memory_cost_kib": 19456, "parallelism": 1}
"""The hub's PIN hash cost before keyed hashing (``PIN_HASH_TIME_COST``/``_MEMORY_KIB``)."""


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load1() -> float:
    return os.getloadavg()[0]


@contextlib.contextmanager
def code_tree(rev: str | None) -> Iterator[Path]:
    """This checkout (``rev`` None) or ``git archive rev`` unpacked in a temporary directory."""
    if rev is None:
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="bench-src-") as tmp:
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


# --- (a) the ledger alone, in a child process whose sys.path starts with the tree ----------


def ledger_worker(src: str, store_kind: str, payments: int, threads: int, group: bool = False) -> dict[str, Any]:
    sys.path.insert(0, src)
    from payments import Actor, PaymentService, PaymentSettings, PinHashing, open_store

    fields = PaymentSettings.model_fields
    extra: dict[str, Any] = {"pin_pepper": PEPPER} if "pin_pepper" in fields else {}
    settings = PaymentSettings(pin_hashing=PinHashing(**ARGON2_HUB_DEFAULT), **extra)
    with contextlib.ExitStack() as stack:
        if store_kind == "sqlite":
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            store = open_store(f"sqlite:///{tmp}/ledger.db")
        else:
            import psycopg

            from payments.postgres_store import PostgresStore

            schema = f"bench_{uuid.uuid4().hex[:10]}"

            def drop() -> None:
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

            stack.callback(drop)
            store = PostgresStore(PG_URL, schema=schema, pool_size=threads + 2)
        stack.callback(store.close)
        if group:
            from payments.group_commit import GroupCommitStore

            store = GroupCommitStore(store)
            stack.callback(store.close)
        service = PaymentService(store, settings=settings)
        buyers = [f"b{i}" for i in range(threads)]
        agent = Actor(user_id="a1", role="agent", shop_id="s1")
        for b in buyers:
            service.deposit(f"user:{b}", 10**12, "CNY", f"fund-{b}")
            service.set_pin(Actor(user_id=b, role="buyer"), PIN)
        orders: dict[str, list[str]] = {b: [] for b in buyers}
        for i in range(payments):
            b = buyers[i % threads]
            service.offer(agent, order_id=f"o{i}", conversation_id=f"c-{b}", shop_id="s1", buyer_id=b,
                          listing_id="l1", title="Tea", unit_price=100, quantity=1, currency="CNY")
            orders[b].append(f"o{i}")

        def run(buyer: str) -> list[float]:
            actor = Actor(user_id=buyer, role="buyer")
            took = []
            for oid in orders[buyer]:
                t0 = time.perf_counter()
                service.pay(actor, order_id=oid, pin=PIN, idem_key=f"k-{oid}")
                took.append(time.perf_counter() - t0)
            return took

        cpu0 = time.process_time()
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            latencies = [x for part in pool.map(run, buyers) for x in part]
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        return {"payments": payments, "threads": threads, "per_second": payments / elapsed,
                "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
                "max_ms": max(latencies) * 1000, "cpu_us_per_payment": cpu / payments * 1e6}


def ledger_alone(src: Path, store_kind: str, payments: int, threads: int, group: bool = False) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--ledger-worker", str(src), store_kind, str(payments), str(threads),
         "group" if group else "single"],
        cwd=src, capture_output=True, text=True, timeout=1800,
    )
    if out.returncode != 0:
        raise RuntimeError(f"ledger worker failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- (b) end to end ----------------------------------------------------------------------


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
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status != 201:
            raise RuntimeError(f"{path}: {resp.status}")


class Hub:
    """A hub process from ``src``; ``profile``: under cProfile in every thread (stats to a file)."""

    def __init__(self, src: Path, tmp: str, ledger_url: str | None, profile: str | None) -> None:
        self.port, self.api_port = free_port(), free_port()
        self.schema: str | None = None
        if ledger_url is None:
            ledger_url = f"sqlite:///{tmp}/payments.db"
        elif ledger_url.startswith("postgres"):
            self.schema = f"bench_{uuid.uuid4().hex[:10]}"
            ledger_url = f"{ledger_url}?schema={self.schema}"
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.port), "API_PORT": str(self.api_port),
               "DATABASE_URL": f"sqlite:///{tmp}/chat.db", "PAYMENTS_DATABASE_URL": ledger_url,
               "TOKEN_SECRET": SECRET, "SERVER_SECRET": SERVER_SECRET, "PIN_PEPPER": PEPPER,
               "RATE_PER_SECOND": "100000", "RATE_BURST": "100000", "LOG_LEVEL": "WARNING", "DEMO": "off",
               "PYTHONPATH": str(src)}
        cmd = ([sys.executable, __file__, "--profiled-hub", profile] if profile
               else [sys.executable, "-m", "chat", "serve"])
        self.log = Path(tmp) / "hub.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=src, stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(400):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"hub exited: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        raise RuntimeError("hub did not become ready")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.schema is not None:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


class Peer:
    """One websocket (lean sans-I/O client): requests by id, and card updates by order id."""

    def __init__(self, on_card: Any = None) -> None:
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.ids = 0
        self.on_card = on_card
        self.ws: Any = None

    async def connect(self, url: str, token: str) -> None:
        from chat.loadtest.wsclient import connect

        self.ws = await connect(url, self._frame, lambda code, reason: None)
        await self.request({"type": "auth", "token": token})

    def _frame(self, data: Any) -> None:
        import msgpack

        frame = msgpack.unpackb(bytes(data))
        re = frame.get("re")
        if re is not None and re in self.replies:
            fut = self.replies.pop(re)
            if not fut.done():
                fut.set_result(frame)
        elif self.on_card is not None and frame.get("type") == "msg" and frame.get("kind") == "card_update":
            self.on_card(frame["body"])

    def send(self, frame: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        import msgpack

        self.ids += 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[self.ids] = fut
        self.ws.send(msgpack.packb({**frame, "id": self.ids}))
        return fut

    async def request(self, frame: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        reply = await asyncio.wait_for(self.send(frame), timeout)
        if reply.get("type") == "error":
            raise RuntimeError(f"{frame['type']}: {reply}")
        return reply


async def end_to_end(hub: Hub, buyers: int, closed_s: float, rate: float, open_s: float,
                     warmup_s: float, closed_cap: float = 400) -> dict[str, Any]:
    from chat.auth import mint

    url = f"ws://127.0.0.1:{hub.port}/"
    held: dict[str, asyncio.Future[float]] = {}

    def on_card(body: dict[str, Any]) -> None:
        fut = held.get(body.get("id", ""))
        if body.get("state") == "HELD" and fut is not None and not fut.done():
            fut.set_result(time.perf_counter())

    agent = Peer(on_card)
    await agent.connect(url, mint(SECRET, "a1", "agent", shop="s1"))
    with ThreadPoolExecutor(16) as pool:
        await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(
            pool, api_post, hub.api_port, "/api/v1/deposits",
            {"owner": f"user:b{i}", "amount": 10**11, "currency": "CNY", "key": f"f{i}"}) for i in range(buyers)))
    peers: list[tuple[Peer, str]] = []

    async def join(i: int) -> None:
        peer = Peer()
        await peer.connect(url, mint(SECRET, f"b{i}", "buyer"))
        opened = await peer.request({"type": "open", "shop": "s1", "listing": {
            "id": "l1", "title": "Tea", "price": 100, "currency": "CNY"}})
        await peer.request({"type": "set_pin", "pin": PIN})
        peers.append((peer, opened["conversation"]["id"]))

    for start in range(0, buyers, 50):
        await asyncio.gather(*(join(i) for i in range(start, min(buyers, start + 50))))
    await agent.request({"type": "sync"})
    # Enough offers for ~400 payments/s in the closed loop (a buyer that runs out stops).
    closed_per_buyer = max(4, int((closed_s + warmup_s) * closed_cap / buyers))
    open_total = int(rate * (open_s + warmup_s)) if open_s > 0 else 0
    open_per_buyer = open_total // buyers + 2 if open_total else 0
    queues: dict[int, list[str]] = {i: [] for i in range(len(peers))}
    keys = iter(range(10**9))

    async def offers(i: int, count: int) -> None:
        conv = peers[i][1]
        for _ in range(count):
            reply = await agent.request({"type": "offer", "conv": conv, "price": 100,
                                         "key": f"offer-{next(keys):08d}"})
            queues[i].append(reply["view"]["order_id"])

    t_setup = time.perf_counter()
    await asyncio.gather(*(offers(i, closed_per_buyer + open_per_buyer) for i in range(len(peers))))
    setup_s = time.perf_counter() - t_setup
    await asyncio.sleep(1.0)  # let the offers' cards drain

    async def pay(i: int) -> tuple[float, float, float]:
        """(send time, reply latency, card latency) of the buyer's next offer."""
        peer, conv = peers[i]
        oid = queues[i].pop(0)
        held[oid] = asyncio.get_running_loop().create_future()
        t0 = time.perf_counter()
        reply = await peer.request({"type": "pay", "conv": conv, "order": oid, "pin": PIN, "key": f"pay-{oid}"})
        t1 = time.perf_counter()
        if reply["view"]["state"] != "HELD":
            raise RuntimeError(reply)
        card_at = await asyncio.wait_for(held.pop(oid), 60)
        return t0, t1 - t0, card_at - t0

    # Closed loop.
    done: list[tuple[float, float, float]] = []
    stop_at = time.perf_counter() + warmup_s + closed_s
    cpu0 = cpu_seconds(hub.proc.pid)
    measure_from = time.perf_counter() + warmup_s
    cpu_at_measure: list[float] = []

    async def loop(i: int) -> None:
        while queues[i] and time.perf_counter() < stop_at:
            if open_per_buyer and open_per_buyer >= len(queues[i]):
                return  # keep the open loop's offers
            done.append(await pay(i))

    async def mark() -> None:
        await asyncio.sleep(warmup_s)
        cpu_at_measure.append(cpu_seconds(hub.proc.pid))

    marker = asyncio.create_task(mark())
    await asyncio.gather(*(loop(i) for i in range(len(peers))))
    end = time.perf_counter()
    await marker
    cpu1 = cpu_seconds(hub.proc.pid)
    measured = [d for d in done if d[0] >= measure_from]
    window = max(1e-9, end - measure_from)
    closed = {"payments": len(measured), "per_second": len(measured) / window,
              "reply_p50_ms": percentile([d[1] for d in measured], 0.5) * 1000,
              "card_p50_ms": percentile([d[2] for d in measured], 0.5) * 1000,
              "card_p99_ms": percentile([d[2] for d in measured], 0.99) * 1000,
              "card_max_ms": max((d[2] for d in measured), default=float("nan")) * 1000,
              "hub_cpu_ms_per_payment": (cpu1 - (cpu_at_measure or [cpu0])[0]) / max(1, len(measured)) * 1000}

    if not open_total:
        return {"buyers": buyers, "setup_offers_s": setup_s, "closed": closed, "open": None}
    # Open loop: a fixed schedule, round robin over buyers with offers left.
    await asyncio.sleep(1.0)
    results: list[tuple[float, float, float]] = []
    tasks: list[asyncio.Task[None]] = []
    late_sends = 0
    t_open = time.perf_counter()
    open_measure_from = t_open + warmup_s
    cpu_open0: list[float] = []
    order_of = [i for i in range(len(peers)) for _ in range(open_per_buyer)]
    random.Random(7).shuffle(order_of)
    n = min(open_total, len(order_of))

    async def one(i: int) -> None:
        results.append(await pay(i))

    for k in range(n):
        due = t_open + k / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late_sends += 1
        if not cpu_open0 and time.perf_counter() >= open_measure_from:
            cpu_open0.append(cpu_seconds(hub.proc.pid))
        i = order_of[k]
        if queues[i]:
            tasks.append(asyncio.create_task(one(i)))
    sent_end = time.perf_counter()
    await asyncio.gather(*tasks)
    cpu_open1 = cpu_seconds(hub.proc.pid)
    measured = [r for r in results if r[0] >= open_measure_from]
    open_ = {"offered_per_second": rate, "payments": len(measured),
             "achieved_per_second": len(measured) / max(1e-9, sent_end - open_measure_from),
             "late_sends": late_sends,
             "reply_p50_ms": percentile([r[1] for r in measured], 0.5) * 1000,
             "card_p50_ms": percentile([r[2] for r in measured], 0.5) * 1000,
             "card_p99_ms": percentile([r[2] for r in measured], 0.99) * 1000,
             "card_max_ms": max((r[2] for r in measured), default=float("nan")) * 1000,
             "hub_cpu_ms_per_payment": (cpu_open1 - (cpu_open0 or [cpu1])[0]) / max(1, len(measured)) * 1000}
    for peer, _ in peers:
        peer.ws.close()
    agent.ws.close()
    return {"buyers": buyers, "setup_offers_s": setup_s, "closed": closed, "open": open_}


def profiled_hub(out: str) -> None:
    """Run ``python -m chat serve`` here with cProfile in the main thread and every worker."""
    import cProfile
    import pstats
    import threading

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_in_thread(*_: Any) -> None:
        prof = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(prof)
        prof.enable()  # replaces this hook in this thread

    main_prof = cProfile.Profile(time.thread_time)  # CPU time: idle waits do not count
    profiles.append(main_prof)
    threading.setprofile(start_in_thread)
    main_prof.enable()
    try:
        from chat.__main__ import main as chat_main

        with contextlib.suppress(KeyboardInterrupt, SystemExit):
            chat_main(["serve"])
    finally:
        main_prof.disable()
        stats = pstats.Stats(main_prof)
        for prof in profiles[1:]:
            with contextlib.suppress(Exception):
                prof.disable()
                stats.add(prof)
        stats.dump_stats(out)


def print_profile(path: str, top: int = 28) -> None:
    import io
    import pstats

    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(path, stream=buf).sort_stats(key).print_stats(top)
        text = buf.getvalue()
        print(f"\n--- hub CPU profile by {key} (all threads) ---")
        print(text[text.find("   ncalls"):].rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="HEAD", help="git revision of the 'before' tree (none: skip)")
    parser.add_argument("--only", choices=["ledger", "e2e"], help="run one part")
    parser.add_argument("--threads", type=int, default=8, help="payer threads, ledger alone")
    parser.add_argument("--payments", type=int, default=3000, help="payments per ledger-alone run (keyed PIN)")
    parser.add_argument("--argon2-payments", type=int, default=600, help="payments per argon2 ledger-alone run")
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--closed", type=float, default=8.0, help="seconds of the closed loop (after warm-up)")
    parser.add_argument("--open", type=float, default=8.0, help="seconds of the open loop (after warm-up)")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop payments per second")
    parser.add_argument("--ledger-url", default=None, help="the hub's ledger (default: embedded SQLite)")
    parser.add_argument("--profile", action="store_true", help="profile the after-tree's hub (closed loop)")
    args = parser.parse_args()
    print(json.dumps({"nproc": os.cpu_count(), "load1": load1(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                      "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                               capture_output=True, text=True).stdout.strip()}))
    trees: list[tuple[str, str | None]] = [("after (this tree)", None)]
    if args.before != "none":
        trees.insert(0, (f"before ({args.before})", args.before))
    rows: list[tuple[str, dict[str, Any]]] = []
    for label, rev in trees:
        with code_tree(rev) as src:
            if args.only in (None, "ledger"):
                count = args.argon2_payments if rev is not None else args.payments
                for kind in ("sqlite",) + (() if args.no_pg else ("postgres",)):
                    r = ledger_alone(src, kind, count, args.threads)
                    rows.append((f"{label}: ledger alone, {kind}, {args.threads} threads", r))
                    print(rows[-1][0], json.dumps(r), flush=True)
                    if rev is None:  # group commit exists only in this tree
                        r = ledger_alone(src, kind, count, args.threads, group=True)
                        rows.append((f"{label}: ledger alone, {kind}, {args.threads} threads, group commit", r))
                        print(rows[-1][0], json.dumps(r), flush=True)
            if args.only in (None, "e2e"):
                with tempfile.TemporaryDirectory() as tmp:
                    hub = Hub(src, tmp, args.ledger_url, None)
                    try:
                        # The argon2 tree pays a few dozen a second: no open loop at --rate for it.
                        r = asyncio.run(end_to_end(hub, args.buyers, args.closed, args.rate,
                                                   0 if rev is not None else args.open, args.warmup,
                                                   closed_cap=100 if rev is not None else 400))
                    finally:
                        hub.close()
                where = "PostgreSQL ledger" if args.ledger_url else "embedded"
                rows.append((f"{label}: end to end, {where}", r))
                print(rows[-1][0], json.dumps(r), flush=True)
    if args.profile:
        with tempfile.TemporaryDirectory() as tmp:
            prof = os.path.join(tmp, "hub.prof")
            hub = Hub(ROOT, tmp, args.ledger_url, prof)
            try:
                r = asyncio.run(end_to_end(hub, args.buyers, args.closed, args.rate, 2.0, args.warmup))
            finally:
                hub.close()
            print("profiled run (cProfile slows the hub):", json.dumps(r["closed"]))
            print_profile(prof)
    print(f"\n{'run':70} {'pay/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'CPU/pay':>9}")
    for label, r in rows:
        if "closed" in r:
            c, o = r["closed"], r["open"]
            print(f"{label + ', closed':70} {c['per_second']:8.1f} {c['card_p50_ms']:8.1f} {c['card_p99_ms']:8.1f}"
                  f" {c['card_max_ms']:8.1f} {c['hub_cpu_ms_per_payment']:7.2f}ms")
            if o is None:
                continue
            open_label = f"{label}, open {o['offered_per_second']:.0f}/s"
            print(f"{open_label:70} {o['achieved_per_second']:8.1f}"
                  f" {o['card_p50_ms']:8.1f} {o['card_p99_ms']:8.1f} {o['card_max_ms']:8.1f}"
                  f" {o['hub_cpu_ms_per_payment']:7.2f}ms")
        else:
            print(f"{label:70} {r['per_second']:8.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['max_ms']:8.1f}"
                  f" {r['cpu_us_per_payment'] / 1000:7.2f}ms")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--ledger-worker":
        _, _, src_arg, kind_arg, count_arg, threads_arg, mode_arg = sys.argv
        print(json.dumps(ledger_worker(src_arg, kind_arg, int(count_arg), int(threads_arg), mode_arg == "group")))
    elif len(sys.argv) > 1 and sys.argv[1] == "--profiled-hub":
        sys.path.insert(0, os.getcwd())
        profiled_hub(sys.argv[2])
    else:
        sys.path.insert(0, str(ROOT))
        main()
