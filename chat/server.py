"""The hub's network face: websockets on one port, plus a few plain HTTP GETs.

``GET /healthz`` (alive), ``/readyz`` (backends reachable), ``/metrics``
(Prometheus) and ``/presence/shop/<id>`` (public: lights the chat icon on a
listing page) are answered in ``process_request`` before any handshake; every
other path upgrades to the chat protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import re
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import OPEN

from . import presend
from .api import ApiServer
from .backends.base import Broker, Presence
from .backends.memory import MemoryBroker, MemoryPresence
from .broadcasts import BroadcastRunner
from .clock import Clock, SystemClock
from .config import Config, webhook_settings
from .handlers import dispatch_table
from .hub import Hub
from .keepalive import KeepAlive, TokenDeadlines
from .outbox import Transport
from .protocol.errors import CloseCode, ErrorCode, ProtocolError
from .ratelimit import RateLimiter
from .responsiveness import DAY_MS, TypicalResponseCache
from .routing import shop_entity
from .session import Session
from .store.base import Store
from .web import HttpRoute, web_routes

if TYPE_CHECKING:
    from .media.wiring import Media
    from .money import MoneyDesk

log = logging.getLogger(__name__)

_SHOP_PRESENCE = re.compile(r"^/presence/shop/([A-Za-z0-9_.:@-]{1,64})$")



class WebsocketTransport(Transport):
    """Writes without awaiting, coalesced: frames queued during one event-loop pass
    leave in a single ``transport.write`` (one system call instead of one per frame).

    The per-connection queue is the transport's buffer (what the kernel would not
    take); the outbox closes a connection that lets it grow past ``OUTBOX_BYTES``.
    """

    __slots__ = ("_closing", "_flush_scheduled", "_pending", "ws")

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self._closing: asyncio.Task[None] | None = None
        self._pending = 0
        self._flush_scheduled = False

    def write(self, data: bytes) -> None:
        ws = self.ws
        if ws.protocol.state is not OPEN:
            return
        ws.protocol.send_binary(data)
        self._pending += len(data)
        if self._pending > 65_536:  # a big push (a sync, a gap fill) goes out as it grows
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)

    def _flush(self) -> None:
        self._pending = 0
        ws = self.ws
        chunks = ws.protocol.data_to_send()
        if not chunks:
            return
        try:
            if all(chunks) and ws.transport is not None and not ws.transport.is_closing():
                ws.transport.write(b"".join(chunks))
            else:  # an end-of-stream marker is in there: let websockets handle it
                ws.protocol.writes[:0] = chunks
                ws.send_data()
        except (RuntimeError, OSError):
            # The peer vanished between the check and the write (uvloop raises RuntimeError
            # on a closed transport): nothing to deliver to; the reader sees the close.
            log.debug("write to a closed connection dropped")

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def buffered(self) -> int:
        """Bytes the peer has not taken yet (what this pass queued is at most 64 KiB more)."""
        transport = self.ws.transport
        return 0 if transport is None else transport.get_write_buffer_size()

    def close(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self.ws.close(code, reason))

    async def wait_closed(self) -> None:
        """Let a close started by :meth:`close` finish (its code must reach the peer before
        the handler returns, or websockets closes with 1000)."""
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing


def open_store(config: Config) -> Store:
    url = config.database_url
    if url.startswith("sqlite:///"):
        import os

        from .store.sqlite import SQLiteStore

        path = url[len("sqlite:///"):]
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return SQLiteStore(path, synchronous=config.sqlite_synchronous)
    if url.startswith(("postgresql://", "postgres://")):
        from .store.postgres import PostgresStore

        return PostgresStore(url)  # tables in schema "chat", or the URL's ?schema=
    raise SystemExit("DATABASE_URL: expected sqlite:///path or postgresql://user@host/db")


def open_backends(config: Config) -> tuple[Broker, Presence]:
    ttl_ms = int(config.presence_ttl * 1000)
    if not config.redis_url:
        return MemoryBroker(), MemoryPresence(ttl_ms)
    from .backends.redis import open_redis

    # Each backend owns (and closes) its own client built from the URL (one Redis or a cluster).
    return open_redis(config.redis_url, config.redis_prefix, ttl_ms)


def _expire(transport: WebsocketTransport) -> None:
    transport.close(CloseCode.TOKEN_EXPIRED, "token expired")


def _json(status: int, body: Any) -> Response:
    data = json.dumps(body).encode()
    headers = Headers(
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
         ("Cache-Control", "no-store"), ("Access-Control-Allow-Origin", "*")]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, data)


@dataclass
class ChatServer:
    """A running hub node; :meth:`start` binds, :meth:`close` drains and stops."""

    config: Config
    hub: Hub
    server: Server | None = None
    extra_routes: dict[str, HttpRoute] | None = None
    api: ApiServer | None = None
    money: MoneyDesk | None = None
    """Money commands, payment cards and timers, when payments are enabled."""
    reuse_port: bool = False
    """Bind with SO_REUSEPORT, beside the other workers of ``serve --workers``."""
    media: Media | None = None
    """Picture uploads (their own port) and fetches (``/media/`` on this one)."""
    broadcasts: BroadcastRunner | None = None
    """Delivers the shops' broadcasts to their followers (``BROADCASTS_IN_HUB``)."""
    _typical_cache: TypicalResponseCache = field(default_factory=TypicalResponseCache)
    _keepalive: KeepAlive | None = None
    _token_deadlines: TokenDeadlines = field(default_factory=lambda: TokenDeadlines(_expire))

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("the server is not started")
        sock = next(iter(self.server.sockets))
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        await self.hub.start()
        if self.money is not None:
            await self.money.start()
        if self.media is not None:
            await self.media.server.start()
        if self.broadcasts is not None:
            await self.broadcasts.start()
        cfg = self.config
        self._limiter = RateLimiter(cfg.rate_per_second, cfg.rate_burst)
        self._handlers = dispatch_table(self.money.handlers() if self.money is not None else None)
        self.server = await serve(
            self._handler,
            cfg.host,
            cfg.port,
            process_request=self._http,
            # Frames over our limit get an error reply; only absurd ones (4×) are cut off.
            max_size=cfg.max_frame_bytes * 4,
            max_queue=64,
            compression=None,
            ping_interval=None,  # one sweep pings every connection (chat.keepalive)
            close_timeout=5,
            reuse_port=self.reuse_port,
        )
        server = self.server
        self._keepalive = KeepAlive(lambda: server.connections, cfg.ping_interval, cfg.ping_timeout)
        self._keepalive.start()
        log.info("hub node %s listening on %s:%d", self.hub.node, cfg.host, self.port)
        if self.api is not None:
            await self.api.start()
            log.info("server API listening on %s:%d", self.api.host, self.api.port)

    async def close(self) -> None:
        """Close every connection with 1001 (going away: reconnect and resume), then the hub."""
        if self.api is not None:
            await self.api.close()
        if self._keepalive is not None:
            await self._keepalive.stop()
        if self.server is not None:
            self.server.close(close_connections=True)
            await self.server.wait_closed()
            self.server = None
            if self.broadcasts is not None:
                await self.broadcasts.stop()
            if self.money is not None:
                await self.money.stop()
            if self.media is not None:
                await self.media.server.close()
            await presend.close(self.hub)
            await self.hub.stop()

    async def serve_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down: closing connections with 1001")
        await self.close()

    # --- HTTP -----------------------------------------------------------------

    async def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return _json(200, {"status": "ok", "node": self.hub.node})
        if path == "/readyz":
            checks = await self.hub.ready()
            return _json(200 if all(checks.values()) else 503, {"ready": all(checks.values()), "checks": checks})
        if path == "/metrics":
            body = self.hub.metrics.render()
            headers = Headers([("Content-Type", "text/plain; version=0.0.4"), ("Content-Length", str(len(body)))])
            return Response(200, "OK", headers, body)
        match = _SHOP_PRESENCE.match(path)
        if match:
            shop = match.group(1)
            now = self.hub.clock.now_ms()
            state = (await self.hub.presence.get([shop_entity(shop)], now))[shop_entity(shop)]
            credit = None if self.money is None else await self.money.shop_credit(shop, now)
            return _json(200, {"shop": shop, "status": state.status, "last_seen": state.last_seen,
                               "typical_response_ms": await self._typical(shop, now), "credit": credit})
        if self.extra_routes:
            for prefix, route in self.extra_routes.items():
                if path.startswith(prefix):
                    return await route(connection, request)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _json(404, {"error": "not found"})
        return None

    async def _typical(self, shop: str, now: int) -> int | None:
        """The shop's median first response over the last week (null until it has a few)."""
        cache = self._typical_cache
        fresh, value = cache.get(shop, now)
        if fresh:
            return value
        try:
            times = await self.hub.store.first_responses(shop, now - cache.window_days * DAY_MS)
        except Exception:
            log.warning("could not compute response figures for %s", shop, exc_info=True)
            return value
        return cache.put(shop, now, times)

    # --- websocket --------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        transport = WebsocketTransport(ws)
        session = Session(self.hub, transport, self._limiter, self._handlers)
        expires: int | None = None
        try:
            auth = ws.request.headers.get("Authorization") if ws.request else None
            # Nothing reads the handshake's headers after this: about 3 KB that every idle
            # connection would otherwise keep. (``ws.request`` itself must stay: websockets
            # tells the handshake from later events by it.)
            for handshake in (ws.request, ws.response):
                if handshake is not None:
                    handshake.headers.clear()
            if auth and auth.lower().startswith("bearer "):
                await session.handle_bearer(auth[7:].strip())
            else:
                await self._authenticate_first_frame(ws, session)
            if session.identity is None:
                await transport.wait_closed()
                return
            expires = session.identity.expires_at
            self._token_deadlines.add(expires, transport, expires - self.hub.clock.now_ms() / 1000)
            async for data in ws:
                await session.handle(data)
        except ConnectionClosed:
            pass
        finally:
            if expires is not None:
                self._token_deadlines.discard(expires, transport)
            with contextlib.suppress(Exception):
                await session.close()

    async def _authenticate_first_frame(self, ws: ServerConnection, session: Session) -> None:
        """Browsers cannot set headers: the first frame must be ``auth``."""
        deadline = asyncio.get_running_loop().time() + self.config.auth_timeout
        while session.identity is None and not session.closing:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                data = await asyncio.wait_for(ws.recv(), max(0.0, remaining))
            except TimeoutError:
                await ws.close(CloseCode.AUTH_TIMEOUT, "authenticate within the time limit")
                return
            await session.handle(data)
            if ws.state.name != "OPEN":
                return


