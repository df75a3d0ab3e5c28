"""Bad input gets a typed error and the connection survives; strangers are kept out."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgpack
import pytest
from websockets.asyncio.client import connect

from chat.server import ChatServer

from .client import LISTING, Client
from .conftest import SECRET, token
from .test_delivery import open_pair


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


async def test_stranger_cannot_read_or_write_a_conversation(url: str) -> None:
    """Another buyer and another shop's agent get 3002 for history, send, read, typing and recall."""
    _buyer, _agent, conv = await open_pair(url)
    intruders = [
        await Client.connect(url, token("b2")),
        await Client.connect(url, token("a9", "agent", shop="other-shop")),
    ]
    for intruder in intruders:
        for frame in (
            {"type": "history", "conv": conv},
            {"type": "send", "conv": conv, "cmid": "x", "body": {"kind": "text", "text": "hi"}},
            {"type": "read", "conv": conv, "seq": 1},
            {"type": "typing", "conv": conv, "active": True},
            {"type": "recall", "conv": conv, "seq": 1},
        ):
            reply = await intruder.request(frame)
            assert reply["type"] == "error" and reply["code"] == 3002, (frame, reply)
        synced = await intruder.request({"type": "sync", "cursors": {conv: 0}})
        assert synced["conversations"] == []
        await intruder.no_frame("msg", conv=conv, wait=0.1)


async def test_another_agent_of_the_shop_can_read_and_answer(url: str) -> None:
    """Every agent of the shop reads the conversation, though it is delivered live to the assigned one."""
    buyer, _agent, conv = await open_pair(url)
    colleague = await Client.connect(url, token("a2", "agent", shop="shop1"))
    synced = await colleague.request({"type": "sync"})
    assert [c["id"] for c in synced["conversations"]] == [conv]
    page = await colleague.request({"type": "history", "conv": conv})
    assert page["messages"][0]["kind"] == "product"
    ack = await colleague.send_text(conv, "I can help too", "c1")
    assert (await buyer.next("msg", conv=conv))["seq"] == ack["seq"]


async def test_unknown_conversation_is_not_found(url: str) -> None:
    """A conversation id that does not exist gets 3001."""
    client = await Client.connect(url, token("b1"))
    reply = await client.request({"type": "history", "conv": "c_doesnotexist"})
    assert reply["code"] == 3001


async def test_roles_are_enforced(url: str) -> None:
    """Agents cannot open conversations as buyers; buyers cannot hand conversations over."""
    buyer, agent, conv = await open_pair(url)
    reply = await agent.request({"type": "open", "shop": "shop1", "listing": LISTING})
    assert reply["code"] == 3003
    reply = await buyer.request({"type": "assign", "conv": conv, "agent": "a1"})
    assert reply["code"] == 3003


BAD_FRAMES: list[tuple[str, bytes | str, int]] = [
    ("not msgpack", b"\xc1\xc1\xc1", 1001),
    ("truncated msgpack", b"\x82\xa4type", 1001),
    ("an array, not a map", pack([1, 2, 3]), 1002),
    ("a map without type", pack({"id": 1}), 1002),
    ("type not a string", pack({"type": 7}), 1002),
    ("unknown type", pack({"type": "teleport", "id": 3}), 1003),
    ("missing field", pack({"type": "send", "id": 4, "conv": "c"}), 1004),
    ("wrong field type", pack({"type": "read", "id": 5, "conv": "c", "seq": "12"}), 1004),
    ("float where int", pack({"type": "read", "id": 6, "conv": "c", "seq": 1.5}), 1004),
    ("bool where int", pack({"type": "read", "id": 6, "conv": "c", "seq": True}), 1004),
    ("negative seq", pack({"type": "read", "id": 7, "conv": "c", "seq": -1}), 1004),
    ("extra field", pack({"type": "ping", "id": 8, "sneaky": 1}), 1004),
    ("empty text",
     pack({"type": "send", "id": 9, "conv": "c", "cmid": "x", "body": {"kind": "text", "text": ""}}), 1004),
    ("unknown body kind",
     pack({"type": "send", "id": 10, "conv": "c", "cmid": "x", "body": {"kind": "video"}}), 1004),
    ("bad id characters", pack({"type": "history", "id": 11, "conv": "../../etc"}), 1004),
    ("float price", pack({"type": "open", "id": 12, "shop": "s", "listing": {**LISTING, "price": 12.5}}), 1004),
    ("bad currency", pack({"type": "open", "id": 13, "shop": "s", "listing": {**LISTING, "currency": "yuan"}}), 1004),
    ("javascript image url", pack({"type": "send", "id": 14, "conv": "c", "cmid": "x",
                                   "body": {"kind": "image", "url": "javascript:alert(1)"}}), 1004),
    ("text frame", "hello", 1006),
    ("too large", pack({"type": "ping", "pad": "x" * 70_000}), 1005),
]


