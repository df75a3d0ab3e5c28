"""Conversation search end to end, on every deployment of ``url``: agents find their shop's
conversations by text, buyer and listing, a buyer finds their own, nobody finds another
shop's, and a recalled message is not found by its text."""

from __future__ import annotations

from .client import Client
from .conftest import token
from .test_delivery import open_pair


async def test_agents_and_buyers_find_their_own_conversations_only(url: str) -> None:
    buyer, agent, conv = await open_pair(url)
    await buyer.send_text(conv, "收到的茶叶包装破损了", "b1")
    await agent.send_text(conv, "请拍照给我们看看", "a1")

    found = await agent.request({"type": "search", "q": "破损"})
    assert found["type"] == "search" and found["q"] == "破损" and found["more"] is False
    [hit] = found["results"]
    assert hit["conversation"]["id"] == conv and hit["fields"] == ["text"]
    assert hit["seqs"] == [2] and hit["snippet"] == "收到的茶叶包装破损了"
    assert [h["fields"] for h in (await agent.request({"type": "search", "q": "B1"}))["results"]] == [["buyer"]]
    assert [h["conversation"]["id"] for h in (await buyer.request({"type": "search", "q": "拍照"}))["results"]] == [
        conv]

    stranger = await Client.connect(url, token("x1", "agent", shop="shop2"))
    assert (await stranger.request({"type": "search", "q": "破损"}))["results"] == []
    arbiter = await Client.connect(url, token("arb", "arbiter"))
    assert (await arbiter.request({"type": "search", "q": "破损"}))["code"] == 3003
    assert (await agent.request({"type": "search", "q": "   "}))["code"] == 1004

    await buyer.request({"type": "recall", "conv": conv, "seq": 2})
    assert (await agent.request({"type": "search", "q": "破损"}))["results"] == []
