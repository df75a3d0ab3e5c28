from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from chat.auth import mint
from chat.clock import SystemClock
from chat.config import Config
from chat.server import ChatServer, build

SECRET = "test-secret-0123456789-abcdefghijklmnop"


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    env = {
        "HOST": "127.0.0.1", "PORT": "0", "DATABASE_URL": f"sqlite:///{tmp_path}/chat.db",
        "TOKEN_SECRET": SECRET, "RATE_PER_SECOND": "1000", "RATE_BURST": "1000", "PRESENCE_TTL": "3",
        "SQLITE_SYNCHRONOUS": "NORMAL",
    }
    return Config.from_env(env, **overrides)


def token(user: str, role: str = "buyer", shop: str | None = None, ttl: int = 3600) -> str:
    return mint(SECRET, user, role, shop=shop, ttl=ttl)  # type: ignore[arg-type]


@pytest.fixture
async def server_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    servers: list[ChatServer] = []

    async def start(**overrides: Any) -> ChatServer:
        server = build(make_config(tmp_path, **overrides), clock=overrides.pop("clock", None) or SystemClock())
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def server(server_factory: Callable[..., Any]) -> ChatServer:
    s: ChatServer = await server_factory()
    return s


@pytest.fixture
def url(server: ChatServer) -> str:
    return f"ws://127.0.0.1:{server.port}/ws"
