"""A real Redis Cluster for tests: 3 masters and 3 replicas on free loopback ports.

``redis_cluster`` is a session fixture: the cluster starts once (about a second) in a
temporary directory, with ``cluster-node-timeout`` 1000 ms so that a killed master's
replica is promoted within a few seconds, and is stopped at the end of the session.
Tests isolate themselves by key prefix, like the single-Redis tests. A test that kills a
master restarts it afterwards (it rejoins as a replica), so the cluster stays 3 + 3.

``conftest.py`` imports the fixtures (``redis_cluster``, and ``cluster_prefix`` for a key
prefix cleaned up afterwards), so every test module shares the one cluster.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

NODE_TIMEOUT_MS = 1000


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """``count`` ports P that are free together with their cluster bus port P + 10000."""
    ports: list[int] = []
    candidates = list(range(20000, 30000))
    random.shuffle(candidates)
    for port in candidates:
        if port in ports or port + 10000 in ports:
            continue
        if _port_free(port) and _port_free(port + 10000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free ports for a Redis Cluster")


class RedisCluster:
    """Six redis-server processes joined into one cluster with ``redis-cli --cluster create``."""

    def __init__(self, workdir: Path, masters: int = 3, replicas: int = 1) -> None:
        self.dir = workdir
        self.ports = free_cluster_ports(masters * (1 + replicas))
        self.replicas = replicas
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """The ``REDIS_URL`` of the cluster (every node as a startup node)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start_node(self, port: int) -> None:
        node_dir = self.dir / str(port)
        node_dir.mkdir(exist_ok=True)
        args = [
            "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(node_dir),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly", "no",
            "--logfile", "redis.log",
        ]
        self.procs[port] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait(lambda: self.client(port).ping(), f"redis-server on {port} did not start")

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                  "--cluster-replicas", str(self.replicas), "--cluster-yes"]
        done = subprocess.run(create, capture_output=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {done.stdout!r} {done.stderr!r}")
        self.wait_ok()
        self._wait(self._replicas_synced, "the replicas did not sync with their masters")

    def _replicas_synced(self) -> bool:
        """Every replica has a live link to its master (else it could not take over)."""
        replicas = 0
        for port, proc in self.procs.items():
            if proc.poll() is not None:
                continue
            with self.client(port) as c:
                info = c.info("replication")
            if info.get("role") == "slave":
                if info.get("master_link_status") != "up":
                    return False
                replicas += 1
        return replicas == len(self.ports) - len(self.ports) // (1 + self.replicas)

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=1)

    def _wait(self, check: object, what: str, seconds: float = 20.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if check():  # type: ignore[operator]
                    return
            except (redis.RedisError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(what)

    def _ok_everywhere(self) -> bool:
        """Every running node says the cluster is ok and agrees on 3 masters with slots."""
        for port, proc in self.procs.items():
            if proc.poll() is not None:
                continue
            with self.client(port) as c:
                info = c.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text:
                    return False
                if len(self.masters(port)) != len(self.ports) // (1 + self.replicas):
                    return False
        return True

    def wait_ok(self, seconds: float = 30.0) -> None:
        self._wait(self._ok_everywhere, "the Redis Cluster did not become ok", seconds)

    def masters(self, via: int | None = None) -> dict[int, list[tuple[int, int]]]:
        """Port of each master that serves slots -> its slot ranges (as seen by ``via``)."""
        port = via if via is not None else next(p for p, proc in self.procs.items() if proc.poll() is None)
        with self.client(port) as c:
            raw = c.execute_command("CLUSTER", "NODES")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        out: dict[int, list[tuple[int, int]]] = {}
        for line in text.splitlines():
            fields = line.split()
            if len(fields) < 8 or "master" not in fields[2] or "fail" in fields[2]:
                continue
            ranges = []
            for spec in fields[8:]:
                if spec.startswith("["):
                    continue  # a slot being migrated
                lo, _, hi = spec.partition("-")
                ranges.append((int(lo), int(hi or lo)))
            if ranges:
                out[int(fields[1].split(":")[1].split("@")[0])] = ranges
        return out

    def master_of_slot(self, slot: int) -> int:
        for port, ranges in self.masters().items():
            if any(lo <= slot <= hi for lo, hi in ranges):
                return port
        raise LookupError(f"no master serves slot {slot}")

    def replica_of(self, master: int) -> int:
        """The port of a live replica of the master at ``master``."""
        with self.client(master) as c:
            raw = c.execute_command("CLUSTER", "NODES")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        ids = {f.split()[0]: int(f.split()[1].split(":")[1].split("@")[0]) for f in text.splitlines() if f.strip()}
        for line in text.splitlines():
            fields = line.split()
            if len(fields) > 3 and "slave" in fields[2] and "fail" not in fields[2] and ids.get(fields[3]) == master:
                return int(fields[1].split(":")[1].split("@")[0])
        raise LookupError(f"no live replica of {master}")

    def manual_failover(self, master: int) -> int:
        """``CLUSTER FAILOVER`` on a replica of ``master``: the two swap roles, nothing is lost.
        Returns the port of the new master once the cluster agrees."""
        replica = self.replica_of(master)
        with self.client(replica) as c:
            c.execute_command("CLUSTER", "FAILOVER")
        self._wait(lambda: master not in self.masters() and replica in self.masters() and self._ok_everywhere(),
                   f"{replica} did not take over from {master}")
        return replica

    def kill(self, port: int) -> None:
        """SIGKILL: no shutdown, as a crashed machine."""
        proc = self.procs[port]
        proc.kill()
        proc.wait()

    def wait_promoted(self, dead: int, seconds: float = 20.0) -> None:
        """Until a replica took over every slot of the dead master and the cluster is ok."""
        def promoted() -> bool:
            return dead not in self.masters() and self._ok_everywhere()
        self._wait(promoted, f"no replica of {dead} was promoted", seconds)

    def restart(self, port: int) -> None:
        """Starts a killed node again with its nodes.conf: it rejoins as a replica."""
        self.start_node(port)
        self.wait_ok()
        self._wait(self._replicas_synced, f"{port} did not sync as a replica")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            proc.wait()


@pytest.fixture
def cluster_prefix(redis_cluster: RedisCluster) -> Iterator[str]:
    """A fresh key prefix on the cluster, its keys deleted from every master afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    for port in redis_cluster.masters():
        with redis.Redis(host="127.0.0.1", port=port) as admin:
            for key in list(admin.scan_iter(match=f"{prefix}*", count=1000)):
                admin.delete(key)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli are needed for the Redis Cluster tests (.ci/run installs them)")
    workdir = Path(tempfile.mkdtemp(prefix="redis-cluster-"))
    cluster = RedisCluster(workdir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
