"""Redis Cluster against one Redis: hub CPU per message, same two-node deployment and load.

Two hub nodes with every buyer on the other node from its shop's agent (each message
crosses nodes through the broker), first on the single Redis (``BENCH_REDIS_URL``), then
on a 3-master, 3-replica Redis Cluster this script starts on loopback ports (the one the
tests use, ``tests/chat/redis_cluster.py``). Runs alternate, ``--rounds`` times each; the
figure is the median hub CPU per delivered message (target: cluster within 1.2x).

    .venv/bin/python bench/cluster.py [--connections 1000] [--rate 1000] [--duration 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import common
from common import Deployment, generate, load1, machine, summary, wait_quiet

from tests.chat.redis_cluster import RedisCluster


class ClusterDeployment(Deployment):
    """Hub nodes with REDIS_URL pointing at the cluster; keys removed from every master after."""

    def __init__(self, cluster: RedisCluster, nodes: int) -> None:
        self.cluster = cluster
        single, common.REDIS_URL = common.REDIS_URL, cluster.url
        try:
            super().__init__("redis", nodes=nodes)
        finally:
            common.REDIS_URL = single

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        import redis

        for port in self.cluster.masters():
            with redis.Redis(host="127.0.0.1", port=port) as client:
                for key in list(client.scan_iter(match=f"{self.prefix}*", count=1000)):
                    client.delete(key)
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1000)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args()
    pairs = args.connections // 2
    load = ["--mix", "messages", "--shops", str(pairs), "--agents-per-shop", "1", "--buyers", str(pairs),
            "--user-rate", "100000", "--user-burst", "100000", "--duration", str(args.duration),
            "--warmup", str(args.warmup), "--ramp", "2000", "--rate", str(args.rate), "--placement", "split"]
    workdir = Path(tempfile.mkdtemp(prefix="chatbench-cluster-"))
    cluster = RedisCluster(workdir)
    runs: dict[str, list[dict[str, Any]]] = {"redis": [], "cluster": []}
    try:
        cluster.start()
        for round_ in range(args.rounds):
            for name in ("redis", "cluster"):
                before = wait_quiet()
                dep = ClusterDeployment(cluster, 2) if name == "cluster" else Deployment("redis", nodes=2)
                with dep:
                    rep = generate(dep, load)
                run = {**summary(rep), "load1_before": round(before, 2), "load1_after": round(load1(), 2)}
                runs[name].append(run)
                print(f"round {round_ + 1} {name:8} {json.dumps(run)}", flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    single = statistics.median(r["server_us_per_msg"] for r in runs["redis"])
    clustered = statistics.median(r["server_us_per_msg"] for r in runs["cluster"])
    print(f"\nhub CPU per delivered message, two nodes, every message across nodes, {args.rate:.0f} msg/s: "
          f"one Redis {single} us, Redis Cluster (3+3) {clustered} us, ratio {clustered / single:.2f} "
          f"(target <= 1.2)")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "args": vars(args), "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
