"""After-sale refunds end to end: a buyer's claim on a released order, the shop's answer, the
deposit the marketplace funds through the server API, the arbiter for a claim the shop's
money cannot pay, and the cards both sides watch change."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from chat.clock import ManualClock
from chat.server import ChatServer
from payments import check_invariants

from .client import Client
from .conftest import token
from .test_money import PIN, api, card_states, fund, ready_pair

DAY = 86_400_000


async def released_order(server: ChatServer, url: str, price: int = 10_000) -> tuple[Client, Client, str, str]:
    buyer, agent, conv = await ready_pair(server, url)
    order = (await agent.request({"type": "offer", "conv": conv, "price": price, "key": "offer-as-1"}))["view"]
    order_id = order["order_id"]
    await buyer.request({"type": "pay", "conv": conv, "order": order_id, "pin": PIN, "key": "pay-as-001"})
    done = await buyer.request({"type": "confirm", "conv": conv, "order": order_id, "key": "confirm-as-1"})
    assert done["view"]["state"] == "RELEASED" and done["view"]["deadline_at"] is not None
    return buyer, agent, conv, order_id


async def test_a_claim_paid_by_the_shop_and_its_deposit_updates_both_cards(money: tuple[ChatServer, str]) -> None:
    server, url = money
    buyer, agent, conv, order = await released_order(server, url)
    status, _ = await asyncio.to_thread(api, server, "POST", "/api/v1/withdrawals",
                                        {"owner": "shop:shop1", "amount": 9_000, "currency": "CNY", "key": "out-1"})
    assert status == 201
    await fund(server, "deposit:shop1", 5_000, "fund-deposit-1")
    status, balance = await asyncio.to_thread(api, server, "GET", "/api/v1/balances/deposit:shop1")
    assert status == 200 and balance["balances"] == {"CNY": 5_000}, balance

    claim = {"type": "after_sale", "conv": conv, "order": order, "amount": 3_000,
             "reason": "the kettle stopped heating", "key": "claim-as-1"}
    assert (await agent.request({**claim, "key": "claim-as-x"}))["code"] == 3003
    asked = await buyer.request(claim)
    assert asked["view"]["state"] == "AFTER_SALE_REQUESTED" and asked["view"]["after_sale_amount"] == 3_000
    assert (await buyer.request(claim))["view"] == asked["view"]  # a resend is the first answer
    paid = await agent.request({"type": "after_sale_answer", "conv": conv, "order": order, "accept": True,
                                "key": "answer-as-1"})
    view = paid["view"]
    assert (view["state"], view["after_sale_refund"], view["after_sale_from_deposit"]) == (
        "AFTER_SALE_REFUNDED", 3_000, 2_000)
    for side in (buyer, agent):
        states = [s for _, s in await card_states(side, conv, 5)]
        assert states[-2:] == ["AFTER_SALE_REQUESTED", "AFTER_SALE_REFUNDED"]
    assert (await buyer.request({"type": "wallet"}))["balances"]["user:b1"] == {"CNY": 93_000}
    assert (await agent.request({"type": "wallet"}))["balances"]["shop:shop1"] == {"CNY": 0}
    again = await buyer.request({**claim, "key": "claim-as-2"})
    assert again["code"] == 6021
    assert server.money is not None
    check_invariants(server.money.service.store)


async def test_a_claim_the_shop_cannot_pay_goes_to_the_arbiter(server_factory: Any) -> None:
    """Unanswered, the claim is granted by the timer; the shop's money falls short, so it goes
    to the arbiter, who is refused (6011) until the marketplace tops up the deposit."""
    clock = ManualClock(int(time.time() * 1000))
    server = await server_factory(clock=clock, timer_interval=0.05)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, _agent, conv, order = await released_order(server, url)
    status, _ = await asyncio.to_thread(api, server, "POST", "/api/v1/withdrawals",
                                        {"owner": "shop:shop1", "amount": 10_000, "currency": "CNY", "key": "out-2"})
    assert status == 201
    await buyer.request({"type": "after_sale", "conv": conv, "order": order, "amount": 4_000,
                         "reason": "never worked", "key": "claim-as-3"})
    clock.advance(2 * DAY)  # the parties' tokens expire; the ledger's timer runs on
    assert server.money is not None
    service = server.money.service
    for _ in range(100):
        if (await asyncio.to_thread(service.get_order, order)).state == "AFTER_SALE_DISPUTED":
            break
        await asyncio.sleep(0.05)
    assert (await asyncio.to_thread(service.get_order, order)).state == "AFTER_SALE_DISPUTED"
    arbiter = await Client.connect(url, token("judge", "arbiter", ttl=5 * 86_400))
    listed = await arbiter.request({"type": "disputes"})
    assert [d["order"] for d in listed["disputes"]] == [order]
    decide = {"type": "decide", "conv": conv, "order": order, "outcome": "refund", "key": "decide-as-1"}
    short = await arbiter.request(decide)
    assert short["code"] == 6011 and short["details"]["covered"] == 0
    await fund(server, "deposit:shop1", 4_000, "fund-deposit-2")
    decided = await arbiter.request(decide)
    assert decided["view"]["state"] == "AFTER_SALE_RESOLVED" and decided["view"]["after_sale_from_deposit"] == 4_000
    assert await asyncio.to_thread(service.balances, "user:b1") == {"CNY": 94_000}
    check_invariants(service.store)
