"""Small payments without PIN over the websocket, and the pepper the hub insists on.

A buyer switches quick pay on with the PIN, pays a small offer without one (the shop
sees the HELD card), is asked for the PIN (6044) over the caps and pays the same key with
it, and sees the state in ``wallet``. A production hub without its own pepper does not
start.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chat.server import ChatServer, build

from .client import Client
from .conftest import make_config, token
from .test_money import PIN, card_states, ready_pair


async def test_quick_pay_end_to_end(money: tuple[ChatServer, str]) -> None:
    server, url = money
    buyer, agent, conv = await ready_pair(server, url)
    small = (await agent.request({"type": "offer", "conv": conv, "price": 3000, "key": "offer-qp-1"}))["view"]
    assert await card_states(agent, conv, 1) == [("card", "OFFERED")]

    refused = await buyer.request({"type": "pay", "conv": conv, "order": small["order_id"], "key": "pay-qp-01"})
    assert refused["type"] == "error" and refused["code"] == 6044 and refused["details"]["reason"] == "off"

    no_pin = await buyer.request({"type": "set_quick_pay", "enabled": True, "currency": "CNY",
                                  "per_payment": 5000, "daily": 8000})
    assert no_pin["code"] == 6044
    too_much = await buyer.request({"type": "set_quick_pay", "enabled": True, "currency": "CNY",
                                    "per_payment": 10**9, "daily": 10**9, "pin": PIN})
    assert too_much["code"] == 6001 and too_much["details"]["field"] == "per_payment"
    on = await buyer.request({"type": "set_quick_pay", "enabled": True, "currency": "CNY",
                              "per_payment": 5000, "daily": 8000, "pin": PIN})
    assert on["type"] == "ok", on
    wallet = await buyer.request({"type": "wallet"})
    assert wallet["quick_pay"] == {"CNY": {"per_payment": 5000, "daily": 8000, "remaining": 8000}}

    paid = await buyer.request({"type": "pay", "conv": conv, "order": small["order_id"], "key": "pay-qp-01"})
    assert paid["type"] == "payment" and paid["view"]["state"] == "HELD", paid
    assert await card_states(agent, conv, 1) == [("card_update", "HELD")]

    big = (await agent.request({"type": "offer", "conv": conv, "price": 6000, "key": "offer-qp-2"}))["view"]
    over = await buyer.request({"type": "pay", "conv": conv, "order": big["order_id"], "key": "pay-qp-02"})
    assert over["code"] == 6044 and over["details"]["reason"] == "per_payment"
    with_pin = await buyer.request({"type": "pay", "conv": conv, "order": big["order_id"], "pin": PIN,
                                    "key": "pay-qp-02"})
    assert with_pin["view"]["state"] == "HELD"

    wallet = await buyer.request({"type": "wallet"})
    assert wallet["balances"]["user:b1"] == {"CNY": 100_000 - 9000}
    assert wallet["quick_pay"]["CNY"]["remaining"] == 5000  # the PIN payment did not count

    off = await buyer.request({"type": "set_quick_pay", "enabled": False})
    assert off["type"] == "ok"
    assert (await buyer.request({"type": "wallet"}))["quick_pay"] == {}
    # Agents pay with the shop's PIN only.
    denied = await agent.request({"type": "set_quick_pay", "enabled": False})
    assert denied["code"] == 3003


async def test_agent_wallet_has_no_quick_pay(money: tuple[ChatServer, str]) -> None:
    _server, url = money
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    wallet = await agent.request({"type": "wallet"})
    assert wallet["type"] == "wallet" and wallet["quick_pay"] == {}


def test_production_hub_refuses_the_development_pepper(tmp_path: Path) -> None:
    """A real TOKEN_SECRET (production) needs a real PIN_PEPPER while payments are on."""
    with pytest.raises(SystemExit, match="PIN_PEPPER"):
        build(make_config(tmp_path, pin_pepper="dev-pin-pepper-change-me-0123456789"))
    build(make_config(tmp_path, pin_pepper="dev-pin-pepper-change-me-0123456789", payments="off"))
    with pytest.raises(SystemExit, match="16 characters"):
        make_config(tmp_path, pin_pepper="short").payment_settings()
