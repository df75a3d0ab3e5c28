"""The arbiter's desk in a real browser: a buyer reports the shop's message and disputes a
refused refund, a shop reports another buyer's conversation; the arbiter sees both lists,
opens the conversation read-only, downloads the evidence (which verifies offline) and
decides the dispute, and the buyer's card in the widget changes. Also: the phone layout and
axe-core on the desk.

With ``SAVE_DOC_SCREENSHOTS=1`` this also writes ``docs/screenshots/19-arbiter-desk.png``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from chat import evidence
from chat.server import ChatServer
from tests.chat.client import Client
from tests.chat.conftest import token

from .conftest import PageFactory, shot
from .test_a11y import AXE, axe_problems
from .test_browser import PIN, buyer_asks, open_widget

KEY = "evidence-key-for-the-desk-0123456789"
SHOP = "demo-shop"


async def story(server: ChatServer, ws: str, conv: str) -> tuple[str, int]:
    """Over the protocol: the shop asks for payment off the platform (reported by the buyer),
    then an order is paid, shipped, its refund refused and disputed; in a second conversation
    the shop reports the buyer. Returns (order id, reported seq)."""
    agent = await Client.connect(ws, token("demo-agent-1", "agent", shop=SHOP))
    buyer = await Client.connect(ws, token("demo-buyer-1"))
    bad = await agent.send_text(conv, "Pay me on WeChat instead, it is cheaper", "desk-wx")
    reported = await buyer.request({"type": "report", "conv": conv, "seq": bad["seq"],
                                    "reason": "asks me to pay outside the platform"})
    assert reported["type"] == "reported", reported
    offer = await agent.request({"type": "offer", "conv": conv, "price": 12_800, "key": "desk-offer-1"})
    order = offer["view"]["order_id"]
    steps: list[tuple[Client, dict[str, Any]]] = [
        (buyer, {"type": "pay", "order": order, "pin": PIN, "key": "desk-pay-01"}),
        (agent, {"type": "ship", "order": order, "tracking": "SF1234567890", "key": "desk-ship-1"}),
        (buyer, {"type": "refund", "order": order, "amount": 6000, "reason": "the tin arrived crushed",
                 "key": "desk-refund-1"}),
        (agent, {"type": "refund_answer", "order": order, "accept": False, "key": "desk-answer-1"}),
        (buyer, {"type": "dispute", "order": order, "reason": "photos of the tin are in the chat",
                 "key": "desk-dispute-1"}),
    ]
    for who, frame in steps:
        done = await who.request({**frame, "conv": conv})
        assert done["type"] == "payment", done
    other = await Client.connect(ws, token("demo-buyer-2"))
    listing = {"id": "demo-cups", "title": "青花瓷茶杯 Blue-and-white cups, set of 4 (demo)", "price": 8800,
               "currency": "CNY"}
    opened = await other.request({"type": "open", "shop": SHOP, "listing": listing})
    await other.send_text(opened["conversation"]["id"], "you are all thieves!!!", "rude-1")
    assert (await agent.request({"type": "report", "conv": opened["conversation"]["id"],
                                 "reason": "insults our staff"}))["type"] == "reported"
    for client in (agent, buyer, other):
        await client.close()
    return order, bad["seq"]


async def open_desk(new_page: PageFactory, base: str, **options: Any) -> Page:
    _, page = await new_page(accept_downloads=True, **options)
    await page.goto(f"{base}/demo/arbiter?lang=en")
    await expect(page.locator(".conn[data-status=online]")).to_be_visible()
    return page


async def test_the_arbiter_decides_from_the_desk(
    new_page: PageFactory, server_factory: Callable[..., Any], tmp_path: Path
) -> None:
    server = await server_factory(demo="on", pin_pepper="web-tests-pin-pepper-0123456789", evidence_key=KEY)
    base, ws = f"http://127.0.0.1:{server.port}", f"ws://127.0.0.1:{server.port}/ws"
    _, buyer_page = await new_page()
    widget = await open_widget(buyer_page, base)
    await buyer_asks(buyer_page, widget, "Is the tea from this spring?")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="this spring")).to_be_visible()
    (conv,) = [c.id for c in await server.hub.store.conversations_of_buyer("demo-buyer-1")]
    order, bad_seq = await story(server, ws, conv)
    await expect(widget.locator(".card[data-state=DISPUTED]")).to_be_visible()

    desk = await open_desk(new_page, base)
    disputes, reports = desk.locator(".desk-list.disputes"), desk.locator(".desk-list.reports")
    item = disputes.locator(f"button[data-order='{order}']")
    await expect(item).to_contain_text("Decide within 6 days")
    await expect(item).to_contain_text("¥128.00")
    await expect(desk.locator("#arb-disputes-h")).to_have_text("Open disputes (1)")
    await expect(reports.locator("button")).to_have_count(2)
    await expect(reports.locator("button").first).to_contain_text("insults our staff")  # newest first
    await expect(reports.locator("button").first).to_contain_text("The whole conversation")
    mine = reports.locator(f"button[data-conv='{conv}']")
    await expect(mine).to_contain_text("Pay me on WeChat instead")

    # the reported message, in its conversation: read-only, both sides named, cards drawn
    await mine.click()
    conversation = desk.locator(".desk-conv")
    row = conversation.locator(f".messages [data-seq='{bad_seq}']")
    await expect(row.locator(".reported-tag")).to_have_text("Reported: asks me to pay outside the platform")
    await expect(row.locator(".sender")).to_contain_text("Shop")
    await expect(conversation.locator(".card[data-state=DISPUTED]")).to_be_visible()
    await expect(conversation.locator(".card [data-action]")).to_have_count(0)
    assert await desk.locator("textarea, .composer").count() == 0
    await expect(conversation.locator(".decide-panel")).to_contain_text("¥128.00 held")
    if AXE.exists():
        await desk.add_script_tag(path=str(AXE))
        assert await axe_problems(desk) == []
    await shot(desk, "19-arbiter-desk", doc=True)

    # the evidence package is saved and verifies offline, as `python -m chat verify` checks it
    async with desk.expect_download() as info:
        await conversation.locator("button.download").click()
    saved = tmp_path / "evidence.json"
    await (await info.value).save_as(saved)
    package = json.loads(saved.read_text())
    assert package["conversation"]["id"] == conv
    assert evidence.verify(package, KEY.encode()).ok
    assert evidence.verify_file(str(saved), KEY) == 0
    await expect(conversation.locator(".toast.ok")).to_contain_text("Evidence saved")

    # a split: the amount is checked in our words, then the dispute is decided
    await conversation.locator(f".decide[data-order='{order}'] [data-outcome=split]").click()
    dialog = desk.locator(".dialog")
    await dialog.locator("input[name=buyer]").fill("200")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".dialog-error")).to_have_text("Enter an amount above zero and below ¥128.00.")
    await dialog.locator("input[name=buyer]").fill("60")
    await dialog.locator("button[type=submit]").click()
    await expect(conversation.locator(".toast.ok")).to_contain_text("Decided")
    await expect(disputes.locator("button")).to_have_count(0)
    await expect(conversation.locator(".card[data-state=RESOLVED]")).to_be_visible()
    await expect(widget.locator(".card[data-state=RESOLVED]")).to_be_visible()
    assert server.money.service.get_order(order).buyer_refund == 6000  # type: ignore[union-attr]


async def test_the_desk_on_a_phone(new_page: PageFactory, server_factory: Callable[..., Any]) -> None:
    """At 390×844 the lists and the conversation are two screens; Back (or Escape) returns."""
    server = await server_factory(demo="on", pin_pepper="web-tests-pin-pepper-0123456789", evidence_key=KEY)
    base, ws = f"http://127.0.0.1:{server.port}", f"ws://127.0.0.1:{server.port}/ws"
    _, page = await new_page()
    await page.goto(f"{base}/demo/")  # the demo's agents and PINs
    buyer = await Client.connect(ws, token("demo-buyer-2"))
    listing = {"id": "demo-cups", "title": "Cups (demo)", "price": 8800, "currency": "CNY"}
    conv = (await buyer.request({"type": "open", "shop": SHOP, "listing": listing}))["conversation"]["id"]
    await buyer.request({"type": "report", "conv": conv, "reason": "the shop never answers"})
    desk = await open_desk(new_page, base, viewport={"width": 390, "height": 844})
    item = desk.locator(f".desk-list.reports button[data-conv='{conv}']")
    await item.click()
    await expect(desk.locator(".desk-lists")).to_be_hidden()
    await expect(desk.locator(".desk-title")).to_be_focused()
    await expect(desk.locator(".desk-back")).to_be_in_viewport()
    await expect(desk.locator("button.download")).to_be_in_viewport()
    width = await desk.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await desk.locator(".desk-back").click()
    await expect(item).to_be_focused()
    await item.press("Enter")
    await expect(desk.locator(".desk-conv")).to_be_visible()
    await desk.keyboard.press("Escape")
    await expect(desk.locator(".desk-lists")).to_be_visible()
    await buyer.close()
