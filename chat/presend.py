"""The marketplace's pre-send check (``PRESEND_URL``): allow, mask or block a text before it is stored.

Before a ``text`` message is stored, the hub POSTs ``{conversation, sender, role, kind,
body}`` as JSON to the hook and applies its answer ``{"verdict": "allow" | "mask" |
"block", "text"?: str, "reason"?: str}``:

* ``allow``: stored as sent;
* ``mask``: stored with the hook's ``text`` instead (the original is never stored);
* ``block``: refused with ``PRESEND_BLOCKED`` (4007, ``details.reason`` when given),
  nothing stored.

The verdict is recorded in the stored body as ``presend``, where only the hub can put it
(a client's body may not carry the key: 1004). The hook runs after off-platform detection,
so it sees the body as it would be stored (``flags``, and the masked text under
``OFF_PLATFORM_ACTION=mask``), and a text detection blocks never reaches it.

The check is synchronous on the send path, so it has a deadline (``PRESEND_TIMEOUT_MS``).
A timeout, a connection error, a non-2xx status or an answer that is not one of the above
is a failure, and ``PRESEND_FAILURE`` decides: ``open`` stores the message as sent with
``presend: "unavailable"`` (the marketplace can review those later); ``closed`` refuses it
with ``UNAVAILABLE`` (5002, retry: nothing was stored).

A resend of a ``cmid`` already stored does not ask again: the first verdict is the one the
message was stored under (one indexed read per text, and only while a hook is set). Each
node keeps one HTTP session with keep-alive connections to the hook, made on first use
(inside the running event loop) and closed with the node.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp

from .hub import Hub
from .protocol.errors import ErrorCode, ProtocolError
from .store.base import Role

log = logging.getLogger(__name__)

VERDICTS = ("allow", "mask", "block")
MAX_TEXT = 4000
"""A masked text is held to what a client may send."""
MAX_REASON = 200
_WARN_EVERY = 10.0
"""Seconds between two warnings about a failing hook (an outage is not one line per message)."""


class HookFailed(Exception):
    """The hook did not give a usable answer in time."""


@dataclass(frozen=True, slots=True)
class Verdict:
    verdict: str
    text: str | None = None
    reason: str | None = None


def parse(answer: object) -> Verdict:
    """The hook's JSON answer as a verdict, or :class:`HookFailed` if it is not one."""
    if not isinstance(answer, dict):
        raise HookFailed("the answer is not a JSON object")
    verdict = answer.get("verdict")
    if verdict not in VERDICTS:
        raise HookFailed(f"unknown verdict {verdict!r}")
    reason = answer.get("reason")
    reason = reason[:MAX_REASON] if isinstance(reason, str) and reason else None
    text = answer.get("text")
    if verdict == "mask" and not (isinstance(text, str) and 0 < len(text) <= MAX_TEXT):
        raise HookFailed("a mask verdict needs a text of 1 to 4000 characters")
    return Verdict(str(verdict), text if verdict == "mask" else None, reason)


class PresendHook:
    """One node's client of the hook: a shared session, a deadline per request."""

    def __init__(self, url: str, timeout_ms: int) -> None:
        self.url = url
        self.timeout = max(1, timeout_ms) / 1000
        self._session: aiohttp.ClientSession | None = None
        self._warned = 0.0

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=100, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout)
            )
        return self._session

    async def ask(self, payload: dict[str, Any]) -> Verdict:
        session = self._open()
        try:
            async with asyncio.timeout(self.timeout):
                async with session.post(self.url, json=payload) as response:
                    if response.status // 100 != 2:
                        raise HookFailed(f"status {response.status}")
                    answer = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise HookFailed(str(exc) or type(exc).__name__) from exc
        return parse(answer)

    def warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= _WARN_EVERY:
            self._warned = now
            log.warning("pre-send check at %s failed: %s", self.url, exc)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


_HOOKS: weakref.WeakKeyDictionary[Hub, PresendHook] = weakref.WeakKeyDictionary()


def hook_of(hub: Hub) -> PresendHook | None:
    """The node's hook client (made on first use), or None when no ``PRESEND_URL`` is set."""
    if not hub.config.presend_url:
        return None
    hook = _HOOKS.get(hub)
    if hook is None:
        hook = _HOOKS[hub] = PresendHook(hub.config.presend_url, hub.config.presend_timeout_ms)
    return hook


async def close(hub: Hub) -> None:
    hook = _HOOKS.pop(hub, None)
    if hook is not None:
        await hook.close()


async def check(hub: Hub, conv: str, sender: str, role: Role, body: dict[str, Any], cmid: str) -> None:
    """Apply the hook's verdict to a text ``body`` before it is stored (see the module's
    docstring): set ``presend``, replace the text, or raise ``ProtocolError``."""
    hook = hook_of(hub)
    if hook is None:
        return
    earlier = await hub.store.message_by_cmid(conv, sender, cmid)
    if earlier is not None:
        # A resend: the store answers with the first message (or refuses a different one).
        verdict = earlier.body.get("presend")
        if isinstance(verdict, str):
            body["presend"] = verdict
            if verdict == "mask" and isinstance(earlier.body.get("text"), str):
                body["text"] = earlier.body["text"]
        return
    payload = {"conversation": conv, "sender": sender, "role": role, "kind": "text", "body": dict(body)}
    try:
        answer = await hook.ask(payload)
    except HookFailed as exc:
        hook.warn(exc)
        if hub.config.presend_failure == "closed":
            raise ProtocolError(
                ErrorCode.UNAVAILABLE, "the pre-send check is unavailable; retry shortly",
                details={"presend": "unavailable"},
            ) from exc
        body["presend"] = "unavailable"
        return
    if answer.verdict == "block":
        raise ProtocolError(ErrorCode.PRESEND_BLOCKED, details={"reason": answer.reason} if answer.reason else None)
    body["presend"] = answer.verdict
    if answer.text is not None:
        body["text"] = answer.text
