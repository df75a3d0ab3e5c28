"""A buyer and a shop agent talk about a listing, end to end over real sockets."""

from __future__ import annotations

from .client import LISTING, Client
from .conftest import token


async def test_buyer_opens_conversation_and_agent_replies(url: str) -> None:
    """Open posts the product card; messages are acked with seqs and delivered live both ways."""
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    synced = await agent.request({"type": "sync"})
    assert synced["conversations"] == []
    buyer = await Client.connect(url, token("b1"))
    opened = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
    conv = opened["conversation"]
    assert opened["created"] is True
    assert conv["agent"] == "a1"
    assert conv["listing"] == {**LISTING, "verified": False}  # unsigned: shown, not payable at its price
    assert conv["last_seq"] == 1
    card = await agent.next("msg", conv=conv["id"])
    assert card["kind"] == "product" and card["seq"] == 1 and card["body"]["listing"]["title"] == LISTING["title"]

    ack = await buyer.send_text(conv["id"], "还有货吗?", "m1")
    assert ack["type"] == "ack" and ack["seq"] == 2 and ack["duplicate"] is False
    got = await agent.next("msg", conv=conv["id"])
    assert got["seq"] == 2 and got["body"] == {"text": "还有货吗?"} and got["sender"] == "b1"

    ack = await agent.send_text(conv["id"], "有的, 今天发货", "r1")
    assert ack["seq"] == 3
    got = await buyer.next("msg", conv=conv["id"])
    assert got["seq"] == 3 and got["role"] == "agent"

    again = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
    assert again["created"] is False and again["conversation"]["id"] == conv["id"]
    await buyer.close()
    await agent.close()
