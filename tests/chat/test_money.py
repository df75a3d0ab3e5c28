"""Money in the conversation, end to end: two real clients watch the same cards change."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

from chat.auth import mint_listing
from chat.clock import ManualClock
from chat.server import ChatServer
from payments import check_invariants

from .client import LISTING, Client
from .conftest import SECRET, SERVER_SECRET, token
from .test_delivery import open_pair

PIN = "246810"


def api(server: ChatServer, method: str, path: str, body: dict[str, Any] | None = None,
        secret: str = SERVER_SECRET, raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    assert server.api is not None
    req = urllib.request.Request(
        f"http://127.0.0.1:{server.api.port}{path}", method=method,
        data=raw if raw is not None else None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


async def fund(server: ChatServer, owner: str, amount: int, key: str) -> None:
    status, receipt = await asyncio.to_thread(
        api, server, "POST", "/api/v1/deposits", {"owner": owner, "amount": amount, "currency": "CNY", "key": key}
    )
    assert status == 201, receipt


async def card_states(client: Client, conv: str, count: int) -> list[tuple[str, str]]:
    """The next ``count`` card / card_update messages as (kind, state)."""
    out = []
    while len(out) < count:
        m = await client.next("msg", conv=conv)
        if m["kind"] in ("card", "card_update"):
            out.append((m["kind"], m["body"]["state"]))
    return out


async def ready_pair(server: ChatServer, url: str, balance: int = 100_000) -> tuple[Client, Client, str]:
    buyer, agent, conv = await open_pair(url)
    await fund(server, "user:b1", balance, "fund-b1")
    assert (await buyer.request({"type": "set_pin", "pin": PIN}))["type"] == "ok"
    return buyer, agent, conv


async def test_offer_pay_ship_confirm_both_sides_see_the_same_card(money: tuple[ChatServer, str]) -> None:
    """The seller's offer, the buyer's payment, shipping and confirmation update one card on both sides."""
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    offer = await agent.request({"type": "offer", "conv": conv, "price": 9900, "quantity": 2, "key": "offer-0001"})
    assert offer["type"] == "payment" and offer["view"]["state"] == "OFFERED" and offer["view"]["amount"] == 19800
    order = offer["view"]["order_id"]
    for side in (buyer, agent):
        card = await side.next("msg", conv=conv, kind="card")
        assert card["body"]["id"] == order and card["body"]["state"] == "OFFERED" and card["sender"] == "system"

    paid = await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-000001"})
    assert paid["view"]["state"] == "HELD"
    shipped = await agent.request({"type": "ship", "conv": conv, "order": order, "tracking": "SF1234567", "key": "ship-00001"})
    assert shipped["view"]["state"] == "SHIPPED" and shipped["view"]["auto_confirm_at"] is not None
    done = await buyer.request({"type": "confirm", "conv": conv, "order": order, "key": "confirm-01"})
    assert done["view"]["state"] == "RELEASED"
    for side in (buyer, agent):
        updates = await card_states(side, conv, 3)
        assert updates == [("card_update", "HELD"), ("card_update", "SHIPPED"), ("card_update", "RELEASED")]

    wallet = await agent.request({"type": "wallet"})
    assert wallet["balances"]["shop:shop1"] == {"CNY": 19800}
    wallet = await buyer.request({"type": "wallet"})
    assert wallet["balances"]["user:b1"] == {"CNY": 100_000 - 19800} and wallet["pin_set"] is True
    # the whole story is in the history, once each, and cards cannot be recalled
    page = await buyer.request({"type": "history", "conv": conv, "limit": 200})
    kinds = [(m["kind"], m["body"].get("state")) for m in page["messages"] if m["kind"].startswith("card")]
    assert kinds == [("card", "OFFERED"), ("card_update", "HELD"), ("card_update", "SHIPPED"),
                     ("card_update", "RELEASED")]
    card_seq = next(m["seq"] for m in page["messages"] if m["kind"] == "card")
    assert (await agent.request({"type": "recall", "conv": conv, "seq": card_seq}))["code"] == 4003
    await asyncio.to_thread(check_invariants, server.money.service.store)  # type: ignore[union-attr]


async def test_pay_the_listing_price_without_an_offer(money: tuple[ChatServer, str]) -> None:
    """A listing the marketplace signed can be paid at its price straight away; one card appears, already held."""
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    unsigned = await buyer.request({"type": "pay", "conv": conv, "pin": PIN, "key": "pay-listing0"})
    assert unsigned["code"] == 3004  # a price the browser typed is not a price anyone agreed to
    signed = mint_listing(SECRET, "shop1", {**LISTING, "price": 12800})
    reopened = await buyer.request({"type": "open", "shop": "shop1", "listing": {**LISTING, "price": 1},
                                    "listing_token": signed})
    assert reopened["conversation"]["id"] == conv
    assert reopened["conversation"]["listing"]["verified"] is True
    assert reopened["conversation"]["listing"]["price"] == 12800  # the signed price, not the one sent beside it
    paid = await buyer.request({"type": "pay", "conv": conv, "pin": PIN, "key": "pay-listing"})
    assert paid["view"]["state"] == "HELD" and paid["view"]["amount"] == 12800
    assert await card_states(agent, conv, 2) == [("card", "OFFERED"), ("card_update", "HELD")]


async def test_listing_tokens_are_checked(money: tuple[ChatServer, str]) -> None:
    """Forged, mismatched or user tokens cannot vouch for a listing; a browser cannot set verified itself."""
    _server, url = money
    buyer = await Client.connect(url, token("b1"))
    forged = mint_listing(SECRET + "x", "shop1", LISTING)
    for listing_token in (forged, mint_listing(SECRET, "other-shop", LISTING), token("b1")):
        reply = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING, "listing_token": listing_token})
        assert reply["code"] == 2002, reply
    sneaky = await buyer.request({"type": "open", "shop": "shop1", "listing": {**LISTING, "verified": True}})
    assert sneaky["conversation"]["listing"]["verified"] is False


async def test_retried_pay_after_a_dropped_connection_pays_once(money: tuple[ChatServer, str]) -> None:
    """The same key resent on a new connection returns the first answer; the money moves once."""
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    order = (await agent.request({"type": "offer", "conv": conv, "price": 5000, "key": "offer-0002"}))["view"]["order_id"]
    frame = {"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-retry-1"}
    first = await buyer.request(frame)
    await buyer.close()
    again = await Client.connect(url, token("b1"))
    second = await again.request(frame)
    assert second["view"] == first["view"]
    wallet = await again.request({"type": "wallet"})
    assert wallet["balances"]["user:b1"] == {"CNY": 95_000}
    other = await again.request({**frame, "key": "pay-retry-2"})
    assert other["type"] == "error" and other["code"] in (6021, 6060)
    states = await card_states(agent, conv, 2)
    assert states == [("card", "OFFERED"), ("card_update", "HELD")]
    await agent.no_frame("msg", conv=conv, kind="card_update")


async def test_only_the_right_actor_may_act(money: tuple[ChatServer, str]) -> None:
    """One rule: a role that may never send a command gets 3003 (buyers cannot offer or ship,
    agents cannot pay or confirm); a party of the wrong order gets 6022; strangers reach nothing."""
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    assert (await buyer.request({"type": "offer", "conv": conv, "price": 1, "key": "bad-offer1"}))["code"] == 3003
    order = (await agent.request({"type": "offer", "conv": conv, "price": 100, "key": "offer-0003"}))["view"]["order_id"]
    assert (await agent.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "agent-pays"}))["code"] == 3003
    await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-000003"})
    ship = await buyer.request({"type": "ship", "conv": conv, "order": order, "tracking": "x", "key": "buyer-ship"})
    assert ship["code"] == 3003
    confirm = await agent.request({"type": "confirm", "conv": conv, "order": order, "key": "agent-conf"})
    assert confirm["code"] == 3003
    stranger = await Client.connect(url, token("b2"))
    reply = await stranger.request({"type": "confirm", "conv": conv, "order": order, "key": "stranger-1"})
    assert reply["code"] == 3002
    # an order named in another conversation is not found from this one
    _b2, _a2, other_conv = await open_pair(url, buyer_id="b2", shop="shop1")
    reply = await stranger.request({"type": "confirm", "conv": other_conv, "order": order, "key": "stranger-2"})
    assert reply["code"] == 3001


async def test_payment_errors_are_clear(money: tuple[ChatServer, str]) -> None:
    """Wrong PIN, no balance and no PIN each get their own code and a readable message."""
    server, url = money
    buyer, agent, conv = await open_pair(url)
    order = (await agent.request({"type": "offer", "conv": conv, "price": 100, "key": "offer-0004"}))["view"]["order_id"]
    no_pin = await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-nopin1"})
    assert no_pin["code"] == 6042 and no_pin["message"]
    await buyer.request({"type": "set_pin", "pin": PIN})
    broke = await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-broke1"})
    assert broke["code"] == 6010 and "balance" in broke["message"].lower()
    await fund(server, "user:b1", 1000, "fund-b1")
    wrong = await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": "000000", "key": "pay-wrong1"})
    assert wrong["code"] == 6040 and wrong["details"]["attempts_left"] == 4


async def test_refund_refused_dispute_and_arbiter_split(money: tuple[ChatServer, str]) -> None:
    """Refund request, refusal, dispute, and an arbiter's split, seen as card updates by both sides."""
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    order = (await agent.request({"type": "offer", "conv": conv, "price": 10_000, "key": "offer-0005"}))["view"]["order_id"]
    await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-000005"})
    await agent.request({"type": "ship", "conv": conv, "order": order, "tracking": "YT1", "key": "ship-00005"})
    asked = await buyer.request({"type": "refund", "conv": conv, "order": order, "amount": 4000,
                                 "reason": "one cup arrived broken", "key": "refund-005"})
    assert asked["view"]["state"] == "REFUND_REQUESTED"
    refused = await agent.request({"type": "refund_answer", "conv": conv, "order": order, "accept": False,
                                   "key": "answer-005"})
    assert refused["view"]["state"] == "REFUND_REFUSED"
    disputed = await buyer.request({"type": "dispute", "conv": conv, "order": order,
                                    "reason": "photos attached in chat", "key": "dispute-05"})
    assert disputed["view"]["state"] == "DISPUTED"
    arbiter = await Client.connect(url, token("judge", "arbiter"))
    evidence = await arbiter.request({"type": "history", "conv": conv, "limit": 200})
    assert evidence["type"] == "history" and any(m["kind"] == "card" for m in evidence["messages"])
    write = await arbiter.request({"type": "send", "conv": conv, "cmid": "j1", "body": {"kind": "text", "text": "x"}})
    assert write["code"] == 3002  # evidence is read-only
    decided = await arbiter.request({"type": "decide", "conv": conv, "order": order, "outcome": "split",
                                     "buyer_amount": 4000, "key": "decide-005"})
    assert decided["view"]["state"] == "RESOLVED"
    states = [s for _, s in await card_states(buyer, conv, 7)]
    assert states == ["OFFERED", "HELD", "SHIPPED", "REFUND_REQUESTED", "REFUND_REFUSED", "DISPUTED", "RESOLVED"]
    assert (await buyer.request({"type": "wallet"}))["balances"]["user:b1"] == {"CNY": 94_000}
    assert (await agent.request({"type": "wallet"}))["balances"]["shop:shop1"] == {"CNY": 6000}
    # without a dispute, a conversation stays closed to arbiters
    _b3, _a3, quiet = await open_pair(url, buyer_id="b3")
    assert (await arbiter.request({"type": "history", "conv": quiet}))["code"] == 3002
    # a buyer is no arbiter
    again = await buyer.request({"type": "decide", "conv": conv, "order": order, "outcome": "refund", "key": "decide-006"})
    assert again["code"] == 3003


