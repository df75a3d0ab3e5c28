"""The message list in a real browser (issue 10, item 4): pinned to the bottom while the reader is
there, even when a picture loads later; a "new messages" pill when the reader has scrolled up."""

from __future__ import annotations

import asyncio

from playwright.async_api import Route, expect

from chat.server import ChatServer

from .conftest import PageFactory, shot
from .test_browser import WIDGET, open_backoffice, open_widget

TALL_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="220" height="260" viewBox="0 0 220 260">'
            '<rect width="220" height="260" fill="#8fbc8f"/></svg>')

AT_BOTTOM = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 4"


async def test_list_stays_pinned_after_a_picture_loads_and_a_pill_shows_new_messages_below(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    agent = await open_backoffice(new_page, base_url)
    context, buyer = await new_page()
    loaded = asyncio.Event()

    async def slow_picture(route: Route) -> None:
        await asyncio.sleep(1.5)  # the picture arrives well after its message was drawn
        await route.fulfill(status=200, content_type="image/svg+xml", body=TALL_SVG)
        loaded.set()

    await context.route("**/slow/*.svg", slow_picture)
    widget = await open_widget(buyer, base_url)
    await buyer.locator("#ask").click()
    for i in range(6):
        await widget.locator("textarea").fill(f"question {i}")
        await widget.locator("textarea").press("Enter")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="question")).to_have_count(6)
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()

    # the shop answers with a picture: when it has loaded, the newest message is still in sight
    await agent.locator(".composer [data-action=image]").click()
    await agent.locator(".dialog input[name=url]").fill(f"{base_url}/slow/photo-1.svg")
    await agent.locator(".dialog button[type=submit]").click()
    picture = widget.locator(".row.theirs .bubble.image img")
    await expect(picture).to_have_count(1)
    await asyncio.wait_for(loaded.wait(), 10)
    await buyer.frame_locator(WIDGET).locator(".row.theirs img").evaluate(
        "img => img.decode()")
    list_ = widget.locator(".messages")
    box = await picture.bounding_box()
    assert box is not None and box["height"] > 150
    await asyncio.sleep(0.3)
    assert await list_.evaluate(AT_BOTTOM), "the picture pushed the newest message out of sight"
    await expect(widget.locator(".new-below")).to_be_hidden()

    # the reader scrolls up to reread: a new reply does not move the list, a pill says it is there
    await list_.evaluate("el => { el.scrollTop = 0; }")
    await asyncio.sleep(0.2)
    await agent.locator(".composer textarea").fill("Here is the photo you asked for")
    await agent.locator(".composer textarea").press("Enter")
    await expect(widget.locator(".row.theirs .bubble", has_text="photo you asked for")).to_have_count(1)
    pill = widget.locator(".new-below")
    await expect(pill).to_be_visible()
    await expect(pill).to_have_text("New messages ↓")
    assert await list_.evaluate("el => el.scrollTop") < 60
    await shot(buyer, "14-widget-new-messages-pill")
    await pill.click()
    await expect(pill).to_be_hidden()
    assert await list_.evaluate(AT_BOTTOM)
