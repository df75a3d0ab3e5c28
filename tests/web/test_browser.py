"""The widget and the back office in a real browser, against a real hub."""

from __future__ import annotations

import asyncio
import http.client
from typing import Any

import msgpack
from playwright.async_api import FrameLocator, Page, WebSocketRoute, expect

from chat.server import ChatServer

from .conftest import PageFactory, shot

PIN = "123456"
WIDGET = "iframe[src*='/web/widget.html']"


async def open_backoffice(new_page: PageFactory, base_url: str, agent: str = "demo-agent-1", lang: str = "en") -> Page:
    _, page = await new_page()
    await page.goto(f"{base_url}/demo/backoffice?agent={agent}&lang={lang}")
    await expect(page.locator(".conn[data-status=online]")).to_be_visible()
    return page


async def open_widget(page: Page, base_url: str, query: str = "", lang: str = "en") -> FrameLocator:
    """The demo listing page (Chinese unless `lang` says otherwise) and its widget's frame."""
    await page.goto(f"{base_url}/demo/{query}{'&' if '?' in query else '?'}lang={lang}")
    widget = page.frame_locator(WIDGET)
    await expect(widget.locator(".launcher")).to_be_visible()
    return widget


async def buyer_asks(page: Page, widget: FrameLocator, text: str) -> None:
    """The buyer opens the chat from the listing page and sends ``text``."""
    await page.locator("#ask").click()
    await widget.locator("textarea").fill(text)
    await widget.locator("textarea").press("Enter")


async def history_texts(hub: ChatServer, buyer: str = "demo-buyer-1") -> list[str]:
    convs = await hub.hub.store.conversations_of_buyer(buyer)
    assert len(convs) == 1
    messages = await hub.hub.store.messages(convs[0].id, after=0, limit=500)
    return [m.body["text"] for m in messages if m.kind == "text"]


