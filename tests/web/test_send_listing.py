"""An agent sends another listing card from the back office (issue 10): picked from the shop's
listings seen in its conversations, or typed in; the buyer sees it in the widget, unverified."""

from __future__ import annotations

from playwright.async_api import expect

from chat.server import ChatServer

from .conftest import PageFactory
from .credit_seed import axe_in
from .test_backoffice import open_office
from .test_browser import buyer_asks, open_widget


async def test_an_agent_sends_a_listing_card_the_buyer_sees(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    _, buyer = await new_page()
    # the buyer asked about the teapot once, so the shop's conversations know that listing
    widget = await open_widget(buyer, base_url, "?listing=demo-teapot")
    await buyer_asks(buyer, widget, "Is the teapot handmade?")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="handmade")).to_be_visible()
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "And the tea?")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="the tea")).to_be_visible()

    office = await open_office(new_page, base_url, "demo-agent-1")
    await office.locator("button.conv[data-buyer='demo-buyer-1']", has_text="Longjing").click()
    await office.locator("button[data-action=send-listing]").click()
    dialog = office.locator("form.dialog")
    await expect(dialog.locator("select[name=pick] option")).to_have_text(["Enter one below", "宜兴紫砂壶 Yixing clay teapot (demo)"])
    assert await axe_in(office, "form.dialog") == []
    # typed in: refused in words until it is a listing
    await dialog.locator("input[name=id]").fill("gift-box")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".dialog-error")).to_have_text("Enter the listing's id and title.")
    await dialog.locator("select[name=pick]").select_option("demo-teapot")
    await expect(dialog.locator("input[name=price]")).to_have_value("368.00")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog).to_have_count(0)

    card = widget.locator(".row.theirs .product-bubble", has_text="Yixing clay teapot")
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("368.00")
    await expect(office.locator(".row.mine:not(.pending) .product-bubble", has_text="Yixing")).to_be_visible()
    convs = await hub.hub.store.conversations_of_buyer("demo-buyer-1")
    tea = next(c for c in convs if c.listing["id"] != "demo-teapot")
    sent = [m for m in await hub.hub.store.messages(tea.id, after=0, limit=50) if m.kind == "product" and m.role == "agent"]
    assert [m.body["listing"]["id"] for m in sent] == ["demo-teapot"] and "verified" not in sent[0].body["listing"]
