"""The message list renders incrementally (issue 10, item 10): a row is built again only when
what it shows changed, so a picture whose address is dead is not asked for on every event."""

from __future__ import annotations

from playwright.async_api import Request, expect

from chat.server import ChatServer

from .conftest import PageFactory
from .test_browser import open_widget


async def test_a_dead_picture_is_not_requested_again_on_every_event(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    _, buyer = await new_page()
    dead = f"{base_url}/demo/img/gone-{hub.port}.png"  # the hub answers 404: browsers never cache that
    asked: list[str] = []

    def on_request(request: Request) -> None:
        if request.url == dead:
            asked.append(request.url)

    buyer.on("request", on_request)
    widget = await open_widget(buyer, base_url)
    await buyer.locator("#ask").click()
    await widget.locator("[data-action=image]").click()
    await widget.locator(".dialog input[name=url]").fill(dead)
    await widget.locator(".dialog button[type=submit]").click()
    await expect(widget.locator(".row.mine:not(.pending) .bubble.image img")).to_have_count(1)
    built = len(asked)  # the pending row, then the stored one
    assert 1 <= built <= 2, asked
    # every message sent is several events (pending, ack, conversation, message, read marks)
    for i in range(6):
        await widget.locator("textarea").fill(f"after the picture {i}")
        await widget.locator("textarea").press("Enter")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="after the picture")).to_have_count(6)
    await buyer.wait_for_timeout(300)
    assert len(asked) == built, f"the dead picture was asked for {len(asked)} times"
    # the rows that did not change are the same elements: nothing was rebuilt
    first = widget.locator(".row.mine", has_text="after the picture 0")
    await first.evaluate("el => { el.dataset.marker = 'kept'; }")
    await widget.locator("textarea").fill("one more")
    await widget.locator("textarea").press("Enter")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="one more")).to_be_visible()
    await expect(widget.locator(".row.mine[data-marker=kept]")).to_have_count(1)
