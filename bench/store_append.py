"""Chat store appends: SQLite against PostgreSQL at 1, 2 and 4 nodes; psycopg against asyncpg.

    .venv/bin/python bench/store_append.py [--seconds 5] [--appenders 200] [--nodes 1,2,4]
                                           [--only stores|drivers] [--pg postgresql://…]

Stores: each node is a separate process with its own store instance (SQLite: one shared
file, WAL, synchronous=FULL, the default; PostgreSQL: one shared schema, the server's
default synchronous_commit=on), so nodes contend as they would on separate machines.
``--appenders`` concurrent appenders in all, spread over the nodes, each appending to
its own conversation back to back (a closed loop) for ``--seconds``; then the same with
every appender on one of 4 hot conversations, which every node writes to at once.
Printed: appends/s, p50/p99/max append latency, and the node processes' CPU per append
(user + system, µs).

Drivers: the store's group-commit statement (``APPEND_BATCH``, one statement per batch)
and a plain one-message append transaction (BEGIN, UPDATE … RETURNING, INSERT, COMMIT),
run back to back on one connection with psycopg 3 (async) and with asyncpg, like for
like: statements/s, p50/p99 latency and client CPU per statement. asyncpg is not a
dependency: ``pip install asyncpg`` first, else that half says it was skipped.

Bounded in time, loopback only; every schema and file it makes is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from chat.store import pg_queries  # noqa: E402
from chat.store.base import Store  # noqa: E402
from chat.store.encoding import digest as _digest  # noqa: E402
from chat.store.encoding import pack as _pack  # noqa: E402
from chat.store.postgres import PostgresStore  # noqa: E402
from chat.store.sqlite import SQLiteStore  # noqa: E402

PG_URL = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
LISTING = {"id": "l", "title": "Tea", "price": 100, "currency": "CNY"}
BODY = {"text": "Is this still available in green, size M? 还有绿色M码吗？"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def open_store(backend: str, place: str) -> Store:
    if backend == "sqlite":
        return SQLiteStore(place, synchronous="FULL")
    return PostgresStore(PG_URL, schema=place, pool_size=4)


# --- stores: one process per node -------------------------------------------------


async def node(backend: str, place: str, convs: list[str], seconds: float, start_at: float) -> dict[str, Any]:
    """One node: its appenders (one per entry of ``convs``) append back to back."""
    store = open_store(backend, place)
    await store.start()
    latencies: list[float] = []
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu0, end = time.process_time(), time.monotonic() + seconds

    async def appender(i: int, conv: str) -> None:
        n = 0
        while time.monotonic() < end:
            n += 1
            t0 = time.perf_counter()
            await store.append(conv, "b", "buyer", "text", BODY, f"{os.getpid()}-{i}-{n}", int(time.time() * 1000))
            latencies.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(appender(i, c) for i, c in enumerate(convs)))
    cpu = time.process_time() - cpu0
    await store.close()
    return {"count": len(latencies), "cpu": cpu, "latencies": latencies}


async def prepare(backend: str, place: str, conversations: int) -> None:
    store = open_store(backend, place)
    await store.start()
    for i in range(conversations):
        await store.open_conversation(f"c{i}", "b", "s", {**LISTING, "id": f"l{i}"}, "a", 0)
    await store.close()


def run_nodes(backend: str, nodes: int, appenders: int, hot: int | None, seconds: float) -> dict[str, Any]:
    conversations = hot or appenders
    with tempfile.TemporaryDirectory() as tmp:
        place = f"{tmp}/chat.db" if backend == "sqlite" else f"bench_{uuid.uuid4().hex[:12]}"
        try:
            asyncio.run(prepare(backend, place, conversations))
            start_at = time.time() + 2.0
            procs = []
            for n in range(nodes):
                convs = [f"c{i % conversations}" for i in range(n, appenders, nodes)]
                arg = json.dumps({"backend": backend, "place": place, "convs": convs, "seconds": seconds,
                                  "start_at": start_at})
                procs.append(subprocess.Popen([sys.executable, __file__, "--node", arg], stdout=subprocess.PIPE))
            results = [json.loads(p.communicate(timeout=seconds + 60)[0]) for p in procs]
        finally:
            if backend == "postgres":
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{place}" CASCADE')
    count = sum(r["count"] for r in results)
    latencies = [x for r in results for x in r["latencies"]]
    return {"appends_per_s": round(count / seconds), "p50_ms": round(percentile(latencies, 0.5), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2), "max_ms": round(max(latencies, default=0), 1),
            "node_cpu_us_per_append": round(sum(r["cpu"] for r in results) / max(count, 1) * 1e6, 1)}


# --- drivers: psycopg against asyncpg, like for like -------------------------------


def batch_args(conv_ids: list[str], round_: int) -> dict[str, list[Any]]:
    n = len(conv_ids)
    return {"conv": conv_ids, "sender": ["b"] * n, "role": ["buyer"] * n, "kind": ["text"] * n,
            "body": [_pack(BODY)] * n, "ts": [round_] * n, "cmid": [f"{round_}-{i}" for i in range(n)],
            "digest": [_digest("text", BODY)] * n, "auto": [False] * n,
            # the chain's canonical halves around the seq (a fixed stand-in: the bench times the
            # statement, not the hash's meaning), and no chat events
            "before": [b"{"] * n, "after": [b"}"] * n, "ev_ord": [], "ev_id": [], "ev_type": [], "ev_data": []}


SINGLE = ["UPDATE conversations SET last_seq = last_seq + 1, updated_at = greatest(updated_at, %s) WHERE id = %s"
          " RETURNING last_seq",
          "INSERT INTO messages (conv, seq, sender, role, kind, body, ts, cmid, digest)"
          " VALUES (%s, %s, 'b', 'buyer', 'text', %s, %s, %s, %s)"]


def numbered(sql: str, names: list[str] | None = None) -> str:
    """psycopg placeholders as asyncpg's $1, $2, …"""
    if names is not None:
        for i, name in enumerate(names, 1):
            sql = sql.replace(f"%({name})s", f"${i}").replace(f"%({name})b", f"${i}")
        return sql
    count = iter(range(1, 100))
    return re.sub(r"%s", lambda _: f"${next(count)}", sql)


