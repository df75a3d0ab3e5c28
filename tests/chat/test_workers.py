"""``serve --workers 2``: two hub processes on one port (SO_REUSEPORT) under a supervisor.

Workers need a store every process can share, so ``serve`` refuses SQLite for them.
When ``open_store`` takes a PostgreSQL URL, these tests run
``python -m chat serve --workers 2`` on PostgreSQL. Until then they start the same
supervisor without that check (``chat.workers.run_supervisor``) on one SQLite file: the
refusal is about throughput, not correctness (test_two_nodes shares one file between
processes), and the supervisor, the workers and the port sharing are the same code.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psycopg
import pytest

from chat.config import Config
from chat.server import open_store

from .client import LISTING, Client
from .conftest import REDIS_URL, SECRET, SERVER_SECRET, token
from .procs import free_port

POSTGRES_URL = os.environ.get("TEST_CHAT_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _chat_store_on_postgres() -> bool:
    """Whether ``open_store`` takes a postgresql:// DATABASE_URL (it builds the store without connecting)."""
    if importlib.util.find_spec("chat.store.postgres") is None:
        return False
    try:
        open_store(Config.from_env({"DATABASE_URL": POSTGRES_URL}))
    except SystemExit:
        return False
    return True


ON_POSTGRES = _chat_store_on_postgres()
UNCHECKED = (
    "import logging, sys; logging.basicConfig(level='INFO', format='%(levelname)s %(name)s: %(message)s'); "
    "from chat.workers import run_supervisor; sys.exit(run_supervisor(2))"
)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")  # a zombie has stopped
    except FileNotFoundError:  # reaped meanwhile
        return True


class Workers:
    """The supervisor as a real process; ``nodes`` maps each worker's node id to its pid."""

    def __init__(self, tmp_path: Path, redis_prefix: str, env: dict[str, str] | None = None) -> None:
        self.schema = f"test_workers_{uuid.uuid4().hex[:10]}"
        """The chat tables' own PostgreSQL schema, dropped by :meth:`stop`."""
        self.port = free_port()
        self.api_port = free_port()
        self.log = tmp_path / "workers.log"
        self.env = {
            **os.environ, "HOST": "127.0.0.1", "PORT": str(self.port), "API_PORT": str(self.api_port),
            "REDIS_URL": REDIS_URL, "REDIS_PREFIX": redis_prefix, "PRESENCE_TTL": "1",
            "DATABASE_URL": f"{POSTGRES_URL}?schema={self.schema}" if ON_POSTGRES else f"sqlite:///{tmp_path / 'chat.db'}",
            "PAYMENTS_DATABASE_URL": f"sqlite:///{tmp_path / 'payments.db'}", "SERVER_SECRET": SERVER_SECRET,
            "TOKEN_SECRET": SECRET, "RATE_PER_SECOND": "10000", "RATE_BURST": "10000", "LOG_LEVEL": "INFO",
            "PIN_PEPPER": "pin-pepper-for-tests-0123456789",
            **(env or {}),
        }
        self.env.pop("NODE_ID", None)  # every worker defaults to host:pid, which tells the pid
        self.proc: subprocess.Popen[bytes] | None = None
        self.nodes: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> subprocess.Popen[bytes]:
        command = ["serve", "--workers", "2"] if ON_POSTGRES else ["-c", UNCHECKED]
        if ON_POSTGRES:
            command = ["-m", "chat", *command]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, *command], env=self.env, stdout=log, stderr=log)
        return self.proc

    async def ready(self, count: int = 2) -> Workers:
        """Wait until ``count`` distinct workers have answered ``/healthz`` (new connections
        land on a worker by a hash of their source port, so a few tries reach each)."""
        await self.seen(lambda nodes: len(nodes) >= count)
        return self

    async def seen(self, done: Callable[[dict[str, int]], bool]) -> None:
        deadline = time.monotonic() + 30
        self.nodes = {}
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"supervisor exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                node = json.loads(await asyncio.to_thread(self.get, "/healthz"))["node"]
                self.nodes[node] = int(node.rsplit(":", 1)[1])
            except OSError:
                await asyncio.sleep(0.05)
            if done(self.nodes):
                return
        raise TimeoutError(f"workers seen: {self.nodes}; log: {self.log.read_text()}")

    def get(self, path: str, port: int | None = None) -> bytes:
        url = f"http://127.0.0.1:{port or self.port}{path}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {SERVER_SECRET}"})
        with urllib.request.urlopen(request, timeout=2) as resp:
            data: bytes = resp.read()
            return data

    async def client_on(self, node: str, user: str, role: str = "buyer", shop: str | None = None) -> Client:
        """A connection that landed on worker ``node`` (others are closed and retried)."""
        for _ in range(200):
            client = await Client.connect(self.url, token(user, role, shop=shop))
            if client.welcome["node"] == node:
                return client
            await client.close()
        raise AssertionError(f"no connection landed on {node}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in self.nodes.values():  # never leave a worker serving after a failed test
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)
        if ON_POSTGRES:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


