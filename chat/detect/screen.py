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
event loop: it costs tens of microseconds. The sender's earlier texts are needed
only when a message starts with digits (a number sent in pieces); they are read from
the store then, except on a node alone on its store, which keeps each sender's last
few texts per conversation once it has read them (:class:`RecentTexts`).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from ..clock import epoch_seconds
from ..hub import Hub
from ..protocol.errors import ErrorCode, ProtocolError
from ..store.base import ClientIdReused, ConversationRecord
from . import PREVIOUS_LIMIT, continues_number, detect, flags, mask, prepare

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


class RecentTexts:
    """Each sender's last texts per conversation, as this node screened them.

    Only for a node alone on its store (every text of the conversation passes through
    it). An entry starts from a store read and then follows what the node screens; a
    recalled piece may stay in it until the entry is evicted, which costs at most a
    flag on a number that was in fact sent."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._texts: dict[tuple[str, str], deque[str]] = {}

    def get(self, conv: str, sender: str) -> deque[str] | None:
        return self._texts.get((conv, sender))

    def start(self, conv: str, sender: str, texts: list[str]) -> deque[str]:
        if len(self._texts) >= self.LIMIT:
            self._texts.clear()
        entry = self._texts[(conv, sender)] = deque(texts, maxlen=PREVIOUS_LIMIT)
        return entry


def _recent(hub: Hub) -> RecentTexts | None:
    if not hub.alone:
        return None
    recent = hub.caches.get(__name__)
    if not isinstance(recent, RecentTexts):
        recent = hub.caches[__name__] = RecentTexts()
    return recent


async def _previous(hub: Hub, conv: str, sender: str, cmid: str | None) -> list[str]:
    earlier = await hub.store.messages(conv, before=2**53, limit=_LOOKBACK)
    return [
        m.body.get("text", "") for m in earlier
        if m.sender == sender and m.kind == "text" and not m.recalled and (cmid is None or m.cmid != cmid)
    ][-PREVIOUS_LIMIT:]


async def screen(hub: Hub, conv: str, sender: str, body: dict[str, Any], cmid: str | None) -> None:
    """Check a text body before it is stored: add ``flags``, mask it, or refuse it."""
    action = hub.config.off_platform_action
    if action == "off":
        return
    text: str = body["text"]
    prepared = prepare(text)
    recent = _recent(hub)
    entry = recent.get(conv, sender) if recent is not None else None
    previous: list[str] = []
    if continues_number(prepared):
        if entry is not None:
            previous = list(entry)
        else:
            previous = await _previous(hub, conv, sender, cmid)
            if recent is not None:
                entry = recent.start(conv, sender, previous)
    if entry is not None and (not entry or entry[-1] != text):  # a resend is not a new piece
        entry.append(text)
    found = detect(prepared, previous)
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
