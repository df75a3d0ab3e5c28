"""The widget and the back office in Chinese (the demo's default) and in English: data-lang and the
page's lang, 24-hour times, CNY as ¥ with two decimals, errors in words in both languages.

With ``SAVE_DOC_SCREENSHOTS=1`` these tests also write the README's screenshots of the Chinese
widget, the phone layout and the back office (see ``conftest.shot``)."""

from __future__ import annotations

import datetime
import re

from playwright.async_api import expect

from chat.server import ChatServer

from .conftest import PageFactory, shot
from .test_a11y import AXE, axe_problems, widget_frame
from .test_browser import PIN, WIDGET, open_backoffice, open_widget

# In afternoon_zone() a 12-hour clock would show "3:02 PM" or "下午3:02"; the widget shows "15:02".
CLOCK_24H = re.compile(r"^1[4-7]:\d\d$")


def afternoon_zone() -> str:
    """The Etc/GMT zone whose local hour is now 15 (Etc/GMT-N is UTC+N)."""
    offset = (15 - datetime.datetime.now(datetime.UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"


async def test_widget_speaks_chinese_by_default_and_english_on_the_switch(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    agent = await open_backoffice(new_page, base_url, lang="zh-CN")
    _, buyer = await new_page(timezone_id=afternoon_zone())
    await buyer.goto(f"{base_url}/demo/")  # no lang: the demo is Chinese
    widget = buyer.frame_locator(WIDGET)
    await expect(widget.locator(".launcher.lit")).to_have_attribute("aria-label", "与 演示茶行 聊天：在线")
    await expect(buyer.locator(WIDGET)).to_have_attribute("title", "联系卖家")
    await expect(buyer.locator("#price")).to_have_text("¥128.00")

    await widget.locator(".launcher").click()
    await expect(widget.locator(".presence-text")).to_have_text("在线")
    await expect(widget.locator(".panel > .product .product-price")).to_have_text("¥128.00")
    await expect(widget.locator(".composer textarea")).to_have_attribute("placeholder", "输入消息…")
    assert await widget.locator("html").get_attribute("lang") == "zh-CN"
    await widget.locator("textarea").fill("你好，这个龙井还有货吗？")
    await widget.locator("textarea").press("Enter")
    mine = widget.locator(".row.mine", has_text="还有货吗")
    await expect(mine.locator(".tick")).to_contain_text(re.compile("已发送|已送达|已读"))
    # 24-hour time: "15:02", never "3:02 PM" or "下午3:02"
    stamp = (await mine.locator(".meta").inner_text()).split("·")[0].strip()
    assert CLOCK_24H.match(stamp), stamp

    # the back office in Chinese: inbox, wait, the offer form; the offer reaches the widget as ¥
    conv = agent.locator("button.conv[data-buyer='demo-buyer-1']")
    await expect(conv).to_contain_text("已等待")
    await expect(agent.locator(".inbox h2")).to_have_text("收件箱")
    await conv.click()
    await expect(agent.locator("form.offer h3")).to_have_text("发送报价")
    await agent.locator(".composer textarea").fill("有货，今天下单今天发货。")
    await agent.locator(".composer textarea").press("Enter")
    await agent.locator("form.offer input[name=price]").fill("99.5")
    await agent.locator("form.offer button").click()
    card = widget.locator(".card[data-state=OFFERED]")
    await expect(card.locator(".card-amount")).to_have_text("¥99.50")
    await expect(card.locator(".card-state")).to_contain_text("报价")
    await expect(card.locator("[data-action=pay]")).to_have_text("支付 ¥99.50")
    await expect(card.locator(".card-timer")).to_contain_text(re.compile(r"请在 .* 内付款"))

    await expect(mine.locator(".tick.read")).to_be_visible()
    await shot(buyer, "10-widget-zh", doc=True)

    # errors in Chinese: our own check, then the hub's wrong-PIN error with the tries left
    await card.locator("[data-action=pay]").click()
    dialog = widget.locator("form.dialog")
    await expect(dialog.locator("h2")).to_have_text("支付 ¥99.50")
    await dialog.locator("input[name=pin]").fill("12")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".dialog-error")).to_have_text("支付密码必须是 6 位数字。")
    wrong = "000000" if PIN != "000000" else "111111"
    await dialog.locator("input[name=pin]").fill(wrong)
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".dialog-error")).to_have_text(re.compile(r"^支付密码错误。还剩 \d+ 次机会。$"))
    await dialog.locator("button", has_text="取消").click()

    # the English switch on the demo page: the widget follows the page's lang
    await buyer.locator("#switch-lang").click()
    await expect(buyer.locator("html")).to_have_attribute("lang", "en")
    await expect(widget.locator(".launcher")).to_have_attribute("aria-label", re.compile("^Chat with Demo tea shop: online"))
    await widget.locator(".launcher").click()
    await expect(widget.locator(".card[data-state=OFFERED] [data-action=pay]")).to_have_text("Pay ¥99.50")
    await expect(widget.locator(".composer textarea")).to_have_attribute("placeholder", "Write a message…")

    # and back office's switch to English
    await agent.locator(".topbar .switch-lang").click()
    await expect(agent.locator(".inbox h2")).to_have_text("Inbox")
    await expect(agent.locator("html")).to_have_attribute("lang", "en")


