"""The pictures' HTTP side: uploads on ``MEDIA_PORT``, fetches on the hub's own port.

Uploads need a request body, which the websocket port cannot take (its HTTP parser
refuses any), so ``POST /media?conv=<id>`` has a small aiohttp listener of its own,
open to browsers (CORS ``*``: it is authorised by the bearer token, never by a cookie).
Fetching is a plain ``GET`` on the hub's port, where the widget page lives, so the
``<img>`` addresses are same-origin:

``GET /media``
    the limits and the upload address (public).
``GET /media/<sha>[/thumb]?conv=<id>&exp=&sig=``
    a signed address (:mod:`.links`), for ``<img>``.
``GET /media/<sha>[/thumb]?conv=<id>`` with ``Authorization: Bearer <token>``
    the same for programs.
``GET /media/<sha>/link?conv=<id>`` with the token
    fresh signed addresses of a picture seen in a message.
"""

from __future__ import annotations

import http
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..protocol.errors import ErrorCode
from .images import THUMB_MIME, MediaError, mime_of
from .service import MediaService, not_found
from .store import Variant

log = logging.getLogger(__name__)

_PATH = re.compile(r"^/media/([0-9a-f]{64})(/thumb|/link)?$")
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
         "Access-Control-Allow-Headers": "Authorization, Content-Type", "Access-Control-Max-Age": "600"}


def _error_body(exc: MediaError) -> dict[str, Any]:
    return {"code": int(exc.code), "message": exc.message, **exc.details}


# --- uploads (aiohttp, MEDIA_PORT) ------------------------------------------------------


def build_upload_app(service: MediaService) -> web.Application:
    def fail(exc: MediaError) -> web.Response:
        return web.json_response(_error_body(exc), status=exc.status, headers=_CORS)

    async def preflight(request: web.Request) -> web.Response:
        return web.Response(status=204, headers=_CORS)

    async def read_body(request: web.Request) -> bytes:
        limit = service.max_bytes
        too_large = MediaError(ErrorCode.MEDIA_TOO_LARGE, 413, f"the upload is over {limit} bytes", max_bytes=limit)
        if request.content_length is not None and request.content_length > limit:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(65_536):
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def upload(request: web.Request) -> web.Response:
        try:
            ident = service.identify(request.headers.get("Authorization"))
            conv = request.query.get("conv", "")
            if not conv or len(conv) > 64:
                raise MediaError(ErrorCode.INVALID_FIELDS, 400, "name the conversation: ?conv=<id>", fields=["conv"])
            await service.admit(ident, conv)
            answer = await service.upload(ident, conv, await read_body(request))
        except MediaError as exc:
            if exc.code == ErrorCode.MEDIA_TOO_LARGE and request.content_length:
                # Say no without reading the rest: the client may still be sending.
                return web.json_response(_error_body(exc), status=413, headers={**_CORS, "Connection": "close"})
            return fail(exc)
        return web.json_response(answer, status=201, headers={**_CORS, "Cache-Control": "no-store"})

    app = web.Application(client_max_size=1024)
    app.add_routes([web.options("/media", preflight), web.post("/media", upload)])
    return app


class MediaServer:
    """The upload listener, started and stopped with the hub node."""

    def __init__(self, service: MediaService, host: str, port: int, *, reuse_port: bool = False) -> None:
        self.app = build_upload_app(service)
        self.service = service
        self.host = host
        self.port = port
        self.reuse_port = reuse_port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        await self.service.start()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])
        log.info("picture uploads on %s:%d", self.host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.service.close()


# --- fetches (the hub's port, before any handshake) --------------------------------------


_READ_CORS = [("Access-Control-Allow-Origin", "*")]
"""A back office on another origin may ask for addresses: authorised by token, never a cookie."""


def _response(status: int, body: bytes, content_type: str, extra: list[tuple[str, str]]) -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body))),
                       ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                       *_READ_CORS, *extra])
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def _json(status: int, body: Any) -> Response:
    return _response(status, json.dumps(body).encode(), "application/json", [("Cache-Control", "no-store")])


class MediaRoutes:
    """``GET /media...`` on the hub's port (see the module's docstring)."""

    def __init__(self, service: MediaService, server: MediaServer, upload_url: str) -> None:
        self.service = service
        self.server = server
        self.upload_url = upload_url

    async def route(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        if request.method == "OPTIONS":  # the preflight of a cross-origin fetch with the token
            headers = Headers([*_READ_CORS, ("Access-Control-Allow-Methods", "GET"), ("Content-Length", "0"),
                               ("Access-Control-Allow-Headers", "Authorization"), ("Access-Control-Max-Age", "600")])
            return Response(204, "No Content", headers, b"")
        parts = urlsplit(request.path)
        if parts.path in ("/media", "/media/"):
            return _json(200, {"upload_url": self._upload_url(request), **self.service.limits()})
        match = _PATH.match(parts.path)
        try:
            if match is None:
                raise not_found()
            return await self._fetch(request, match.group(1), match.group(2) or "", parse_qs(parts.query))
        except MediaError as exc:
            return _json(exc.status, _error_body(exc))

    def _upload_url(self, request: Request) -> str:
        if self.upload_url:
            return self.upload_url
        host = request.headers.get("Host", "127.0.0.1").rsplit(":", 1)[0] or "127.0.0.1"
        return f"http://{host}:{self.server.port}/media"

    async def _fetch(self, request: Request, sha256: str, suffix: str, query: dict[str, list[str]]) -> Response:
        service = self.service
        conv, exp, sig = (query.get(key, [""])[0] for key in ("conv", "exp", "sig"))
        if sig:
            if suffix == "/link" or not await service.signed(sha256, conv, exp, sig):
                raise not_found()
            max_age = max(0, int(exp) - service.now_s())
        else:
            ident = service.identify(request.headers.get("Authorization"))
            if not await service.visible(ident, sha256, conv):
                raise not_found()
            if suffix == "/link":
                return _json(200, service.link(sha256, conv))
            max_age = 0
        variant: Variant = "thumb" if suffix == "/thumb" else "full"
        etag = f'"{sha256}{"-thumb" if variant == "thumb" else ""}"'
        # Content-addressed: the bytes behind a hash never change, only who may see them.
        extra = [("ETag", etag), ("Cache-Control", f"private, max-age={max_age}"),
                 ("Content-Security-Policy", "default-src 'none'; sandbox"), ("Content-Disposition", "inline")]
        if request.headers.get("If-None-Match") == etag:
            return Response(304, "Not Modified", Headers(extra), b"")
        body = await service.read(sha256, variant)
        return _response(200, body, THUMB_MIME if variant == "thumb" else mime_of(body), extra)
