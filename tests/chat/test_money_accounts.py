"""Whose money an actor moves: a buyer's own account, an agent's shop's account, never a
person's wallet picked by a bare user id.

One person id can be a buyer in one token and an agent of a shop in another (the
marketplace's ids are per role). Wallets, PINs and idempotency keys must follow the
account and the role, or an agent token with ``sub=u77`` spends buyer u77's money.
"""

from __future__ import annotations

import asyncio
import time

from chat.server import ChatServer
from payments import check_invariants

from .client import LISTING, Client
from .conftest import token
from .test_money import PIN, api, fund

OTHER_PIN = "135790"


async def test_an_agent_never_touches_the_wallet_or_pin_of_a_buyer_with_the_same_id(
    money: tuple[ChatServer, str],
) -> None:
    server, url = money
    # u77 is a buyer of shop1 with money and a PIN ...
    buyer = await Client.connect(url, token("u77"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await fund(server, "user:u77", 10_000, "fund-u77")
    assert (await buyer.request({"type": "set_pin", "pin": PIN}))["type"] == "ok"
    # ... and someone else holds an agent token of shop1 with the same person id.
    agent = await Client.connect(url, token("u77", "agent", shop="shop1"))
    wallet = await agent.request({"type": "wallet"})
    assert "user:u77" not in wallet["balances"] and wallet["pin_set"] is False
    assert wallet["balances"]["shop:shop1"] == {}
    stolen = await agent.request({"type": "transfer", "conv": conv, "amount": 5_000, "currency": "CNY",
                                  "pin": PIN, "key": "steal-0001"})
    assert stolen["code"] == 6042  # the agent has no PIN of its own; the buyer's is not its
    # The agent's own PIN moves the shop's money, and only that.
    assert (await agent.request({"type": "set_pin", "pin": OTHER_PIN}))["type"] == "ok"
    broke = await agent.request({"type": "transfer", "conv": conv, "amount": 5_000, "currency": "CNY",
                                 "pin": OTHER_PIN, "key": "steal-0002"})
    assert broke["code"] == 6010  # the shop has nothing; the buyer's 10,000 are not reachable
    assert (await buyer.request({"type": "wallet"}))["balances"]["user:u77"] == {"CNY": 10_000}
    # The buyer's PIN is still the buyer's (the agent's set_pin did not replace it).
    back = await buyer.request({"type": "transfer", "conv": conv, "amount": 100, "currency": "CNY",
                                "pin": PIN, "key": "to-shop-01"})
    assert back["view"]["state"] == "PENDING"
    await asyncio.to_thread(check_invariants, server.money.service.store)  # type: ignore[union-attr]


async def test_a_transfer_to_the_shop_credits_the_shop_and_any_agent_may_answer(
    money: tuple[ChatServer, str],
) -> None:
    server, url = money
    a1 = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await a1.request({"type": "sync"})
    buyer = await Client.connect(url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await fund(server, "user:b1", 1_000, "fund-b1")
    await buyer.request({"type": "set_pin", "pin": PIN})
    sent = await buyer.request({"type": "transfer", "conv": conv, "amount": 300, "currency": "CNY", "pin": PIN,
                                "key": "to-shop-01"})
    view = sent["view"]
    assert view["from_account"] == "user:b1" and view["to_account"] == "shop:shop1"
    # Another agent of the shop (not the one assigned) answers for the shop.
    a2 = await Client.connect(url, token("a2", "agent", shop="shop1"))
    other_shop = await Client.connect(url, token("x1", "agent", shop="shop2"))
    refused = await other_shop.request({"type": "transfer_answer", "conv": conv, "transfer": view["transfer_id"],
                                        "accept": True, "key": "other-0001"})
    assert refused["code"] == 3002  # not its conversation
    accepted = await a2.request({"type": "transfer_answer", "conv": conv, "transfer": view["transfer_id"],
                                 "accept": True, "key": "accept-001"})
    assert accepted["view"]["state"] == "ACCEPTED"
    shop = (await a1.request({"type": "wallet"}))["balances"]
    assert shop == {"shop:shop1": {"CNY": 300}}
    # The shop pays back from the shop's account with an agent's own PIN.
    await a1.request({"type": "set_pin", "pin": OTHER_PIN})
    back = await a1.request({"type": "transfer", "conv": conv, "amount": 120, "currency": "CNY",
                             "pin": OTHER_PIN, "key": "back-00001"})
    assert back["view"]["from_account"] == "shop:shop1" and back["view"]["to_account"] == "user:b1"
    got = await buyer.request({"type": "transfer_answer", "conv": conv, "transfer": back["view"]["transfer_id"],
                               "accept": True, "key": "take-00001"})
    assert got["view"]["state"] == "ACCEPTED"
    assert (await buyer.request({"type": "wallet"}))["balances"]["user:b1"] == {"CNY": 820}
    assert (await a2.request({"type": "wallet"}))["balances"]["shop:shop1"] == {"CNY": 180}
    await asyncio.to_thread(check_invariants, server.money.service.store)  # type: ignore[union-attr]


async def test_idempotency_keys_belong_to_the_role_not_the_bare_id(money: tuple[ChatServer, str]) -> None:
    """The same key used by buyer u77 and by agent u77 names two different actions."""
    server, url = money
    buyer = await Client.connect(url, token("u77"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await fund(server, "user:u77", 1_000, "fund-u77")
    await fund(server, "shop:shop1", 1_000, "fund-shop1")
    await buyer.request({"type": "set_pin", "pin": PIN})
    agent = await Client.connect(url, token("u77", "agent", shop="shop1"))
    await agent.request({"type": "set_pin", "pin": OTHER_PIN})
    mine = await buyer.request({"type": "transfer", "conv": conv, "amount": 10, "currency": "CNY", "pin": PIN,
                                "key": "same-key-1"})
    theirs = await agent.request({"type": "transfer", "conv": conv, "amount": 10, "currency": "CNY",
                                  "pin": OTHER_PIN, "key": "same-key-1"})
    assert mine["view"]["transfer_id"] != theirs["view"]["transfer_id"]
    assert theirs["view"]["from_account"] == "shop:shop1"
    await asyncio.to_thread(check_invariants, server.money.service.store)  # type: ignore[union-attr]


async def test_the_server_api_reconciles_a_period(money: tuple[ChatServer, str]) -> None:
    server, _ = money
    before = int(time.time() * 1000) - 1
    await fund(server, "user:b7", 5_000, "fund-b7")
    await fund(server, "shop:shop1", 700, "fund-shop1")
    status, report = await asyncio.to_thread(
        api, server, "GET", f"/api/v1/reconciliation?currency=CNY&from={before}&to={before + 3_600_000}")
    assert status == 200 and report["balanced"] is True
    lines = {(a["owner"], a["kind"]): a for a in report["accounts"]}
    assert lines[("user:b7", "available")]["closing"] == 5_000
    world = lines[("world", "world")]  # the demo's top-ups came before the period
    assert world["debits"] == 5_700 and world["closing"] == world["opening"] - 5_700
    assert {k["kind"]: k["amount"] for k in report["by_kind"]} == {"deposit": 5_700}
    bad = await asyncio.to_thread(api, server, "GET", "/api/v1/reconciliation?currency=CNY&from=x&to=1")
    assert bad[0] == 400 and bad[1]["code"] == 1004


async def test_the_server_api_drives_a_withdrawal_to_its_end(money: tuple[ChatServer, str]) -> None:
    server, _ = money
    await fund(server, "shop:shop1", 2_000, "fund-shop1")
    status, receipt = await asyncio.to_thread(
        api, server, "POST", "/api/v1/withdrawals", {"owner": "shop:shop1", "amount": 1_500, "currency": "CNY",
                                                    "key": "payout-1"})
    assert status == 201 and receipt["balance_after"] == 500
    wid = receipt["withdrawal_id"]
    status, pending = await asyncio.to_thread(api, server, "GET", f"/api/v1/withdrawals/{wid}")
    assert status == 200 and pending["state"] == "PENDING"
    status, failed = await asyncio.to_thread(
        api, server, "POST", f"/api/v1/withdrawals/{wid}/fail", {"reason": "account name mismatch"})
    assert status == 200 and failed["state"] == "FAILED"
    status, late = await asyncio.to_thread(
        api, server, "POST", f"/api/v1/withdrawals/{wid}/complete", {"reference": "late-ref"})
    assert status == 409 and late["code"] == 6021
    status, body = await asyncio.to_thread(api, server, "GET", "/api/v1/balances/shop:shop1")
    assert body["balances"] == {"CNY": 2_000}
    missing = await asyncio.to_thread(api, server, "POST", "/api/v1/withdrawals/w_none/complete",
                                      {"reference": "r"})
    assert missing[0] == 404 and missing[1]["code"] == 6020
    status, bad = await asyncio.to_thread(api, server, "POST", f"/api/v1/withdrawals/{wid}/complete", {})
    assert status == 400 and bad["code"] == 6000
    await asyncio.to_thread(check_invariants, server.money.service.store)  # type: ignore[union-attr]
