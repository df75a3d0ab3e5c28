"""The browser side, served by the hub on its own port (plain GETs, answered before any handshake).

``/web/...``
    the web client's files (``web-client/src``): the embed script, the widget page
    the embed script puts in an iframe, the back office, and the msgpack package
    from ``web-client/node_modules`` (installed with ``npm ci``, never committed).

``/demo/...`` (only with ``DEMO=on``)
    a listing page with the widget, a back-office page and the arbiter's desk
    (``/demo/arbiter``, signed in as the demo arbiter), a demo shop with two
    agents and three listings, two funded demo buyers, and ``/demo/token``, which
    signs a short-lived token for a *demo* user. A real marketplace signs tokens in
    its own backend for its own logged-in users; the hub never does that.

The demo data is created when the first ``/demo/`` page is asked for; every step
is idempotent (agents upserted, deposits under fixed keys, PINs set once), so a
restart or a second node creates nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import http
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .auth import Role, mint, mint_listing
from .config import Config
from .hub import Hub

if TYPE_CHECKING:
    from .money import MoneyDesk

HttpRoute = Callable[[ServerConnection, Request], Awaitable[Response | None]]
"""A plain HTTP GET answered on the hub's port before any websocket handshake."""

log = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parent.parent / "web-client"
SOURCES = WEB_ROOT / "src"
DEMO_PAGES = WEB_ROOT / "demo"
MSGPACK = WEB_ROOT / "node_modules" / "@msgpack" / "msgpack" / "dist.esm"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
    ".map": "application/json",
}

# --- demo data ----------------------------------------------------------------------------

DEMO_SHOP = "demo-shop"
DEMO_PIN = "123456"
DEMO_CURRENCY = "CNY"
DEMO_BALANCE = 1_000_000
"""Each demo buyer's top-up, in fen (¥10,000.00), deposited once under a fixed key."""
DEMO_TOKEN_TTL = 900
"""Demo tokens live 15 minutes; the web client fetches a fresh one before it expires."""


@dataclass(frozen=True)
class DemoUser:
    id: str
    role: Role
    name: str


DEMO_AGENTS = (
    DemoUser("demo-agent-1", "agent", "小林 Lin (demo agent)"),
    DemoUser("demo-agent-2", "agent", "Wang (demo agent)"),
)
DEMO_BUYERS = (
    DemoUser("demo-buyer-1", "buyer", "Demo buyer 1"),
    DemoUser("demo-buyer-2", "buyer", "Demo buyer 2"),
)
DEMO_ARBITERS = (DemoUser("demo-arbiter", "arbiter", "Demo arbiter"),)
"""The platform's arbiter of the demo (the arbiter's desk, ``/demo/arbiter``)."""
DEMO_LISTINGS: tuple[dict[str, Any], ...] = (
    {"id": "demo-longjing", "title": "西湖龙井 Longjing green tea 250g (demo)", "price": 12800,
     "currency": DEMO_CURRENCY, "image": "/demo/img/tea.svg"},
    {"id": "demo-teapot", "title": "宜兴紫砂壶 Yixing clay teapot (demo)", "price": 36800,
     "currency": DEMO_CURRENCY, "image": "/demo/img/teapot.svg"},
    {"id": "demo-cups", "title": "青花瓷茶杯 Blue-and-white cups, set of 4 (demo)", "price": 8800,
     "currency": DEMO_CURRENCY, "image": "/demo/img/cups.svg"},
)


def demo_user(user: str, role: str) -> DemoUser | None:
    return next((u for u in (*DEMO_AGENTS, *DEMO_BUYERS, *DEMO_ARBITERS) if u.id == user and u.role == role), None)


# --- responses --------------------------------------------------------------------------------


def _response(status: int, body: bytes, content_type: str, extra: list[tuple[str, str]] | None = None) -> Response:
    headers = Headers([
        ("Content-Type", content_type), ("Content-Length", str(len(body))),
        ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"), *(extra or []),
    ])
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _json(status: int, body: Any) -> Response:
    return _response(status, json.dumps(body).encode(), "application/json", [("Cache-Control", "no-store")])


def _not_found() -> Response:
    return _json(404, {"error": "not found"})


def _inside(root: Path, relative: str) -> Path | None:
    """The file ``relative`` under ``root``, or None if it is missing or escapes ``root``."""
    if not relative or "\\" in relative or "\x00" in relative:
        return None
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return None
    return path


async def _file(request: Request, path: Path, *, frameable: bool) -> Response:
    suffix = path.suffix.lower()
    content_type = _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]
    if content_type is None:
        return _not_found()
    body = await asyncio.to_thread(path.read_bytes)
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    extra = [("Cache-Control", "no-cache"), ("ETag", etag)]
    if suffix == ".html":
        # The widget page is made to be framed by any listing page; every other page refuses frames.
        extra.append(("Content-Security-Policy", "frame-ancestors *" if frameable else "frame-ancestors 'none'"))
    if request.headers.get("If-None-Match") == etag:
        headers = Headers(extra)
        return Response(304, "Not Modified", headers, b"")
    return _response(200, body, content_type, extra)


