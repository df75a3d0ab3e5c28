"""Agents' display names and avatars end to end, on every deployment of ``url``: recorded from
the agent's token when it connects, answered by ``agents`` to the shop's buyers and agents,
and to nobody else."""

from __future__ import annotations

from chat.auth import mint

from .client import Client
from .conftest import SECRET, token
from .test_delivery import open_pair


async def test_names_reach_the_shops_buyers_and_colleagues_and_nobody_else(url: str) -> None:
    named = await Client.connect(url, mint(SECRET, "a2", "agent", shop="shop1", name=" 丽丽 ",
                                           avatar="https://cdn.example.com/a2.png"))
    await named.request({"type": "sync"})
    odd = await Client.connect(url, mint(SECRET, "a3", "agent", shop="shop1", name="x" * 65,
                                         avatar="javascript:alert(1)//https://x"))
    await odd.request({"type": "sync"})
    buyer, a1, conv = await open_pair(url)
    expected = {"a2": {"name": "丽丽", "avatar": "https://cdn.example.com/a2.png"}}

    seen = await buyer.request({"type": "agents", "shop": "shop1"})
    assert seen["type"] == "agents" and seen["shop"] == "shop1" and seen["agents"] == expected
    assert (await a1.request({"type": "agents", "shop": "shop1"}))["agents"] == expected

    # a buyer who never talked to the shop, and another shop's agent, learn nothing
    stranger = await Client.connect(url, token("b9"))
    assert (await stranger.request({"type": "agents", "shop": "shop1"}))["code"] == 3002
    rival = await Client.connect(url, token("x1", "agent", shop="shop2"))
    assert (await rival.request({"type": "agents", "shop": "shop1"}))["code"] == 3002
    assert (await buyer.request({"type": "agents", "shop": "shop2"}))["code"] == 3002

    # a hand-over note names both agents by id, which the map turns into names
    assert (await a1.request({"type": "assign", "conv": conv, "agent": "a2"}))["type"] == "ok"
    note = await buyer.next("msg", conv=conv, kind="system")
    assert (note["body"]["event"], note["body"]["agent"], note["body"]["by"]) == ("assigned", "a2", "a1")