async def test_chat_bargain_pay_ship_confirm_in_two_windows(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    """A buyer on the listing page and an agent in the back office see each other's every step."""
    agent = await open_backoffice(new_page, base_url)
    _, buyer = await new_page()
    widget = await open_widget(buyer, base_url)
    # the shop has an agent online: the launcher is lit, before the buyer chats at all
    await expect(widget.locator(".launcher.lit")).to_be_visible()
    await shot(buyer, "01-listing-page-launcher")

    await buyer.locator("#ask").click()
    await expect(widget.locator(".panel")).to_be_visible()
    await expect(widget.locator(".presence-text")).to_have_text("Online")
    await widget.locator("textarea").fill("你好，这个龙井还有货吗？")
    await widget.locator("textarea").press("Enter")
    await expect(widget.locator(".row.mine .bubble", has_text="还有货吗")).to_be_visible()

    # the conversation shows up in the back office, waiting, with the buyer's question
    conv = agent.locator("button.conv[data-buyer='demo-buyer-1']")
    await expect(conv).to_contain_text("waiting")
    await expect(conv).to_contain_text("还有货吗")
    await expect(conv.locator(".unread")).to_be_visible()
    await conv.click()
    await expect(agent.locator(".messages .row.theirs .bubble", has_text="还有货吗")).to_be_visible()
    # the buyer sees that the shop read it
    await expect(widget.locator(".row.mine", has_text="还有货吗").locator(".tick.read")).to_be_visible()

    # typing is relayed
    await agent.locator(".composer textarea").press_sequentially("有")
    await expect(widget.locator(".typing.on")).to_contain_text("typing")
    await agent.locator(".composer textarea").fill("有货，今天下单今天发货。可以给您优惠价 ¥99。")
    await agent.locator(".composer textarea").press("Enter")
    await expect(widget.locator(".row.theirs .bubble", has_text="优惠价")).to_be_visible()
    await expect(conv).not_to_contain_text("waiting")

    # bargain: the agent makes an offer, then changes its price
    await agent.locator("form.offer input[name=price]").fill("105")
    await agent.locator("form.offer button").click()
    await expect(widget.locator(".card[data-state=OFFERED] .card-amount")).to_have_text("¥105.00")
    await agent.locator(".messages .card[data-state=OFFERED] [data-action=reprice]").click()
    await agent.locator(".dialog input[name=price]").fill("99")
    await agent.locator(".dialog button[type=submit]").click()
    pay = widget.locator(".card[data-state=OFFERED] [data-action=pay]")
    await expect(pay).to_have_text("Pay ¥99.00")
    await shot(buyer, "02-widget-offer", doc=True)

    # pay: a wrong PIN is explained, the right one holds the money
    await pay.click()
    await widget.locator(".dialog input[name=pin]").fill("000000")
    await widget.locator(".dialog button[type=submit]").click()
    await expect(widget.locator(".dialog-error")).to_have_text("Wrong payment PIN. 4 tries left.")
    await widget.locator(".dialog input[name=pin]").fill(PIN)
    await widget.locator(".dialog button[type=submit]").click()
    await expect(widget.locator(".card[data-state=HELD]")).to_contain_text("held safely")
    await expect(widget.locator(".card[data-state=OFFERED]")).to_have_count(0)

    # ship: the agent sees the paid order beside the chat and marks it shipped
    await expect(agent.locator(".side .card[data-state=HELD]")).to_be_visible()
    await agent.locator(".messages .card[data-state=HELD] [data-action=ship]").click()
    await agent.locator(".dialog input[name=tracking]").fill("SF Express SF1234567890")
    await agent.locator(".dialog button[type=submit]").click()
    shipped = widget.locator(".card[data-state=SHIPPED]")
    await expect(shipped).to_contain_text("SF1234567890")
    await expect(shipped.locator(".card-timer")).to_contain_text("Completes automatically in 9 days")
    await shot(buyer, "03-widget-shipped")
    await shot(agent, "04-backoffice-shipped", doc=True)

    # confirm receipt: the money goes to the shop; both sides see the final state
    await shipped.locator("[data-action=confirm]").click()
    await widget.locator(".dialog button[type=submit]").click()
    await expect(widget.locator(".card[data-state=RELEASED]")).to_contain_text("Completed")
    await expect(agent.locator(".messages .card[data-state=RELEASED]")).to_be_visible()
    await expect(agent.locator(".side .facts")).to_contain_text("Completed")
    await shot(buyer, "05-widget-completed")
    await shot(agent, "06-backoffice-completed")
    service = hub.money.service  # type: ignore[union-attr]
    assert service.balances("shop:demo-shop") == {"CNY": 9900}
    # response figures count the agent's answer
    await expect(agent.locator(".figures")).to_contain_text("100% (1/1)")


async def test_dropped_connection_resumes_without_loss_or_duplicates(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    """Acks lost, then the link dead, then a drop: the widget reconnects, resends with the same cmid, misses nothing."""
    agent = await open_backoffice(new_page, base_url)
    context, buyer = await new_page()
    mode = {"value": "normal"}  # normal | no-acks | dead
    routes: list[tuple[WebSocketRoute, WebSocketRoute]] = []

    async def route(ws: WebSocketRoute) -> None:
        if mode["value"] == "dead":
            await ws.close(code=1011, reason="network down")
            return
        server = ws.connect_to_server()
        routes.append((ws, server))

        def to_server(message: str | bytes) -> None:
            if mode["value"] != "dead":
                server.send(message)

        def to_page(message: str | bytes) -> None:
            frame: dict[str, Any] = msgpack.unpackb(message) if isinstance(message, bytes) else {}
            if mode["value"] == "dead" or (mode["value"] == "no-acks" and frame.get("type") == "ack"):
                return
            ws.send(message)

        ws.on_message(to_server)
        server.on_message(to_page)

    await context.route_web_socket("**/ws", route)
    widget = await open_widget(buyer, base_url)
    await buyer_asks(buyer, widget, "first")
    conv = agent.locator("button.conv[data-buyer='demo-buyer-1']")
    await conv.click()
    await expect(agent.locator(".messages .bubble", has_text="first")).to_be_visible()

    # 1. the hub stores a message but its ack is lost: the widget still shows it as sending
    mode["value"] = "no-acks"
    await widget.locator("textarea").fill("ack lost 确认地址")
    await widget.locator("textarea").press("Enter")
    await expect(agent.locator(".messages .bubble", has_text="ack lost")).to_be_visible()
    await expect(widget.locator(".row.pending", has_text="ack lost")).to_be_visible()

    # 2. the link goes dead: a message written now cannot leave, the agent's replies cannot arrive
    mode["value"] = "dead"
    await widget.locator("textarea").fill("written offline 离线")
    await widget.locator("textarea").press("Enter")
    for i in range(3):
        await agent.locator(".composer textarea").fill(f"reply {i} while you were away")
        await agent.locator(".composer textarea").press("Enter")
    await expect(agent.locator(".messages .bubble", has_text="reply 2 while")).to_be_visible()
    for ws, server in routes:
        await ws.close(code=1011, reason="network down")
        await server.close()
    await expect(widget.locator(".banner")).to_contain_text("Reconnecting")
    await shot(buyer, "07-widget-reconnecting")

    # 3. the network is back: resume, resend (same cmid), receive what was missed
    mode["value"] = "normal"
    await expect(widget.locator(".banner")).to_be_hidden(timeout=20_000)
    for i in range(3):
        await expect(widget.locator(".row.theirs .bubble", has_text=f"reply {i} while")).to_have_count(1)
    await expect(widget.locator(".row.pending")).to_have_count(0)
    for text in ("first", "ack lost", "written offline"):
        await expect(widget.locator(".row.mine .bubble", has_text=text)).to_have_count(1)
        await expect(agent.locator(".messages .bubble", has_text=text)).to_have_count(1)
    await shot(buyer, "08-widget-resumed")
    # the store has each message exactly once, in the order it was written
    texts = await history_texts(hub)
    assert texts == ["first", "ack lost 确认地址", "reply 0 while you were away", "reply 1 while you were away",
                     "reply 2 while you were away", "written offline 离线"]
    seqs = await buyer.frame_locator(WIDGET).locator(".messages .row[data-seq]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.seq))")
    assert seqs == sorted(set(seqs))


async def test_phone_layout_fits_and_renders_chinese(new_page: PageFactory, base_url: str, hub: ChatServer) -> None:
    """On a 390×844 phone the open widget fills the screen without sideways scrolling."""
    agent = await open_backoffice(new_page, base_url, "demo-agent-2")
    _, phone = await new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
                              has_touch=True)
    widget = await open_widget(phone, base_url, "?listing=demo-teapot")
    await expect(widget.locator(".launcher.lit")).to_be_visible()
    box = await phone.locator(WIDGET).bounding_box()
    assert box is not None and box["width"] < 100 and box["height"] < 100
    await widget.locator(".launcher").tap()
    await expect(widget.locator(".panel")).to_be_visible()
    await phone.wait_for_function(
        """sel => { const r = document.querySelector(sel).getBoundingClientRect();
                    return r.x === 0 && r.y === 0 && r.width === 390 && r.height === 844; }""", arg=WIDGET)
    await widget.locator("textarea").fill("请问紫砂壶是手工的吗？可以刻字吗？")
    await widget.locator("textarea").press("Enter")
    await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
    await agent.locator(".composer textarea").fill("是纯手工的，可以免费刻字。")
    await agent.locator(".composer textarea").press("Enter")
    await expect(widget.locator(".row.theirs .bubble", has_text="纯手工")).to_be_visible()
    overflow = await widget.locator("body").evaluate(
        "b => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert overflow[0] <= overflow[1]
    composer = await widget.locator(".composer").bounding_box()
    assert composer is not None and composer["y"] + composer["height"] <= 844 and composer["width"] <= 390
    await shot(phone, "09-widget-phone", doc=True)
    # the keyboard closes it (Escape), and the launcher comes back
    await widget.locator("textarea").press("Escape")
    await expect(widget.locator(".launcher")).to_be_visible()


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


async def test_static_files_stay_inside_the_web_client(hub: ChatServer) -> None:
    """Only the web client's files are served; demo tokens only for demo users."""
    port = hub.port
    status, body = await asyncio.to_thread(get, port, "/web/embed.js")
    assert status == 200 and b"tradechat" in body
    for path in ("/web/../chat/web.py", "/web/..%2fchat/web.py", "/web/vendor/msgpack/../../../package.json",
                 "/web/nothing.js"):
        status, _ = await asyncio.to_thread(get, port, path)
        assert status == 404, path
    status, _ = await asyncio.to_thread(get, port, "/demo/token?user=alice&role=buyer")
    assert status == 403
    status, _ = await asyncio.to_thread(get, port, "/demo/token?user=demo-agent-1&role=buyer")
    assert status == 403


async def test_demo_off_serves_no_demo(server_factory: Any) -> None:
    """With DEMO=off there are no demo pages, data or tokens; the web client is still served."""
    server = await server_factory(demo="off")
    status, _ = await asyncio.to_thread(get, server.port, "/demo/token?user=demo-buyer-1&role=buyer")
    assert status == 404
    status, _ = await asyncio.to_thread(get, server.port, "/web/widget.html")
    assert status == 200
    assert await server.hub.store.agent_loads("demo-shop") == {}
