"""The send path's use of the detector: ``OFF_PLATFORM_ACTION`` per marketplace.

* ``off``: nothing is checked.
* ``note`` (default): the message is stored and delivered as sent, with the kinds
  found in its body (``flags``); the conversation then gets a system message,
  addressed to the buyer in Chinese and English, that payment outside the
  platform is not protected. At most one per conversation per day: its client
  message id names the day, so the store keeps one however many nodes and
  flagged messages ask for it.
* ``mask``: every matched span is replaced by ``***`` before the message is
  stored (the original is never stored); the body says ``masked: true`` and
  carries ``flags``.
* ``block``: the message is refused with ``OFF_PLATFORM_BLOCKED`` and not stored.

``flags`` in stored bodies is what a shop's score counts. Detection runs on the
event loop: it costs tens of microseconds. The sender's earlier texts are read
from the store only when a message starts with digits (a number sent in pieces).
"""

from __future__ import annotations

import logging
from typing import Any

from ..clock import epoch_seconds
from ..hub import Hub
from ..protocol.errors import ErrorCode, ProtocolError
from ..store.base import ClientIdReused, ConversationRecord
from . import PREVIOUS_LIMIT, detect, flags, mask, starts_with_number

log = logging.getLogger(__name__)

ACTIONS = ("off", "note", "mask", "block")
WARNING_PERIOD_MS = 86_400_000
"""One warning per conversation in each such period (a UTC day)."""
WARNING_TEXT = (
    "提醒：请在平台内沟通和付款。脱离平台的付款（私下转账、加微信/QQ付款、扫码付款等）不受担保交易保护。\n"
    "Reminder: keep chatting and paying on the platform. Payments made outside it (direct transfers, "
    "paying via WeChat/QQ, QR codes) are not protected by escrow."
)
_LOOKBACK = 3 * PREVIOUS_LIMIT
"""Messages read back to find the sender's last few texts."""


async def screen(hub: Hub, conv: str, sender: str, body: dict[str, Any], cmid: str | None) -> None:
    """Check a text body before it is stored: add ``flags``, mask it, or refuse it."""
    action = hub.config.off_platform_action
    if action == "off":
        return
    text: str = body["text"]
    previous: list[str] = []
    if starts_with_number(text):
        earlier = await hub.store.messages(conv, before=2**53, limit=_LOOKBACK)
        previous = [
            m.body.get("text", "") for m in earlier
            if m.sender == sender and m.kind == "text" and not m.recalled and (cmid is None or m.cmid != cmid)
        ][-PREVIOUS_LIMIT:]
    found = detect(text, previous)
    if not found:
        return
    kinds = flags(found)
    if action == "block":
        raise ProtocolError(ErrorCode.OFF_PLATFORM_BLOCKED, details={"flags": kinds})
    body["flags"] = kinds
    if action == "mask":
        body["text"] = mask(text, found)
        body["masked"] = True


def should_warn(hub: Hub, body: dict[str, Any]) -> bool:
    return hub.config.off_platform_action == "note" and bool(body.get("flags"))


async def warn_buyer(hub: Hub, record: ConversationRecord) -> None:
    """Post the warning (see the module's docstring); errors are logged, never raised."""
    try:
        now = hub.clock.now_ms()
        body = {"text": WARNING_TEXT, "event": "off_platform_warning", "to": "buyer"}
        cmid = f"~offplatform:{now // WARNING_PERIOD_MS}"
        done = await hub.store.append(record.id, "system", "system", "system", body, cmid, now)
        if not done.duplicate:
            await hub.fan_out(record, done.message, done.agent, None, epoch_seconds())
    except ClientIdReused:
        pass  # the text changed within the day (a new release): one warning a day is enough
    except Exception:
        log.warning("off-platform warning failed in %s", record.id, exc_info=True)
