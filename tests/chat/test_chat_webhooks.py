"""Chat events as webhooks, end to end: a real hub and a real HTTP receiver that checks
signatures. A conversation opened, a message to a party who is not online, a flagged or
refused message and a report each reach the marketplace once, survive a restart of the
hub before they were sent, and cost nothing while webhooks are off."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from chat.money import open_service
from chat.routing import user_entity
from chat.server import ChatServer, build
from chat.store.chat_events import NewEvent
from chat.store.memory import MemoryStore
from chat.store.sqlite import SQLiteStore
from chat.webhooks import move_chat_events
from payments.webhooks import WebhookOutbox

from . import test_webhooks
from .client import Client
from .conftest import PG_URL, REDIS_URL, make_config, token
from .test_delivery import LISTING, open_pair
from .test_webhooks import NEW_SECRET, Receiver, wait_for

receiver = test_webhooks.receiver  # the fixture: a real HTTP receiver that checks signatures

CHAT_TYPES = {"conversation.opened", "message.to_offline", "message.flagged", "message.blocked", "report.created"}


def chat_events(r: Receiver, kind: str | None = None) -> list[dict[str, Any]]:
    return [body for _, body in r.got if body["type"] in CHAT_TYPES and (kind is None or body["type"] == kind)]


async def hooked(server_factory: Any, r: Receiver, **more: Any) -> str:
    server = await server_factory(webhook_url=r.url, webhook_secret=NEW_SECRET, webhook_secret_previous=r.secret,
                                  **more)
    return f"ws://127.0.0.1:{server.port}/"


async def gone(server: ChatServer, user: str) -> None:
    """Until the hub has seen ``user``'s last connection close."""
    entity = user_entity(user)
    for _ in range(200):
        if (await server.hub.presence.get([entity], server.hub.clock.now_ms()))[entity].status == "offline":
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{user} still online")


async def test_opening_and_messages_to_an_offline_party(server_factory: Any, receiver: Receiver) -> None:
    """One ``conversation.opened`` per conversation; ``message.to_offline`` for each message
    while the party it is for has no connection (with a preview the marketplace can push),
    none while it is online, none for a resend."""
    server = await server_factory(webhook_url=receiver.url, webhook_secret=receiver.secret)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, agent, conv = await open_pair(url)
    await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})  # the same one again
    await wait_for(lambda: len(chat_events(receiver, "conversation.opened")) == 1)
    opened = chat_events(receiver, "conversation.opened")[0]
    assert opened["data"]["conversation_id"] == conv and opened["data"]["buyer"] == "b1"
    assert opened["data"]["shop"] == "shop1" and opened["data"]["listing"]["id"] == LISTING["id"]

    await buyer.send_text(conv, "is it in stock?", "b-1")  # the agent is online
    await agent.close()
    await gone(server, "a1")
    sent = await buyer.send_text(conv, "hello? " + "x" * 300, "b-2")
    again = await buyer.send_text(conv, "hello? " + "x" * 300, "b-2")
    assert again["duplicate"]
    await wait_for(lambda: len(chat_events(receiver, "message.to_offline")) >= 1)
    agent2 = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await agent2.request({"type": "sync"})
    await buyer.close()
    await gone(server, "b1")
    reply = await agent2.send_text(conv, "yes, in stock", "a-1")
    await wait_for(lambda: len(chat_events(receiver, "message.to_offline")) >= 2)
    await asyncio.sleep(0.3)
    offline = chat_events(receiver, "message.to_offline")
    assert len(offline) == 2, offline
    to_shop, to_buyer = offline
    assert to_shop["data"]["seq"] == sent["seq"] and to_shop["data"]["to"] == "shop"
    assert to_shop["data"]["preview"] == ("hello? " + "x" * 300)[:140] and to_shop["data"]["sender"] == "b1"
    assert to_buyer["data"]["seq"] == reply["seq"] and to_buyer["data"]["to"] == "buyer"
    assert to_buyer["data"]["status"] == "offline" and to_buyer["data"]["buyer"] == "b1"
    assert receiver.bad_signatures == 0
    assert all(event_id == body["id"] and event_id.startswith("evt_chat_") for event_id, body in receiver.got
               if body["type"] in CHAT_TYPES)


async def test_flagged_blocked_and_reported_messages(server_factory: Any, receiver: Receiver, tmp_path: Path) -> None:
    """With ``note`` a flagged text is announced with its flags and text; with ``block`` the
    refusal is announced without the text, once however often it is resent; a report is
    announced with its reason."""
    url = await hooked(server_factory, receiver)
    buyer, agent, conv = await open_pair(url)
    flagged = await agent.send_text(conv, "加我微信 lily8888 私下转账", "a-1")
    await wait_for(lambda: len(chat_events(receiver, "message.flagged")) == 1)
    event = chat_events(receiver, "message.flagged")[0]["data"]
    assert event["seq"] == flagged["seq"] and "wechat" in event["flags"] and event["action"] == "note"
    assert event["text"] == "加我微信 lily8888 私下转账" and event["sender"] == "a1" and event["role"] == "agent"
    reported = await buyer.request({"type": "report", "conv": conv, "seq": flagged["seq"], "reason": "asks to pay outside"})
    assert reported["type"] == "reported"
    await buyer.request({"type": "report", "conv": conv, "seq": flagged["seq"], "reason": "again"})
    await wait_for(lambda: len(chat_events(receiver, "report.created")) == 1)
    report = chat_events(receiver, "report.created")[0]["data"]
    assert (report["seq"], report["reporter"], report["side"], report["reason"]) == (
        flagged["seq"], "b1", "buyer", "asks to pay outside")

    blocking = await hooked(server_factory, receiver, off_platform_action="block",
                            database_url=f"sqlite:///{tmp_path}/other-chat.db")
    buyer2, _agent2, conv2 = await open_pair(blocking, buyer_id="b2")
    for _ in range(3):
        refused = await buyer2.request({"type": "send", "conv": conv2, "cmid": "blk-1",
                                        "body": {"kind": "text", "text": "call me 138 1234 5678"}})
        assert refused["type"] == "error" and refused["code"] == 4006
    await wait_for(lambda: len(chat_events(receiver, "message.blocked")) >= 1)
    await asyncio.sleep(0.3)
    blocked = chat_events(receiver, "message.blocked")
    assert len(blocked) == 1 and blocked[0]["data"]["flags"] == ["phone"]
    assert "text" not in blocked[0]["data"] and "seq" not in blocked[0]["data"]
    assert blocked[0]["data"]["conversation_id"] == conv2 and blocked[0]["data"]["sender"] == "b2"
    assert Counter(body["type"] for body in chat_events(receiver))["message.flagged"] == 1


