"""After-sale refunds (售后) in the browser: a buyer pays, confirms and claims money back in the
widget; the shop refuses in the back office, the buyer asks the platform, and the arbiter on the
desk pays part (refused first with 6011, in words, while the shop's balance and deposit fall
short); in the second test the shop pays the claim, partly from its deposit. Both cards show
each state, its deadline in words and the claim.

With ``SAVE_DOC_SCREENSHOTS=1`` this also writes ``docs/screenshots/20-after-sale-claim.png``."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import FrameLocator, Page, expect

from chat.server import ChatServer

from .conftest import PageFactory, shot
from .test_a11y import AXE, axe_problems, widget_frame
from .test_arbiter_desk import open_desk
from .test_browser import PIN, buyer_asks, open_backoffice, open_widget

SHOP = "demo-shop"
REASON = "The kettle stopped heating after a week."


async def released_order(new_page: PageFactory, base_url: str, **options: Any) -> tuple[Page, Page, FrameLocator]:
    """The back office and the buyer's widget, with a ¥128.00 order paid, shipped and confirmed."""
    agent = await open_backoffice(new_page, base_url)
    _, buyer = await new_page(**options)
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "Does the kettle keep tea warm?")
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await agent.locator("form.offer input[name=price]").fill("128")
    await agent.locator("form.offer button").click()
    await widget.locator(".card[data-state=OFFERED] [data-action=pay]").click()
    await widget.locator(".dialog input[name=pin]").fill(PIN)
    await widget.locator(".dialog button[type=submit]").click()
    await agent.locator(".messages .card[data-state=HELD] [data-action=ship]").click()
    await agent.locator(".dialog input[name=tracking]").fill("SF Express SF1234567890")
    await agent.locator(".dialog button[type=submit]").click()
    await widget.locator(".card[data-state=SHIPPED] [data-action=confirm]").click()
    await widget.locator(".dialog button[type=submit]").click()
    released = widget.locator(".messages .card[data-state=RELEASED]")
    await expect(released.locator(".card-timer")).to_contain_text("After-sale claims possible for 14 days 23 h")
    await expect(agent.locator(".messages .card[data-state=RELEASED] .card-timer")).to_contain_text(
        "The buyer may claim after sale for 14 days")
    await expect(agent.locator(".messages .card[data-state=RELEASED] [data-action^=after-sale]")).to_have_count(0)
    return agent, buyer, widget


async def claim(buyer: Page, widget: FrameLocator, amount: str) -> None:
    """The buyer claims `amount` back from the released card: the dialog's checks, then sent."""
    await widget.locator(".card[data-state=RELEASED] [data-action=after-sale]").click()
    dialog = widget.locator(".dialog")
    await expect(dialog.locator("h2")).to_have_text("Claim an after-sale refund")
    field = dialog.locator("input[name=amount]")
    await expect(field).to_be_focused()  # keyboard: the first field, labelled
    await expect(field).to_have_value("128.00")
    await expect(dialog.get_by_label("Amount to claim back (CNY)")).to_have_count(1)
    if AXE.exists():
        assert await axe_problems(await widget_frame(buyer)) == []
    await field.fill("200")
    await dialog.locator("textarea[name=reason]").fill(REASON)
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".dialog-error")).to_have_text("Enter an amount above zero and at most ¥128.00.")
    await field.fill(amount)
    await dialog.locator("button[type=submit]").click()
    await expect(widget.locator(".toast.ok")).to_have_text("Your claim was sent to the shop.")


