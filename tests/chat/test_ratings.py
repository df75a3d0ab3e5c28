"""Ratings through the hub: after a released trade each side rates the other from the
conversation, and the shop's credit shows on the public presence endpoint and the server API."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

from chat.server import ChatServer

from .test_money import PIN, api, ready_pair


def public_presence(server: ChatServer, shop: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/presence/shop/{shop}", timeout=5) as resp:
        body: dict[str, Any] = json.loads(resp.read())
        return body


async def test_both_sides_rate_a_released_trade_and_the_credit_shows(money: tuple[ChatServer, str]) -> None:
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    order = (await agent.request({"type": "offer", "conv": conv, "price": 3000, "key": "offer-rate-1"}))["view"]
    early = await buyer.request({"type": "rate", "conv": conv, "order": order["order_id"], "score": "good"})
    assert early["code"] == 6021  # not released yet
    await buyer.request({"type": "pay", "conv": conv, "order": order["order_id"], "pin": PIN, "key": "pay-rate-01"})
    await buyer.request({"type": "confirm", "conv": conv, "order": order["order_id"], "key": "confirm-rate-1"})
    rated = await buyer.request({"type": "rate", "conv": conv, "order": order["order_id"], "score": "bad",
                                 "comment": "leaves were broken", "item": 2, "service": 4, "shipping": 3})
    assert rated["type"] == "payment" and rated["entity"] == "rating" and rated["view"]["score"] == "bad"
    amended = await buyer.request({"type": "rate", "conv": conv, "order": order["order_id"], "score": "good",
                                   "comment": "the shop sent new ones"})
    assert amended["view"]["amended"] is True
    again = await buyer.request({"type": "rate", "conv": conv, "order": order["order_id"], "score": "bad"})
    assert again["code"] == 6021  # amended once already
    shop_side = await agent.request({"type": "rate", "conv": conv, "order": order["order_id"], "score": "good"})
    assert shop_side["view"]["side"] == "shop"
    not_yours = await agent.request({"type": "rate", "conv": conv, "order": order["order_id"], "score": "good",
                                     "item": 5})
    assert not_yours["code"] == 6000  # item/service/shipping are the buyer's to give

    presence = await asyncio.to_thread(public_presence, server, "shop1")
    assert presence["credit"]["score"] == 1 and presence["credit"]["ratings"] == 1
    assert presence["credit"]["positive_rate_bps"] == 10_000
    status, buyer_credit = await asyncio.to_thread(api, server, "GET", "/api/v1/credit/user:b1")
    assert status == 200 and buyer_credit["score"] == 1
    status, both = await asyncio.to_thread(api, server, "GET", f"/api/v1/orders/{order['order_id']}/ratings")
    assert status == 200 and [r["side"] for r in both["ratings"]] == ["buyer", "shop"]
    assert (await asyncio.to_thread(api, server, "GET", "/api/v1/credit/nobody"))[0] == 400
