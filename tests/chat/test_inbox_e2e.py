"""The shop's inbox bookkeeping end to end, on every deployment of ``url`` (one node, Redis,
two and three nodes): notes and tags every agent of the shop sees and edits (a stale save is
refused, not lost), closing and reopening conversations, and nothing of it reaching the buyer
or another shop."""

from __future__ import annotations

from .client import LISTING, Client
from .conftest import token
from .test_delivery import open_pair


async def _second_agent(url: str, agent_id: str = "a2", shop: str = "shop1") -> Client:
    agent = await Client.connect(url, token(agent_id, "agent", shop=shop))
    await agent.request({"type": "sync"})
    return agent


async def test_agents_share_notes_and_tags_and_a_stale_save_is_refused(url: str) -> None:
    buyer, a1, conv = await open_pair(url)
    a2 = await _second_agent(url)
    empty = await a1.request({"type": "buyer_profile", "conv": conv})
    assert (empty["note"], empty["tags"], empty["version"], empty["updated_by"]) == ("", [], 0, None)
    assert empty["buyer"] == "b1" and empty["shop"] == "shop1"

    saved = await a1.request({"type": "edit_buyer_profile", "conv": conv, "version": 0,
                              "note": " 喜欢绿茶，寄顺丰 ", "tags": ["VIP", " VIP", "回头客"]})
    assert saved["type"] == "buyer_profile" and saved["version"] == 1 and saved["updated_by"] == "a1"
    assert saved["note"] == "喜欢绿茶，寄顺丰" and saved["tags"] == ["VIP", "回头客"]
    pushed = await a2.next("buyer_profile", buyer="b1")
    assert pushed["re"] is None and pushed["version"] == 1 and pushed["note"] == saved["note"]

    # a2 had read version 0: its save is refused with what is there now
    stale = await a2.request({"type": "edit_buyer_profile", "conv": conv, "version": 0, "note": "mine", "tags": []})
    assert stale["type"] == "error" and stale["code"] == 4010
    assert stale["details"]["version"] == 1 and stale["details"]["updated_by"] == "a1"
    merged = await a2.request({"type": "edit_buyer_profile", "conv": conv, "version": 1,
                               "note": saved["note"] + "\n只要新茶", "tags": ["VIP"]})
    assert merged["version"] == 2 and merged["updated_by"] == "a2"
    assert (await a1.next("buyer_profile", buyer="b1", version=2))["note"].endswith("只要新茶")
    assert (await a1.request({"type": "buyer_profile", "conv": conv}))["version"] == 2

    # one profile per buyer and shop: another conversation of the same buyer shows it too
    other = (await buyer.request({"type": "open", "shop": "shop1", "listing": {**LISTING, "id": "l2"}}))
    assert (await a1.request({"type": "buyer_profile", "conv": other["conversation"]["id"]}))["version"] == 2

    # private to the shop: the buyer gets nothing and may not ask; another shop's agent neither
    await buyer.no_frame("buyer_profile")
    assert (await buyer.request({"type": "buyer_profile", "conv": conv}))["code"] == 3003
    assert (await buyer.request({"type": "edit_buyer_profile", "conv": conv, "version": 2, "note": "x",
                                 "tags": []}))["code"] == 3003
    stranger = await _second_agent(url, "x1", "shop2")
    assert (await stranger.request({"type": "buyer_profile", "conv": conv}))["code"] == 3002
    await stranger.no_frame("buyer_profile")
    too_long = await a1.request({"type": "edit_buyer_profile", "conv": conv, "version": 2, "note": "",
                                 "tags": ["a, b"]})
    assert too_long["code"] == 1004


async def test_a_closed_conversation_leaves_the_inbox_until_the_buyer_writes_or_an_agent_reopens(url: str) -> None:
    buyer, a1, conv = await open_pair(url)
    a2 = await _second_agent(url)
    assert (await a1.request({"type": "closed", "convs": [conv]}))["closed"] == []
    assert (await a1.request({"type": "close", "conv": conv}))["type"] == "ok"
    state = await a2.next("conv_state", conv=conv)
    assert state["closed"] is True and state["by"] == "a1" and state["seq"] == 1
    listed = (await a2.request({"type": "closed", "convs": [conv, "c_unknown"]}))["closed"]
    assert [(c["conv"], c["by"], c["seq"]) for c in listed] == [(conv, "a1", 1)]
    # the buyer sees nothing change: no message, no state
    await buyer.no_frame("msg")
    await buyer.no_frame("conv_state")

    # an agent's own follow-up keeps it closed; the buyer writing reopens it by itself
    await a1.send_text(conv, "已发货", "a-ship")
    assert len((await a1.request({"type": "closed", "convs": [conv]}))["closed"]) == 1
    await buyer.send_text(conv, "还有一个问题", "b-more")
    assert (await a2.request({"type": "closed", "convs": [conv]}))["closed"] == []

    # closed again, then an agent reopens it: every agent of the shop is told
    await a2.request({"type": "close", "conv": conv})
    assert (await a1.next("conv_state", conv=conv, closed=True, by="a2"))["seq"] == 3
    assert (await a1.request({"type": "reopen", "conv": conv}))["type"] == "ok"
    reopened = await a2.next("conv_state", conv=conv, closed=False)
    assert reopened["by"] == "a1"
    assert (await a2.request({"type": "closed", "convs": [conv]}))["closed"] == []
    assert (await a1.request({"type": "reopen", "conv": conv}))["type"] == "ok"  # open already: nothing pushed
    await a2.no_frame("conv_state", conv=conv)


async def test_only_the_shops_agents_close_and_see_closed_conversations(url: str) -> None:
    buyer, a1, conv = await open_pair(url)
    for frame in ({"type": "close", "conv": conv}, {"type": "reopen", "conv": conv},
                  {"type": "closed", "convs": [conv]}):
        assert (await buyer.request(frame))["code"] == 3003
    stranger = await _second_agent(url, "x1", "shop2")
    assert (await stranger.request({"type": "close", "conv": conv}))["code"] == 3002
    assert (await stranger.request({"type": "close", "conv": "c_nothing_here"}))["code"] == 3001
    await a1.request({"type": "close", "conv": conv})
    # another shop learns nothing of this shop's closed conversations
    assert (await stranger.request({"type": "closed", "convs": [conv]}))["closed"] == []
    await stranger.no_frame("conv_state")
    arbiter = await Client.connect(url, token("judge", "arbiter"))
    assert (await arbiter.request({"type": "close", "conv": conv}))["code"] == 3003
