"""PRESEND_URL end to end: a real hub and a real HTTP hook server, started by the test, that
allows, masks, blocks, answers late, fails and talks nonsense, under both PRESEND_FAILURE modes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from chat import presend

from .test_delivery import open_pair


@dataclass
class Hook:
    """The marketplace's check: decides by the text's first word (``mask``, ``block``, ``slow``,
    ``error``, ``garbage``, ``weird``; anything else is allowed). ``down`` fails everything."""

    got: list[dict[str, Any]] = field(default_factory=list)
    peers: set[Any] = field(default_factory=set)
    down: bool = False
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.got.append(payload)
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        word = payload["body"]["text"].split()[0]
        if self.down or word == "error":
            return web.Response(status=500)
        if word == "slow":
            await asyncio.sleep(1.0)
        if word == "garbage":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if word == "weird":
            return web.json_response({"verdict": "maybe"})
        if word == "mask":
            return web.json_response({"verdict": "mask", "text": "[removed by the marketplace]", "reason": "contact"})
        if word == "block":
            return web.json_response({"verdict": "block", "reason": "prohibited item"})
        return web.json_response({"verdict": "allow"})


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    found = Hook()
    app = web.Application()
    app.router.add_post("/check", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}/check"
    yield found
    await runner.cleanup()


async def started(server_factory: Callable[..., Any], hook: Hook, failure: str = "open") -> str:
    server = await server_factory(presend_url=hook.url, presend_timeout_ms=200, presend_failure=failure)
    return f"ws://127.0.0.1:{server.port}/"


async def stored(client: Any, conv: str) -> list[dict[str, Any]]:
    page = await client.request({"type": "history", "conv": conv})
    return [m for m in page["messages"] if m["kind"] == "text"]


async def test_allow_stores_as_sent_and_records_the_verdict(server_factory: Callable[..., Any], hook: Hook) -> None:
    """Both sides' texts are checked with who sent them; the verdict travels with the message."""
    buyer, agent, conv = await open_pair(await started(server_factory, hook))
    ack = await buyer.send_text(conv, "hello there", "m1")
    got = await agent.next("msg", conv=conv, seq=ack["seq"])
    assert got["body"] == {"text": "hello there", "presend": "allow"}
    await agent.send_text(conv, "hi, how can I help", "m2")
    assert [(p["sender"], p["role"]) for p in hook.got] == [("b1", "buyer"), ("a1", "agent")]
    assert hook.got[0] == {"conversation": conv, "sender": "b1", "role": "buyer", "kind": "text",
                           "body": {"text": "hello there"}}


async def test_mask_stores_the_hooks_text_never_the_original(server_factory: Callable[..., Any], hook: Hook) -> None:
    buyer, agent, conv = await open_pair(await started(server_factory, hook))
    ack = await buyer.send_text(conv, "mask my number 555", "m1")
    got = await agent.next("msg", conv=conv, seq=ack["seq"])
    assert got["body"] == {"text": "[removed by the marketplace]", "presend": "mask"}
    assert all("555" not in m["body"]["text"] for m in await stored(agent, conv))


async def test_block_refuses_with_4007_and_stores_nothing(server_factory: Callable[..., Any], hook: Hook) -> None:
    buyer, agent, conv = await open_pair(await started(server_factory, hook))
    reply = await buyer.send_text(conv, "block this please", "m1")
    assert reply["type"] == "error" and reply["code"] == 4007 and reply["details"] == {"reason": "prohibited item"}
    await agent.no_frame("msg", conv=conv, kind="text")
    assert await stored(buyer, conv) == []


async def test_a_resend_does_not_ask_the_hook_again(server_factory: Callable[..., Any], hook: Hook) -> None:
    """The same cmid gets the first answer (the masked text too) without a second request;
    a blocked message is asked again (nothing was stored)."""
    buyer, _agent, conv = await open_pair(await started(server_factory, hook))
    first = await buyer.send_text(conv, "hello", "m1")
    again = await buyer.send_text(conv, "hello", "m1")
    assert again["duplicate"] and again["seq"] == first["seq"] and len(hook.got) == 1
    masked = await buyer.send_text(conv, "mask me 555", "m2")
    masked_again = await buyer.send_text(conv, "mask me 555", "m2")
    assert masked_again["duplicate"] and masked_again["seq"] == masked["seq"] and len(hook.got) == 2
    other = await buyer.send_text(conv, "a different text", "m1")
    assert other["type"] == "error" and other["code"] == 4005 and len(hook.got) == 2
    await buyer.send_text(conv, "block it", "m3")
    await buyer.send_text(conv, "block it", "m3")
    assert len(hook.got) == 4


