"""A retried user action gets its first answer, whatever happened since, and changes nothing.

Idempotency must cover the whole action the user took (as Stripe's keys cover a whole
request), not only the ledger call inside it: a buy-now is an implicit offer plus a
payment, and an offer is an action of its own. Signed listings are ordered too: an older
card can never replace a newer one.
"""

from __future__ import annotations

import time

from chat.auth import mint_listing
from chat.server import ChatServer

from .client import LISTING, Client
from .conftest import SECRET, token
from .test_money import PIN, card_states, ready_pair


async def test_a_resent_buy_now_returns_the_payment_not_an_error(money: tuple[ChatServer, str]) -> None:
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    signed = mint_listing(SECRET, "shop1", {**LISTING, "price": 12800})
    await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING, "listing_token": signed})
    frame = {"type": "pay", "conv": conv, "pin": PIN, "key": "buy-now-001"}
    first = await buyer.request(frame)
    assert first["view"]["state"] == "HELD"
    again = await Client.connect(url, token("b1"))
    second = await again.request(frame)
    assert second.get("view") == first["view"], second
    assert (await again.request({"type": "wallet"}))["balances"]["user:b1"] == {"CNY": 100_000 - 12800}
    assert await card_states(agent, conv, 2) == [("card", "OFFERED"), ("card_update", "HELD")]
    await agent.no_frame("msg", conv=conv, kind="card_update")


async def test_a_late_offer_retry_does_not_undo_a_reprice(money: tuple[ChatServer, str]) -> None:
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    first_frame = {"type": "offer", "conv": conv, "price": 100, "key": "offer-late-1"}
    first = await agent.request(first_frame)
    order = first["view"]["order_id"]
    repriced = await agent.request({"type": "offer", "conv": conv, "order": order, "price": 120,
                                    "key": "offer-late-2"})
    assert repriced["view"]["amount"] == 120
    late = await agent.request(first_frame)  # the first frame, resent after a reconnect
    assert late.get("view") == first["view"], late  # its first answer ...
    paid = await buyer.request({"type": "pay", "conv": conv, "order": order, "amount": 120, "pin": PIN,
                                "key": "pay-late-01"})
    assert paid["view"]["state"] == "HELD" and paid["view"]["amount"] == 120  # ... and the price stays 120
    # The same key with other terms is a different request: refused, nothing changes.
    clash = await agent.request({**first_frame, "price": 90})
    assert clash["code"] == 6030


async def test_an_older_signed_listing_never_rolls_the_price_back(money: tuple[ChatServer, str]) -> None:
    server, url = money
    buyer, _agent, conv = await ready_pair(server, url)
    old = mint_listing(SECRET, "shop1", {**LISTING, "price": 9000})
    time.sleep(0.002)
    new = mint_listing(SECRET, "shop1", {**LISTING, "price": 11000})
    opened = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING, "listing_token": new})
    assert opened["conversation"]["listing"]["price"] == 11000
    rolled = await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING, "listing_token": old})
    assert rolled["conversation"]["listing"]["price"] == 11000  # the newest signed card wins
    paid = await buyer.request({"type": "pay", "conv": conv, "pin": PIN, "key": "buy-now-old"})
    assert paid["view"]["amount"] == 11000
    # A client cannot claim a signing time either.
    forged = await buyer.request({"type": "open", "shop": "shop1",
                                  "listing": {**LISTING, "price": 1, "signed_at": 2**40}})
    assert forged["type"] == "error" or forged["conversation"]["listing"]["price"] == 11000