async def test_arbiter_commands_on_a_missing_conversation_get_typed_errors(money: tuple[ChatServer, str]) -> None:
    """An arbiter's offer, pay or transfer is refused for the role (3003) and a decide in a
    conversation that does not exist is 3001: never an internal error."""
    _server, url = money
    arbiter = await Client.connect(url, token("judge", "arbiter"))
    missing = "c_00000000000000000000"
    frames = [
        {"type": "offer", "conv": missing, "price": 100, "key": "arb-offer-1"},
        {"type": "pay", "conv": missing, "pin": PIN, "key": "arb-pay-001"},
        {"type": "transfer", "conv": missing, "amount": 5, "currency": "CNY", "pin": PIN, "key": "arb-xfer-01"},
    ]
    for frame in frames:
        assert (await arbiter.request(frame))["code"] == 3003, frame
    decide = {"type": "decide", "conv": missing, "order": "o_1", "outcome": "refund", "key": "arb-decide-1"}
    assert (await arbiter.request(decide))["code"] == 3001


async def test_transfer_accept_and_decline(money: tuple[ChatServer, str]) -> None:
    """A transfer waits for the recipient; accepting credits its account (the shop's, for a
    transfer to the shop), declining returns it."""
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    sent = await buyer.request({"type": "transfer", "conv": conv, "amount": 888, "currency": "CNY", "pin": PIN,
                                "key": "transfer-1"})
    assert sent["entity"] == "transfer" and sent["view"]["state"] == "PENDING" and sent["view"]["to_account"] == "shop:shop1"
    transfer = sent["view"]["transfer_id"]
    assert (await agent.next("msg", conv=conv, kind="card"))["body"]["state"] == "PENDING"
    nope = await buyer.request({"type": "transfer_answer", "conv": conv, "transfer": transfer, "accept": True,
                                "key": "self-accept"})
    assert nope["code"] == 6022
    accepted = await agent.request({"type": "transfer_answer", "conv": conv, "transfer": transfer, "accept": True,
                                    "key": "accept-001"})
    assert accepted["view"]["state"] == "ACCEPTED"
    assert (await buyer.next("msg", conv=conv, kind="card_update"))["body"]["state"] == "ACCEPTED"
    assert (await agent.request({"type": "wallet"}))["balances"]["shop:shop1"] == {"CNY": 888}

    back = await agent.request({"type": "transfer", "conv": conv, "amount": 88, "currency": "CNY", "pin": PIN,
                                "key": "transfer-2"})
    assert back["code"] == 6042  # the agent has no PIN yet
    await agent.request({"type": "set_pin", "pin": PIN})
    back = await agent.request({"type": "transfer", "conv": conv, "amount": 88, "currency": "CNY", "pin": PIN,
                                "key": "transfer-3"})
    declined = await buyer.request({"type": "transfer_answer", "conv": conv, "transfer": back["view"]["transfer_id"],
                                    "accept": False, "key": "decline-01"})
    assert declined["view"]["state"] == "DECLINED"
    assert (await agent.request({"type": "wallet"}))["balances"]["shop:shop1"] == {"CNY": 888}


