"""The arbiter's desk end to end: ``reports``, ``disputes`` and ``evidence`` against real hub
nodes, the refusals (other roles, no key, no ledger, too large), and what an arbiter may read:
a disputed or reported conversation, never an unrelated one, and never to write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from chat import evidence
from chat.protocol.frames import ServerFrame
from chat.server import ChatServer

from .client import Client
from .conftest import token
from .test_delivery import open_pair
from .test_money import PIN, api, ready_pair

KEY = "evidence-key-for-desk-tests-0123456789"
DESK = ("reports", "disputes", "evidence")


def desk_frame(kind: str, conv: str) -> dict[str, Any]:
    return {"type": kind, "conv": conv} if kind == "evidence" else {"type": kind}


def valid(frame: dict[str, Any]) -> dict[str, Any]:
    """The reply, checked against the protocol's server frame models."""
    TypeAdapter(ServerFrame).validate_python(frame)
    return frame


async def disputed_order(server: ChatServer, url: str) -> tuple[Client, Client, str, str]:
    """A paid, shipped order whose refund the shop refused and the buyer disputed."""
    buyer, agent, conv = await ready_pair(server, url)
    order = (await agent.request({"type": "offer", "conv": conv, "price": 10_000, "key": "offer-desk-1"}))["view"]
    oid = order["order_id"]
    await buyer.request({"type": "pay", "conv": conv, "order": oid, "pin": PIN, "key": "pay-desk-01"})
    await agent.request({"type": "ship", "conv": conv, "order": oid, "tracking": "SF1", "key": "ship-desk-1"})
    await buyer.request({"type": "refund", "conv": conv, "order": oid, "amount": 4000, "reason": "cracked lid",
                         "key": "refund-desk-1"})
    await agent.request({"type": "refund_answer", "conv": conv, "order": oid, "accept": False,
                         "key": "answer-desk-1"})
    done = await buyer.request({"type": "dispute", "conv": conv, "order": oid, "reason": "photos in the chat",
                                "key": "dispute-desk-1"})
    assert done["view"]["state"] == "DISPUTED", done
    return buyer, agent, conv, oid


async def test_only_arbiters_use_the_desk(money: tuple[ChatServer, str]) -> None:
    """Buyers and agents get 3003 for every desk request, before anything is looked up."""
    _server, url = money
    buyer, agent, conv = await open_pair(url)
    for client in (buyer, agent):
        for kind in DESK:
            refused = await client.request(desk_frame(kind, conv))
            assert refused["type"] == "error" and refused["code"] == 3003, (kind, refused)
    arbiter = await Client.connect(url, token("judge", "arbiter"))
    assert (await arbiter.request({"type": "reports", "limit": 0}))["code"] == 1004
    assert (await arbiter.request({"type": "evidence"}))["code"] == 1004


async def test_reported_conversations_open_to_arbiters_on_every_node(nodes: list[ChatServer], url: str) -> None:
    """A report (made on one node) opens the conversation to an arbiter (on another) for reading
    only; the reports page carries the reported message; other conversations stay closed."""
    buyer, agent, conv = await open_pair(url)
    _b2, _a2, quiet = await open_pair(url, buyer_id="b2")
    arbiter = await Client.connect(f"ws://127.0.0.1:{nodes[-1].port}/ws", token("judge", "arbiter"))
    # not reported yet: closed, on this node's first look
    assert (await arbiter.request({"type": "history", "conv": conv}))["code"] == 3002
    sent = await agent.send_text(conv, "pay me on WeChat instead", "a-wx")
    first = await buyer.request({"type": "report", "conv": conv, "seq": sent["seq"], "reason": "off-platform"})
    second = await agent.request({"type": "report", "conv": conv, "reason": "rude buyer"})
    assert first["type"] == second["type"] == "reported"

    page = valid(await arbiter.request({"type": "reports", "limit": 1}))
    assert page["type"] == "reports" and page["next_after"] == first["report"]
    (entry,) = page["reports"]
    assert {k: entry[k] for k in ("id", "conv", "seq", "reporter", "side", "buyer", "shop", "reason")} == {
        "id": first["report"], "conv": conv, "seq": sent["seq"], "reporter": "b1", "side": "buyer",
        "buyer": "b1", "shop": "shop1", "reason": "off-platform"}
    assert entry["message"]["body"] == {"text": "pay me on WeChat instead"} and entry["message"]["role"] == "agent"
    rest = valid(await arbiter.request({"type": "reports", "after": first["report"]}))
    assert [(r["seq"], r["side"], r["message"]) for r in rest["reports"]] == [(0, "shop", None)]
    assert rest["next_after"] is None

    # now readable (the report came through another node), never writable
    history = await arbiter.request({"type": "history", "conv": conv, "limit": 50})
    assert history["type"] == "history" and any(m.get("cmid") == "a-wx" for m in history["messages"])
    write = await arbiter.request({"type": "send", "conv": conv, "cmid": "j1", "body": {"kind": "text", "text": "x"}})
    assert write["code"] == 3002
    assert (await arbiter.request({"type": "read", "conv": conv, "seq": 1}))["code"] in (3002, 3003)
    # an unreported, undisputed conversation stays closed; an unknown one is 3001
    assert (await arbiter.request({"type": "history", "conv": quiet}))["code"] == 3002
    assert (await arbiter.request({"type": "history", "conv": "c_00000000000000000000"}))["code"] == 3001
    # the evidence needs EVIDENCE_KEY, unset on these nodes
    assert (await arbiter.request({"type": "evidence", "conv": conv}))["code"] == 5002
    # the parties' own access is unchanged
    assert (await buyer.request({"type": "history", "conv": quiet}))["code"] == 3002