def build(
    config: Config, *, clock: Clock | None = None, store: Store | None = None, reuse_port: bool = False
) -> ChatServer:
    """Wire a hub node from its configuration (the embedded default needs nothing else);
    ``reuse_port``: one of several workers on the same ports (:mod:`chat.workers`)."""
    clock = clock or SystemClock()
    broker, presence = open_backends(config)
    hub = Hub(config, store or open_store(config), broker, presence, clock)
    hub.alone = not config.redis_url
    if config.redis_url:
        from .backends.redis import UNREACHABLE

        hub.unreachable = (*hub.unreachable, *UNREACHABLE)
    server = ChatServer(config, hub, reuse_port=reuse_port)
    if config.broadcasts_enabled_in_hub:
        server.broadcasts = BroadcastRunner(hub)
    if config.webhook_url and not config.payments_enabled:
        # The webhook outbox lives in the ledger's database: without it nothing would be sent.
        raise SystemExit("WEBHOOK_URL needs PAYMENTS=on: webhooks are queued in the ledger's database")
    if config.payments_enabled:
        from . import money

        if config.is_dev_pepper and not config.is_dev_secret:
            # A production token secret says this is production: PINs need a real pepper.
            raise SystemExit("PIN_PEPPER is the development default: set it (a long random secret, kept out of "
                             "the ledger's database) or turn PAYMENTS off")
        if config.is_dev_pepper:
            log.warning("PIN_PEPPER is the development default: set it in production")
        service = money.open_service(config.payments_database_url, config.payment_settings(), clock.now_ms)
        timers = config.timer_interval if config.timers_in_hub.lower() in ("on", "1", "true", "yes") else None
        # Webhooks go out from every process that runs the timers (safe in parallel); every
        # node moves the chat events its requests write.
        server.money = money.MoneyDesk(hub, service, timer_interval=timers, webhooks=webhook_settings(config),
                                       deliver_webhooks=timers is not None)
        hub.disputed = server.money.disputed
        server.api = ApiServer(service, config.server_secret, config.api_host, config.api_port,
                               reuse_port=reuse_port, store=hub.store, evidence_key=config.evidence_key,
                               now_ms=clock.now_ms)
    from .media.wiring import open_media

    server.media = open_media(config, hub, reuse_port=reuse_port)
    server.extra_routes = {**(server.extra_routes or {}), "/media": server.media.routes.route}
    # The browser side (widget, back office) and, with DEMO on, the demo: plain GETs on this port.
    server.extra_routes = {**(server.extra_routes or {}), **web_routes(config, hub, server.money)}
    return server


__all__ = ["ChatServer", "ErrorCode", "ProtocolError", "build"]