async def test_timers_expire_transfers_and_auto_confirm(server_factory: Any) -> None:
    """With the clock moved past the deadlines, the hub's timer refunds the transfer and releases the order."""
    clock = ManualClock(int(time.time() * 1000))
    server = await server_factory(clock=clock)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, agent, conv = await ready_pair(server, url)
    sent = await buyer.request({"type": "transfer", "conv": conv, "amount": 500, "currency": "CNY", "pin": PIN,
                                "key": "transfer-t"})
    order = (await agent.request({"type": "offer", "conv": conv, "price": 700, "key": "offer-000t"}))["view"]["order_id"]
    await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-00000t"})
    await agent.request({"type": "ship", "conv": conv, "order": order, "tracking": "t", "key": "ship-0000t"})
    clock.advance(24 * 3600 * 1000 - 1)
    await asyncio.sleep(0.6)
    view = await asyncio.to_thread(server.money.service.get_transfer, sent["view"]["transfer_id"])  # type: ignore[union-attr]
    assert view.state == "PENDING"  # not a millisecond early
    clock.advance(1)
    update = await agent.next("msg", conv=conv, kind="card_update", timeout=5)
    while update["body"]["entity"] != "transfer":
        update = await agent.next("msg", conv=conv, kind="card_update", timeout=5)
    assert update["body"]["state"] == "EXPIRED"
    clock.advance(10 * 24 * 3600 * 1000)
    while (m := await buyer.next("msg", conv=conv, kind="card_update", timeout=5))["body"]["state"] != "RELEASED":
        pass
    assert m["body"]["view"]["settled_by"] == "timer" and m["body"]["action"] == "released"
    assert (await buyer.request({"type": "wallet"}))["balances"]["user:b1"] == {"CNY": 100_000 - 700}


