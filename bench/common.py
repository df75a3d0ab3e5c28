"""Shared by the benchmark scripts: start hub nodes and the relay, run the generator, read /proc."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SECRET = "bench-secret-0123456789-abcdefghijklmnop"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOFILE = 20_000
HUB_SRC = Path(os.environ.get("BENCH_HUB_SRC", str(ROOT))).resolve()
"""Source tree the hub processes run from (default: this checkout; set it to benchmark a snapshot)."""


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE if hard == resource.RLIM_INFINITY else min(NOFILE, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def load1() -> float:
    return os.getloadavg()[0]


def wait_quiet(limit: float = 0.7, patience: float = 20.0) -> float:
    """Wait (a little) for the 1-minute load to settle; return it for the record."""
    deadline = time.monotonic() + patience
    while load1() > limit and time.monotonic() < deadline:
        time.sleep(1.0)
    return load1()


def machine() -> dict[str, Any]:
    mem = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.splitlines()
    return {"nproc": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release(),
            "memory": mem[1].split()[1] if len(mem) > 1 else "?", "date": time.strftime("%Y-%m-%d %H:%M %Z")}


class Server:
    """A hub node or the relay as a child process (open-file soft limit raised before exec)."""

    def __init__(self, cmd: list[str], env: dict[str, str], port: int, name: str, log: Path,
                 cwd: Path = ROOT) -> None:
        self.port = port
        self.name = name
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=out, preexec_fn=raise_nofile)
        self._wait_listening()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Deployment:
    """One or more servers started for a measurement, cleaned up afterwards."""

    def __init__(self, kind: str, *, synchronous: str = "FULL", nodes: int = 1, postgres: bool = False) -> None:
        """``postgres``: the nodes share a fresh PostgreSQL schema (dropped on close) instead
        of one SQLite file, as nodes on several machines would."""
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix="chatbench-"))
        self.prefix = f"bench:{uuid.uuid4().hex[:10]}:"
        self.schema = f"bench_{uuid.uuid4().hex[:10]}" if postgres else None
        self.servers: list[Server] = []
        if kind == "relay":
            port = free_port()
            self.servers.append(Server([PY, str(ROOT / "bench" / "relay_server.py"), "--port", str(port)],
                                       dict(os.environ), port, "relay", self.dir / "relay.log"))
            return
        for i in range(nodes):
            port = free_port()
            env = {
                **os.environ, "HOST": "127.0.0.1", "PORT": str(port), "NODE_ID": f"bench-{i}",
                "DATABASE_URL": f"sqlite:///{self.dir}/chat.db", "SQLITE_SYNCHRONOUS": synchronous,
                "TOKEN_SECRET": SECRET, "RATE_PER_SECOND": "100000", "RATE_BURST": "100000",
                "LOG_LEVEL": "WARNING",
                # Chat only: the payment ledger is measured by bench/payments.py.
                "PAYMENTS": "off", "TIMERS_IN_HUB": "off", "API_PORT": str(free_port()),
                "PAYMENTS_DATABASE_URL": f"sqlite:///{self.dir}/payments.db",
            }
            if kind == "redis":
                env.update({"REDIS_URL": REDIS_URL, "REDIS_PREFIX": self.prefix})
            if self.schema is not None:
                env["DATABASE_URL"] = f"{PG_URL}?schema={self.schema}"
            env["PYTHONPATH"] = str(HUB_SRC)
            try:
                self.servers.append(Server([PY, "-m", "chat", "serve"], env, port, f"hub-{i}", self.dir / f"hub{i}.log",
                                           cwd=HUB_SRC))
                self._ready(port)
            except BaseException:
                log = (self.dir / f"hub{i}.log").read_text()[-1500:]
                self.close()
                raise RuntimeError(f"hub node {i} did not start:\n{log}") from None

    def _ready(self, port: int) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("hub not ready")

    @property
    def urls(self) -> list[str]:
        if self.kind == "relay":
            return [f"ws://127.0.0.1:{s.port}/" for s in self.servers]
        return [f"ws://127.0.0.1:{s.port}/ws" for s in self.servers]

    @property
    def pids(self) -> list[int]:
        return [s.pid for s in self.servers]

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        if self.kind == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i:i + 1000])
            client.close()
        if self.schema is not None:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def generate(dep: Deployment, args: list[str], timeout: float = 600) -> dict[str, Any]:
    """Run ``python -m chat.loadtest`` against a deployment; return its JSON report."""
    out = dep.dir / f"report-{uuid.uuid4().hex[:6]}.json"
    cmd = [PY, "-m", "chat.loadtest", "--target", "relay" if dep.kind == "relay" else "hub",
           "--secret", SECRET, "--progress", "0", "--json", str(out)]
    for url in dep.urls:
        cmd += ["--url", url]
    for pid in dep.pids:
        cmd += ["--hub-pid", str(pid)]
    cmd += args
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, preexec_fn=raise_nofile)
    if not out.exists():
        raise RuntimeError(f"generator failed: {proc.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return report


def summary(rep: dict[str, Any]) -> dict[str, Any]:
    msg = rep["types"].get("msg", {})
    hub = rep.get("hub") or {}
    return {
        "delivered_per_s": rep["delivered_per_second"],
        "p50_ms": msg.get("p50_ms"), "p99_ms": msg.get("p99_ms"), "max_ms": msg.get("max_ms"),
        "conns": rep["connections_peak"],
        "server_cpu_pct": hub.get("cpu_percent"), "server_us_per_msg": hub.get("cpu_us_per_delivered_msg"),
        "gen_cpu_pct": rep["generator"]["cpu_percent_per_proc"],
        "gen_us_per_msg": rep["generator"]["cpu_us_per_delivered_msg"],
        "gen_saturated": rep["generator"]["saturated"],
        "errors": rep["errors"], "correct": rep["correctness"]["ok"],
        "skipped": {k: v for k, v in rep["counts"].items() if k.startswith(("skipped", "dropped"))},
    }
