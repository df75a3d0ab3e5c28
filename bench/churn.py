"""Chat as users make it: typing, reads, and connections dropping and resuming, at an open rate.

Listing-page visits are connects, and every reconnect authenticates and syncs: this is
the load that showed connection setup blocking everyone else's chat. One node, the
buyers and agents of ``--pairs`` shops (one agent each), ``--rate`` messages per second,
typing before half of them and reads after half, ``--churn`` drops per connection per
second (each resumes with a sync). Runs once without churn and once with it, in one
sitting, and prints latency and every event-loop stall longer than ``--stall-ms`` the
node logged (count, longest, and the code it was in most often).

    .venv/bin/python bench/churn.py [--pairs 500] [--rate 1000] [--churn 0.2] [--duration 10] [--kind embedded]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Deployment, generate, load1, summary, wait_quiet

_STALL = re.compile(
    r"event loop stalled for (\d+) ms \(its thread computed (\d+) ms of it(?:, garbage collection (\d+) ms)?\)"
)


def stalls(log: str) -> dict[str, Any]:
    """The node's stall log lines: how many, the longest, and where they were caught most."""
    held: list[int] = []
    collected = 0
    where: collections.Counter[str] = collections.Counter()
    lines = log.splitlines()
    for i, line in enumerate(lines):
        m = _STALL.search(line)
        if m is None:
            continue
        held.append(int(m.group(1)))
        collected += int(m.group(3) or 0)  # older nodes did not time the collector
        frames = []
        for nxt in lines[i + 1:i + 40]:
            if not nxt.startswith("  "):
                break
            if nxt.startswith('  File "') and "site-packages" not in nxt and "/lib/python" not in nxt:
                frames.append(re.sub(r'^  File ".*?([^/]+/[^/]+\.py)", line (\d+), in (\S+)', r"\1:\2 \3", nxt))
        where[frames[-1] if frames else "(many short steps)"] += 1
    return {"count": len(held), "max_ms": max(held, default=0), "gc_ms": collected,
            "top": where.most_common(4)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=500)
    p.add_argument("--rate", type=float, default=1000)
    p.add_argument("--churn", type=float, default=0.2)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--stall-ms", type=int, default=5)
    p.add_argument("--kind", choices=["embedded", "redis"], default="embedded")
    args = p.parse_args()
    os.environ["LOOP_STALL_MS"] = str(args.stall_ms)
    os.environ.setdefault("OVERLOAD_MS", "0")
    base = ["--mix", "chat", "--shops", str(args.pairs), "--agents-per-shop", "1", "--buyers", str(args.pairs),
            "--user-rate", "100000", "--user-burst", "100000", "--duration", str(args.duration), "--warmup", "3",
            "--ramp", "2000", "--placement", "colocate", "--rate", str(args.rate), "--buyer-lifetime", "0"]
    for churn in (0.0, args.churn):
        before = wait_quiet()
        with Deployment(args.kind) as dep:
            rep = generate(dep, [*base, "--churn", str(churn)])
            log = (dep.dir / "hub0.log").read_text()
        out = {**summary(rep), "resumed": rep["types"].get("msg_resumed", {}), "syncs": rep["types"].get("sync", {}),
               "stalls": stalls(log), "load1_before": round(before, 2), "load1_after": round(load1(), 2)}
        print(f"{args.kind} churn={churn}: {json.dumps(out)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