async def test_data_lang_beats_the_page_lang(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    """An English page that embeds the widget with data-lang="zh-CN" gets a Chinese widget."""
    _, page = await new_page()
    await page.route(f"{base_url}/shop-page", lambda route: route.fulfill(content_type="text/html", body=f"""
<!doctype html><html lang="en"><head><title>Shop</title></head><body>
<script async src="{base_url}/web/embed.js" data-lang="zh-CN" data-shop="demo-shop" data-shop-name="Tea"
  data-listing-id="x" data-listing-title="Tea" data-listing-price="100"></script></body></html>"""))
    await page.goto(f"{base_url}/shop-page")
    widget = page.frame_locator(WIDGET)
    await expect(widget.locator(".launcher")).to_have_attribute("aria-label", re.compile("^与 Tea 聊天"))
    await widget.locator(".launcher").click()
    await expect(widget.locator(".messages .empty")).to_have_text("请登录本站后与 Tea 聊天，对话会显示在这里。")


async def test_chinese_phone_layout_and_back_office_search(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    """The phone layout in Chinese, and the back office's search (filter) in Chinese."""
    agent = await open_backoffice(new_page, base_url, lang="zh-CN")
    _, phone = await new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                              has_touch=True, timezone_id=afternoon_zone())
    widget = await open_widget(phone, base_url, "?listing=demo-teapot", lang="zh-CN")
    await widget.locator(".launcher").tap()
    await widget.locator("textarea").fill("请问紫砂壶是手工的吗？可以刻字吗？")
    await widget.locator("textarea").press("Enter")
    conv = agent.locator("button.conv[data-buyer='demo-buyer-1']")
    await conv.click()
    await agent.locator(".composer textarea").fill("是纯手工的，可以免费刻字。")
    await agent.locator(".composer textarea").press("Enter")
    await expect(widget.locator(".row.theirs .bubble", has_text="纯手工")).to_be_visible()
    await expect(widget.locator(".messages .day").first).to_have_text("今天")
    overflow = await widget.locator("body").evaluate(
        "b => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert overflow[0] <= overflow[1]

    # search: the filter narrows the inbox by buyer or listing, in Chinese
    await agent.locator("form.offer input[name=price]").fill("368")
    await agent.locator("form.offer button").click()
    await expect(widget.locator(".card[data-state=OFFERED] .card-amount")).to_have_text("¥368.00")
    await agent.locator("input.filter").fill("紫砂")
    await expect(agent.locator("button.conv")).to_have_count(1)
    await expect(agent.locator("input.filter")).to_have_attribute("placeholder", "按买家或商品筛选")
    await expect(agent.locator(".side")).to_contain_text("订单与担保")
    await expect(agent.locator(".quick")).to_contain_text("您好！请问有什么可以帮您？")
    await expect(agent.locator(".quick")).not_to_contain_text("null")
    await shot(phone, "11-widget-phone-zh", doc=True)
    await shot(agent, "12-backoffice-zh", doc=True)
    if AXE.exists():  # the Chinese screens (lang attributes, the language link) pass axe-core too
        assert await axe_problems(await widget_frame(phone)) == []
        assert await axe_problems(agent) == []
    await agent.locator("input.filter").fill("no such buyer")
    await expect(agent.locator("button.conv")).to_have_count(0)
