"""Following the shop from the widget, the back office's followers panel and its message to
followers, the broadcast in the buyer's chat with its unfollow, and the offer to follow after
paying: real browsers on the demo.

With ``SAVE_DOC_SCREENSHOTS=1`` this also writes ``docs/screenshots/13-widget-broadcast-zh.png``."""

from __future__ import annotations

from playwright.async_api import expect

from chat.server import ChatServer

from .conftest import PageFactory, shot
from .test_browser import PIN, buyer_asks, open_backoffice, open_widget


async def test_follow_broadcast_and_unfollow_in_two_windows(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    agent = await open_backoffice(new_page, base_url)
    _, buyer = await new_page(viewport={"width": 1280, "height": 900})
    widget = await open_widget(buyer, base_url, lang="zh-CN")
    await buyer_asks(buyer, widget, "你好，这款茶什么时候上新？")
    follow = widget.locator(".panel > .product .follow-btn")
    await expect(follow).to_have_text("关注店铺")
    await follow.click()
    await expect(follow).to_have_text("已关注 ✓")
    await expect(follow).to_have_attribute("aria-pressed", "true")
    assert await hub.hub.store.follower_count("demo-shop") == 1

    # The back office: the count, who follows, and the message to followers with the listing.
    panel = agent.locator(".followers-panel")
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await panel.locator("summary").click()
    await expect(panel.locator(".follower-count")).to_have_text("1 follower")
    await expect(panel.locator(".follower-list")).to_contain_text("demo-buyer-1")
    await panel.locator("textarea").fill("春茶上新：明前龙井到货，粉丝专享价两天有效。")
    await panel.locator("input[name=listing]").check()
    await panel.locator("input[name=price]").fill("88")
    await panel.locator("button[type=submit]").click()
    await expect(panel.locator(".broadcast-progress")).to_contain_text("delivered to 1 followers")
    await shot(agent, "14-backoffice-followers")

    # The buyer's chat: marked as a message to followers, with the listing, price and unfollow.
    row = widget.locator(".row.broadcast-row")
    await expect(row.locator(".broadcast-tag")).to_have_text("粉丝群发 · 演示茶行")
    await expect(row.locator(".broadcast-text")).to_contain_text("明前龙井")
    await expect(row.locator(".broadcast-offer")).to_contain_text("粉丝价 ¥88.00")
    await expect(row.locator(".unsubscribe")).to_have_text("取消关注")
    await expect(row.locator(".buy-offer")).to_have_text("以此价格购买")
    await shot(buyer, "13-widget-broadcast-zh", doc=True)
    # Agents are not pushed 100,000 broadcast messages live: they find it in the conversation
    # (here after a reload), without the unfollow.
    await agent.reload()
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await expect(agent.locator(".messages .row.broadcast-row .broadcast-text")).to_contain_text("明前龙井")
    await expect(agent.locator(".messages .row.broadcast-row .unsubscribe")).to_have_count(0)
    await expect(agent.locator(".messages .row.broadcast-row .buy-offer")).to_have_count(0)

    await row.locator(".unsubscribe").click()
    await expect(follow).to_have_text("关注店铺")
    await expect(widget.locator(".toast.ok")).to_contain_text("已取消关注")
    assert await hub.hub.store.follower_count("demo-shop") == 0
    # One a day: a second message is refused in words, with when the next one may go.
    await panel.locator("textarea").fill("again")
    await panel.locator("button[type=submit]").click()
    await expect(panel.locator(".broadcast-progress")).to_contain_text("already sent its message to followers")


async def test_the_widget_offers_to_follow_after_a_payment(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    agent = await open_backoffice(new_page, base_url)
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "Can I have it for 99?")
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await agent.locator("form.offer input[name=price]").fill("99")
    await agent.locator("form.offer button").click()
    offer = widget.locator(".follow-offer")
    await expect(widget.locator(".card[data-state=OFFERED]")).to_be_visible()
    await expect(offer).to_be_hidden()
    await widget.locator(".card[data-state=OFFERED] [data-action=pay]").click()
    await widget.locator(".dialog input[name=pin]").fill(PIN)
    await widget.locator(".dialog button[type=submit]").click()
    await expect(widget.locator(".card[data-state=HELD]")).to_be_visible()
    await expect(offer).to_contain_text("Follow")
    await offer.locator("[data-action=follow]").click()
    await expect(offer).to_be_hidden()
    await expect(widget.locator(".panel > .product .follow-btn")).to_have_text("Following ✓")
    follow = await hub.hub.store.get_follow("demo-shop", "demo-buyer-1")
    assert follow is not None and follow.conv is not None


async def test_the_buyer_buys_at_the_broadcast_price(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    """"Buy at this price" in the broadcast makes the shop's order at the follower price (its
    card appears in the chat) and opens the payment; a second tap makes no second order."""
    agent = await open_backoffice(new_page, base_url)
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "Any offers for followers?")
    await widget.locator(".panel > .product .follow-btn").click()
    await expect(widget.locator(".panel > .product .follow-btn")).to_have_text("Following ✓")
    panel = agent.locator(".followers-panel")
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await panel.locator("summary").click()
    await panel.locator("textarea").fill("Spring tea is in: a follower price for two days.")
    await panel.locator("input[name=listing]").check()
    await panel.locator("input[name=price]").fill("88")
    await panel.locator("button[type=submit]").click()

    row = widget.locator(".row.broadcast-row")
    buy = row.locator(".buy-offer")
    await expect(buy).to_have_text("Buy at this price")
    await buy.click()
    await expect(widget.locator(".card[data-state=OFFERED]")).to_contain_text("88.00")
    await expect(widget.locator(".dialog")).to_contain_text("88.00")
    await widget.locator(".dialog input[name=pin]").fill(PIN)
    await widget.locator(".dialog button[type=submit]").click()
    await expect(widget.locator(".card[data-state=HELD]")).to_be_visible()
    await buy.click()
    await expect(widget.locator(".toast")).to_contain_text("already took up this price")
    assert hub.money is not None
    orders = [o for c in await hub.hub.store.conversations_of_buyer("demo-buyer-1")
              for o in hub.money.service.orders_in_conversation(c.id)]
    assert [(o.unit_price, o.state) for o in orders] == [(8800, "HELD")]