async def test_disputes_evidence_and_decision(server_factory: Callable[..., Any]) -> None:
    """The open dispute is listed with its deadline; its evidence verifies offline and matches
    the server API's export; after the decision it leaves the list and stays readable."""
    server = await server_factory(evidence_key=KEY)
    url = f"ws://127.0.0.1:{server.port}/ws"
    buyer, _agent, conv, order = await disputed_order(server, url)
    _b3, _a3, quiet = await open_pair(url, buyer_id="b3")
    arbiter = await Client.connect(url, token("judge", "arbiter"))

    listed = valid(await arbiter.request({"type": "disputes"}))
    assert listed["more"] is False
    (dispute,) = listed["disputes"]
    held = server.money.service.get_order(order)  # type: ignore[union-attr]
    assert dispute == {"order": order, "conv": conv, "shop": "shop1", "buyer": "b1", "title": held.title,
                       "amount": 10_000, "held": 10_000, "currency": "CNY", "refund_amount": 4000,
                       "dispute_reason": "photos in the chat", "disputed_by": "buyer",
                       "deadline_at": held.deadline_at, "updated_at": held.updated_at,
                       "state": "DISPUTED", "after_sale_amount": None, "after_sale_reason": None}
    assert held.deadline_at and held.deadline_at > held.updated_at

    got = valid(await arbiter.request({"type": "evidence", "conv": conv}))
    package = got["package"]
    report = evidence.verify(package, KEY.encode())
    assert report.ok, report
    assert [o["order_id"] for o in package["ledger"]["orders"]] == [order]
    status, exported = await asyncio.to_thread(api, server, "GET", f"/api/v1/conversations/{conv}/evidence")
    assert status == 200
    same = ("conversation", "chain", "messages", "cards", "ledger")
    assert {k: exported[k] for k in same} == {k: package[k] for k in same}
    assert not evidence.verify({**package, "messages": package["messages"][:-1]}, KEY.encode()).ok

    # an unrelated conversation and an unknown one
    assert (await arbiter.request({"type": "evidence", "conv": quiet}))["code"] == 3002
    assert (await arbiter.request({"type": "evidence", "conv": "c_00000000000000000000"}))["code"] == 3001

    decided = await arbiter.request({"type": "decide", "conv": conv, "order": order, "outcome": "refund",
                                     "key": "decide-desk-1"})
    assert decided["view"]["state"] == "RESOLVED"
    assert (await arbiter.request({"type": "disputes"}))["disputes"] == []
    assert (await arbiter.request({"type": "history", "conv": conv}))["type"] == "history"  # was disputed
    assert (await buyer.request({"type": "wallet"}))["balances"]["user:b1"] == {"CNY": 100_000}


async def test_desk_without_the_ledger(server_factory: Callable[..., Any]) -> None:
    """Without payments ``disputes`` is 5002 (still 3003 for others); reports and evidence work."""
    chat_only = await server_factory(payments="off", evidence_key=KEY)
    url = f"ws://127.0.0.1:{chat_only.port}/ws"
    buyer, _agent, conv = await open_pair(url)
    arbiter = await Client.connect(url, token("judge", "arbiter"))
    assert (await arbiter.request({"type": "disputes"}))["code"] == 5002
    assert (await buyer.request({"type": "disputes"}))["code"] == 3003
    assert (await arbiter.request({"type": "reports"}))["reports"] == []
    # reported: readable, and its evidence has no ledger part without payments
    await buyer.request({"type": "report", "conv": conv, "reason": "spam"})
    package = (await arbiter.request({"type": "evidence", "conv": conv}))["package"]
    assert package["ledger"] is None and evidence.verify(package, KEY.encode()).ok


async def test_a_package_too_large_for_the_connection(server_factory: Callable[..., Any]) -> None:
    """A package larger than half of what the connection may queue is refused with 4012 (the
    connection stays fine); the server API still exports it."""
    small = await server_factory(evidence_key=KEY, outbox_bytes=4096)
    url = f"ws://127.0.0.1:{small.port}/ws"
    buyer, agent, conv = await open_pair(url)
    for i in range(8):
        await agent.send_text(conv, f"a long answer number {i} " + "x" * 200, f"long-{i}")
    await buyer.request({"type": "report", "conv": conv, "reason": "spam"})
    arbiter = await Client.connect(url, token("judge", "arbiter"))
    refused = await arbiter.request({"type": "evidence", "conv": conv})
    assert refused["code"] == 4012 and refused["details"]["max_bytes"] == 2048, refused
    assert (await arbiter.request({"type": "ping"}))["type"] == "pong"  # the connection is fine
    status, _ = await asyncio.to_thread(api, small, "GET", f"/api/v1/conversations/{conv}/evidence")
    assert status == 200