async def test_events_written_before_a_restart_are_sent_after_it(server_factory: Any, receiver: Receiver) -> None:
    """Events commit with the message, not when they are sent: a hub that stops before
    sending them leaves them in its store, and the next one sends each once."""
    server = await server_factory(webhook_url=receiver.url, webhook_secret=receiver.secret)
    url = f"ws://127.0.0.1:{server.port}/"
    assert server.money is not None and server.money.webhooks is not None
    await server.money.webhooks.stop()  # nothing moves or sends from now on
    buyer = await Client.connect(url, token("b1"))
    opened = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
    conv = opened["conversation"]["id"]
    for i in range(5):
        await buyer.send_text(conv, f"anyone there? {i}", f"q-{i}")
    await buyer.close()
    assert len(await server.hub.store.pending_events()) == 6
    await server.close()
    await server_factory(webhook_url=receiver.url, webhook_secret=receiver.secret)
    await wait_for(lambda: len(chat_events(receiver)) == 6)
    await asyncio.sleep(0.3)
    kinds = Counter(body["type"] for body in chat_events(receiver))
    assert kinds == {"conversation.opened": 1, "message.to_offline": 5}
    assert len(receiver.delivered_ids()) == len(receiver.got)


async def test_without_webhooks_no_event_is_written(server_factory: Any) -> None:
    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    buyer = await Client.connect(url, token("b1"))
    opened = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING})
    await buyer.send_text(opened["conversation"]["id"], "nobody is online", "n-1")
    assert server.hub.webhooks is None and await server.hub.store.pending_events() == []


async def test_concurrent_movers_queue_each_event_once(tmp_path: Path) -> None:
    """Several processes move events at once (every hub node does): each event becomes one
    webhook and leaves the chat store, whoever moved it."""
    for store in (MemoryStore(), SQLiteStore(str(tmp_path / "chat.db"))):
        service = open_service(f"sqlite:///{tmp_path}/ledger-{type(store).__name__}.db")
        outbox = WebhookOutbox(service.store, service.clock)
        await store.start()
        await store.open_conversation("c1", "b", "s", LISTING, None, 1)
        for i in range(60):
            await store.add_events("c1", [NewEvent("message.blocked", {"n": i})], 2)
        moved = await asyncio.gather(*(move_chat_events(store, outbox, limit=7) for _ in range(4)))
        while await move_chat_events(store, outbox, limit=7):
            pass
        assert sum(moved) >= 28 and await store.pending_events() == []
        assert outbox.counts() == {"pending": 60}
        await store.close()


async def test_two_nodes_on_postgresql_send_each_event_once(
    server_factory: Any, receiver: Receiver, redis_prefix: str, pg_schema: str
) -> None:
    """Two nodes share the PostgreSQL chat store, Redis and the ledger: the buyer on one,
    the agent on the other. Presence is the cluster's (the agent online on node B means no
    offline event for node A's message), and both nodes move events at once without
    sending any twice."""
    common = {"webhook_url": receiver.url, "webhook_secret": receiver.secret, "redis_url": REDIS_URL,
              "redis_prefix": redis_prefix, "database_url": f"{PG_URL}?schema={pg_schema}"}
    node_a = await server_factory(node_id="node-a", **common)
    node_b = await server_factory(node_id="node-b", **common)
    agent = await Client.connect(f"ws://127.0.0.1:{node_b.port}/", token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(f"ws://127.0.0.1:{node_a.port}/", token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await buyer.send_text(conv, "online agent on the other node", "x-0")
    await agent.close()
    await gone(node_a, "a1")
    for i in range(1, 21):
        await buyer.send_text(conv, f"still there? {i}", f"x-{i}")
    await wait_for(lambda: len(chat_events(receiver, "message.to_offline")) >= 20)
    await asyncio.sleep(0.5)
    offline = chat_events(receiver, "message.to_offline")
    assert sorted(e["data"]["seq"] for e in offline) == list(range(3, 23))
    assert len(chat_events(receiver, "conversation.opened")) == 1
    assert len(receiver.delivered_ids()) == len(receiver.got)
    assert await node_a.hub.store.pending_events() == []


def test_webhooks_without_the_ledger_refuse_to_start(tmp_path: Path) -> None:
    """The webhook outbox is in the ledger's database: a hub told to send webhooks without it
    would drop every one, so it does not start."""
    config = make_config(tmp_path, payments="off", webhook_url="http://127.0.0.1:9/hooks", webhook_secret="s" * 20)
    with pytest.raises(SystemExit, match="PAYMENTS"):
        build(config)
