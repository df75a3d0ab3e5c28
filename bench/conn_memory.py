"""What one idle connection keeps on the hub's Python heap, by the line that allocated it.

    .venv/bin/python bench/conn_memory.py [--connections 1000] [--top 25]

An embedded hub (``PAYMENTS=off``) runs in this process under ``tracemalloc``. A client
process opens 200 warm-up connections (buyers that authenticate, sync and open a
conversation), then ``--connections`` more, and holds them; the difference between the
snapshots taken after each group, divided by ``--connections``, is what a connection costs,
listed by allocating line. ``bench/idle.py`` measures the same thing as RSS (what the
operating system sees); this one says where it goes.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-token-secret-" + "x" * 24


async def clients(url: str, count: int) -> None:
    """The client side (a separate process): open ``count`` buyers, print ``ready``, hold."""
    import msgpack
    import websockets

    from chat.auth import mint

    held = []

    async def one(i: int) -> None:
        ws = await websockets.connect(url, max_size=None, ping_interval=None)

        async def request(frame: dict[str, object]) -> None:
            await ws.send(msgpack.packb(frame))
            while msgpack.unpackb(await ws.recv()).get("re") != frame["id"]:
                pass

        await request({"type": "auth", "id": 1, "token": mint(SECRET, f"b{i}", "buyer", ttl=3600)})
        await request({"type": "sync", "id": 2})
        await request({"type": "open", "id": 3, "shop": f"shop{i % 50}",
                       "listing": {"id": f"l{i % 7}", "title": "tea", "price": 100, "currency": "CNY"}})
        held.append(ws)

    for start in range(0, count, 100):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + 100))))
    print("ready", flush=True)
    await asyncio.sleep(3600)


async def hub(count: int, top: int) -> None:
    from chat.config import Config
    from chat.server import build

    env = {"HOST": "127.0.0.1", "PORT": "0", "DATABASE_URL": f"sqlite:///{tempfile.mkdtemp()}/chat.db",
           "TOKEN_SECRET": SECRET, "PAYMENTS": "off", "SQLITE_SYNCHRONOUS": "NORMAL", "DEMO": "off",
           "LOOP_STALL_MS": "0"}
    server = build(Config.from_env(env))
    await server.start()
    url = f"ws://127.0.0.1:{server.port}/"
    tracemalloc.start(1)
    procs = []
    try:
        snapshots = []
        for n in (200, count):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--client", url, "--connections", str(n), stdout=subprocess.PIPE)
            procs.append(proc)
            assert proc.stdout is not None
            if (await proc.stdout.readline()).strip() != b"ready":
                raise SystemExit("the client process failed")
            await asyncio.sleep(2)
            snapshots.append(tracemalloc.take_snapshot())
        stats = snapshots[1].compare_to(snapshots[0], "lineno")
        total = sum(s.size_diff for s in stats)
        print(f"{total / count:,.0f} bytes of Python heap per connection ({count} connections)")
        for s in stats[:top]:
            frame = s.traceback[0]
            where = frame.filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
            print(f"{s.size_diff / count:8.0f} B {s.count_diff / count:6.1f} objects  {where}:{frame.lineno}")
    finally:
        for proc in procs:
            proc.kill()
        await server.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--client", help=argparse.SUPPRESS)  # the client process: the hub's URL
    args = p.parse_args()
    if args.client:
        asyncio.run(clients(args.client, args.connections))
    else:
        asyncio.run(hub(args.connections, args.top))


if __name__ == "__main__":
    main()
