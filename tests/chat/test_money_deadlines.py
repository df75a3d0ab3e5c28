"""Nothing waits forever, seen from the chat: offers can be withdrawn and lapse, an
unanswered refund request is granted, and both sides watch the card change."""

from __future__ import annotations

import time
from typing import Any

from chat.clock import ManualClock
from chat.server import ChatServer

from .client import Client
from .conftest import token
from .test_money import PIN, card_states, ready_pair

DAY = 24 * 3600 * 1000


async def test_either_side_cancels_an_unpaid_offer(money: tuple[ChatServer, str]) -> None:
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    first = (await agent.request({"type": "offer", "conv": conv, "price": 500, "key": "offer-c-01"}))["view"]
    gone = await buyer.request({"type": "cancel", "conv": conv, "order": first["order_id"], "key": "cancel-b-1"})
    assert gone["view"]["state"] == "CANCELLED"
    second = (await agent.request({"type": "offer", "conv": conv, "price": 600, "key": "offer-c-02"}))["view"]
    assert (await agent.request({"type": "cancel", "conv": conv, "order": second["order_id"],
                                 "key": "cancel-a-1"}))["view"]["state"] == "CANCELLED"
    late = await buyer.request({"type": "pay", "conv": conv, "order": second["order_id"], "pin": PIN,
                                "key": "pay-cancel"})
    assert late["code"] == 6021
    assert await card_states(buyer, conv, 4) == [("card", "OFFERED"), ("card_update", "CANCELLED"),
                                                 ("card", "OFFERED"), ("card_update", "CANCELLED")]
    arbiter = await Client.connect(url, token("judge", "arbiter"))
    assert (await arbiter.request({"type": "cancel", "conv": conv, "order": first["order_id"],
                                   "key": "cancel-x-1"}))["code"] == 3003


async def test_lapsed_offers_and_unanswered_refunds_move_by_themselves(server_factory: Any) -> None:
    clock = ManualClock(int(time.time() * 1000))
    server = await server_factory(clock=clock)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, agent, conv = await ready_pair(server, url)
    unpaid = (await agent.request({"type": "offer", "conv": conv, "price": 300, "key": "offer-d-01"}))["view"]
    assert unpaid["deadline_at"] == clock.now_ms() + 3 * DAY
    order = (await agent.request({"type": "offer", "conv": conv, "price": 700, "key": "offer-d-02"}))["view"]
    await buyer.request({"type": "pay", "conv": conv, "order": order["order_id"], "pin": PIN, "key": "pay-d-0001"})
    await agent.request({"type": "ship", "conv": conv, "order": order["order_id"], "tracking": "t", "key": "ship-d-01"})
    asked = await buyer.request({"type": "refund", "conv": conv, "order": order["order_id"], "amount": 200,
                                 "reason": "one cup broken", "key": "refund-d-1"})
    assert asked["view"]["deadline_at"] == clock.now_ms() + 2 * DAY
    clock.advance(3 * DAY)
    states: dict[str, str] = {}
    while len(states) < 2 or set(states.values()) != {"CANCELLED", "REFUNDED"}:
        m = await agent.next("msg", conv=conv, kind="card_update", timeout=5)
        states[m["body"]["id"]] = m["body"]["state"]
        if m["body"]["state"] == "REFUNDED":
            assert m["body"]["action"] == "refund_granted" and m["body"]["view"]["settled_by"] == "timer"
    assert states == {unpaid["order_id"]: "CANCELLED", order["order_id"]: "REFUNDED"}
    assert (await buyer.request({"type": "wallet"}))["balances"]["user:b1"] == {"CNY": 100_000 - 700 + 200}
    assert (await agent.request({"type": "wallet"}))["balances"]["shop:shop1"] == {"CNY": 500}
