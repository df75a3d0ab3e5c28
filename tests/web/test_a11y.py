"""Keyboard and accessibility (issue 10, item 9): focus lands in the message box on open, dialogs
keep Tab inside and close on Escape, and axe-core (from web-client/node_modules) finds no serious
or critical violations on the widget, a dialog and the back office."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Frame, Page, expect

from chat.server import ChatServer

from .conftest import ROOT, PageFactory
from .test_browser import WIDGET, open_backoffice, open_widget

AXE = ROOT / "web-client" / "node_modules" / "axe-core" / "axe.min.js"


async def axe_problems(target: Page | Frame) -> list[str]:
    """Serious and critical axe-core violations, one line each (rule, where)."""
    if not await target.evaluate("() => !!window.axe"):
        await target.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await target.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


async def widget_frame(page: Page) -> Frame:
    handle = await page.locator(WIDGET).element_handle()
    assert handle is not None
    frame = await handle.content_frame()
    assert frame is not None
    return frame


async def test_keyboard_focus_dialogs_and_axe(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run npm ci in web-client/")
    agent = await open_backoffice(new_page, base_url)
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    frame = await widget_frame(buyer)
    assert await axe_problems(frame) == []  # the launcher

    # opened from the page's own button: the keyboard is in the message box at once
    await buyer.locator("#ask").focus()
    await buyer.keyboard.press("Enter")
    await expect(widget.locator(".composer textarea")).to_be_focused()
    await buyer.keyboard.type("typed without a click")
    await buyer.keyboard.press("Enter")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="typed without a click")).to_be_visible()
    assert await axe_problems(frame) == []

    # a dialog keeps Tab inside, Escape closes it and focus goes back to what opened it
    opener = widget.locator("[data-action=transfer]")
    await opener.focus()
    await buyer.keyboard.press("Enter")
    dialog = widget.locator(".dialog")
    await expect(dialog.locator("input[name=amount]")).to_be_focused()
    assert await axe_problems(frame) == []
    for _ in range(6):
        await buyer.keyboard.press("Tab")
        assert await frame.evaluate("() => !!document.activeElement.closest('.dialog')")
    await buyer.keyboard.press("Shift+Tab")
    assert await frame.evaluate("() => !!document.activeElement.closest('.dialog')")
    await buyer.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await expect(widget.locator(".panel")).to_be_visible()  # Escape closed the dialog only
    await expect(opener).to_be_focused()

    # the back office, with a conversation open
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await expect(agent.locator(".messages .bubble", has_text="typed without a click")).to_be_visible()
    assert await axe_problems(agent) == []