async def test_a_refused_claim_goes_to_the_platform_which_pays_part(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    agent, buyer, widget = await released_order(new_page, base_url, viewport={"width": 1280, "height": 1000})
    await claim(buyer, widget, "50")
    asked = widget.locator(".messages .card[data-state=AFTER_SALE_REQUESTED]")
    await expect(asked.locator(".badge")).to_have_text("After-sale claim")
    await expect(asked.locator(".claim")).to_have_text(f"Claimed back: ¥50.00 (“{REASON}”)")
    await expect(asked.locator(".card-timer")).to_contain_text("The shop answers within 47 h 59 min, else your claim is granted")
    await expect(asked.locator("[data-action]")).to_have_count(0)
    shop_card = agent.locator(".messages .card[data-state=AFTER_SALE_REQUESTED]")
    await expect(shop_card.locator(".card-timer")).to_contain_text("Answer within 47 h 59 min, else the claim is granted")
    await expect(shop_card.locator(".card-state")).to_contain_text("the buyer claims money back after sale: answer it")
    await expect(agent.locator("button.conv").first.locator(".urgent")).to_have_text("After-sale claim: answer it")
    await shot(agent, "20-after-sale-claim", doc=True)
    if AXE.exists():
        assert await axe_problems(agent) == []

    # the shop refuses: the buyer may ask the platform until the new deadline
    await shop_card.locator("[data-action=after-sale-refuse]").click()
    await expect(agent.locator(".dialog h2")).to_have_text("Refuse the after-sale claim?")
    await agent.locator(".dialog button[type=submit]").click()
    refused = widget.locator(".messages .card[data-state=AFTER_SALE_REFUSED]")
    await expect(refused.locator(".card-timer")).to_contain_text("You may ask the platform within 6 days 23 h")
    await expect(agent.locator(".messages .card[data-state=AFTER_SALE_REFUSED] .card-timer")).to_contain_text(
        "The buyer may ask the platform within 6 days")
    await expect(agent.locator(".messages .card[data-state=AFTER_SALE_REFUSED] [data-action]")).to_have_count(0)
    await expect(agent.locator("button.conv").first.locator(".urgent")).to_have_count(0)
    await shot(buyer, "21-widget-after-sale-refused")
    await refused.locator("[data-action=after-sale-dispute]").click()
    await expect(widget.locator(".dialog h2")).to_have_text("Ask the platform to decide")
    await widget.locator(".dialog textarea[name=reason]").fill("It broke, the shop will not help.")
    await widget.locator(".dialog button[type=submit]").click()
    await expect(widget.locator(".toast.ok")).to_have_text("The platform will decide your claim.")
    disputed = widget.locator(".messages .card[data-state=AFTER_SALE_DISPUTED]")
    await expect(disputed.locator(".card-timer")).to_contain_text("The platform decides within")
    await expect(disputed.locator(".dispute-reason")).to_contain_text("the shop will not help")
    await expect(agent.locator(".messages .card[data-state=AFTER_SALE_DISPUTED] .badge")).to_have_text(
        "Claim with the platform")

    # the shop's money falls short: it was paid out, and its deposit holds ¥10.00
    service = hub.money.service  # type: ignore[union-attr]
    await asyncio.to_thread(service.withdraw, f"shop:{SHOP}", 12_800, "CNY", "after-sale-out-1")
    await asyncio.to_thread(service.deposit, f"deposit:{SHOP}", 1_000, "CNY", "after-sale-deposit-1")

    desk = await open_desk(new_page, base_url)
    item = desk.locator(".desk-list.disputes button.dispute")
    await expect(item).to_contain_text("After-sale claim · order ¥128.00, released")  # the claim: in the conversation
    await item.click()
    conversation = desk.locator(".desk-conv")
    panel = conversation.locator(".decide[data-after-sale='1']")
    await expect(panel).to_contain_text("claim ¥50.00")
    await expect(panel).to_contain_text("order ¥128.00, released")
    await expect(panel).to_contain_text(REASON)
    await expect(panel.locator("button")).to_have_text(["Keep with the shop", "Pay the claim", "Pay part…"])
    await expect(item).to_contain_text("¥50.00")
    await expect(conversation.locator(".card[data-state=AFTER_SALE_DISPUTED] .claim")).to_contain_text("¥50.00")
    if AXE.exists():
        assert await axe_problems(desk) == []
    await shot(desk, "22-desk-after-sale")
    await panel.locator("[data-outcome=split]").click()
    dialog = desk.locator(".dialog")
    await expect(dialog.locator("h2")).to_have_text("Pay part of the claim?")
    await dialog.locator("input[name=buyer]").fill("50")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".dialog-error")).to_have_text("Enter an amount above zero and below ¥50.00.")
    await dialog.locator("input[name=buyer]").fill("30")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".dialog-error")).to_have_text(
        "The shop's balance and deposit hold only ¥10.00: decide at most that, or wait until the marketplace "
        "tops up the deposit.")
    # the marketplace tops up the deposit; the same decision (same key) goes through
    await asyncio.to_thread(service.deposit, f"deposit:{SHOP}", 5_000, "CNY", "after-sale-deposit-2")
    await dialog.locator("button[type=submit]").click()
    await expect(conversation.locator(".toast.ok")).to_contain_text("Decided: the order is now “Claim decided”")
    await expect(desk.locator(".desk-list.disputes button")).to_have_count(0)

    resolved = widget.locator(".messages .card[data-state=AFTER_SALE_RESOLVED]")
    await expect(resolved.locator(".claim-paid")).to_have_text("Paid back after sale: ¥30.00")
    await expect(resolved.locator(".card-timer")).to_have_count(0)
    await expect(resolved.locator(".card-timeline li b")).to_have_text(
        ["Offered", "Paid", "Shipped", "Completed", "After-sale claim", "Claim refused", "Sent to the platform",
         "Decided by the platform"])
    await expect(agent.locator(".messages .card[data-state=AFTER_SALE_RESOLVED] .claim-paid")).to_have_text(
        "Paid back after sale: ¥30.00 · of which ¥30.00 from the shop's deposit")
    assert service.balances("user:demo-buyer-1") == {"CNY": 1_000_000 - 12_800 + 3_000}
    await shot(buyer, "21-widget-after-sale")


