"""Reporting and blocking end to end: real hub nodes and sockets, the reports and block lists
read back through the real server API, and the access rules (nobody reports or blocks what
is not theirs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from chat.server import ChatServer

from .client import LISTING, Client
from .conftest import token
from .test_delivery import open_pair
from .test_money import api


async def get(server: ChatServer, path: str, secret: str | None = None) -> tuple[int, dict[str, Any]]:
    if secret is None:
        return await asyncio.to_thread(api, server, "GET", path)
    return await asyncio.to_thread(api, server, "GET", path, None, secret)


async def test_reports_are_stored_once_and_listed_by_the_server_api(url: str, server: ChatServer) -> None:
    """A buyer reports the agent's message, the agent the whole conversation; a repeat is a
    duplicate; the marketplace pages through them with ``after``."""
    buyer, agent, conv = await open_pair(url)
    sent = await agent.send_text(conv, "pay me on the side", "a1")
    first = await buyer.request({"type": "report", "conv": conv, "seq": sent["seq"], "reason": "asks for payment"})
    assert first["type"] == "reported" and not first["duplicate"]
    again = await buyer.request({"type": "report", "conv": conv, "seq": sent["seq"], "reason": "again"})
    assert again["report"] == first["report"] and again["duplicate"]
    whole = await agent.request({"type": "report", "conv": conv, "reason": "abusive buyer"})
    assert whole["report"] > first["report"]
    status, page = await get(server, "/api/v1/reports?limit=1")
    assert status == 200 and page["next_after"] == first["report"]
    listed = page["reports"][0]
    assert listed == {"id": first["report"], "conv": conv, "seq": sent["seq"], "reporter": "b1", "side": "buyer",
                      "buyer": "b1", "shop": "shop1", "reason": "asks for payment",
                      "created_at": listed["created_at"]}
    status, rest = await get(server, f"/api/v1/reports?after={first['report']}")
    assert status == 200 and [(r["side"], r["seq"], r["reason"]) for r in rest["reports"]] == [
        ("shop", 0, "abusive buyer")
    ]
    assert rest["next_after"] is None


async def test_an_agent_blocks_the_buyer_for_the_shop(url: str, server: ChatServer) -> None:
    """The buyer can no longer write or open a conversation with the shop, and is told the shop
    blocked it; it still reads its history; another agent of the shop can lift the block."""
    buyer, agent, conv = await open_pair(url)
    await buyer.send_text(conv, "hello", "m1")
    done = await agent.request({"type": "block", "conv": conv, "reason": "threatened staff"})
    assert done["type"] == "ok"
    refused = await buyer.send_text(conv, "hello?", "m2")
    assert refused["type"] == "error" and refused["code"] == 4008 and refused["message"] == "this shop has blocked you"
    assert refused["details"] == {"blocked_by": ["shop"], "buyer": "b1", "shop": "shop1"}
    other_listing = {**LISTING, "id": "other-listing"}
    opened = await buyer.request({"type": "open", "shop": "shop1", "listing": other_listing})
    assert opened["type"] == "error" and opened["code"] == 4008
    mine = await agent.send_text(conv, "one more thing", "a1")
    assert mine["code"] == 4008 and mine["details"]["blocked_by"] == ["shop"]
    page = await buyer.request({"type": "history", "conv": conv})
    assert page["type"] == "history" and page["messages"]
    status, blocks = await get(server, "/api/v1/shops/shop1/blocks")
    assert status == 200 and [(b["buyer"], b["side"], b["by"], b["reason"]) for b in blocks["blocks"]] == [
        ("b1", "shop", "a1", "threatened staff")
    ]
    colleague = await Client.connect(url, token("a2", "agent", shop="shop1"))
    assert (await colleague.request({"type": "unblock", "conv": conv}))["type"] == "ok"
    assert (await buyer.send_text(conv, "hello again", "m3"))["type"] == "ack"
    assert (await get(server, "/api/v1/shops/shop1/blocks"))[1]["blocks"] == []


async def test_a_buyer_blocks_the_shop_and_only_the_buyer_lifts_it(server_factory: Callable[..., Any]) -> None:
    """The shop sees why it cannot write (the buyer blocked it); its own ``unblock`` does not
    lift the buyer's block; other buyers of the shop are not affected."""
    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, agent, conv = await open_pair(url)
    assert (await buyer.request({"type": "block", "conv": conv}))["type"] == "ok"
    refused = await agent.send_text(conv, "are you there?", "a1")
    assert refused["code"] == 4008 and refused["message"] == "the buyer has blocked this shop"
    assert refused["details"]["blocked_by"] == ["buyer"]
    await agent.request({"type": "unblock", "conv": conv})
    assert (await agent.send_text(conv, "are you there?", "a1"))["code"] == 4008
    other_buyer, _, other_conv = await open_pair(url, buyer_id="b2")
    assert (await other_buyer.send_text(other_conv, "hi", "m1"))["type"] == "ack"
    assert (await buyer.request({"type": "unblock", "conv": conv}))["type"] == "ok"
    assert (await agent.send_text(conv, "are you there?", "a1"))["type"] == "ack"


async def test_nobody_reports_or_blocks_what_is_not_theirs(server_factory: Callable[..., Any]) -> None:
    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, agent, conv = await open_pair(url)
    own = await buyer.send_text(conv, "hello", "m1")
    stranger = await Client.connect(url, token("b9"))
    other_agent = await Client.connect(url, token("x1", "agent", shop="shop2"))
    arbiter = await Client.connect(url, token("arb", "arbiter"))
    for client in (stranger, other_agent):
        for frame in ({"type": "report", "conv": conv, "reason": "x"}, {"type": "block", "conv": conv},
                      {"type": "unblock", "conv": conv}):
            reply = await client.request(frame)
            assert reply["type"] == "error" and reply["code"] == 3002, (frame, reply)
    reply = await arbiter.request({"type": "block", "conv": conv})
    assert reply["code"] == 3003
    reply = await buyer.request({"type": "report", "conv": conv, "seq": own["seq"], "reason": "mine"})
    assert reply["code"] == 3002 and "other party" in reply["message"]
    reply = await buyer.request({"type": "report", "conv": conv, "seq": 999, "reason": "missing"})
    assert reply["code"] == 3001
    reply = await buyer.request({"type": "report", "conv": "c_nope", "reason": "missing"})
    assert reply["code"] == 3001
    reply = await buyer.request({"type": "report", "conv": conv, "reason": ""})
    assert reply["code"] == 1004
    assert (await get(server, "/api/v1/reports"))[1]["reports"] == []
    assert (await get(server, "/api/v1/reports", secret="wrong"))[0] == 401
    assert (await get(server, "/api/v1/reports?limit=0"))[0] == 400
    assert (await agent.send_text(conv, "still talking", "a1"))["type"] == "ack"
