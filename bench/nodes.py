"""Two hub nodes on Redis: hub CPU per message routed within a node against across nodes.

Same two-node deployment, same load, only the placement differs:
``colocate`` puts each buyer on its shop's agent's node (the message is routed
within a node, though still through Redis pub/sub), ``split`` puts them on
different nodes (every message crosses). Hub CPU is read from both hub
processes over the measured window. A one-node-on-Redis run is the reference.
With ``--postgres`` the nodes share one PostgreSQL schema instead of one SQLite file
(the multi-machine shape) and there are three of them.

    .venv/bin/python bench/nodes.py [--connections 1000] [--rate 1000] [--duration 10] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Deployment, generate, load1, machine, summary, wait_quiet


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1000, help="a load one node carries comfortably")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--json")
    p.add_argument("--postgres", action="store_true",
                   help="nodes share a PostgreSQL schema (as on several machines), and a third node is added")
    args = p.parse_args()
    pairs = args.connections // 2
    base = ["--mix", "messages", "--shops", str(pairs), "--agents-per-shop", "1", "--buyers", str(pairs),
            "--user-rate", "100000", "--user-burst", "100000", "--duration", str(args.duration),
            "--warmup", str(args.warmup), "--ramp", "2000", "--rate", str(args.rate)]
    runs: dict[str, Any] = {}
    plan = [("one-node-redis", 1, "colocate"), ("two-nodes-within", 2, "colocate"), ("two-nodes-across", 2, "split")]
    if args.postgres:
        plan = [("one-node-pg", 1, "colocate"), ("three-nodes-within", 3, "colocate"),
                ("three-nodes-across", 3, "split")]
    for name, nodes, placement in plan:
        before = wait_quiet()
        with Deployment("redis", nodes=nodes, postgres=args.postgres) as dep:
            rep = generate(dep, [*base, "--placement", placement])
        runs[name] = {**summary(rep), "load1_before": round(before, 2), "load1_after": round(load1(), 2)}
        print(f"{name:18} {json.dumps(runs[name])}", flush=True)
    several = "three" if args.postgres else "two"
    within = runs[f"{several}-nodes-within"]["server_us_per_msg"]
    across = runs[f"{several}-nodes-across"]["server_us_per_msg"]
    print(f"\nhub CPU per routed message: within a node {within} us, across nodes {across} us, "
          f"ratio {across / within:.2f} (target <= 1.3); across-node p99 {runs[f'{several}-nodes-across']['p99_ms']}"
          f" ms at {args.rate:.0f} msg/s")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "args": vars(args), "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
