"""The widget on a foreign listing page (issue 10, item 8): page CSS does not reach the frame or
move the launcher, and a page that cannot sign the buyer in gets an explained panel, not a blank one."""

from __future__ import annotations

from playwright.async_api import expect

from chat.server import ChatServer

from .conftest import PageFactory
from .test_browser import WIDGET


async def test_hostile_page_css_does_not_reach_the_widget(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    _, page = await new_page()
    await page.goto(f"{base_url}/demo/hostile.html")
    widget = page.frame_locator(WIDGET)
    await expect(widget.locator(".launcher")).to_be_visible()
    frame = page.locator(WIDGET)
    looks = await frame.evaluate("""f => { const s = getComputedStyle(f);
        return [s.outlineStyle, s.filter, s.clipPath, s.transitionDuration]; }""")
    assert looks == ["none", "none", "none", "0s"], looks
    # <body> is transformed (fixed children would scroll with it): the launcher stays in the corner
    await page.mouse.wheel(0, 3000)
    await page.wait_for_function("() => window.scrollY > 2000")
    await expect(frame).to_be_in_viewport()
    box = await frame.bounding_box()
    assert box is not None and 1280 - 100 < box["x"] + box["width"] <= 1280 and 800 - 100 < box["y"] + box["height"] <= 800
    await widget.locator(".launcher").click()
    await expect(widget.locator(".panel")).to_be_visible()
    box = await frame.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 800, box


async def test_failed_identify_explains_instead_of_a_blank_panel(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    _, page = await new_page()
    await page.goto(f"{base_url}/demo/hostile.html?identify=fail")
    widget = page.frame_locator(WIDGET)
    await widget.locator(".launcher").click()
    await expect(widget.locator(".messages .empty")).to_contain_text("could not sign you in to the chat yet")
    await expect(widget.locator(".composer textarea")).to_be_disabled()
    await expect(widget.locator(".composer textarea")).to_have_attribute(
        "placeholder", "You can write once the chat is connected")
