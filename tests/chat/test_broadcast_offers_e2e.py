"""Buying at a broadcast's price (``claim_offer``) end to end: the follower's claim makes the
shop's order in their conversation, once, payable with ``pay`` until the price lapses; every
deployment of the ``url`` fixture."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chat.clock import ManualClock
from chat.server import ChatServer
from payments import check_invariants

from .client import Client
from .test_delivery import open_pair
from .test_follows_e2e import OFFER_LISTING, until_done
from .test_money import PIN, fund

HOUR_MS = 3_600_000


async def followers_with_a_broadcast(
    url: str, server: ChatServer, *, valid_hours: int | None = 48, buyers: tuple[str, ...] = ("b1", "b2")
) -> tuple[list[tuple[Client, Client, str]], dict[str, Any]]:
    """Conversations of ``buyers`` with shop1 (only the first follows, funded with a PIN) and
    the broadcast it received."""
    pairs = [await open_pair(url, buyer_id=b) for b in buyers]
    buyer, agent, conv = pairs[0]
    await buyer.request({"type": "follow", "shop": "shop1", "conv": conv})
    await fund(server, f"user:{buyers[0]}", 100_000, f"fund-{buyers[0]}")
    assert (await buyer.request({"type": "set_pin", "pin": PIN}))["type"] == "ok"
    frame: dict[str, Any] = {"type": "broadcast", "key": "spring-sale", "text": "Spring tea", "listing": OFFER_LISTING}
    if valid_hours is not None:
        frame["offer"] = {"price": 8800, "currency": "CNY", "valid_hours": valid_hours}
    sent = await agent.request(frame)
    got = await buyer.next("msg", conv=conv, kind="broadcast")
    assert got["body"]["broadcast"] == sent["broadcast"]["id"]
    await until_done(agent, sent["broadcast"]["id"])
    return pairs, sent["broadcast"]


async def test_a_follower_buys_at_the_broadcast_price_once(url: str, server: ChatServer) -> None:
    """The claim makes the shop's order at the broadcast price (card on both sides), a retry
    or a second tap returns the same order, and it is paid with the ordinary ``pay``."""
    pairs, job = await followers_with_a_broadcast(url, server)
    (buyer, agent, conv), (other, _, other_conv) = pairs
    claim = {"type": "claim_offer", "conv": conv, "broadcast": job["id"]}
    first = await buyer.request(claim)
    assert first["type"] == "payment" and first["entity"] == "order", first
    view = first["view"]
    assert (view["state"], view["amount"], view["unit_price"], view["currency"]) == ("OFFERED", 8800, 8800, "CNY")
    assert view["listing_id"] == "l-9" and view["shop_id"] == "shop1" and view["buyer_id"] == "b1"
    assert view["deadline_at"] == job["body"]["offer"]["valid_until"]
    for side in (buyer, agent):
        card = await side.next("msg", conv=conv, kind="card")
        assert card["body"]["id"] == view["order_id"] and card["body"]["state"] == "OFFERED"
    again = await buyer.request(claim)
    assert again["view"]["order_id"] == view["order_id"] and again["view"]["version"] == view["version"]
    await buyer.no_frame("msg", conv=conv, kind="card")
    paid = await buyer.request({"type": "pay", "conv": conv, "order": view["order_id"], "amount": 8800,
                                "pin": PIN, "key": "pay-bcast-1"})
    assert paid["view"]["state"] == "HELD", paid
    after = await buyer.request(claim)
    assert after["view"]["order_id"] == view["order_id"] and after["view"]["state"] == "HELD"
    orders = server.money.service.orders_in_conversation(conv) if server.money else []
    assert [o.order_id for o in orders] == [view["order_id"]]
    assert server.money is not None
    check_invariants(server.money.service.store)
    # Who may claim: not the follower who did not get it, not in someone else's conversation,
    # not the shop's agent.
    assert (await other.request({**claim, "conv": other_conv}))["code"] == 3005
    assert (await other.request(claim))["code"] == 3002
    assert (await agent.request(claim))["code"] == 3003
    assert (await buyer.request({**claim, "broadcast": job["id"] + 1000}))["code"] == 3005


async def test_a_broadcast_without_an_offer_cannot_be_claimed(url: str, server: ChatServer) -> None:
    pairs, job = await followers_with_a_broadcast(url, server, valid_hours=None, buyers=("b1",))
    buyer, _, conv = pairs[0]
    refused = await buyer.request({"type": "claim_offer", "conv": conv, "broadcast": job["id"]})
    assert refused["code"] == 3006


async def test_the_price_is_claimable_and_payable_only_until_it_lapses(
    server_factory: Callable[..., Any]
) -> None:
    """After ``valid_until`` a first claim gets 4011; an order claimed before it lapses with
    the broadcast's price (its pay-by deadline is ``valid_until``, not the usual expiry), and
    claiming again returns that order as it is now."""
    clock = ManualClock(int(time.time() * 1000))
    server = await server_factory(clock=clock)
    url = f"ws://127.0.0.1:{server.port}/"
    pairs, job = await followers_with_a_broadcast(url, server, valid_hours=2, buyers=("b1", "b2"))
    valid_until = job["body"]["offer"]["valid_until"]
    (buyer, _, conv), (late, _, late_conv) = pairs
    await late.request({"type": "follow", "shop": "shop1", "conv": late_conv})
    claimed = await buyer.request({"type": "claim_offer", "conv": conv, "broadcast": job["id"]})
    order = claimed["view"]
    assert order["deadline_at"] == valid_until
    clock.advance(2 * HOUR_MS)
    # b2 did not follow when the broadcast went out: never a recipient, expired or not.
    assert (await late.request({"type": "claim_offer", "conv": late_conv, "broadcast": job["id"]}))["code"] == 3005
    refused = await buyer.request({"type": "pay", "conv": conv, "order": order["order_id"], "pin": PIN,
                                   "key": "pay-late-01"})
    assert refused["type"] == "error" and refused["code"] >= 6000, refused
    again = await buyer.request({"type": "claim_offer", "conv": conv, "broadcast": job["id"]})
    assert again["view"]["order_id"] == order["order_id"] and again["view"]["state"] != "HELD"
    assert server.money is not None
    assert server.money.service.balances("user:b1").get("CNY") == 100_000


async def test_an_expired_broadcast_price_is_refused(server_factory: Callable[..., Any]) -> None:
    clock = ManualClock(int(time.time() * 1000))
    server = await server_factory(clock=clock)
    url = f"ws://127.0.0.1:{server.port}/"
    pairs, job = await followers_with_a_broadcast(url, server, valid_hours=1, buyers=("b1",))
    buyer, _, conv = pairs[0]
    clock.advance(HOUR_MS)
    refused = await buyer.request({"type": "claim_offer", "conv": conv, "broadcast": job["id"]})
    assert refused["code"] == 4011 and refused["details"]["valid_until"] == job["body"]["offer"]["valid_until"]
    assert server.money is not None and server.money.service.orders_in_conversation(conv) == []
