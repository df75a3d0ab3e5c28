"""Fixtures: real hub nodes on port 0, on the embedded default or on real Redis.

The ``url`` fixture is parametrized over four deployments, so every end-to-end
test that uses it runs against each:

* ``memory``: one node, in-memory backends (the embedded default);
* ``redis``: one node on Redis;
* ``two-nodes``: two nodes sharing Redis and the SQLite file; buyers connect to
  the first, agents (and anyone connecting with ``node=1``) to the second, so every
  exchange crosses nodes;
* ``two-nodes-cluster``: the same on a Redis Cluster (3 masters, 3 replicas, started
  once per session by ``redis_cluster.py``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from chat.auth import mint
from chat.clock import SystemClock
from chat.config import Config
from chat.server import ChatServer, build

from .client import Client
from .redis_cluster import cluster_prefix, redis_cluster  # noqa: F401  (one Redis Cluster for every module)

SECRET = "test-secret-0123456789-abcdefghijklmnop"
SERVER_SECRET = "server-secret-for-tests-0123456789"
PIN_PEPPER = "pin-pepper-for-tests-0123456789"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("CHAT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    env = {
        "HOST": "127.0.0.1", "PORT": "0", "DATABASE_URL": f"sqlite:///{tmp_path}/chat.db",
        "TOKEN_SECRET": SECRET, "RATE_PER_SECOND": "1000", "RATE_BURST": "1000", "PRESENCE_TTL": "3",
        "SQLITE_SYNCHRONOUS": "NORMAL", "PAYMENTS_DATABASE_URL": f"sqlite:///{tmp_path}/payments.db",
        "API_PORT": "0", "SERVER_SECRET": SERVER_SECRET, "TIMER_INTERVAL": "0.2",
        "PIN_PEPPER": PIN_PEPPER,
    }
    return Config.from_env(env, **overrides)


def token(user: str, role: str = "buyer", shop: str | None = None, ttl: int = 3600) -> str:
    return mint(SECRET, user, role, shop=shop, ttl=ttl)  # type: ignore[arg-type]


@pytest.fixture
def redis_prefix() -> Any:
    """A fresh key prefix on the real Redis, deleted afterwards."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def server_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    servers: list[ChatServer] = []

    async def start(**overrides: Any) -> ChatServer:
        clock = overrides.pop("clock", None) or SystemClock()
        server = build(make_config(tmp_path, **overrides), clock=clock)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in reversed(servers):
        await server.close()
    Client.node_for_agents = None


@pytest.fixture
async def money(server_factory: Callable[..., Any]) -> tuple[ChatServer, str]:
    """One hub node with the ledger (the default), and its websocket URL."""
    server = await server_factory()
    return server, f"ws://127.0.0.1:{server.port}/"


@pytest.fixture(params=["memory", "redis", "two-nodes", "two-nodes-cluster", "three-nodes-postgres-cluster"])
async def nodes(request: pytest.FixtureRequest, server_factory: Callable[..., Any]) -> list[ChatServer]:
    """The deployments every end-to-end test runs on. Buyers connect to the first node and
    agents to the last, so on several nodes every exchange crosses nodes; the last one is
    the scale-out shape: three nodes sharing one PostgreSQL schema and the Redis Cluster."""
    if request.param == "memory":
        return [await server_factory()]
    extra: dict[str, Any] = {}
    if request.param.endswith("cluster"):
        url, prefix = request.getfixturevalue("redis_cluster").url, request.getfixturevalue("cluster_prefix")
    else:
        url, prefix = REDIS_URL, request.getfixturevalue("redis_prefix")
    if request.param == "three-nodes-postgres-cluster":
        extra["database_url"] = f"{PG_URL}?schema={request.getfixturevalue('pg_schema')}"
    first = await server_factory(redis_url=url, redis_prefix=prefix, node_id="node-a", **extra)
    if request.param == "redis":
        return [first]
    more = 2 if request.param.startswith("three") else 1
    others = [await server_factory(redis_url=url, redis_prefix=prefix, node_id=f"node-{chr(98 + i)}", **extra)
              for i in range(more)]
    Client.node_for_agents = f"ws://127.0.0.1:{others[-1].port}/ws"
    if extra:
        assert all(type(n.hub.store).__name__ == "PostgresStore" for n in (first, *others))
    return [first, *others]


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of the test's own for the chat store, dropped afterwards (the hub
    nodes still open then hold no transaction, so the drop does not wait for them)."""
    schema = f"chat_e2e_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def server(nodes: list[ChatServer]) -> ChatServer:
    return nodes[0]


@pytest.fixture
def url(nodes: list[ChatServer]) -> str:
    return f"ws://127.0.0.1:{nodes[0].port}/ws"