# --- routes -----------------------------------------------------------------------------------


class WebRoutes:
    def __init__(self, config: Config, hub: Hub, money: MoneyDesk | None) -> None:
        self.config = config
        self.hub = hub
        self.money = money
        self._seeded = False
        self._seed_lock = asyncio.Lock()

    def routes(self) -> dict[str, HttpRoute]:
        routes: dict[str, HttpRoute] = {"/web/": self.web}
        if self.config.demo_enabled:
            routes["/demo"] = self.demo
        return routes

    async def web(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        path = urlsplit(request.path).path
        rest = path[len("/web/"):]
        if rest.startswith("vendor/msgpack/"):
            found = _inside(MSGPACK, rest[len("vendor/msgpack/"):])
            if found is None and not MSGPACK.is_dir():
                return _json(503, {"error": "the web client's packages are not installed: run npm ci in web-client/"})
        else:
            found = _inside(SOURCES, rest)
        if found is None:
            return _not_found()
        return await _file(request, found, frameable=found.name == "widget.html")

    async def demo(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        parts = urlsplit(request.path)
        path = parts.path
        if path == "/demo":
            headers = Headers([("Location", "/demo/"), ("Content-Length", "0")])
            return Response(302, "Found", headers, b"")
        if not path.startswith("/demo/"):
            return _not_found()
        await self.seed()
        rest = path[len("/demo/"):]
        if rest == "token":
            return self.token(parse_qs(parts.query))
        if rest == "config":
            return _json(200, self.demo_config())
        page = {"": "index.html", "backoffice": "backoffice.html", "arbiter": "arbiter.html"}.get(rest, rest)
        found = _inside(DEMO_PAGES, page)
        if found is None:
            return _not_found()
        return await _file(request, found, frameable=False)

    def token(self, query: dict[str, list[str]]) -> Response:
        user, role = query.get("user", [""])[0], query.get("role", ["buyer"])[0]
        who = demo_user(user, role)
        if who is None:
            users = self.demo_config()["users"]
            return _json(403, {"error": "demo tokens are only for the demo users", "users": users})
        token = mint(self.config.token_secret, who.id, who.role, shop=DEMO_SHOP if who.role == "agent" else None,
                     name=who.name, ttl=DEMO_TOKEN_TTL, now=self.hub.clock.now_ms() / 1000)
        return _json(200, {"token": token, "user": who.id, "role": who.role, "ttl": DEMO_TOKEN_TTL})

    def demo_config(self) -> dict[str, Any]:
        return {
            "demo": True,
            "shop": DEMO_SHOP,
            "pin": DEMO_PIN,
            "balance": DEMO_BALANCE,
            "currency": DEMO_CURRENCY,
            "payments": self.money is not None,
            # Signed like a marketplace signs its listing cards, so "Buy now" at the listed price works.
            "listings": [{**listing, "token": mint_listing(self.config.token_secret, DEMO_SHOP, listing)}
                         for listing in DEMO_LISTINGS],
            "users": [{"id": u.id, "role": u.role, "name": u.name}
                      for u in (*DEMO_BUYERS, *DEMO_AGENTS, *DEMO_ARBITERS)],
        }

    async def seed(self) -> None:
        """Create the demo shop's agents, fund the demo buyers and set everyone's PIN (idempotent)."""
        if self._seeded:
            return
        async with self._seed_lock:
            if self._seeded:
                return
            hub = self.hub
            now = hub.clock.now_ms()
            for agent in DEMO_AGENTS:
                await hub.store.register_agent(DEMO_SHOP, agent.id, now)
            if self.money is not None:
                await asyncio.to_thread(self._fund, self.money.service)
            self._seeded = True
            log.info("demo data ready: shop %s, buyers %s (PIN %s)", DEMO_SHOP,
                     ", ".join(b.id for b in DEMO_BUYERS), DEMO_PIN)

    @staticmethod
    def _fund(service: Any) -> None:
        from payments import Actor, user_owner

        for buyer in DEMO_BUYERS:
            service.deposit(user_owner(buyer.id), DEMO_BALANCE, DEMO_CURRENCY, f"demo-topup-{buyer.id}")
        for user in (*DEMO_BUYERS, *DEMO_AGENTS):
            actor = Actor(user_id=user.id, role=user.role, shop_id=DEMO_SHOP if user.role == "agent" else None)
            if not service.has_pin(actor):
                service.set_pin(actor, DEMO_PIN)


def web_routes(config: Config, hub: Hub, money: MoneyDesk | None) -> dict[str, HttpRoute]:
    """The routes to add to a hub node's HTTP side (see :meth:`ChatServer._http`)."""
    if config.demo_enabled and not config.is_dev_secret:
        log.warning("DEMO is on with a production TOKEN_SECRET: anyone can get tokens for the demo users "
                    "(set DEMO=off in production)")
    if not MSGPACK.is_dir():
        log.warning("web-client/node_modules is missing: run `npm ci` in web-client/ (scripts/serve does)")
    return WebRoutes(config, hub, money).routes()
