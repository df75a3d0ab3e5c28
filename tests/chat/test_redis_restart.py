"""Redis killed (-9) and restarted under two hub nodes: what clients see.

Each test runs its own ``redis-server`` on a free loopback port, either without
persistence (it comes back empty) or with an append-only file (it comes back with
its data), and two in-process hub nodes on it (buyer on the first, agent on the
second, so every exchange crosses Redis). ``PRESENCE_TTL`` is 3 s, so a presence
heartbeat is 1 s.

The checks: acknowledged messages are all in ``history``; while Redis is down
``/readyz`` says 503 and requests that need Redis get an error within a few
seconds; once it is back (after the presence TTL) ``/readyz`` says 200, live
delivery resumes at once, and the agent's shop is online again for the buyer
within one heartbeat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from chat.server import ChatServer

from .client import LISTING, Client
from .conftest import token
from .procs import free_port

pytestmark = pytest.mark.slow

HEARTBEAT = 1.0  # PRESENCE_TTL / 3
OTHER_LISTING = {**LISTING, "id": "l-2", "title": "Tieguanyin oolong 250g"}


class RedisServer:
    """A redis-server of the test's own, on 127.0.0.1, that can be killed and restarted."""

    def __init__(self, workdir: Path, persistent: bool) -> None:
        self.port = free_port()
        self.dir = workdir
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
                "--save", "", "--appendonly", "yes" if self.persistent else "no"]
        with open(self.dir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(self.dir / 'redis.log').read_text()}")
            if await asyncio.to_thread(self._ping):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def _ping(self) -> bool:
        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5) as r:
                return bool(r.ping())
        except (redis.RedisError, OSError):
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGKILL: no shutdown, no final save
            self.proc.wait(10)


@pytest.fixture(params=["empty-after-restart", "appendonly"])
async def redis_server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RedisServer]:
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(workdir, persistent=request.param == "appendonly")
    await server.start()
    try:
        yield server
    finally:
        server.kill()


async def http_get(port: int, path: str) -> tuple[int, Any]:
    """Status and JSON body; 503 is an answer here, not an error."""

    def fetch() -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    return await asyncio.to_thread(fetch)


async def within(seconds: float, check: Callable[[], Any], what: str) -> float:
    """Polls the async ``check`` until it is true; returns how long that took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not {what} within {seconds} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def timed(request: Any) -> tuple[Any, float]:
    """The answer to a request (or the error closing the connection) and how long it took:
    while Redis is down what matters is that an answer comes, and soon."""
    started = time.monotonic()
    try:
        result = await request
    except ConnectionError as exc:  # closed by the server instead of answered
        result = exc
    return result, time.monotonic() - started


async def test_hub_survives_redis_restart(
    redis_server: RedisServer, server_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Before, during and after a Redis kill -9 and restart (see the module docstring)."""
    caplog.set_level(logging.INFO, logger="chat")
    common = {"redis_url": redis_server.url, "presence_ttl": 3 * HEARTBEAT}
    a: ChatServer = await server_factory(node_id="node-a", **common)
    b: ChatServer = await server_factory(node_id="node-b", **common)
    url_a, url_b = f"ws://127.0.0.1:{a.port}/ws", f"ws://127.0.0.1:{b.port}/ws"
    clients: list[Client] = []
    try:
        async with asyncio.timeout(50):
            await _scenario(redis_server, a, b, url_a, url_b, clients, caplog)
    finally:
        for client in clients:
            await client.close()


