"""Invariant 12 under kill -9: a payment card appears if and only if the ledger committed, never twice."""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from payments import PaymentService, check_invariants, open_store

from .client import LISTING, Client
from .conftest import SERVER_SECRET, token
from .procs import HubProcess

PIN = "246810"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubProcess]:
    proc = HubProcess(tmp_path / "chat.db", {"SERVER_SECRET": SERVER_SECRET})
    await proc.start()
    yield proc
    proc.stop()


def deposit(hub: HubProcess, owner: str, amount: int, key: str) -> None:
    req = urllib.request.Request(
        f"http://127.0.0.1:{hub.env['API_PORT']}/api/v1/deposits", method="POST",
        data=json.dumps({"owner": owner, "amount": amount, "currency": "CNY", "key": key}).encode(),
        headers={"Authorization": f"Bearer {SERVER_SECRET}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201


async def test_cards_match_ledger_events_after_kill_9(hub: HubProcess, tmp_path: Path) -> None:
    """Kill the hub mid-payments: after restart each ledger event has exactly one card message, and no extra."""
    await asyncio.to_thread(deposit, hub, "user:b1", 10**9, "fund")
    agent = await Client.connect(hub.url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(hub.url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await buyer.request({"type": "set_pin", "pin": PIN})
    acked_orders: list[str] = []

    async def pump() -> None:
        i = 0
        while True:
            offer = await agent.request({"type": "offer", "conv": conv, "price": 100 + i, "key": f"offer-crash-{i}"})
            order = offer["view"]["order_id"]
            await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": f"pay-crash-{i}"})
            acked_orders.append(order)
            i += 1

    task = asyncio.create_task(pump())
    await asyncio.sleep(random.uniform(0.8, 1.6))
    hub.kill()
    with pytest.raises(Exception):  # noqa: B017 - the connection dies with the process, any error will do
        await asyncio.wait_for(task, 5)
    assert len(acked_orders) >= 3, "too few payments before the kill to mean anything"

    await hub.start()
    service = PaymentService(open_store(f"sqlite:///{tmp_path / 'payments.db'}"))
    events = await asyncio.to_thread(service.events_after, 0, 1000)
    assert len(events) < 1000
    buyer = await Client.connect(hub.url, token("b1"))
    # the restarted node's relay posts whatever the crash left unposted
    for _ in range(50):
        page = await buyer.request({"type": "history", "conv": conv, "after": 0, "limit": 200})
        messages = page["messages"]
        while page["more"]:
            page = await buyer.request({"type": "history", "conv": conv, "after": messages[-1]["seq"], "limit": 200})
            messages += page["messages"]
        posted = Counter(m["body"]["event"] for m in messages if m["kind"] in ("card", "card_update"))
        if set(posted) == {e.id for e in events if e.conversation_id == conv}:
            break
        await asyncio.sleep(0.2)
    assert all(n == 1 for n in posted.values()), f"a card was posted twice: {posted}"
    assert set(posted) == {e.id for e in events if e.conversation_id == conv}
    cards = Counter(m["body"]["id"] for m in messages if m["kind"] == "card")
    assert all(n == 1 for n in cards.values())
    for order in acked_orders:  # every acknowledged payment is in the ledger and shows as held
        assert (await asyncio.to_thread(service.get_order, order)).state == "HELD"
    await asyncio.to_thread(check_invariants, service.store)
