"""An agent shares another listing card (a ``product`` message) into a conversation, on every
deployment of ``url``: the buyer gets it, and it never claims the marketplace's signature."""

from __future__ import annotations

from .test_delivery import open_pair

TEAPOT = {"id": "l-2", "title": "Yixing clay teapot", "price": 36800, "currency": "CNY",
          "image": "https://img.example/teapot.jpg"}


async def test_an_agent_shares_a_listing_card_that_is_never_verified(url: str) -> None:
    buyer, agent, conv = await open_pair(url)
    claimed = {**TEAPOT, "verified": True, "signed_at": 1}  # what only the hub may say
    ack = await agent.request({"type": "send", "conv": conv, "cmid": "card-1",
                               "body": {"kind": "product", "listing": claimed}})
    assert ack["type"] == "ack"
    got = await buyer.next("msg", conv=conv, kind="product", seq=ack["seq"])
    assert got["role"] == "agent" and got["sender"] == "a1" and got["body"] == {"listing": TEAPOT}
    page = await buyer.request({"type": "history", "conv": conv})
    assert page["messages"][-1]["body"] == {"listing": TEAPOT}