async def _scenario(
    redis_server: RedisServer, a: ChatServer, b: ChatServer, url_a: str, url_b: str,
    clients: list[Client], caplog: pytest.LogCaptureFixture,
) -> None:
    async def ready(node: ChatServer, code: int) -> bool:
        return (await http_get(node.port, "/readyz"))[0] == code

    async def shop_online() -> bool:
        status, body = await http_get(a.port, "/presence/shop/shop1")
        return status == 200 and body["status"] == "online"

    # Before: traffic both ways, across the nodes.
    agent = await Client.connect(url_b, token("a1", "agent", shop="shop1"))
    clients.append(agent)
    await agent.request({"type": "sync"})
    buyer = await Client.connect(url_a, token("b1"))
    clients.append(buyer)
    opened = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
    conv = opened["conversation"]["id"]
    assert opened["conversation"]["agent"] == "a1"
    assert (await buyer.next("presence", entity="s:shop1"))["status"] == "online"
    acked: list[int] = []  # every seq a client got an ack for
    from_buyer: list[int] = []
    for i in range(5):
        ack = await buyer.send_text(conv, f"before {i}", f"b{i}")
        acked.append(ack["seq"])
        from_buyer.append(ack["seq"])
        await agent.next("msg", conv=conv, seq=ack["seq"])
    reply = await agent.send_text(conv, "hello", "a0")
    acked.append(reply["seq"])
    await buyer.next("msg", conv=conv, seq=reply["seq"])

    # Redis dies. Only the agent's node publishes while it is down, so the buyer's node
    # comes out of the outage with a publisher connection the restart left dead.
    frames_before = len(buyer.frames)
    redis_server.kill()
    killed = time.monotonic()
    await within(5, lambda: ready(a, 503), "/readyz 503 on node A")
    await within(5, lambda: ready(b, 503), "/readyz 503 on node B")
    from_agent: list[int] = []
    for i in range(3):  # the store does not need Redis: these are acknowledged
        ack, took = await timed(agent.send_text(conv, f"during {i}", f"d{i}"))
        assert isinstance(ack, dict) and ack["type"] == "ack", ack
        assert took < 2.5, took
        acked.append(ack["seq"])
        from_agent.append(ack["seq"])
    answer, took = await timed(buyer.request({"type": "open", "shop": "shop1", "listing": OTHER_LISTING}))
    assert isinstance(answer, dict) and answer["type"] == "error", answer  # needs presence: fails fast
    assert took < 2.5, took
    # Another engineer is changing how auth answers while a backend is down (error frame and
    # close); what matters here is that it answers within a few seconds, not after the outage.
    newcomer = await Client.connect(url_a)
    clients.append(newcomer)
    answer, took = await timed(newcomer.request({"type": "auth", "token": token("b2")}, timeout=10))
    assert not (isinstance(answer, dict) and answer["type"] == "welcome"), answer
    assert took < 3.5, took

    # Redis comes back on the same port (empty, or from its append-only file), after the
    # presence TTL: what it kept has expired, and a sweep may say so before a heartbeat.
    await asyncio.sleep(max(0.0, 3 * HEARTBEAT + 0.5 - (time.monotonic() - killed)))
    await redis_server.start()
    back = time.monotonic()
    await within(5, lambda: ready(a, 200), "/readyz 200 on node A")
    await within(5, lambda: ready(b, 200), "/readyz 200 on node B")
    assert time.monotonic() - back < 3  # subscribers reconnect within half a second

    # Live delivery resumes at once, both ways, and each side's outbox fills the gap from
    # the store when the next message arrives.
    ack = await buyer.send_text(conv, "after", "b-after")
    acked.append(ack["seq"])
    from_buyer.append(ack["seq"])
    started = time.monotonic()
    try:
        live = await agent.next("msg", conv=conv, seq=ack["seq"], timeout=3)
    except TimeoutError:
        pytest.fail("the first message after recovery never reached the agent live")
    assert time.monotonic() - started < 1.0, "live delivery took over a second after recovery"
    assert live["sender"] == "b1", live
    reply = await agent.send_text(conv, "back", "a-after")
    acked.append(reply["seq"])
    from_agent.append(reply["seq"])
    started = time.monotonic()
    await buyer.next("msg", conv=conv, seq=reply["seq"], timeout=5)
    assert time.monotonic() - started < 1.0, "live delivery took over a second after recovery"
    seen = {f["seq"] for f in buyer.frames if f["type"] == "msg" and f["conv"] == conv}
    assert set(from_agent) <= seen, sorted(set(from_agent) - seen)

    # The agent's shop is online for the buyer within one heartbeat (plus a sweep's slack).
    await within(max(0.1, HEARTBEAT + 1.5 - (time.monotonic() - back)), shop_online, "shop1 online again")
    await asyncio.sleep(0.3)  # any presence frame the re-created entry caused is here by now
    pushed = [f for f in buyer.frames[frames_before:] if f["type"] == "presence" and f["entity"] == "s:shop1"]
    assert not pushed or pushed[-1]["status"] == "online", pushed

    # The first requests after recovery that need Redis succeed (no dead pooled sockets).
    again = await Client.connect(url_a, token("b3"))
    clients.append(again)
    assert again.welcome["type"] == "welcome"
    opened = await buyer.request({"type": "open", "shop": "shop1", "listing": OTHER_LISTING})
    assert opened["type"] == "opened", opened

    # No acknowledged message is lost.
    page = await buyer.request({"type": "history", "conv": conv, "limit": 200})
    stored = [m["seq"] for m in page["messages"]]
    assert set(acked) <= set(stored), sorted(set(acked) - set(stored))

    # Quiet logs: per node and backend one warning when Redis went and one info line when it
    # came back, and no tracebacks from the backends or the heartbeat.
    backend_logs = [r for r in caplog.records if r.name == "chat.backends.redis"]
    for name in ("redis broker", "redis presence"):
        lost = [r for r in backend_logs if r.levelno == logging.WARNING and r.getMessage().startswith(name)]
        found = [r for r in backend_logs if r.levelno == logging.INFO and r.getMessage().startswith(name)]
        assert 1 <= len(lost) <= 2, [r.getMessage() for r in lost]  # one per node that noticed
        assert len(found) == len(lost), [r.getMessage() for r in found]
    heartbeat = [r for r in caplog.records if r.name == "chat.hub" and "heartbeat" in r.getMessage()]
    assert not any(r.exc_info for r in backend_logs + heartbeat)
    assert len([r for r in heartbeat if r.levelno == logging.WARNING]) <= 2