@pytest.fixture
async def workers(tmp_path: Path, redis_prefix: str) -> AsyncIterator[Workers]:
    w = Workers(tmp_path, redis_prefix)
    w.start()
    try:
        yield await w.ready()
    finally:
        await asyncio.to_thread(w.stop)  # the loop stays free to answer the workers' closing handshakes


@pytest.fixture
def uid() -> str:
    """Users and shops of this run only (a PostgreSQL store outlives the test)."""
    return uuid.uuid4().hex[:8]


def refused(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "WORKERS")}
    return subprocess.run([sys.executable, "-m", "chat", "serve", *args], env={**base, "PORT": str(free_port()),
                          **env}, capture_output=True, text=True, timeout=30)


def test_serve_refuses_workers_without_shared_backends(tmp_path: Path) -> None:
    """Without Redis, or on the SQLite store, ``--workers 2`` (or ``WORKERS=2``) refuses to start and says why."""
    sqlite = f"sqlite:///{tmp_path / 'chat.db'}"
    no_redis = refused({"DATABASE_URL": POSTGRES_URL}, "--workers", "2")
    on_sqlite = refused({"REDIS_URL": REDIS_URL, "DATABASE_URL": sqlite, "WORKERS": "2"})
    none = refused({"WORKERS": "0"})
    for done in (no_redis, on_sqlite):
        assert done.returncode == 2, done.stderr
        assert "WORKERS>1 needs REDIS_URL and a DATABASE_URL every worker can share" in done.stderr
    assert "REDIS_URL is empty" in no_redis.stderr and "DATABASE_URL" not in no_redis.stderr.split("share:")[1]
    assert "DATABASE_URL is sqlite" in on_sqlite.stderr and "REDIS_URL is empty" not in on_sqlite.stderr
    assert none.returncode == 2 and "at least one worker" in none.stderr
    assert not (tmp_path / "chat.db").exists()  # refused before opening anything


async def test_connections_spread_over_workers_and_cross_them(workers: Workers, uid: str) -> None:
    """Both workers take connections on the one port, every HTTP endpoint answers on each,
    and a buyer on one worker and an agent on the other talk as across two nodes."""
    nodes = set()
    for i in range(24):
        client = await Client.connect(workers.url, token(f"p{i}-{uid}"))
        nodes.add(client.welcome["node"])
        await client.close()
    assert nodes == set(workers.nodes)
    for _ in range(8):  # whichever worker takes them
        assert json.loads(await asyncio.to_thread(workers.get, "/readyz"))["ready"] is True
        balance = json.loads(await asyncio.to_thread(workers.get, f"/api/v1/balances/user:{uid}", workers.api_port))
        assert balance["owner"] == f"user:{uid}", balance
    a, b = sorted(workers.nodes)
    shop = f"shop-{uid}"
    agent = await workers.client_on(a, f"a-{uid}", "agent", shop)
    await agent.request({"type": "sync"})
    buyer = await workers.client_on(b, f"b-{uid}")
    opened = await buyer.request({"type": "open", "shop": shop, "listing": LISTING})
    conv = opened["conversation"]["id"]
    assert opened["conversation"]["agent"] == f"a-{uid}"  # presence crossed the workers
    assert (await agent.next("msg", conv=conv))["kind"] == "product"
    ack = await buyer.send_text(conv, "还有货吗", "q1")
    assert (await agent.next("msg", conv=conv))["seq"] == ack["seq"]
    reply = await agent.send_text(conv, "有的", "r1")
    assert (await buyer.next("msg", conv=conv))["seq"] == reply["seq"]