async def test_server_api_needs_the_server_secret(money: tuple[ChatServer, str]) -> None:
    """The marketplace backend's API refuses user tokens and wrong secrets, and refuses float amounts."""
    server, _url = money
    status, body = await asyncio.to_thread(api, server, "GET", "/api/v1/balances/user:b1", None, "wrong")
    assert status == 401
    status, body = await asyncio.to_thread(api, server, "GET", "/api/v1/balances/user:b1", None, token("b1"))
    assert status == 401
    status, body = await asyncio.to_thread(
        api, server, "POST", "/api/v1/deposits", {"owner": "user:b1", "amount": 10.5, "currency": "CNY", "key": "f1"}
    )
    assert status == 400 and body["code"] == 6001
    status, body = await asyncio.to_thread(
        api, server, "POST", "/api/v1/deposits", {"owner": "user:b1", "amount": 1000, "currency": "CNY", "key": "f2"}
    )
    assert status == 201 and body["balance_after"] == 1000
    status, body = await asyncio.to_thread(
        api, server, "POST", "/api/v1/withdrawals", {"owner": "user:b1", "amount": 5000, "currency": "CNY", "key": "w1"}
    )
    assert status == 402 and body["code"] == 6010
    status, body = await asyncio.to_thread(api, server, "GET", "/api/v1/balances/user:b1")
    assert status == 200 and body["balances"] == {"CNY": 1000}
    status, body = await asyncio.to_thread(api, server, "GET", "/api/v1/statements/user:b1?currency=CNY")
    assert status == 200 and [line["amount"] for line in body["lines"]] == [1000]
    status, body = await asyncio.to_thread(api, server, "GET", "/api/v1/orders/o_nothing")
    assert status == 404 and body["code"] == 6020


