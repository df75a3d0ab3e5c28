"""What a connection's life does to the hub: closes decided once, clean detach, quick
answers when a backend is down, and frame order at the edges (opened before presence)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgpack
import pytest

from chat.backends.memory import MemoryBroker
from chat.server import ChatServer

from .client import LISTING, Client
from .conftest import token


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


async def test_frames_after_a_4003_decision_are_not_handled(server_factory: Any) -> None:
    """Past the bad-frame limit the connection closes with 4003: sends queued behind the last bad
    frame are neither stored nor acked, and the close is counted once."""
    server: ChatServer = await server_factory(max_bad_frames=2)
    url = f"ws://127.0.0.1:{server.port}/"
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    burst = [b"\xc1"] * 3 + [
        pack({"type": "send", "id": 100 + i, "conv": conv, "cmid": f"late-{i}", "body": {"kind": "text", "text": "x"}})
        for i in range(5)
    ] + [b"\xc1"] * 5
    await buyer.ws.send(burst[0])
    for data in burst[1:]:
        await buyer.ws.send(data)
    code, _ = await asyncio.wait_for(buyer.closed, 5)
    assert code == 4003
    assert not [f for f in buyer.frames if f["type"] == "ack"]
    page = await agent.request({"type": "history", "conv": conv})
    assert [m["seq"] for m in page["messages"]] == [1]
    assert 'chat_closes_total{code="4003"} 1.0' in server.hub.metrics.render().decode()


@pytest.mark.parametrize(
    ("bad", "close"),
    [(token("b1", ttl=-10), 4002), ("not-a-token", 4001)],
    ids=["expired", "garbage"],
)
async def test_bad_bearer_token_closes_with_its_code(url: str, bad: str, close: int) -> None:
    """A bad or expired token in the Authorization header closes with 4001/4002, not 1000."""
    client = await Client.connect(url, additional_headers={"Authorization": f"Bearer {bad}"})
    error = await client.next("error")
    assert error["code"] == (2003 if close == 4002 else 2002) and error["re"] is None
    code, _ = await asyncio.wait_for(client.closed, 5)
    assert code == close


async def test_not_a_map_error_answers_the_request_id(url: str) -> None:
    """A map without a string ``type`` is 1002 and still answers its usable ``id``."""
    client = await Client.connect(url, token("b1"))
    await client.send_raw(pack({"id": 77, "type": 5}))
    error = await client.next("error")
    assert error["code"] == 1002 and error["re"] == 77


@pytest.mark.parametrize(
    "data",
    [
        b"\x81\x01\xa4ping",  # {1: "ping"}: a non-string key
        b"\x81\xa4type\xd4\x01\x00",  # an ext type as a value
        b"\x81\xa4type\xa2\xff\xfe",  # invalid UTF-8 in a str
    ],
    ids=["int key", "ext type", "bad utf-8"],
)
async def test_msgpack_outside_the_protocol_is_1001(url: str, data: bytes) -> None:
    """Non-string keys, ext types and invalid UTF-8 get 1001, as the doc says."""
    client = await Client.connect(url, token("b1"))
    await client.send_raw(data)
    assert (await client.next("error"))["code"] == 1001


async def test_opened_comes_before_the_shops_presence(url: str) -> None:
    """A new conversation's ``opened`` reply precedes the shop's ``presence`` frame."""
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    for buyer_id in ("b1", "b2", "b3"):
        buyer = await Client.connect(url, token(buyer_id))
        await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
        await buyer.next("presence")
        kinds = [f["type"] for f in buyer.frames if f["type"] in ("opened", "presence")]
        assert kinds == ["opened", "presence"], kinds


class SlowBroker(MemoryBroker):
    """Subscribes slowly, to widen the window in which a connection can close mid-subscribe."""

    delay = 0.0

    async def subscribe(self, channel: str) -> None:
        if channel.startswith("p:"):
            await asyncio.sleep(self.delay)
        await super().subscribe(channel)


async def test_no_subscription_survives_a_closed_connection(server_factory: Any) -> None:
    """Connections that close while a presence follow is still subscribing leave no trace in the
    hub's subscriptions or sessions."""
    server: ChatServer = await server_factory()
    hub = server.hub
    slow = SlowBroker()
    await slow.start(hub._on_broker)
    old = hub.broker
    hub.broker = slow
    await old.close()
    url = f"ws://127.0.0.1:{server.port}/"
    SlowBroker.delay = 0.3
    buyers = []
    for i in range(5):
        device = await Client.connect(url, token("a1", "agent", shop="shop1"))
        await device.request({"type": "sync"})
        # A new conversation's first message makes the device follow its buyer, in the
        # background and slowly; the device goes away in the middle of it.
        buyer = await Client.connect(url, token(f"b{i}"))
        buyers.append(buyer)
        await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
        await device.next("msg")
        await device.ws.close()
    for buyer in buyers:
        await buyer.close()
    await asyncio.sleep(0.8)
    leaked = {ch: list(s) for ch, s in hub._subs.items() if s}
    assert not leaked, leaked
    assert not hub.subscribers()


