"""Presence across devices, the public shop endpoint, agent assignment and hand-over."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import msgpack

from chat.server import ChatServer

from .client import LISTING, Client
from .conftest import token
from .test_delivery import open_pair


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    return await asyncio.to_thread(fetch)


async def shop_status(port: int, shop: str) -> dict[str, Any]:
    status, body = await http_get(port, f"/presence/shop/{shop}")
    assert status == 200
    result: dict[str, Any] = json.loads(body)
    return result


async def test_shop_presence_endpoint_follows_agents(server: ChatServer, url: str) -> None:
    """The public endpoint says a shop is online while any agent is, and gives last_seen after."""
    assert (await shop_status(server.port, "shop1"))["status"] == "offline"
    a1 = await Client.connect(url, token("a1", "agent", shop="shop1"))
    a2 = await Client.connect(url, token("a2", "agent", shop="shop1"))
    assert (await shop_status(server.port, "shop1"))["status"] == "online"
    await a1.request({"type": "presence", "status": "away"})
    assert (await shop_status(server.port, "shop1"))["status"] == "online"
    await a2.request({"type": "presence", "status": "away"})
    assert (await shop_status(server.port, "shop1"))["status"] == "away"
    await a1.close()
    await a2.close()
    await asyncio.sleep(0.1)
    after = await shop_status(server.port, "shop1")
    assert after["status"] == "offline" and isinstance(after["last_seen"], int)


async def test_counterparts_are_told_when_presence_changes(url: str) -> None:
    """The buyer sees the shop go away/offline; the agent sees the buyer come and go, across devices."""
    buyer, agent, _conv = await open_pair(url)
    first = await buyer.next("presence", entity="s:shop1")
    assert first["status"] == "online"
    await agent.request({"type": "presence", "status": "away"})
    assert (await buyer.next("presence", entity="s:shop1"))["status"] == "away"
    await agent.request({"type": "presence", "status": "online"})
    assert (await buyer.next("presence", entity="s:shop1"))["status"] == "online"

    assert (await agent.next("presence", entity="u:b1"))["status"] == "online"
    phone = await Client.connect(url, token("b1"))
    await buyer.close()
    await agent.no_frame("presence", entity="u:b1", wait=0.3)  # still online on the phone
    await phone.close()
    gone = await agent.next("presence", entity="u:b1")
    assert gone["status"] == "offline" and gone["last_seen"] is not None


async def test_new_conversation_goes_to_the_least_loaded_online_agent(url: str) -> None:
    """Assignment picks the online agent with fewest open conversations and sticks to it."""
    a1 = await Client.connect(url, token("a1", "agent", shop="shop1"))
    a2 = await Client.connect(url, token("a2", "agent", shop="shop1"))
    for a in (a1, a2):
        await a.request({"type": "sync"})
    agents = []
    for i in range(4):
        buyer = await Client.connect(url, token(f"b{i}"))
        opened = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
        agents.append(opened["conversation"]["agent"])
    assert sorted(agents) == ["a1", "a1", "a2", "a2"]
    await a2.request({"type": "presence", "status": "away"})
    buyer = await Client.connect(url, token("b9"))
    opened = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
    assert opened["conversation"]["agent"] == "a1"
    # the same buyer, shop and listing: the same conversation and agent, whoever is online
    again = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
    assert again["conversation"]["id"] == opened["conversation"]["id"]
    assert again["conversation"]["agent"] == "a1"


async def test_live_delivery_goes_to_the_assigned_agent_only(url: str) -> None:
    """The assigned agent gets messages live; a colleague does not (but can read them)."""
    buyer, agent, conv = await open_pair(url)
    colleague = await Client.connect(url, token("a2", "agent", shop="shop1"))
    await colleague.request({"type": "sync"})
    await buyer.send_text(conv, "hello", "h1")
    assert (await agent.next("msg", conv=conv))["seq"] == 2
    await colleague.no_frame("msg", conv=conv)


async def test_hand_over_moves_live_delivery(url: str) -> None:
    """After a hand-over the new agent receives the conversation live, with a system note for all."""
    buyer, agent, conv = await open_pair(url)
    colleague = await Client.connect(url, token("a2", "agent", shop="shop1"))
    await colleague.request({"type": "sync"})
    unknown = await agent.request({"type": "assign", "conv": conv, "agent": "nobody"})
    assert unknown["code"] == 3001
    assert (await agent.request({"type": "assign", "conv": conv, "agent": "a2"}))["type"] == "ok"
    for client in (buyer, agent, colleague):
        note = await client.next("msg", conv=conv, kind="system")
        assert note["body"]["event"] == "assigned" and note["body"]["agent"] == "a2"
    await buyer.send_text(conv, "still there?", "s1")
    assert (await colleague.next("msg", conv=conv))["body"] == {"text": "still there?"}
    await agent.no_frame("msg", conv=conv)


async def test_unassigned_conversation_reaches_every_agent_of_the_shop(url: str) -> None:
    """With no agent known yet, the shop's first agents all see the conversation live."""
    buyer = await Client.connect(url, token("b1"))
    opened = await buyer.request({"type": "open", "shop": "newshop", "listing": LISTING})
    conv = opened["conversation"]["id"]
    assert opened["conversation"]["agent"] is None
    agents = [await Client.connect(url, token(f"n{i}", "agent", shop="newshop")) for i in range(2)]
    for a in agents:
        synced = await a.request({"type": "sync"})
        assert [c["id"] for c in synced["conversations"]] == [conv]
    await buyer.send_text(conv, "anyone?", "q")
    for a in agents:
        assert (await a.next("msg", conv=conv))["body"] == {"text": "anyone?"}
    # the first agent to answer takes it: from then on it is theirs alone, live
    await agents[1].send_text(conv, "I'm here", "ans")
    note = await buyer.next("msg", conv=conv, kind="system")
    assert note["body"]["event"] == "assigned" and note["body"]["agent"] == "n1"
    await buyer.send_text(conv, "great", "q2")
    assert (await agents[1].next("msg", conv=conv, kind="text"))["body"] == {"text": "great"}
    await agents[0].next("msg", conv=conv, kind="system")
    await agents[0].no_frame("msg", conv=conv, kind="text")


