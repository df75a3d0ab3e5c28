"""Trade histories for the credit screens, made through the ledger's own commands (offer, pay,
confirm, rate; refund, dispute), so the figures the browser shows are computed, not faked; and
axe-core run on just the screens these tests add."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Frame, Page

from chat.store.base import Store
from payments import Actor, PaymentService, user_owner

PIN = "135790"


def _buyer(service: PaymentService, buyer: str) -> Actor:
    actor = Actor(user_id=buyer, role="buyer")
    service.deposit(user_owner(buyer), 1_000_000, "CNY", f"seed-topup-{buyer}")
    service.set_pin(actor, PIN)
    return actor


def _released(service: PaymentService, shop: str, buyer: Actor, tag: str) -> str:
    agent = Actor(user_id="seed-agent", role="agent", shop_id=shop)
    order = service.offer(agent, order_id=f"o_seed_{tag}", conversation_id=f"c_seed_{tag}", shop_id=shop,
                          buyer_id=buyer.user_id, listing_id=f"l_seed_{tag}", title="Seed tea", unit_price=1000,
                          quantity=1, currency="CNY")
    service.pay(buyer, order_id=order.order_id, pin=PIN, idem_key=f"seed-pay-{tag}")
    service.confirm(buyer, order_id=order.order_id, idem_key=f"seed-confirm-{tag}")
    return order.order_id


def seed_shop_credit(service: PaymentService, shop: str, good: int, neutral: int = 0) -> None:
    """``good`` + ``neutral`` released orders of as many buyers, each rated by its buyer."""
    for i in range(good + neutral):
        buyer = _buyer(service, f"seed-buyer-{i:03d}")
        order = _released(service, shop, buyer, f"{shop}-{i:03d}")
        service.ratings.rate(buyer, order, "good" if i < good else "neutral")


def seed_buyer_record(service: PaymentService, buyer: str, rated: int, disputed: int = 0) -> None:
    """``rated`` released orders of ``buyer`` at other shops, each rated good by its shop, and
    ``disputed`` orders the buyer sent to the arbiter after a refused refund."""
    actor = Actor(user_id=buyer, role="buyer")
    service.deposit(user_owner(buyer), 1_000_000, "CNY", f"seed-topup-{buyer}")
    service.set_pin(actor, PIN)
    for i in range(rated):
        shop = f"seed-shop-{i:02d}"
        order = _released(service, shop, actor, f"{buyer}-{i:02d}")
        service.ratings.rate(Actor(user_id="seed-agent", role="agent", shop_id=shop), order, "good")
    for i in range(disputed):
        shop = f"seed-shop-d{i:02d}"
        agent = Actor(user_id="seed-agent", role="agent", shop_id=shop)
        tag = f"{buyer}-d{i:02d}"
        disputed_order = service.offer(agent, order_id=f"o_seed_{tag}", conversation_id=f"c_seed_{tag}", shop_id=shop,
                              buyer_id=buyer, listing_id=f"l_seed_{tag}", title="Seed tea", unit_price=1000,
                              quantity=1, currency="CNY")
        service.pay(actor, order_id=disputed_order.order_id, pin=PIN, idem_key=f"seed-pay-{tag}")
        service.ship(agent, order_id=disputed_order.order_id)
        service.request_refund(actor, order_id=disputed_order.order_id, amount=1000, reason="not as described")
        service.answer_refund(agent, order_id=disputed_order.order_id, accept=False)
        service.dispute(actor, order_id=disputed_order.order_id, reason="the refund was refused")


async def seed_replies(store: Store, shop: str, minutes: list[int], now: int) -> None:
    """One answered question per entry: a buyer asked 30 minutes ago, an agent answered
    ``minutes`` later (the shop's "usually replies in" is their median)."""
    listing = {"id": "seed-listing", "title": "Seed tea", "price": 1000, "currency": "CNY"}
    for i, wait in enumerate(minutes):
        conv, _ = await store.open_conversation(f"c_seed_reply_{i}", f"seed-asker-{i}", shop, listing, None, now)
        asked = now - 30 * 60_000
        await store.append(conv.id, conv.buyer, "buyer", "text", {"text": "在吗？"}, f"ask-{i}", asked)
        await store.append(conv.id, "seed-agent", "agent", "text", {"text": "在的"}, f"answer-{i}", asked + wait * 60_000)


async def axe_in(target: Page | Frame, selector: str) -> list[str]:
    """Serious and critical axe-core violations inside ``selector`` only (the screens these tests
    add), one line each; [] when axe-core is not installed."""
    from .test_a11y import AXE

    if not AXE.exists():
        return []
    if not await target.evaluate("() => !!window.axe"):
        await target.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await target.evaluate(
        "(sel) => axe.run(document.querySelector(sel), { resultTypes: ['violations'] })", selector)
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]
