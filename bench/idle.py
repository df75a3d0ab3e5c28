"""Connections one process holds, and memory per idle connection (hub and bare relay).

The generator opens ``--connections`` connections (buyers that authenticate,
sync and open a conversation, plus a few agents; for the relay: bare pairs),
then holds them without traffic. Memory per connection is the server's RSS
growth over the idle plateau divided by the connections held; idle CPU is the
server's CPU over a window of the plateau (heartbeats, pings, presence), as a
share of one core.

    .venv/bin/python bench/idle.py [--connections 10000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PY, ROOT, SECRET, Deployment, cpu_seconds, machine, raise_nofile, rss_bytes, wait_quiet


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def hold(kind: str, connections: int, hold_s: float) -> dict[str, Any]:
    with Deployment(kind) as dep:
        time.sleep(1.0)
        pid = dep.pids[0]
        before = rss_bytes(pid)
        if kind == "relay":
            population = ["--buyers", str(connections // 2)]
        else:
            shops = 100
            population = ["--shops", str(shops), "--agents-per-shop", "1", "--buyers", str(connections - shops)]
        cmd = [PY, "-m", "chat.loadtest", "--target", "relay" if kind == "relay" else "hub", "--secret", SECRET,
               "--url", dep.urls[0], "--mix", "messages", "--rate", "0", "--ramp", "2000", "--progress", "0",
               "--duration", str(hold_s), "--warmup", "0", *population, "--json", str(dep.dir / "idle.json")]
        gen = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=raise_nofile)
        peak = 0
        window: tuple[float, float] | None = None  # (cpu seconds, wall clock) when all are held
        idle_cpu = None
        deadline = time.monotonic() + hold_s + 120
        while gen.poll() is None and time.monotonic() < deadline:
            peak = max(peak, rss_bytes(pid))
            now = time.monotonic()
            if window is None and open_fds(pid) >= 0.98 * connections:
                time.sleep(1.0)  # the last syncs settle
                window = (cpu_seconds(pid), time.monotonic())
            elif window is not None and idle_cpu is None and now - window[1] >= min(30.0, hold_s - 2):
                idle_cpu = (cpu_seconds(pid) - window[0]) / (now - window[1]) * 100
            time.sleep(0.25)
        if gen.poll() is None:
            gen.kill()
        gen.wait()
        rep = json.loads((dep.dir / "idle.json").read_text())
        held = rep["connections_peak"]
    return {"connections": held, "rss_before_mb": round(before / 2**20, 1), "rss_held_mb": round(peak / 2**20, 1),
            "kb_per_connection": round((peak - before) / max(1, held) / 1024, 1),
            "idle_cpu_pct_of_core": None if idle_cpu is None else round(idle_cpu, 2), "errors": rep["errors"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--hold", type=float, default=35.0,
                   help="seconds to hold the connections once all are open (CPU is measured over up to 30 s of it: "
                        "more than one keepalive sweep and presence beat)")
    p.add_argument("--json")
    args = p.parse_args()
    out: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    for kind in ("relay", "embedded"):
        wait_quiet()
        out[kind] = hold(kind, args.connections, args.hold)
        print(f"{kind:9} {json.dumps(out[kind])}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