async def drive(driver: str, schema: str, batch: int, seconds: float) -> dict[str, Any]:
    """Back-to-back statements on one connection: the batch statement of ``batch`` appends
    (0: the one-message transaction instead)."""
    convs = [f"c{i}" for i in range(max(batch, 1))]
    latencies: list[float] = []
    names = list(batch_args(["x"], 0))
    if driver == "psycopg":
        conn = await psycopg.AsyncConnection.connect(PG_URL, autocommit=True, options=f"-c search_path={schema}")

        async def once(r: int) -> None:
            if batch:
                await (await conn.execute(pg_queries.APPEND_BATCH, batch_args(convs, r))).fetchall()
                return
            async with conn.transaction():
                seq = (await (await conn.execute(SINGLE[0], (r, "c0"))).fetchone())[0]  # type: ignore[index]
                await conn.execute(SINGLE[1], ("c0", seq, _pack(BODY), r, f"s{r}", _digest("text", BODY)))

        close = conn.close
    else:
        import asyncpg  # type: ignore[import-not-found]

        aconn = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
        sql_batch, update, insert = numbered(pg_queries.APPEND_BATCH, names), numbered(SINGLE[0]), numbered(SINGLE[1])

        async def once(r: int) -> None:
            if batch:
                await aconn.fetch(sql_batch, *batch_args(convs, r).values())
                return
            async with aconn.transaction():
                seq = await aconn.fetchval(update, r, "c0")
                await aconn.execute(insert, "c0", seq, _pack(BODY), r, f"s{r}", _digest("text", BODY))

        close = aconn.close
    try:
        for r in range(20):  # warm-up: statements prepared, caches hot
            await once(-1 - r)
        cpu0, end, r = time.process_time(), time.monotonic() + seconds, 0
        while time.monotonic() < end:
            r += 1
            t0 = time.perf_counter()
            await once(r)
            latencies.append((time.perf_counter() - t0) * 1000)
        cpu = time.process_time() - cpu0
    finally:
        await close()
    return {"statements_per_s": round(len(latencies) / seconds), "appends_per_s": round(len(latencies) * max(batch, 1)
            / seconds), "p50_ms": round(percentile(latencies, 0.5), 3), "p99_ms": round(percentile(latencies, 0.99), 3),
            "client_cpu_us_per_statement": round(cpu / max(len(latencies), 1) * 1e6, 1)}


def run_drivers(seconds: float) -> list[tuple[str, dict[str, Any]]]:
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        print("drivers: asyncpg is not installed (pip install asyncpg): skipped", flush=True)
        return []
    rows: list[tuple[str, dict[str, Any]]] = []
    for batch in (0, 1, 10, 100):
        for driver in ("psycopg", "asyncpg"):
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            try:
                asyncio.run(prepare("postgres", schema, max(batch, 1)))
                what = "one-message transaction" if batch == 0 else f"batch statement, {batch} appends"
                rows.append((f"{driver:8} {what}", asyncio.run(drive(driver, schema, batch, seconds))))
                print(f"{rows[-1][0]:45} {json.dumps(rows[-1][1])}", flush=True)
            finally:
                with psycopg.connect(PG_URL, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    p.add_argument("--appenders", type=int, default=200, help="concurrent appenders, over all nodes")
    p.add_argument("--nodes", default="1,2,4")
    p.add_argument("--only", choices=["stores", "drivers"])
    p.add_argument("--node", help=argparse.SUPPRESS)  # a node process's own arguments (JSON)
    args = p.parse_args()
    if args.node:
        a = json.loads(args.node)
        print(json.dumps(asyncio.run(node(a["backend"], a["place"], a["convs"], a["seconds"], a["start_at"]))))
        return 0
    with psycopg.connect(PG_URL) as conn:
        server = conn.execute("SHOW server_version").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
    print(json.dumps({"nproc": os.cpu_count(), "load1": round(os.getloadavg()[0], 2),
                      "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "psycopg": psycopg.__version__,
                      "postgresql": server[0] if server else "?", "synchronous_commit": sync[0] if sync else "?",
                      "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                               capture_output=True, text=True).stdout.strip()}), flush=True)
    if args.only in (None, "stores"):
        for hot in (None, 4):
            for nodes in (int(n) for n in args.nodes.split(",")):
                for backend in ("sqlite", "postgres"):
                    where = f"{args.appenders} conversations" if hot is None else f"{hot} hot conversations"
                    label = f"{backend:8} {nodes} node{'s' if nodes > 1 else ' '}, {args.appenders} appenders, {where}"
                    print(f"{label:62} {json.dumps(run_nodes(backend, nodes, args.appenders, hot, args.seconds))}",
                          flush=True)
    if args.only in (None, "drivers"):
        run_drivers(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