async def test_killed_worker_is_restarted_and_its_clients_resume(workers: Workers, uid: str) -> None:
    """kill -9 of the agent's worker: the supervisor starts a new one; the agent reconnects
    (to any worker) and resumes with exactly what the buyer sent meanwhile."""
    a, b = sorted(workers.nodes)
    shop = f"shop-{uid}"
    agent = await workers.client_on(a, f"a-{uid}", "agent", shop)
    first = await agent.request({"type": "sync"})
    buyer = await workers.client_on(b, f"b-{uid}")
    conv = (await buyer.request({"type": "open", "shop": shop, "listing": LISTING}))["conversation"]["id"]
    await agent.next("msg", conv=conv)
    cursor = agent.resume_cursor(conv, 0)
    survivor = workers.nodes[b]
    os.kill(workers.nodes[a], signal.SIGKILL)
    code, _ = await asyncio.wait_for(agent.closed, 10)
    assert code != 1000
    for i in range(10):
        await buyer.send_text(conv, f"while away {i}", f"w{i}")
    await workers.seen(lambda nodes: len(nodes) == 2 and survivor in nodes.values())
    assert a not in workers.nodes  # the new worker has a pid, and so a node id, of its own
    assert "restarting it in" in workers.log.read_text()
    agent = await Client.connect(workers.url, token(f"a-{uid}", "agent", shop=shop))
    task = asyncio.create_task(agent.request({"type": "sync", "cursors": {conv: cursor}, "inbox": first["inbox"]}))
    missed = await agent.messages(conv, 10)
    await task
    assert [m["seq"] for m in missed] == list(range(cursor + 1, cursor + 11))
    ack = await buyer.send_text(conv, "live again", "live")
    assert (await agent.next("msg", conv=conv))["seq"] == ack["seq"]
    await agent.no_frame("msg", conv=conv)


async def test_sigterm_stops_every_worker_cleanly(workers: Workers, uid: str) -> None:
    """SIGTERM to the supervisor: each worker closes its connections with 1001 and exits; then the supervisor, 0."""
    clients = [await workers.client_on(node, f"u{i}-{uid}") for i, node in enumerate(sorted(workers.nodes))]
    assert workers.proc is not None
    workers.proc.send_signal(signal.SIGTERM)
    returncode = await asyncio.to_thread(workers.proc.wait, 30)
    log = workers.log.read_text()
    assert returncode == 0, log
    for client in clients:
        assert (await asyncio.wait_for(client.closed, 10))[0] == 1001, log
    assert all(gone(pid) for pid in workers.nodes.values()), log
    assert log.count("exited with 0") == 2 and "restarting" not in log, log


async def test_workers_stop_when_the_supervisor_is_killed(workers: Workers, uid: str) -> None:
    """kill -9 of the supervisor: its workers notice and stop, instead of serving the port unsupervised."""
    client = await Client.connect(workers.url, token(f"u-{uid}"))
    assert workers.proc is not None
    workers.proc.kill()
    workers.proc.wait(10)
    assert (await asyncio.wait_for(client.closed, 20))[0] == 1001  # a graceful stop, as on SIGTERM
    for pid in workers.nodes.values():
        for _ in range(200):  # polls; bounded
            if gone(pid):
                break
            await asyncio.sleep(0.05)
        assert gone(pid), f"worker {pid} outlived its supervisor"


async def test_supervisor_gives_up_when_workers_keep_dying(tmp_path: Path, redis_prefix: str) -> None:
    """Another program holds the port without SO_REUSEPORT: every worker dies at start; the
    supervisor restarts them with a growing delay, then stops and exits 1."""
    w = Workers(tmp_path, redis_prefix)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", w.port))
        squatter.listen()
        proc = w.start()
        try:
            returncode = await asyncio.to_thread(proc.wait, 120)
        finally:
            w.stop()
    log = w.log.read_text()
    assert returncode == 1, log
    assert "giving up" in log
    assert log.count("restarting it in") >= 4
