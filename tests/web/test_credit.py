"""Credit where the decision is made (issue 13): the shop's level, positive rate and reply time
in the widget's header and on its product card; the buyer's level, trades and disputes in the
back office; and the buyer rating the shop from a released order's card."""

from __future__ import annotations

import asyncio

from playwright.async_api import expect

from chat.server import ChatServer
from payments import Actor, PaymentService

from .conftest import PageFactory, shot
from .credit_seed import axe_in, seed_buyer_record, seed_replies, seed_shop_credit
from .test_browser import PIN, WIDGET, buyer_asks, open_backoffice, open_widget


async def test_the_shops_credit_in_the_widget_header_and_on_the_product_card(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    assert hub.money is not None
    await asyncio.to_thread(seed_shop_credit, hub.money.service, "demo-shop", 55, 2)
    await seed_replies(hub.hub.store, "demo-shop", [3, 5, 8], hub.hub.clock.now_ms())
    await open_backoffice(new_page, base_url)  # the shop is online
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url, lang="zh-CN")
    await buyer.locator("#ask").click()
    head = widget.locator(".head .shop-credit")
    # 55 good and 2 neutral ratings: a score of 55 is three hearts; 55 of 57 is 96.5% positive
    await expect(head.locator(".credit-level.level-heart")).to_have_text("♥♥♥")
    await expect(head.locator(".credit-level")).to_have_attribute("aria-label", "3 心")
    await expect(head.locator(".credit-rate")).to_have_text("好评率 96.5%")
    card = widget.locator(".panel > .product .product-credit")
    await expect(card).to_contain_text("♥♥♥")
    await expect(card).to_contain_text("57 条评价")
    await expect(card.locator(".credit-reply")).to_have_text("通常 5 分钟 内回复")
    await expect(widget.locator(".head .typical")).to_have_text("通常在 5 分钟 内回复")
    await widget.locator("textarea").fill("你好，这个龙井还有货吗？")
    await widget.locator("textarea").press("Enter")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="还有货吗")).to_be_visible()
    await shot(buyer, "14-credit-header", doc=True)
    frame = await (await buyer.locator(WIDGET).element_handle()).content_frame()  # type: ignore[union-attr]
    assert frame is not None
    assert await axe_in(frame, ".head") == [] and await axe_in(frame, ".panel > .product") == []


async def test_a_new_shop_says_so_and_english_words(new_page: PageFactory, base_url: str) -> None:
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer.locator("#ask").click()
    await expect(widget.locator(".head .shop-credit")).to_have_text("New shop: no ratings yet")
    await expect(widget.locator(".head .shop-credit .credit-level")).to_have_count(0)


async def test_the_back_office_shows_the_buyers_credit_trades_and_disputes(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    assert hub.money is not None
    await asyncio.to_thread(seed_buyer_record, hub.money.service, "demo-buyer-1", 5, 1)
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "Is it this year's tea?")
    agent = await open_backoffice(new_page, base_url)
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    panel = agent.locator(".side .buyer-panel[data-buyer='demo-buyer-1']")
    await expect(panel.locator(".credit-level.level-heart")).to_have_text("♥")
    await expect(panel.locator(".credit-rate")).to_have_text("100% positive")
    await expect(panel.locator(".credit-trades")).to_have_text("Completed trades: 5")
    await expect(panel.locator(".credit-disputes.some")).to_have_text("Disputes: 1")
    badge = agent.locator(".chat-head .buyer-credit-badge.disputed")
    await expect(badge).to_have_text("♥ · 5 trades · 1 disputes")
    assert await axe_in(agent, ".buyer-panel") == [] and await axe_in(agent, ".chat-head") == []


def _released_order(service: PaymentService, conv: str) -> str:
    agent = Actor(user_id="demo-agent-1", role="agent", shop_id="demo-shop")
    buyer = Actor(user_id="demo-buyer-1", role="buyer")
    order = service.offer(agent, order_id="o_rate_me", conversation_id=conv, shop_id="demo-shop",
                          buyer_id="demo-buyer-1", listing_id="demo-longjing", title="Longjing", unit_price=9900,
                          quantity=1, currency="CNY")
    service.pay(buyer, order_id=order.order_id, pin=PIN, idem_key="rate-me-pay")
    service.ship(agent, order_id=order.order_id)
    service.confirm(buyer, order_id=order.order_id, idem_key="rate-me-confirm")
    return order.order_id


async def test_the_buyer_rates_the_shop_from_a_released_order(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    assert hub.money is not None
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer.locator("#ask").click()
    await expect(widget.locator(".messages .row").first).to_be_visible()
    convs = await hub.hub.store.conversations_of_buyer("demo-buyer-1")
    order = await asyncio.to_thread(_released_order, hub.money.service, convs[0].id)
    released = widget.locator(f".card[data-entity='{order}'][data-state=RELEASED]")
    await expect(released.locator(".card-actions.rate button")).to_have_text(["Good", "Neutral", "Bad"])
    frame = await (await buyer.locator(WIDGET).element_handle()).content_frame()  # type: ignore[union-attr]
    assert frame is not None and await axe_in(frame, f".card[data-entity='{order}']") == []
    await released.locator("[data-action=rate-good]").click()
    dialog = widget.locator(".dialog")
    await dialog.locator("textarea[name=comment]").fill("Fresh tea, well packed")
    await dialog.locator("input[name=shipping]").fill("9")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".dialog-error")).to_have_text("Please give 1 to 5.")
    await dialog.locator("input[name=shipping]").fill("4")
    await dialog.locator("button[type=submit]").click()
    await expect(widget.locator(".toast.ok")).to_have_text("Thank you: your rating is saved.")
    await expect(released.locator(".rated")).to_have_text("You rated: Good")
    await expect(released.locator(".card-actions.rate")).to_have_count(0)
    ratings = await asyncio.to_thread(hub.money.service.ratings.ratings_of, order)
    assert [(r.side, r.score, r.comment, r.item, r.service, r.shipping) for r in ratings] == [
        ("buyer", "good", "Fresh tea, well packed", 5, 5, 4)]
