"""Agents by display name (issue 10): the buyer sees who of the shop answered and who took over
by name, never by internal id; colleagues' hand-over menu and notes read with names too."""

from __future__ import annotations

from playwright.async_api import expect

from chat.server import ChatServer

from .conftest import PageFactory, shot
from .credit_seed import axe_in
from .test_backoffice import open_office
from .test_browser import WIDGET, buyer_asks, open_widget

LIN, WANG = "小林 Lin (demo agent)", "Wang (demo agent)"


async def test_the_buyer_and_colleagues_see_agents_by_name(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    one = await open_office(new_page, base_url, "demo-agent-1")
    two = await open_office(new_page, base_url, "demo-agent-2")
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "Is this year's tea?")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="this year")).to_be_visible()

    await one.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await one.locator("form.composer textarea").fill("Yes, picked in April")
    await one.locator("form.composer textarea").press("Enter")
    row = widget.locator(".row.theirs", has_text="picked in April")
    await expect(row.locator(".agent-name")).to_have_text(LIN)
    await expect(widget.locator(".head .answering")).to_contain_text(LIN)
    await expect(widget.locator(".messages")).not_to_contain_text("demo-agent")

    # the hand-over menu offers the colleague by name; the note reads with names on both sides
    menu = one.locator(".chat-head select")
    await expect(menu.locator("option[value='demo-agent-2']")).to_have_text(WANG)
    await menu.select_option("demo-agent-2")
    await expect(widget.locator(".note", has_text=WANG)).to_contain_text("now answering you")
    await expect(widget.locator(".head .answering")).to_contain_text(WANG)
    await expect(widget.locator(".messages")).not_to_contain_text("demo-agent")
    await two.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await expect(two.locator(".note", has_text="handed")).to_have_text(f"{LIN} handed this conversation over to {WANG}.")
    await expect(one.locator(".chat-head")).to_contain_text(f"assigned to {WANG}")

    frame = await (await buyer.locator(WIDGET).element_handle()).content_frame()  # type: ignore[union-attr]
    assert frame is not None and await axe_in(frame, ".panel") == []
    assert await axe_in(one, ".chat-head") == [] and await axe_in(two, ".chat") == []
    await shot(buyer, "18-agent-names", doc=True)
