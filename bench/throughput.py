"""Routed messages per second and delivery latency: the hub against a bare relay, in one run.

Every deployment gets the same clients: ``--connections`` connections in pairs
(a buyer and its shop's one agent; the relay pairs them by path), text frames
of about 100 bytes, no typing, reads or churn. Two loads each:

* closed: each side keeps ``--window`` messages in flight (sends the next when one is delivered);
* open: ``--rate`` messages per second in total, Poisson arrivals, whatever the server does.

    .venv/bin/python bench/throughput.py [--connections 1000] [--window 2] [--rate 5000] [--duration 10]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Deployment, generate, load1, machine, summary, wait_quiet

DEPLOYMENTS = {
    "relay": {"kind": "relay"},
    "embedded": {"kind": "embedded"},
    "embedded-normal": {"kind": "embedded", "synchronous": "NORMAL"},
    "redis": {"kind": "redis"},
    "two-nodes": {"kind": "redis", "nodes": 2},
}
PLACEMENT = {"two-nodes": "split"}
"""Two nodes: every buyer on one node and its shop's agent on the other, so every message crosses."""


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = DEPLOYMENTS[name]
    pairs = args.connections // 2
    common = ["--mix", "messages", "--shops", str(pairs), "--agents-per-shop", "1", "--buyers", str(pairs),
              "--user-rate", "100000", "--user-burst", "100000", "--duration", str(args.duration),
              "--warmup", str(args.warmup), "--ramp", "2000", "--placement", PLACEMENT.get(name, "colocate")]
    out: dict[str, Any] = {}
    for mode, extra in (("closed", ["--window", str(args.window)]), ("open", ["--rate", str(args.rate)])):
        before = wait_quiet()
        with Deployment(spec["kind"], synchronous=spec.get("synchronous", "FULL"), nodes=spec.get("nodes", 1)) as dep:
            rep = generate(dep, common + extra)
        out[mode] = {**summary(rep), "load1_before": round(before, 2), "load1_after": round(load1(), 2)}
        print(f"{name:16} {mode:6} {json.dumps(out[mode])}", flush=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--window", type=int, default=2)
    p.add_argument("--rate", type=float, default=5000)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--only", nargs="*", choices=sorted(DEPLOYMENTS), default=list(DEPLOYMENTS))
    p.add_argument("--json", help="write all figures here")
    args = p.parse_args()
    results = {"machine": machine(), "args": vars(args), "runs": {}}
    for name in args.only:
        results["runs"][name] = run(name, args)
    runs = results["runs"]
    print(f"\n{'deployment':16} {'closed msg/s':>12} {'vs relay':>9} {'open msg/s':>11} {'open p50':>9} "
          f"{'open p99':>9} {'us CPU/msg':>10}")
    base = runs.get("relay", {}).get("closed", {}).get("delivered_per_s")
    for name, r in runs.items():
        ratio = f"{r['closed']['delivered_per_s'] / base * 100:.0f}%" if base else "-"
        print(f"{name:16} {r['closed']['delivered_per_s']:>12.0f} {ratio:>9} {r['open']['delivered_per_s']:>11.0f} "
              f"{r['open']['p50_ms']:>8.2f}ms {r['open']['p99_ms']:>8.2f}ms {r['closed']['server_us_per_msg']!s:>10}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
