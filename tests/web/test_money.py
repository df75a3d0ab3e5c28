"""The money screens (issue 10, item 7): a price changed under an open pay dialog, our words for a
short PIN, confirmations that do not look like errors, deadlines, cancelling an offer, the card's
timeline, the dispute reason, and a refund request at the top of the shop's inbox."""

from __future__ import annotations

from playwright.async_api import expect

from chat.server import ChatServer

from .conftest import PageFactory, shot
from .test_browser import PIN, buyer_asks, open_backoffice, open_widget


async def test_money_screens_from_offer_to_dispute(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    agent = await open_backoffice(new_page, base_url)
    _, other = await new_page()
    other_widget = await open_widget(other, base_url, "?buyer=demo-buyer-2")
    await buyer_asks(other, other_widget, "Is the teapot handmade?")
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer.locator("#ask").click()
    await expect(widget.locator(".messages .row").first).to_be_visible()
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()

    # an offer runs against its pay-by deadline; either side may cancel it
    await agent.locator("form.offer input[name=price]").fill("105")
    await agent.locator("form.offer button").click()
    offered = widget.locator(".card[data-state=OFFERED]")
    await expect(offered.locator(".card-timer")).to_contain_text("Pay within")
    await expect(agent.locator(".messages .card[data-state=OFFERED] .card-timer")).to_contain_text("The buyer pays within")
    await expect(agent.locator(".messages .card[data-state=OFFERED] [data-action=cancel]")).to_be_visible()
    await offered.locator("[data-action=cancel]").click()
    await widget.locator(".dialog button[type=submit]").click()
    await expect(widget.locator(".card[data-state=CANCELLED]")).to_be_visible()
    await expect(widget.locator(".toast.ok")).to_have_text("The offer was cancelled.")

    # the price changes while the buyer's pay dialog is open: the dialog follows
    await agent.locator("form.offer input[name=price]").fill("105")
    await agent.locator("form.offer button").click()
    await offered.locator("[data-action=pay]").click()
    dialog = widget.locator(".dialog")
    await expect(dialog.locator("h2")).to_have_text("Pay ¥105.00")
    await agent.locator(".messages .card[data-state=OFFERED] [data-action=reprice]").click()
    await agent.locator(".dialog input[name=price]").fill("99")
    await agent.locator(".dialog button[type=submit]").click()
    await expect(offered.locator(".card-amount")).to_have_text("¥99.00")
    # a short PIN is explained in our words (the browser's own bubble would block the submit)
    await dialog.locator("input[name=pin]").fill("123")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".dialog-error")).to_have_text("The payment PIN must be 6 digits.")
    await dialog.locator("input[name=pin]").fill(PIN)
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator("h2")).to_have_text("Pay ¥99.00")
    await expect(dialog.locator(".dialog-error")).to_contain_text("changed the price to ¥99.00")
    await dialog.locator("button[type=submit]").click()
    held = widget.locator(".card[data-state=HELD]")
    await expect(held).to_be_visible()
    toast = widget.locator(".toast")
    await expect(toast).to_have_text("Paid. The money is held until you confirm receipt.")
    await expect(toast).to_have_class("toast ok")
    await expect(toast).to_have_attribute("role", "status")
    await expect(held.locator(".card-timer")).to_contain_text("The shop ships within")
    assert hub.money.service.balances("user:demo-buyer-1") == {"CNY": 1_000_000 - 9900}  # type: ignore[union-attr]

    # shipped, then a refund request: at the top of the shop's inbox, above a waiting question
    await agent.locator(".messages .card[data-state=HELD] [data-action=ship]").click()
    await agent.locator(".dialog input[name=tracking]").fill("SF Express SF1234567890")
    await agent.locator(".dialog button[type=submit]").click()
    await widget.locator(".card[data-state=SHIPPED] [data-action=refund]").click()
    await widget.locator(".dialog textarea[name=reason]").fill("One tin arrived dented.")
    await widget.locator(".dialog button[type=submit]").click()
    await expect(widget.locator(".card[data-state=REFUND_REQUESTED] .card-timer").first).to_contain_text(
        "The shop answers your refund request within")
    first = agent.locator("button.conv").first
    await expect(first).to_have_attribute("data-buyer", "demo-buyer-1")
    await expect(first.locator(".urgent")).to_have_text("Refund requested: answer it")

    # refused, then sent to the platform: the reason shows, and the card tells its whole story
    await agent.locator(".messages .card[data-state=REFUND_REQUESTED] [data-action=refund-refuse]").click()
    await agent.locator(".dialog button[type=submit]").click()
    await widget.locator(".card[data-state=REFUND_REFUSED] [data-action=dispute]").click()
    await widget.locator(".dialog textarea[name=reason]").fill("The shop refused a fair refund.")
    await widget.locator(".dialog button[type=submit]").click()
    disputed = widget.locator(".messages .card[data-state=DISPUTED]")
    await expect(disputed.locator(".dispute-reason")).to_contain_text("The shop refused a fair refund.")
    await expect(disputed.locator(".card-timer")).to_contain_text("The platform decides within")
    steps = disputed.locator(".card-timeline li b")
    await expect(steps).to_have_text(["Offered", "Price changed", "Paid", "Shipped", "Refund asked",
                                      "Refund refused", "Sent to the platform"])
    await expect(disputed.locator(".card-timeline li[data-state=SHIPPED]")).to_contain_text("SF1234567890")
    await expect(disputed.locator(".card-timeline li[data-state=REFUND_REQUESTED]")).to_contain_text("dented")
    await expect(agent.locator(".messages .card[data-state=DISPUTED] .dispute-reason")).to_be_visible()
    await shot(buyer, "10-widget-card-timeline")