@pytest.mark.parametrize("word", ["slow", "error", "garbage", "weird"])
async def test_fail_open_stores_and_records_unavailable(
    server_factory: Callable[..., Any], hook: Hook, word: str
) -> None:
    """A late, failed or meaningless answer: the message goes through at the deadline, marked."""
    buyer, agent, conv = await open_pair(await started(server_factory, hook, "open"))
    t0 = time.monotonic()
    ack = await buyer.send_text(conv, f"{word} but fine", "m1")
    assert ack["type"] == "ack" and time.monotonic() - t0 < 0.8
    got = await agent.next("msg", conv=conv, seq=ack["seq"])
    assert got["body"] == {"text": f"{word} but fine", "presend": "unavailable"}


@pytest.mark.parametrize("word", ["slow", "error", "garbage"])
async def test_fail_closed_refuses_with_5002_and_a_retry_goes_through(
    server_factory: Callable[..., Any], hook: Hook, word: str
) -> None:
    buyer, _agent, conv = await open_pair(await started(server_factory, hook, "closed"))
    t0 = time.monotonic()
    reply = await buyer.send_text(conv, f"{word} text", "m1")
    assert reply["type"] == "error" and reply["code"] == 5002 and reply["details"] == {"presend": "unavailable"}
    assert time.monotonic() - t0 < 0.8 and await stored(buyer, conv) == []
    hook.down = True
    again = await buyer.send_text(conv, "plain text", "m2")
    assert again["code"] == 5002
    hook.down = False
    ack = await buyer.send_text(conv, "plain text", "m2")  # the client's retry, same cmid
    assert ack["type"] == "ack" and not ack["duplicate"]
    assert [m["body"] for m in await stored(buyer, conv)] == [{"text": "plain text", "presend": "allow"}]


async def test_a_client_cannot_set_the_verdict(server_factory: Callable[..., Any], hook: Hook) -> None:
    buyer, _agent, conv = await open_pair(await started(server_factory, hook))
    body = {"kind": "text", "text": "hello", "presend": "allow"}
    reply = await buyer.request({"type": "send", "conv": conv, "cmid": "x1", "body": body})
    assert reply["type"] == "error" and reply["code"] == 1004 and hook.got == []


async def test_the_hook_sees_detection_flags_and_only_texts(server_factory: Callable[..., Any], hook: Hook) -> None:
    """Detection runs first (its flags go to the hook); images are not checked; one kept-alive
    connection carries every request of the node."""
    buyer, _agent, conv = await open_pair(await started(server_factory, hook))
    await buyer.send_text(conv, "my wechat is lily8888", "m1")
    assert hook.got[-1]["body"]["flags"]
    image = {"kind": "image", "url": "https://img.example/a.png"}
    ack = await buyer.request({"type": "send", "conv": conv, "cmid": "i1", "body": image})
    assert ack["type"] == "ack" and len(hook.got) == 1
    for i in range(5):
        await buyer.send_text(conv, f"hello {i}", f"k{i}")
    assert len(hook.got) == 6 and len(hook.peers) == 1


async def test_without_a_hook_nothing_is_recorded(server_factory: Callable[..., Any]) -> None:
    server = await server_factory()
    buyer, _agent, conv = await open_pair(f"ws://127.0.0.1:{server.port}/")
    await buyer.send_text(conv, "hello", "m1")
    assert [m["body"] for m in await stored(buyer, conv)] == [{"text": "hello"}]
    assert presend.hook_of(server.hub) is None


def test_parse_refuses_answers_that_are_not_verdicts() -> None:
    assert presend.parse({"verdict": "allow", "text": "ignored"}) == presend.Verdict("allow")
    assert presend.parse({"verdict": "block", "reason": "x" * 500}).reason == "x" * presend.MAX_REASON
    for bad in ([], {"verdict": "ok"}, {"verdict": "mask"}, {"verdict": "mask", "text": ""},
                {"verdict": "mask", "text": "x" * 4001}):
        with pytest.raises(presend.HookFailed):
            presend.parse(bad)
