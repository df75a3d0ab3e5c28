"""A new message while the buyer is not looking: the unread count in the listing page's title,
a chime from the widget and a desktop notification on the page, whose permission is asked only
right after a gesture of the buyer."""

from __future__ import annotations

from playwright.async_api import expect

from chat.server import ChatServer

from .conftest import PageFactory
from .test_browser import WIDGET, open_backoffice

# The listing page's Notification, recorded: whether the page had the buyer's (transient) user
# activation when it asked, and what it showed. The frame keeps the real one (it must not ask).
FAKE_NOTIFICATION = """
if (window === window.top) {
  window.__asks = [];
  window.__shown = [];
  class FakeNotification {
    static permission = "default";
    static requestPermission() {
      window.__asks.push(navigator.userActivation.isActive);
      FakeNotification.permission = "granted";
      return Promise.resolve("granted");
    }
    constructor(title, options) {
      window.__shown.push({ title, body: options.body, tag: options.tag });
      window.__last = this;
    }
    close() {}
  }
  window.Notification = FakeNotification;
}
"""
TITLE = "演示商品页 · tradechat"


async def test_unread_in_title_chime_and_desktop_notification(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    agent = await open_backoffice(new_page, base_url)
    context, buyer = await new_page()
    await context.add_init_script(FAKE_NOTIFICATION)
    await buyer.goto(f"{base_url}/demo/")
    widget = buyer.frame_locator(WIDGET)
    await expect(widget.locator(".launcher.lit")).to_be_visible()
    await expect(buyer).to_have_title(TITLE)

    # opening the panel is no reason to ask; sending a message is, right after the key press
    await widget.locator(".launcher").click()
    await widget.locator("textarea").fill("在吗？")
    assert await buyer.evaluate("window.__asks") == []
    await widget.locator("textarea").press("Enter")
    await expect(widget.locator(".row.mine", has_text="在吗")).to_be_visible()
    await buyer.wait_for_function("window.__asks.length === 1")
    assert await buyer.evaluate("window.__asks") == [True], "asked without the buyer's gesture"
    await widget.locator(".head .icon-btn").click()  # the panel is closed
    await expect(widget.locator(".launcher")).to_be_visible()

    # the shop answers while the panel is closed: title, notification and chime
    conv = agent.locator("button.conv[data-buyer='demo-buyer-1']")
    await conv.click()
    await agent.locator(".composer textarea").fill("在的，请问有什么可以帮您？")
    await agent.locator(".composer textarea").press("Enter")
    await expect(buyer).to_have_title(f"(1) {TITLE}")
    await buyer.wait_for_function("window.__shown.length === 1")
    shown = await buyer.evaluate("window.__shown[0]")
    assert shown == {"title": "演示茶行 发来新消息", "body": "在的，请问有什么可以帮您？", "tag": "tradechat:demo-shop"}
    assert await widget.locator("body").evaluate("() => window.tradechatWidget.chimes") == 1
    await agent.locator(".composer textarea").fill("今天下单今天发货。")
    await agent.locator(".composer textarea").press("Enter")
    await expect(buyer).to_have_title(f"(2) {TITLE}")
    await expect(widget.locator(".launcher .badge-count")).to_have_text("2")

    # a click on the notification opens the chat; read, the title is the page's own again
    await buyer.evaluate("window.__last.onclick()")
    await expect(widget.locator(".panel")).to_be_visible()
    await expect(buyer).to_have_title(TITLE)

    # open and in view: no alert; the tab hidden: an alert again, and the count until it is seen
    await agent.locator(".composer textarea").fill("还在吗？")
    await agent.locator(".composer textarea").press("Enter")
    await expect(widget.locator(".row.theirs", has_text="还在吗")).to_be_visible()
    assert await buyer.evaluate("window.__shown.length") == 2
    await widget.locator("body").evaluate(
        "() => Object.defineProperty(document, 'hidden', { configurable: true, get: () => true })")
    await agent.locator(".composer textarea").fill("订单已备好。")
    await agent.locator(".composer textarea").press("Enter")
    await buyer.wait_for_function("window.__shown.length === 3")
    await expect(buyer).to_have_title(f"(1) {TITLE}")
    assert await buyer.evaluate("window.__asks.length") == 1, "asked more than once"


async def test_page_title_can_change_and_a_refusal_is_respected(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    """A page that renames itself keeps its new title under the count; once the buyer said no to
    notifications, none is shown (the title still counts)."""
    agent = await open_backoffice(new_page, base_url)
    context, buyer = await new_page()
    await context.add_init_script(FAKE_NOTIFICATION)
    await buyer.goto(f"{base_url}/demo/?lang=en")
    widget = buyer.frame_locator(WIDGET)
    await widget.locator(".launcher").click()
    await widget.locator("textarea").fill("hello")
    await widget.locator("textarea").press("Enter")
    await buyer.wait_for_function("window.__asks.length === 1")
    await buyer.evaluate("Notification.permission = 'denied'")  # the buyer said no
    await widget.locator("textarea").press("Escape")
    await buyer.evaluate("document.title = 'Renamed page'")
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await agent.locator(".composer textarea").fill("hi!")
    await agent.locator(".composer textarea").press("Enter")
    await expect(buyer).to_have_title("(1) Renamed page")
    assert await buyer.evaluate("window.__shown.length") == 0
