"""Pictures in the browser: the buyer picks a photo, the shop sees its thumbnail and enlarges it;
a stranger's fetch is refused; a file that is not a picture is refused in words."""

from __future__ import annotations

import base64

import aiohttp
from playwright.async_api import expect

from chat.auth import mint
from chat.server import ChatServer
from tests.chat import media_samples as samples

from .conftest import PageFactory, shot
from .test_a11y import AXE, axe_problems
from .test_browser import buyer_asks, open_backoffice, open_widget


async def fetch(url: str, token: str | None = None) -> int:
    """The status of a GET (the hub runs in this event loop: never block it)."""
    async with aiohttp.ClientSession() as http, http.get(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    ) as answer:
        return answer.status


async def test_buyer_sends_a_photo_the_shop_enlarges_it_and_a_stranger_cannot_fetch_it(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    agent = await open_backoffice(new_page, base_url)
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "The teapot arrived cracked")
    await expect(widget.locator(".row.mine:not(.pending)", has_text="cracked")).to_be_visible()

    await widget.locator("input.picture-input").set_input_files(
        files=[{"name": "crack.jpg", "mimeType": "image/jpeg", "buffer": samples.parcel()}])
    mine = widget.locator(".row.mine:not(.pending) .picture-open img")
    await expect(mine).to_have_count(1)
    await expect(widget.locator(".upload-status")).to_be_hidden()
    await shot(buyer, "15-picture-widget")

    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    thumb = agent.locator(".row.theirs .picture-open img")
    await expect(thumb).to_have_count(1)
    await thumb.evaluate("img => img.decode()")
    assert await thumb.evaluate("img => img.naturalWidth") == 320
    await shot(agent, "15-picture", doc=True)
    src = await thumb.get_attribute("src")
    assert src is not None and "/thumb?" in src and "sig=" in src
    await agent.locator(".row.theirs .picture-open").click()
    viewer = agent.locator(".dialog.viewer[role=dialog]")
    await expect(viewer).to_be_visible()
    big = viewer.locator("img")
    await big.evaluate("img => img.decode()")
    assert await big.evaluate("img => img.naturalWidth") == 1200
    await expect(viewer.locator(".viewer-close")).to_be_focused()
    await shot(agent, "15-picture-enlarged")
    if AXE.exists():  # the thumbnail's button and the dialog (other parts of the page are tested elsewhere)
        problems = await axe_problems(agent)
        assert [p for p in problems if any(k in p for k in ("picture", "viewer", "upload"))] == [], problems
    await agent.keyboard.press("Escape")
    await expect(viewer).to_have_count(0)
    await expect(agent.locator(".row.theirs .picture-open")).to_be_focused()

    # The picture's address, by token: the buyer yes, a stranger (another buyer, another shop) 404.
    conv = (await hub.hub.store.conversations_of_buyer("demo-buyer-1"))[0].id
    path = src.split("?")[0].removesuffix("/thumb")
    secret = hub.config.token_secret
    for user, role, shop, status in (("demo-buyer-1", "buyer", None, 200), ("demo-buyer-2", "buyer", None, 404),
                                     ("other-agent", "agent", "other-shop", 404)):
        token = mint(secret, user, role, shop=shop)  # type: ignore[arg-type]
        assert await fetch(f"{base_url}{path}?conv={conv}", token) == status, (user, status)
    assert await fetch(f"{base_url}{path}?conv={conv}") == 401


async def test_a_file_that_is_not_a_picture_is_refused_in_words(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer.locator("#ask").click()
    await expect(widget.locator(".composer textarea")).to_be_enabled()
    await widget.locator("input.picture-input").set_input_files(
        files=[{"name": "notes.jpg", "mimeType": "image/jpeg", "buffer": b"this is not a picture"}])
    status = widget.locator(".upload-status[role=alert]")
    await expect(status).to_contain_text("not a photo we can send")
    await status.locator("button", has_text="Dismiss").click()
    await expect(status).to_be_hidden()
    async with aiohttp.ClientSession() as http, http.get(f"{base_url}/media") as answer:
        assert (await answer.json())["max_bytes"] == hub.config.media_max_bytes


PASTE = """async ([box, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], "pasted.png", { type: "image/png" }));
  box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
}"""


async def test_an_agent_pastes_a_picture_into_the_reply_box(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    agent = await open_backoffice(new_page, base_url)
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "Can I see the lid?")
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    box = agent.locator(".composer textarea")
    await expect(box).to_be_enabled()
    png = base64.b64encode(samples.png(60, 40, "RGB")).decode()
    await box.evaluate("(el, b64) => (" + PASTE + ")([el, b64])", png)
    await expect(agent.locator(".row.mine:not(.pending) .picture-open img")).to_have_count(1)
    seen = widget.locator(".row.theirs .picture-open img")
    await expect(seen).to_have_count(1)
    await seen.evaluate("img => img.decode()")
    assert await seen.evaluate("img => img.naturalWidth") == 60
    await widget.locator(".row.theirs .picture-open").click()
    await expect(widget.locator(".dialog.viewer")).to_be_visible()
    await widget.locator(".viewer-close").click()
    await expect(widget.locator(".dialog.viewer")).to_have_count(0)
    await expect(widget.locator(".panel")).to_be_visible()  # the close button closed the picture only
    await widget.locator(".row.theirs .picture-open").click()
    await expect(widget.locator(".viewer-close")).to_be_focused()
    await buyer.keyboard.press("Escape")
    await expect(widget.locator(".dialog.viewer")).to_have_count(0)
    await expect(widget.locator(".panel")).to_be_visible()  # Escape closed the picture, not the chat