async def test_server_api_refuses_deep_bodies_and_ids_no_client_can_have(money: tuple[ChatServer, str]) -> None:
    """A deeply nested body is a 400, not a 500; an owner id outside the protocol's Id rule
    (spaces, slashes, non-ASCII, over 64 characters) is refused like any bad argument."""
    server, _url = money
    deep = b"[" * 20_000 + b"]" * 20_000
    status, body = await asyncio.to_thread(api, server, "POST", "/api/v1/deposits", None, SERVER_SECRET, deep)
    assert status == 400 and body["code"] == 1004
    for owner in ("user:has space", "user:a/b", "user:é", "user:" + "x" * 65, "shop:", "world:x"):
        status, body = await asyncio.to_thread(
            api, server, "POST", "/api/v1/deposits", {"owner": owner, "amount": 100, "currency": "CNY", "key": "bad-owner"}
        )
        assert status == 400 and body["code"] == 6000, (owner, body)
    status, _ = await asyncio.to_thread(
        api, server, "POST", "/api/v1/deposits", {"owner": "user:" + "x" * 64, "amount": 100, "currency": "CNY", "key": "ok-owner"}
    )
    assert status == 201


async def test_pay_refused_when_the_offer_was_repriced(money: tuple[ChatServer, str]) -> None:
    """A buyer who pays the price they saw is refused (6023) if the shop re-priced meanwhile; nothing moves."""
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    offer = await agent.request({"type": "offer", "conv": conv, "price": 3000, "key": "offer-re-1"})
    order = offer["view"]["order_id"]
    repriced = await agent.request({"type": "offer", "conv": conv, "order": order, "price": 3500, "key": "offer-re-2"})
    assert repriced["view"]["amount"] == 3500
    stale = await buyer.request({"type": "pay", "conv": conv, "order": order, "amount": 3000, "pin": PIN,
                                 "key": "pay-stale-1"})
    assert stale["code"] == 6023
    assert (await buyer.request({"type": "wallet"}))["balances"]["user:b1"] == {"CNY": 100_000}
    fresh = await buyer.request({"type": "pay", "conv": conv, "order": order, "amount": 3500, "pin": PIN,
                                 "key": "pay-fresh-1"})
    assert fresh["view"]["state"] == "HELD"
    assert await card_states(agent, conv, 3) == [("card", "OFFERED"), ("card_update", "OFFERED"), ("card_update", "HELD")]


async def test_cards_exactly_once_on_every_deployment(nodes: list[ChatServer], url: str) -> None:
    """On one node, on Redis, and on two nodes whose relays both post: one card, one update per change."""
    server = nodes[0]
    buyer, agent, conv = await ready_pair(server, url)
    order = (await agent.request({"type": "offer", "conv": conv, "price": 1200, "key": "offer-n-01"}))["view"]["order_id"]
    await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-n-0001"})
    await agent.request({"type": "ship", "conv": conv, "order": order, "tracking": "n", "key": "ship-n-001"})
    await buyer.request({"type": "confirm", "conv": conv, "order": order, "key": "confirm-n1"})
    expected = [("card", "OFFERED"), ("card_update", "HELD"), ("card_update", "SHIPPED"), ("card_update", "RELEASED")]
    assert await card_states(buyer, conv, 4) == expected
    assert await card_states(agent, conv, 4) == expected
    for n in nodes:  # let every node's relay poll at least once more
        assert n.money is not None
        await n.money.relay.catch_up()
    page = await buyer.request({"type": "history", "conv": conv, "limit": 200})
    cards = [(m["kind"], m["body"]["state"]) for m in page["messages"] if m["kind"].startswith("card")]
    assert cards == expected


async def test_offline_agent_sees_current_card_state_on_resume(money: tuple[ChatServer, str]) -> None:
    """Cards are messages: an agent that was away while the buyer paid gets the updates on sync."""
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    order = (await agent.request({"type": "offer", "conv": conv, "price": 900, "key": "offer-off1"}))["view"]["order_id"]
    card = await agent.next("msg", conv=conv, kind="card")
    await agent.close()
    await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-off-01"})
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    task = asyncio.create_task(agent.request({"type": "sync", "cursors": {conv: card["seq"]}}))
    update = await agent.next("msg", conv=conv, kind="card_update")
    await task
    assert update["body"]["state"] == "HELD" and update["body"]["card"] == card["seq"]