async def test_the_shop_pays_a_claim_partly_from_its_deposit(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    agent, buyer, widget = await released_order(new_page, base_url)
    # another buyer's question waits; the claim still comes first in the inbox
    _, other = await new_page()
    other_widget = await open_widget(other, base_url, "?buyer=demo-buyer-2")
    await buyer_asks(other, other_widget, "Is the teapot handmade?")
    await expect(agent.locator("button.conv[data-buyer='demo-buyer-2']")).to_contain_text("waiting")
    service = hub.money.service  # type: ignore[union-attr]
    await asyncio.to_thread(service.withdraw, f"shop:{SHOP}", 10_000, "CNY", "after-sale-out-2")
    await asyncio.to_thread(service.deposit, f"deposit:{SHOP}", 5_000, "CNY", "after-sale-deposit-3")

    await claim(buyer, widget, "50")
    first = agent.locator("button.conv").first
    await expect(first).to_have_attribute("data-buyer", "demo-buyer-1")
    await expect(first.locator(".urgent")).to_have_text("After-sale claim: answer it")
    shop_card = agent.locator(".messages .card[data-state=AFTER_SALE_REQUESTED]")
    await shop_card.locator("[data-action=after-sale-accept]").focus()
    await agent.keyboard.press("Enter")
    dialog = agent.locator(".dialog")
    await expect(dialog.locator("h2")).to_have_text("Pay the after-sale claim?")
    await expect(dialog.locator("p")).to_have_text(
        "¥50.00 goes back to the buyer: from the shop's balance first, then its deposit.")
    await dialog.locator("button[type=submit]").click()

    paid = widget.locator(".messages .card[data-state=AFTER_SALE_REFUNDED]")
    await expect(paid.locator(".badge")).to_have_text("Claim paid")
    await expect(paid.locator(".claim-paid")).to_have_text("Paid back after sale: ¥50.00")  # no deposit talk for the buyer
    await expect(paid.locator("[data-action]")).to_have_count(0)
    shop_paid = agent.locator(".messages .card[data-state=AFTER_SALE_REFUNDED]")
    await expect(shop_paid.locator(".claim-paid")).to_have_text(
        "Paid back after sale: ¥50.00 · of which ¥22.00 from the shop's deposit")
    await expect(first.locator(".urgent")).to_have_count(0)
    assert service.balances("user:demo-buyer-1") == {"CNY": 1_000_000 - 12_800 + 5_000}
    assert service.balances(f"deposit:{SHOP}") == {"CNY": 2_800}
