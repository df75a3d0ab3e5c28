"""``credit``: a shop's agents read the credit and trade record of the buyer of a conversation,
nobody else does, and a hub without payments says so."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chat.server import ChatServer

from .client import LISTING, Client
from .conftest import token
from .test_delivery import open_pair
from .test_money import PIN, ready_pair


async def _released(buyer: Client, agent: Client, conv: str, key: str, *, rate: str | None = None) -> str:
    order = (await agent.request({"type": "offer", "conv": conv, "price": 1000, "key": f"offer-{key}"}))["view"]
    oid = order["order_id"]
    await buyer.request({"type": "pay", "conv": conv, "order": oid, "pin": PIN, "key": f"pay-{key}"})
    done = await buyer.request({"type": "confirm", "conv": conv, "order": oid, "key": f"confirm-{key}"})
    assert done["view"]["state"] == "RELEASED"
    if rate:
        assert (await agent.request({"type": "rate", "conv": conv, "order": oid, "score": rate}))["type"] == "payment"
    return str(oid)


async def test_an_agent_reads_the_buyers_credit_trades_and_disputes(money: tuple[ChatServer, str]) -> None:
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    newcomer = await Client.connect(url, token("b2"))
    other_conv = (await newcomer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    fresh = await agent.request({"type": "credit", "conv": other_conv})
    assert {k: v for k, v in fresh.items() if k != "re"} == {
        "type": "credit", "conv": other_conv, "subject": "user:b2", "score": 0, "level": None,
        "positive_rate_bps": None, "ratings": 0, "trades": 0, "disputes": 0, "disputes_lost": 0}

    await _released(buyer, agent, conv, "credit-0001", rate="good")
    disputed = (await agent.request({"type": "offer", "conv": conv, "price": 500, "key": "offer-credit-0002"}))["view"]
    await buyer.request({"type": "pay", "conv": conv, "order": disputed["order_id"], "pin": PIN, "key": "pay-credit-2"})
    await agent.request({"type": "ship", "conv": conv, "order": disputed["order_id"], "key": "ship-credit-2"})
    await buyer.request({"type": "refund", "conv": conv, "order": disputed["order_id"], "amount": 500,
                         "reason": "broken", "key": "refund-credit-2"})
    await agent.request({"type": "refund_answer", "conv": conv, "order": disputed["order_id"], "accept": False,
                         "key": "answer-credit-2"})
    went = await buyer.request({"type": "dispute", "conv": conv, "order": disputed["order_id"], "reason": "unfair",
                                "key": "dispute-credit-2"})
    assert went["view"]["state"] == "DISPUTED", went
    arbiter = await Client.connect(url, token("arb1", "arbiter"))
    decided = await arbiter.request({"type": "decide", "conv": conv, "order": disputed["order_id"],
                                     "outcome": "release", "key": "decide-credit-2"})
    assert decided["view"]["state"] == "RESOLVED", decided

    # any agent of the shop may read it, not only the one assigned
    other = await Client.connect(url, token("a2", "agent", shop="shop1"))
    later = await other.request({"type": "credit", "conv": conv})
    assert later["trades"] == 1 and later["disputes"] == 1 and later["ratings"] == 1 and later["score"] == 1
    assert later["positive_rate_bps"] == 10_000 and later["level"] is None  # a level from a score of 4
    assert later["disputes_lost"] == 1  # the arbiter released the money to the shop


async def test_only_the_shops_agents_may_read_a_buyers_credit(money: tuple[ChatServer, str]) -> None:
    _, url = money
    buyer, _, conv = await open_pair(url)
    assert (await buyer.request({"type": "credit", "conv": conv}))["code"] == 3003
    stranger = await Client.connect(url, token("x1", "agent", shop="shop2"))
    assert (await stranger.request({"type": "credit", "conv": conv}))["code"] in (3001, 3002)
    arbiter = await Client.connect(url, token("judge", "arbiter"))
    assert (await arbiter.request({"type": "credit", "conv": conv}))["code"] == 3003
    assert (await stranger.request({"type": "credit", "conv": "c_missing"}))["code"] == 3001


async def test_without_payments_credit_is_unavailable(server_factory: Callable[..., Any]) -> None:
    server = await server_factory(payments="off")
    _, agent, conv = await open_pair(f"ws://127.0.0.1:{server.port}/")
    assert (await agent.request({"type": "credit", "conv": conv}))["code"] == 5002
