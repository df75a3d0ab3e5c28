"""Overload: offered load against what one embedded node delivers, with and without the
overload control (``OVERLOAD_MS``), and the tail of what it accepts.

For each offered rate (open load, Poisson, 1,000 connections in buyer–agent pairs) the
node runs twice: with the default control (refuse a ``send`` with 5003 when it would be
answered later than ``OVERLOAD_MS``) and with it off (queue everything, the old
behaviour). Refused sends are not retried by the generator, so "refused/s" is what the
node shed. Then, to show recovery, a node is driven at the highest rate and its p99 is
measured at the lowest one right after, on the same node.

    .venv/bin/pip install -e '.[bench]'     # matplotlib, for the plot
    .venv/bin/python bench/overload.py [--rates 1000,2000,3000,4000,6000] [--duration 6] [--png bench/overload.png]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Deployment, generate, load1, machine, summary, wait_quiet


def _args(pairs: int, rate: float, duration: float, warmup: float) -> list[str]:
    return ["--mix", "messages", "--shops", str(pairs), "--agents-per-shop", "1", "--buyers", str(pairs),
            "--user-rate", "100000", "--user-burst", "100000", "--duration", str(duration),
            "--warmup", str(warmup), "--ramp", "2000", "--placement", "colocate", "--rate", str(rate)]


def _row(rep: dict[str, Any], rate: float, control: str) -> dict[str, Any]:
    row = summary(rep)
    refused = sum(n for kind, n in rep["errors"].items() if kind.startswith("hub:5003"))
    seconds = rep["options"]["duration"] + rep["options"]["warmup"]
    return {"offered": rate, "control": control, "refused_per_s": round(refused / seconds, 1), **row}


def run_one(rate: float, control: str, args: argparse.Namespace) -> dict[str, Any]:
    os.environ["OVERLOAD_MS"] = args.overload_ms if control == "on" else "0"
    with Deployment("embedded") as dep:
        rep = generate(dep, _args(args.connections // 2, rate, args.duration, args.warmup))
    return _row(rep, rate, control)


def recovery(args: argparse.Namespace, high: float, low: float) -> dict[str, Any]:
    """One node: overloaded at ``high``, then measured at ``low`` at once."""
    os.environ["OVERLOAD_MS"] = args.overload_ms
    with Deployment("embedded") as dep:
        generate(dep, _args(args.connections // 2, high, args.duration, args.warmup))
        rep = generate(dep, _args(args.connections // 2, low, 2.0, 0.0))
    return _row(rep, low, "on, right after overload")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for control, style in (("on", "o-"), ("off", "s--")):
        part = [r for r in rows if r["control"] == control]
        xs = [r["offered"] for r in part]
        left.plot(xs, [r["delivered_per_s"] for r in part], style, label=f"delivered, control {control}")
        right.plot(xs, [r["p99_ms"] or 0 for r in part], style, label=f"p99, control {control}")
        if control == "on":
            left.plot(xs, [r["refused_per_s"] for r in part], "x:", label="refused (5003), control on")
    left.plot([r["offered"] for r in rows], [r["offered"] for r in rows], color="grey", linewidth=0.5)
    left.set(xlabel="offered msg/s", ylabel="msg/s", title="What one node carries")
    right.set(xlabel="offered msg/s", ylabel="p99 of delivered messages (ms)", yscale="log", title="Its tail")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="1000,2000,3000,4000,6000")
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--overload-ms", default="100")
    p.add_argument("--controls", default="on,off", help="which runs per rate: on, off or both")
    p.add_argument("--png", default=None, help="write the curve here (needs matplotlib)")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    info = {**machine(), "load_before": wait_quiet()}
    rows = []
    for rate in rates:
        for control in args.controls.split(","):
            rows.append(run_one(rate, control, args))
            r = rows[-1]
            print(f"offered {rate:7.0f}  control {control:3}  delivered {r['delivered_per_s']:7.1f}/s  "
                  f"refused {r['refused_per_s']:7.1f}/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
                  f"max {r['max_ms']} ms  hub cpu {r['server_cpu_pct']}%  correct {r['correct']}", flush=True)
    after = recovery(args, rates[-1], rates[0])
    print(f"after overload: offered {rates[0]:.0f}  delivered {after['delivered_per_s']}/s  p50 {after['p50_ms']} ms  "
          f"p99 {after['p99_ms']} ms  max {after['max_ms']} ms  refused {after['refused_per_s']}/s")
    info["load_after"] = load1()
    print(json.dumps(info))
    if args.png:
        plot(rows, Path(args.png))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "rows": rows, "recovery": after}, indent=2))


if __name__ == "__main__":
    main()
