"""The back office's conversation search (issue 10): the hub finds the shop's conversations by
message text, buyer and listing; a hit opens the conversation at the matching message, far up
its history. And the phone layout: inbox and conversation as two screens with a back button."""

from __future__ import annotations

import re
import time

from playwright.async_api import Page, expect

from chat.server import ChatServer
from chat.store.base import Store

from .conftest import PageFactory, shot
from .credit_seed import axe_in

TEA = {"id": "l-longjing", "title": "明前龙井 250g", "price": 12800, "currency": "CNY"}
CUP = {"id": "l-celadon", "title": "龙泉青瓷茶杯", "price": 6800, "currency": "CNY"}


async def seed(store: Store) -> int:
    """A conversation whose complaint is 70 messages up (beyond the first page the office loads), another without one, and another shop's
    with the same words (never to be found)."""
    now = int(time.time() * 1000) - 3_600_000
    await store.open_conversation("c_lin", "buyer-lin", "demo-shop", TEA, "demo-agent-1", now)
    await store.append("c_lin", "buyer-lin", "buyer", "text", {"text": "你好，茶叶今天收到了"}, "l0", now + 1)
    await store.append("c_lin", "buyer-lin", "buyer", "text", {"text": "可是外包装破损了，罐子也压扁了"}, "l1", now + 2)
    for i in range(70):
        sender, role = ("demo-agent-1", "agent") if i % 2 else ("buyer-lin", "buyer")
        await store.append("c_lin", sender, role, "text", {"text": f"第 {i + 1} 条：物流单号和照片"}, f"f{i}", now + 10 + i)
    await store.open_conversation("c_wang", "buyer-wang", "demo-shop", CUP, "demo-agent-1", now)
    await store.append("c_wang", "buyer-wang", "buyer", "text", {"text": "杯子很好看，还有货吗？"}, "w0", now + 60)
    await store.open_conversation("c_else", "buyer-lin", "other-shop", TEA, None, now)
    await store.append("c_else", "buyer-lin", "buyer", "text", {"text": "包装破损"}, "e0", now + 70)
    return 3  # the complaint's seq (the product card is 1)


async def open_zh_office(new_page: PageFactory, base_url: str, **options: object) -> Page:
    _, page = await new_page(**options)
    await page.goto(f"{base_url}/demo/backoffice?agent=demo-agent-1&lang=zh-CN")
    await expect(page.locator(".conn[data-status=online]")).to_be_visible()
    return page


async def test_search_finds_text_buyer_and_listing_and_opens_at_the_message(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    seq = await seed(hub.hub.store)
    office = await open_zh_office(new_page, base_url)
    inbox = office.locator("ul.inbox-list")
    await expect(inbox.locator("button.conv")).to_have_count(2)

    box = office.locator("input.search")
    await box.fill("破损")
    hits = office.locator("ul.search-results button.search-hit")
    await expect(hits).to_have_count(1)  # the other shop's conversation is not found
    await expect(inbox).to_be_hidden()
    await expect(hits.first).to_have_attribute("data-buyer", "buyer-lin")
    await expect(hits.first.locator(".search-snippet mark")).to_have_text("破损")
    await expect(hits.first.locator(".search-snippet")).to_contain_text("可是外包装破损了")
    assert await axe_in(office, ".inbox") == []

    await hits.first.click()
    target = office.locator(f".messages [data-seq='{seq}']")
    await expect(target).to_have_class(re.compile(r"\bsearch-target\b"))
    await expect(target).to_be_in_viewport()
    await expect(target).to_contain_text("外包装破损了")
    await shot(office, "16-backoffice-search", doc=True)

    # buyer and listing match too; nothing found says so; Escape brings the inbox back
    await box.fill("WANG")
    await expect(hits).to_have_count(1)
    await expect(hits.first.locator(".match-field")).to_have_text("买家")
    await box.fill("青瓷")
    await expect(hits.first).to_have_attribute("data-buyer", "buyer-wang")
    await expect(hits.first.locator(".match-field")).to_have_text("商品")
    await box.fill("没有这个词")
    await expect(office.locator(".search-status")).to_have_text("没有找到“没有这个词”。")
    await box.press("Escape")
    await expect(inbox.locator("button.conv")).to_have_count(2)
    await expect(office.locator(".search-box")).to_be_hidden()


async def test_phone_layout_shows_inbox_and_conversation_as_two_screens(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    await seed(hub.hub.store)
    office = await open_zh_office(new_page, base_url, viewport={"width": 390, "height": 844}, device_scale_factor=1,
                                  is_mobile=True, has_touch=True)
    conv = office.locator("button.conv[data-buyer='buyer-wang']")
    await expect(conv).to_be_in_viewport()
    await expect(office.locator("section.chat")).to_be_hidden()
    await expect(office.locator(".back-btn")).to_be_hidden()
    assert await axe_in(office, "#backoffice") == []

    await conv.click()
    await expect(office.locator("section.chat")).to_be_visible()
    await expect(office.locator("aside.inbox")).to_be_hidden()
    back = office.locator(".chat-head .back-btn")
    await expect(back).to_be_in_viewport()
    composer = office.locator("form.composer textarea")
    await expect(composer).to_be_in_viewport()
    width = await office.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width} px)"
    assert await axe_in(office, "#backoffice") == []
    height = await office.evaluate("() => document.querySelector('.messages').getBoundingClientRect().height")
    assert height >= 300, f"the messages get only {height} px"
    await shot(office, "17-backoffice-phone", doc=True)

    await back.click()
    await expect(office.locator("aside.inbox")).to_be_visible()
    await expect(office.locator("section.chat")).to_be_hidden()
    await expect(conv).to_be_focused()