async def test_health_ready_and_metrics(server_factory: Any) -> None:
    """healthz and readyz answer JSON; metrics count connections, frames and delivery latency."""
    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    status, body = await http_get(server.port, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = await http_get(server.port, "/readyz")
    ready = json.loads(body)
    assert status == 200 and ready["ready"] is True and set(ready["checks"]) == {"store", "broker", "presence"}
    buyer, _agent, conv = await open_pair(url)
    await buyer.send_text(conv, "x", "x")
    await buyer.send_raw(b"\xc1")
    await buyer.next("error")
    for i in range(5):  # made-up frame types must not each become a metrics label
        await buyer.send_raw(msgpack.packb({"type": f"bogus{i}"}))
        await buyer.next("error")
    status, body = await http_get(server.port, "/metrics")
    text = body.decode()
    assert status == 200
    assert "chat_connections 2.0" in text
    assert 'chat_frames_in_total{type="send"} 1.0' in text
    assert 'chat_errors_total{code="1001"} 1.0' in text
    assert 'chat_frames_in_total{type="unknown"} 5.0' in text and "bogus" not in text
    assert "chat_delivery_seconds_bucket" in text
    status, _ = await http_get(server.port, "/nope")
    assert status == 404


async def test_readyz_reports_a_dead_store(server: ChatServer) -> None:
    """readyz answers 503 and names the backend when the store is down."""
    await server.hub.store.close()
    status, body = await http_get(server.port, "/readyz")
    assert status == 503 and json.loads(body)["checks"]["store"] is False
    await server.hub.store.start()


async def test_many_clients_connect_at_once_on_redis(server_factory: Any, redis_prefix: str) -> None:
    """Hundreds of simultaneous logins on a Redis-backed node all get in (no connection-pool errors)."""
    from .conftest import REDIS_URL

    server = await server_factory(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    url = f"ws://127.0.0.1:{server.port}/"
    clients = []
    for start in range(0, 300, 150):  # two waves of 150 simultaneous logins
        clients += await asyncio.gather(*(Client.connect(url, token(f"crowd{i}")) for i in range(start, start + 150)))
    assert all(c.welcome["type"] == "welcome" for c in clients)
    synced = await asyncio.gather(*(c.request({"type": "sync"}) for c in clients))
    assert all(s["type"] == "synced" for s in synced)
    for c in clients:
        await c.close()


async def test_response_figures_for_agents_and_the_public(server_factory: Any) -> None:
    """Agents get the shop's response rate and first-response times; the listing page gets a typical time."""
    import time

    from chat.clock import ManualClock

    clock = ManualClock(int(time.time() * 1000))
    server = await server_factory(clock=clock)
    url = f"ws://127.0.0.1:{server.port}/"
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    assert (await shop_status(server.port, "shop1"))["typical_response_ms"] is None
    for i in range(4):
        buyer = await Client.connect(url, token(f"q{i}"))
        conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
        await buyer.send_text(conv, "还有货吗?", f"q{i}")
        await agent.request({"type": "send", "conv": conv, "cmid": f"auto{i}",
                             "body": {"kind": "text", "text": "I'm away, back soon", "auto": True}})
        if i < 3:
            await agent.send_text(conv, "有的", f"r{i}")
    stats = await agent.request({"type": "stats", "days": 7})
    assert stats["asked"] == 4 and stats["answered"] == 3 and stats["response_rate"] == 0.75
    assert 0 <= stats["first_response_p50_ms"] <= stats["first_response_p90_ms"] < 10_000
    assert (await shop_status(server.port, "shop1"))["typical_response_ms"] is None  # cached for a minute
    clock.advance(61_000)
    public = await shop_status(server.port, "shop1")
    assert public["typical_response_ms"] is not None and public["typical_response_ms"] >= 0
    buyer = await Client.connect(url, token("q9"))
    assert (await buyer.request({"type": "stats"}))["code"] == 3003


async def test_auto_reply_answers_for_an_away_or_offline_agent_once(server_factory: Any) -> None:
    """While the assigned agent is away (or gone), the hub answers once per period; figures ignore it."""
    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    missing = await agent.request({"type": "auto_reply", "active": True})
    assert missing["code"] == 1004
    text = "您好, 我暂时离开, 稍后回复 (away, back soon)"
    assert (await agent.request({"type": "auto_reply", "active": True, "text": text}))["type"] == "ok"
    buyer = await Client.connect(url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await buyer.send_text(conv, "在吗?", "q1")
    await buyer.no_frame("msg", conv=conv, kind="text")  # the agent is online: no auto-reply
    await agent.request({"type": "presence", "status": "away"})
    await buyer.send_text(conv, "有人吗?", "q2")
    auto = await buyer.next("msg", conv=conv, kind="text")
    assert auto["sender"] == "a1" and auto["body"] == {"text": text, "auto": True}
    assert (await agent.next("msg", conv=conv, sender="a1"))["body"]["auto"] is True
    await buyer.send_text(conv, "hello?", "q3")
    await buyer.no_frame("msg", conv=conv, kind="text")  # once per period
    stats = await agent.request({"type": "stats"})
    assert stats["asked"] == 1 and stats["answered"] == 0  # an away message is not an answer
    await agent.request({"type": "auto_reply", "active": False})
    await agent.close()
    other = await Client.connect(url, token("b2"))
    conv2 = (await other.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await other.send_text(conv2, "anyone?", "q1")
    await other.no_frame("msg", conv=conv2, kind="text")  # switched off: silence
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "auto_reply", "active": True})  # the stored text comes back
    await agent.close()
    await other.send_text(conv2, "still nobody?", "q2")
    back = await other.next("msg", conv=conv2, kind="text")  # offline counts as away
    assert back["body"] == {"text": text, "auto": True}


async def test_a_resume_with_nothing_new_still_follows_the_counterparts(url: str) -> None:
    """A fast-path sync that lists no conversation (nothing moved) must still send the
    counterparts' presence and follow its changes, for every conversation the client
    names in its cursors, and only for those that are its own."""
    buyer, agent, conv = await open_pair(url)
    first = await buyer.request({"type": "sync", "cursors": {conv: 1}})
    await buyer.close()
    back = await Client.connect(url, token("b1"))
    synced = await back.request({"type": "sync", "cursors": {conv: 1}, "inbox": first["inbox"]})
    assert synced["full"] is False and synced["conversations"] == []
    assert (await back.next("presence", entity="s:shop1"))["status"] == "online"
    await agent.request({"type": "presence", "status": "away"})
    assert (await back.next("presence", entity="s:shop1"))["status"] == "away"
    # Naming someone else's conversation follows nothing.
    stranger = await Client.connect(url, token("b9"))
    mine = await stranger.request({"type": "sync", "cursors": {conv: 1}, "inbox": first["inbox"]})
    assert mine["conversations"] == []
    await stranger.no_frame("presence", wait=0.3)
