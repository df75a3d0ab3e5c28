"""Who may upload and see which picture, and the upload itself (transport-agnostic).

A picture is seen *in a conversation*: every request names one, and the answer is the
same 404 whether the picture does not exist, is not bound to that conversation, or the
conversation is not the asker's (existence is never leaked). The conversation's buyer
and the shop's agents may upload and see; an arbiter may see the pictures of a
conversation whose order is or was disputed or that a party reported (as with its messages),
never upload.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..arbiter_access import arbiter_may_read
from ..auth import Identity, verify
from ..hub import Hub
from ..protocol.errors import ErrorCode, ProtocolError
from ..ratelimit import RateLimiter
from ..routing import can_access
from ..store.base import ConversationRecord
from .images import MIME, THUMB_MIME, MediaError, Picture, process
from .links import Signer
from .store import SHA256, MediaStore, Variant

DECODERS = 2
"""Pictures decoded at once per node: each may hold up to MEDIA_MAX_PIXELS in memory."""


def not_found() -> MediaError:
    return MediaError(ErrorCode.NOT_FOUND, 404, "no such picture or conversation")


class MediaService:
    def __init__(self, hub: Hub, store: MediaStore, signer: Signer, *, max_bytes: int, max_pixels: int,
                 per_minute: float) -> None:
        self.hub = hub
        self.store = store
        self.signer = signer
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.limiter = RateLimiter(per_minute / 60.0, max(1, int(per_minute)))
        self._decoding = asyncio.Semaphore(DECODERS)

    async def start(self) -> None:
        await self.store.start()

    async def close(self) -> None:
        await self.store.close()

    def limits(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes, "max_pixels": self.max_pixels, "types": sorted(MIME.values()),
                "thumb_type": THUMB_MIME, "url_ttl": self.signer.ttl}

    def now_s(self) -> int:
        return self.hub.clock.now_ms() // 1000

    # --- who ----------------------------------------------------------------

    def identify(self, authorization: str | None) -> Identity:
        """The user behind ``Authorization: Bearer <token>`` (the websocket's token)."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise MediaError(ErrorCode.NOT_AUTHENTICATED, 401, "send 'Authorization: Bearer <token>'")
        try:
            return verify(self.hub.config.token_secret, authorization[7:].strip(), now=self.now_s())
        except ProtocolError as exc:
            raise MediaError(ErrorCode(exc.code), 401, exc.message) from exc

    async def _conversation(self, conv: str) -> ConversationRecord | None:
        try:
            return await self.hub.conversation(conv)
        except self.hub.unreachable as exc:
            raise MediaError(ErrorCode.UNAVAILABLE, 503, "the store cannot be reached; retry shortly") from exc

    async def may_see(self, ident: Identity, conv: str) -> bool:
        record = await self._conversation(conv)
        if record is None:
            return False
        if can_access(ident, record):
            return True
        return ident.role == "arbiter" and await arbiter_may_read(self.hub, record.id)

    # --- upload -------------------------------------------------------------

    async def admit(self, ident: Identity, conv: str) -> None:
        """Refuse an upload before its body is read: wrong conversation, or too many."""
        record = await self._conversation(conv)
        if record is None or not can_access(ident, record):
            raise not_found()
        if not self.limiter.allow(ident.user, self.hub.clock.now_ms()):
            raise MediaError(ErrorCode.RATE_LIMITED, 429, "too many uploads; retry shortly",
                             retry_after_ms=int(1000 / self.limiter.rate))

    async def upload(self, ident: Identity, conv: str, data: bytes) -> dict[str, Any]:
        """Check, re-encode, store and bind; the answer tells the client what to ``send``."""
        if not data:
            raise MediaError(ErrorCode.MEDIA_UNSUPPORTED, 415, "the upload is empty", types=sorted(MIME.values()))
        async with self._decoding:
            picture = await asyncio.to_thread(process, data, self.max_pixels)
        try:
            await self.store.put(picture)
            await self.store.bind(picture.sha256, conv, ident.user, self.hub.clock.now_ms())
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise MediaError(ErrorCode.UNAVAILABLE, 503, "the picture could not be stored; retry") from exc
        return self.describe(picture, conv)

    def describe(self, picture: Picture, conv: str) -> dict[str, Any]:
        path = f"/media/{picture.sha256}"
        return {
            "id": picture.sha256, "url": path, "thumb": f"{path}/thumb", "type": picture.mime,
            "width": picture.width, "height": picture.height, "bytes": len(picture.data),
            "body": {"kind": "image", "url": path, "width": picture.width, "height": picture.height},
            "signed": self.link(picture.sha256, conv),
        }

    # --- fetch --------------------------------------------------------------

    def link(self, sha256: str, conv: str) -> dict[str, Any]:
        now = self.now_s()
        return {"url": self.signer.address(sha256, conv, "full", now),
                "thumb": self.signer.address(sha256, conv, "thumb", now),
                "expires_at": self.signer.expiry(now)}

    async def visible(self, ident: Identity, sha256: str, conv: str) -> bool:
        """Whether ``ident`` may see the picture in ``conv`` (bound there, and theirs)."""
        if not SHA256.match(sha256) or not await self.may_see(ident, conv):
            return False
        return await self._bound(sha256, conv)

    async def _bound(self, sha256: str, conv: str) -> bool:
        try:
            return await self.store.bound(sha256, conv)
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise MediaError(ErrorCode.UNAVAILABLE, 503, "the media store cannot be reached") from exc

    async def read(self, sha256: str, variant: Variant) -> bytes:
        try:
            found = await self.store.get(sha256, variant)
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise MediaError(ErrorCode.UNAVAILABLE, 503, "the media store cannot be reached") from exc
        if found is None:
            raise not_found()
        return found

    async def signed(self, sha256: str, conv: str, exp: str, sig: str) -> bool:
        """Whether a signed address is genuine and current (and the binding still there)."""
        if not SHA256.match(sha256) or not self.signer.valid(sha256, conv, exp, sig, self.now_s()):
            return False
        return await self._bound(sha256, conv)