async def test_failed_attach_leaves_nothing_behind(server_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """If a backend fails between identity and attach, the client is told to retry (5002, then
    close 4502) at once and no subscription or session is left behind."""
    server: ChatServer = await server_factory()
    hub = server.hub

    async def presence_down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("presence backend unreachable")

    monkeypatch.setattr(hub.presence, "set", presence_down)
    url = f"ws://127.0.0.1:{server.port}/"
    started = time.perf_counter()
    client = await Client.connect(url)
    reply = await client.request({"type": "auth", "token": token("a1", "agent", shop="shop1")})
    code, _ = await asyncio.wait_for(client.closed, 5)
    assert reply["code"] == 5002 and code == 4502
    assert time.perf_counter() - started < 2
    assert not {ch for ch, s in hub._subs.items() if s}
    assert not hub.subscribers()
    monkeypatch.undo()
    again = await Client.connect(url, token("a1", "agent", shop="shop1"))
    assert (await again.request({"type": "ping"}))["type"] == "pong"


async def test_abrupt_drop_logs_no_write_error(server_factory: Any, caplog: pytest.LogCaptureFixture) -> None:
    """A client vanishing while frames are being written to it is not an error in the log."""
    server: ChatServer = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    caplog.set_level(logging.WARNING)
    sends = [buyer.send_text(conv, "x" * 3000, f"big-{i}") for i in range(50)]
    task = asyncio.gather(*sends, return_exceptions=True)
    await asyncio.sleep(0.01)
    transport = agent.ws.transport
    assert transport is not None
    transport.abort()  # the agent's network goes away mid-stream
    await task
    await asyncio.sleep(0.3)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


class _ClosedTransport:
    """A uvloop transport whose handle is already closed but not yet reported as closing."""

    def is_closing(self) -> bool:
        return False

    def write(self, data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed")

    def get_write_buffer_size(self) -> int:
        return 0


class _OpenProtocol:
    def __init__(self) -> None:
        from websockets.protocol import OPEN

        self.state = OPEN
        self.writes: list[bytes] = []

    def send_binary(self, data: bytes) -> None:
        self.writes.append(b"frame:" + data)

    def data_to_send(self) -> list[bytes]:
        out, self.writes = self.writes, []
        return out


async def test_write_to_a_transport_closed_underneath_is_dropped_quietly() -> None:
    """The write path swallows the RuntimeError uvloop raises for a transport that closed
    between the state check and the write, instead of an unhandled callback error."""
    from types import SimpleNamespace

    from chat.server import WebsocketTransport

    transport = _ClosedTransport()
    ws = SimpleNamespace(protocol=_OpenProtocol(), transport=transport, send_data=lambda: transport.write(b""))
    writer = WebsocketTransport(ws)  # type: ignore[arg-type]
    writer.write(b"x" * 70_000)  # over 64 KiB: flushed at once
    writer.write(b"y")
    writer._flush()


async def test_auto_reply_is_sent_when_the_buyer_leaves_at_once(server_factory: Any) -> None:
    """A buyer who writes and closes the page at once still gets the away agent's reply in the
    record: it is the hub's work, not the buyer's connection's."""
    server: ChatServer = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    await agent.request({"type": "auto_reply", "active": True, "text": "back soon"})
    await agent.request({"type": "presence", "status": "away"})
    buyer = await Client.connect(url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await buyer.send_text(conv, "anyone?", "q1")
    await buyer.ws.close()
    auto = await agent.next("msg", conv=conv, sender="a1")
    assert auto["body"] == {"text": "back soon", "auto": True}


@pytest.mark.parametrize("user", ["system", "SYSTEM"])
async def test_the_hubs_own_identity_cannot_be_claimed(url: str, user: str) -> None:
    """A token for ``system`` (who posts cards and notes) is refused: its holder could otherwise
    post under the hub's name and claim the card ids of its own orders."""
    import jwt

    from .conftest import SECRET

    forged = jwt.encode({"sub": user, "role": "buyer", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    client = await Client.connect(url)
    reply = await client.request({"type": "auth", "token": forged})
    assert reply["code"] == 2002 and "reserved" in reply["message"]
    code, _ = await asyncio.wait_for(client.closed, 5)
    assert code == 4001


async def test_a_connection_is_closed_with_4002_when_its_token_expires(server_factory: Any) -> None:
    """Connections whose tokens expire in the same second share one timer; each is closed
    with 4002 when ``exp`` passes, one that left earlier is forgotten, a longer token stays."""
    server: ChatServer = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    exp_soon = int(time.time()) + 2
    short = [await Client.connect(url, token(f"b{i}", ttl=exp_soon - int(time.time()))) for i in range(3)]
    for client in short:
        await client.request({"type": "sync"})
    lasting = await Client.connect(url, token("b9"))
    await lasting.request({"type": "sync"})
    assert len(server._token_deadlines) == 4
    await short[2].close()
    for _ in range(50):
        if len(server._token_deadlines) == 3:
            break
        await asyncio.sleep(0.02)
    assert len(server._token_deadlines) == 3
    for client in short[:2]:
        code, _ = await asyncio.wait_for(client.closed, 5)
        assert code == 4002
    assert time.time() >= exp_soon - 0.05
    assert len(server._token_deadlines) == 1
    assert (await lasting.request({"type": "sync"}))["type"] == "synced"
