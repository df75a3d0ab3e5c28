"""The widget under network trouble (issue 10, items 1–3): a token function that fails, a dead
link that never closes, the browser going offline, a normal close, and two tabs with reloads."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from playwright.async_api import BrowserContext, Page, Route, WebSocketRoute, expect

from chat.server import ChatServer, build

from .conftest import PageFactory, shot, web_config
from .proxy import TcpProxy
from .test_browser import WIDGET, history_texts, open_backoffice, open_widget


@pytest.fixture
async def proxy(hub: ChatServer) -> AsyncIterator[TcpProxy]:
    p = await TcpProxy(hub.port).start()
    yield p
    await p.close()


class WsSwitch:
    """Every websocket of a browser context through Playwright: `down` refuses and closes them
    (close code `code`), and every `send` frame that reached the hub is counted by cmid."""

    def __init__(self) -> None:
        self.down = False
        self.code = 1011
        self.routes: list[tuple[WebSocketRoute, WebSocketRoute]] = []
        self.sends: Counter[str] = Counter()

    async def install(self, context: BrowserContext) -> None:
        await context.route_web_socket("**/ws", self._route)

    async def _route(self, ws: WebSocketRoute) -> None:
        if self.down:
            await ws.close(code=self.code, reason="network down")
            return
        server = ws.connect_to_server()
        self.routes.append((ws, server))

        def to_server(message: str | bytes) -> None:
            if isinstance(message, bytes):
                frame: dict[str, Any] = msgpack.unpackb(message)
                if frame.get("type") == "send":
                    self.sends[frame["cmid"]] += 1
            server.send(message)

        ws.on_message(to_server)
        server.on_message(lambda message: ws.send(message))

    async def drop(self, code: int = 1011) -> None:
        """Close every open connection with `code` (as the hub or a proxy would)."""
        routes, self.routes = self.routes, []
        for ws, server in routes:
            await ws.close(code=code, reason="dropped by the test")
            await server.close()


async def open_chat(page: Page, base_url: str) -> Any:
    widget = await open_widget(page, base_url)
    await page.locator("#ask").click()
    await expect(widget.locator(".panel")).to_be_visible()
    await expect(widget.locator("textarea")).to_be_enabled()
    await expect(widget.locator(".empty")).to_have_count(0)
    return widget


async def say(widget: Any, text: str) -> None:
    await widget.locator("textarea").fill(text)
    await widget.locator("textarea").press("Enter")


async def test_failing_token_function_is_retried_and_a_refused_token_is_explained(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    """Item 1: the page's token function rejects on reconnect; the widget keeps trying with
    backoff and sends what was written meanwhile. A token the hub refuses twice (4001, then
    again after a fresh fetch) stops the widget, and the panel says so in words."""
    await open_backoffice(new_page, base_url)
    context, buyer = await new_page()
    token_mode = {"value": "ok"}  # ok | fail | garbage
    fetches: Counter[str] = Counter()

    async def token_route(route: Route) -> None:
        fetches[token_mode["value"]] += 1
        if token_mode["value"] == "fail":
            await route.abort("connectionrefused")  # the page's identify promise rejects
        elif token_mode["value"] == "garbage":
            await route.fulfill(status=200, content_type="application/json", body=json.dumps({"token": "not-a-jwt"}))
        else:
            await route.continue_()

    await context.route("**/demo/token*", token_route)
    switch = WsSwitch()
    await switch.install(context)
    widget = await open_chat(buyer, base_url)
    await say(widget, "before the trouble")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="before the trouble")).to_be_visible()

    # the connection drops and every token fetch fails for a while
    token_mode["value"] = "fail"
    await switch.drop(1011)
    banner = widget.locator(".banner")
    await expect(banner).to_contain_text("Reconnecting")
    await say(widget, "written while sign-in fails")
    await expect(widget.locator(".row.pending", has_text="written while sign-in fails")).to_be_visible()
    # it keeps asking (with backoff), and keeps saying that it is reconnecting
    for _ in range(100):
        if fetches["fail"] >= 3:
            break
        await asyncio.sleep(0.1)
    assert fetches["fail"] >= 3, f"the widget gave up on the token after {fetches['fail']} tries"
    await expect(banner).to_contain_text("Reconnecting")
    await shot(buyer, "10-widget-token-retry")

    # the token function works again: the widget reconnects by itself and sends the message once
    token_mode["value"] = "ok"
    await expect(banner).to_be_hidden(timeout=20_000)
    await expect(widget.locator(".row.pending")).to_have_count(0)
    await expect(widget.locator(".row.mine .bubble", has_text="written while sign-in fails")).to_have_count(1)
    assert await history_texts(hub) == ["before the trouble", "written while sign-in fails"]

    # a token the hub refuses: one fresh fetch, then the widget stops and says why
    token_mode["value"] = "garbage"
    await switch.drop(1011)
    await expect(banner).to_contain_text("could not sign you in", timeout=15_000)
    await expect(banner).to_contain_text("reload")
    assert fetches["garbage"] == 2, fetches
    await asyncio.sleep(1.5)
    assert fetches["garbage"] == 2, "a refused token must not be retried in a loop"
    await expect(widget.locator(".presence-dot")).to_have_attribute("data-status", "unknown")
    await shot(buyer, "11-widget-token-refused")


async def test_normal_close_from_a_restarting_server_reconnects(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    """Close codes 1000, 1005 (no code) and 1015: the widget reconnects and resumes rather than stopping for good."""
    context, buyer = await new_page()
    switch = WsSwitch()
    await switch.install(context)
    widget = await open_chat(buyer, base_url)
    for code in (1000, 1005):
        await switch.drop(code)
        await expect(widget.locator(".banner")).to_contain_text("Reconnecting")
        await expect(widget.locator(".banner")).to_be_hidden(timeout=15_000)
        await say(widget, f"after close {code}")
        await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text=f"after close {code}")).to_be_visible()


async def test_dead_link_is_noticed_within_ten_seconds_and_offline_waits_for_network(
    new_page: PageFactory, base_url: str, hub: ChatServer, proxy: TcpProxy
) -> None:
    """Item 2: the link dies without a close (the proxy stops forwarding): within 10 s the widget says
    it is reconnecting and shows the shop's presence as unknown; it resumes once the link is back.
    The browser going offline shows "Waiting for network" at once."""
    await open_backoffice(new_page, base_url)  # the shop is online (direct to the hub)
    context, buyer = await new_page()
    widget = await open_chat(buyer, proxy.url)
    presence = widget.locator(".presence-text")
    await expect(presence).to_have_text("Online")
    await say(widget, "hello through the proxy")
    await expect(widget.locator(".row.mine:not(.pending) .bubble", has_text="through the proxy")).to_be_visible()

    loop = asyncio.get_running_loop()
    proxy.kill()
    died = loop.time()
    banner = widget.locator(".banner")
    await expect(banner).to_contain_text("Reconnecting", timeout=11_000)
    assert loop.time() - died <= 10.5, f"the dead link was noticed after {loop.time() - died:.1f} s"
    await expect(widget.locator(".presence-dot")).to_have_attribute("data-status", "unknown")
    await expect(presence).to_contain_text("unknown")
    await say(widget, "written on a dead link")
    await expect(widget.locator(".row.pending", has_text="dead link")).to_be_visible()
    await shot(buyer, "12-widget-dead-link")

    proxy.revive()
    await expect(banner).to_be_hidden(timeout=30_000)
    await expect(presence).to_have_text("Online")
    await expect(widget.locator(".row.pending")).to_have_count(0)
    await expect(widget.locator(".row.mine .bubble", has_text="written on a dead link")).to_have_count(1)

    # the browser says the network is gone: say so at once, and come back when it returns
    await context.set_offline(True)
    await expect(banner).to_contain_text("Waiting for network", timeout=3_000)
    await expect(widget.locator(".presence-dot")).to_have_attribute("data-status", "unknown")
    await say(widget, "written offline")
    await shot(buyer, "13-widget-offline")
    await context.set_offline(False)
    await expect(banner).to_be_hidden(timeout=15_000)
    await expect(widget.locator(".row.pending")).to_have_count(0)
    assert await history_texts(hub) == ["hello through the proxy", "written on a dead link", "written offline"]


async def test_two_tabs_and_a_reload_lose_no_message_and_send_none_twice(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    """Item 3: two tabs of one buyer write while the network is down, one of them reloads before it
    comes back: every message arrives exactly once (each cmid sent once)."""
    context, tab_a = await new_page()
    switch = WsSwitch()
    await switch.install(context)
    widget_a = await open_chat(tab_a, base_url)
    tab_b = await context.new_page()
    errors: list[str] = []
    tab_b.on("pageerror", lambda exc: errors.append(str(exc)))
    widget_b = await open_chat(tab_b, base_url)
    await say(widget_a, "online from tab A")
    await expect(widget_b.locator(".row.mine .bubble", has_text="online from tab A")).to_be_visible()

    switch.down = True
    await switch.drop(1011)
    for widget in (widget_a, widget_b):
        await expect(widget.locator(".banner")).to_contain_text("Reconnecting")
    await say(widget_a, "offline from tab A")
    await expect(widget_a.locator(".row.pending", has_text="offline from tab A")).to_be_visible()
    await say(widget_a, "offline from tab A again")
    await expect(widget_a.locator(".row.pending", has_text="tab A again")).to_be_visible()
    await say(widget_b, "offline from tab B")
    await expect(widget_b.locator(".row.pending", has_text="offline from tab B")).to_be_visible()

    # tab A reloads while the network is still down, then the network comes back
    await tab_a.reload()
    await expect(tab_a.frame_locator(WIDGET).locator(".launcher")).to_be_visible()
    await asyncio.sleep(0.5)
    switch.down = False
    await expect(widget_b.locator(".banner")).to_be_hidden(timeout=20_000)
    await expect(widget_b.locator(".row.pending")).to_have_count(0, timeout=15_000)
    for text in ("offline from tab A", "offline from tab B", "offline from tab A again"):
        exact = re.compile("^" + re.escape(text) + "$")
        await expect(widget_b.locator(".row.mine .bubble", has_text=exact)).to_have_count(1)
    texts = await history_texts(hub)
    assert sorted(texts) == sorted(["online from tab A", "offline from tab A", "offline from tab A again",
                                    "offline from tab B"]), texts
    assert texts.index("offline from tab A") < texts.index("offline from tab A again")
    assert set(switch.sends.values()) == {1}, f"a message was sent twice: {switch.sends}"
    # a second reload finds nothing left to send
    await tab_b.reload()
    widget_b = await open_chat(tab_b, base_url)
    await asyncio.sleep(1)
    assert set(switch.sends.values()) == {1}, switch.sends
    assert await history_texts(hub) == texts
    assert not errors, errors


async def test_launcher_lights_for_a_new_buyer_when_the_shop_comes_online(
    new_page: PageFactory, base_url: str, hub: ChatServer
) -> None:
    """Item 5: a signed-in buyer with no conversation yet gets no presence pushes; the widget keeps
    polling the public status, so the launcher lights once an agent comes online (no reload)."""
    _, buyer = await new_page()
    presence_gets: list[str] = []
    buyer.on("request", lambda r: presence_gets.append(r.url) if "/presence/shop/" in r.url else None)
    widget = await open_widget(buyer, base_url)
    launcher = widget.locator(".launcher")
    await expect(launcher).to_have_attribute("data-status", "offline")
    await expect(launcher).to_have_class(re.compile(r"\bdim\b"))
    await buyer.wait_for_function("() => window.frames[0].tradechatWidget.client?.status === 'online'")

    await open_backoffice(new_page, base_url)  # an agent comes online
    await expect(widget.locator(".launcher.lit")).to_be_visible(timeout=30_000)
    await expect(launcher).to_have_attribute("data-status", "online")
    assert len(presence_gets) >= 2


async def test_hub_restarted_mid_session(new_page: PageFactory, tmp_path: Path) -> None:
    """The hub restarts while a buyer and an agent are chatting (the demo's token comes from the hub
    too, so token fetches fail meanwhile): both come back by themselves, nothing lost or doubled."""
    config = web_config(tmp_path)
    server = build(config)
    await server.start()
    proxy = await TcpProxy(server.port).start()
    try:
        agent = await open_backoffice(new_page, proxy.url)
        _, buyer = await new_page()
        widget = await open_chat(buyer, proxy.url)
        await say(widget, "before the restart")
        await agent.locator("button.conv[data-buyer='demo-buyer-1']").click()
        await expect(agent.locator(".messages .bubble", has_text="before the restart")).to_be_visible()

        await server.close()  # every connection closed with 1001; then nothing listens for a while
        banner = widget.locator(".banner")
        await expect(banner).to_contain_text("Reconnecting")
        await expect(agent.locator(".conn")).to_have_text(re.compile("Reconnecting"))
        await say(widget, "during the restart")
        await asyncio.sleep(2)

        server = build(config)
        await server.start()
        proxy.target_port = server.port
        await expect(banner).to_be_hidden(timeout=30_000)
        await expect(agent.locator(".conn[data-status=online]")).to_be_visible(timeout=30_000)
        await expect(agent.locator(".messages .bubble", has_text="during the restart")).to_have_count(1)
        await agent.locator(".composer textarea").fill("back after the restart")
        await agent.locator(".composer textarea").press("Enter")
        await expect(widget.locator(".row.theirs .bubble", has_text="back after the restart")).to_have_count(1)
        await expect(widget.locator(".row.pending")).to_have_count(0)
        assert await history_texts(server) == ["before the restart", "during the restart", "back after the restart"]
    finally:
        await proxy.close()
        await server.close()