@pytest.mark.parametrize(("name", "data", "code"), BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
async def test_malformed_frame_gets_typed_error_and_connection_survives(
    url: str, name: str, data: bytes | str, code: int
) -> None:
    """Each malformed input in the protocol's error table gets its code; the next request still works."""
    client = await Client.connect(url, token("b1"))
    await client.send_raw(data)
    error = await client.next("error")
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    pong = await client.request({"type": "ping"})
    assert pong["type"] == "pong"


async def test_error_answers_the_request_id(url: str) -> None:
    """An invalid request with an id gets an error frame carrying that id in ``re``."""
    client = await Client.connect(url, token("b1"))
    await client.send_raw(pack({"type": "read", "id": 42, "conv": "c", "seq": "x"}))
    error = await client.next("error")
    assert error["re"] == 42 and error["code"] == 1004
    assert error["details"][0]["field"] == "seq"


async def test_garbage_flood_is_closed_with_4003(server_factory: Any) -> None:
    """A client that keeps sending garbage is closed with 4003 after the limit; the server lives on."""
    server: ChatServer = await server_factory(max_bad_frames=5)
    url = f"ws://127.0.0.1:{server.port}/"
    client = await Client.connect(url, token("b1"))
    for _ in range(10):
        try:
            await client.send_raw(b"\xc1")
        except Exception:
            break
    code, _reason = await asyncio.wait_for(client.closed, 5)
    assert code == 4003
    other = await Client.connect(url, token("b2"))
    assert (await other.request({"type": "ping"}))["type"] == "pong"


async def test_requests_before_auth_are_refused(url: str) -> None:
    """Anything but auth on a fresh connection gets 2001 and does not close it."""
    client = await Client.connect(url)
    reply = await client.request({"type": "sync"})
    assert reply["code"] == 2001
    welcome = await client.request({"type": "auth", "token": token("b1")})
    assert welcome["type"] == "welcome" and welcome["user"] == "b1"
    again = await client.request({"type": "auth", "token": token("b1")})
    assert again["code"] == 2004


@pytest.mark.parametrize(
    ("bad_token", "code", "close"),
    [
        ("not-a-jwt", 2002, 4001),
        (token("b1", ttl=-10), 2003, 4002),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4Iiwicm9sZSI6ImJ1eWVyIiwiZXhwIjo5OTk5OTk5OTk5fQ.bad", 2002, 4001),
    ],
    ids=["garbage", "expired", "bad-signature"],
)
async def test_bad_tokens_are_refused_with_clear_close_codes(
    url: str, bad_token: str, code: int, close: int
) -> None:
    """Invalid and expired tokens get an error frame, then a close code that says why."""
    client = await Client.connect(url)
    reply = await client.request({"type": "auth", "token": bad_token})
    assert reply["code"] == code
    closed, _ = await asyncio.wait_for(client.closed, 5)
    assert closed == close


async def test_token_signed_with_another_secret_is_refused(url: str) -> None:
    """A token from someone without the marketplace's secret does not authenticate."""
    from chat.auth import mint

    forged = mint(SECRET + "x", "b1", "buyer")
    client = await Client.connect(url)
    assert (await client.request({"type": "auth", "token": forged}))["code"] == 2002


async def test_bearer_header_authenticates_programs(url: str) -> None:
    """A program may authenticate with an Authorization header instead of an auth frame."""
    client = await Client.connect(url, additional_headers={"Authorization": f"Bearer {token('b7')}"})
    welcome = await client.next("welcome")
    assert welcome["user"] == "b7"
    assert (await client.request({"type": "ping"}))["type"] == "pong"


async def test_connection_closes_when_token_expires(url: str) -> None:
    """An authenticated connection is closed with 4002 when its token runs out."""
    client = await Client.connect(url, token("b1", ttl=1))
    closed, _ = await asyncio.wait_for(client.closed, 5)
    assert closed == 4002


async def test_auth_timeout_closes_silent_connections(server_factory: Any) -> None:
    """A connection that never authenticates is closed with 4004."""
    server: ChatServer = await server_factory(auth_timeout=0.3)
    async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4004


async def test_rate_limit_answers_with_error_not_disconnect(server_factory: Any) -> None:
    """Past the burst, sends get 4001 with a retry hint; after a pause they succeed again."""
    server: ChatServer = await server_factory(rate_per_second=5.0, rate_burst=3)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, _agent, conv = await open_pair(url)
    replies = [await buyer.send_text(conv, f"r{i}", f"r{i}") for i in range(6)]
    kinds = [r["type"] for r in replies]
    assert kinds[:3] == ["ack"] * 3 and "error" in kinds[3:]
    refused = next(r for r in replies if r["type"] == "error")
    assert refused["code"] == 4001 and refused["details"]["retry_after_ms"] > 0
    await asyncio.sleep(0.5)
    assert (await buyer.send_text(conv, "later", "later"))["type"] == "ack"


async def test_unreachable_backend_is_5002_and_connection_survives(server_factory: Any) -> None:
    """When the store cannot be reached mid-request the client gets 5002 (retry shortly) and keeps its connection."""
    server: ChatServer = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, _agent, conv = await open_pair(url)
    await server.hub.store.close()
    reply = await buyer.send_text(conv, "while the disk is gone", "fail-1")
    assert reply["type"] == "error" and reply["code"] == 5002
    await server.hub.store.start()
    assert (await buyer.request({"type": "ping"}))["type"] == "pong"
    retried = await buyer.send_text(conv, "while the disk is gone", "fail-1")
    assert retried["type"] == "ack" and retried["duplicate"] is False


async def test_unexpected_failure_is_5001(server_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug or an unexpected store error (not an outage) answers 5001 and the connection lives on."""
    server: ChatServer = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, _agent, conv = await open_pair(url)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(server.hub.store, "messages", broken)
    reply = await buyer.request({"type": "history", "conv": conv})
    assert reply["type"] == "error" and reply["code"] == 5001
    assert (await buyer.request({"type": "ping"}))["type"] == "pong"


async def test_money_commands_without_payments_are_5002(server_factory: Any) -> None:
    """A server running chat only answers money commands with 5002, not a crash."""
    server: ChatServer = await server_factory(payments="off")
    assert server.api is None
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, _agent, conv = await open_pair(url)
    reply = await buyer.request({"type": "pay", "conv": conv, "pin": "123456", "key": "pay-off-1"})
    assert reply["code"] == 5002


def test_every_error_code_has_a_test() -> None:
    """Each code in the protocol's error table is asserted by at least one end-to-end or codec test."""
    from pathlib import Path

    from chat.protocol.errors import ErrorCode

    here = Path(__file__).parent
    text = "".join(p.read_text() for p in here.glob("test_*.py") if p.name != "test_protocol_doc.py")
    untested = [c for c in ErrorCode if not re.search(rf"(code\"?\]? == {c.value}\b|ErrorCode\.{c.name}\b|, {c.value}[,)]|\({c.value}, )", text)]
    assert not untested, f"no test asserts {untested}"
