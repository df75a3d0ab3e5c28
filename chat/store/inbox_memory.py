"""Notes on buyers and closed conversations in the memory store: the reference reading of
:class:`chat.store.base.Inbox`.

A mixin of :class:`chat.store.memory.MemoryStore`; like it, every method runs without
awaiting (atomic on one event loop) and checks before it changes anything.
"""

from __future__ import annotations

from typing import Any

from .base import BuyerProfileRecord, ClosedRecord, NotFound


class MemoryInbox:
    _conversations: dict[str, Any]
    _messages: dict[str, list[Any]]

    def _check_open(self) -> None: ...

    def _init_inbox(self) -> None:
        self._profiles: dict[tuple[str, str], BuyerProfileRecord] = {}  # (shop, buyer)
        self._closes: dict[str, ClosedRecord] = {}  # conversation id

    async def buyer_profile(self, shop: str, buyer: str) -> BuyerProfileRecord | None:
        self._check_open()
        return self._profiles.get((shop, buyer))

    async def save_buyer_profile(
        self, shop: str, buyer: str, note: str, tags: tuple[str, ...], by: str, now: int, *, expected_version: int
    ) -> tuple[BuyerProfileRecord | None, bool]:
        self._check_open()
        current = self._profiles.get((shop, buyer))
        if (current.version if current is not None else 0) != expected_version:
            return current, False
        saved = BuyerProfileRecord(shop, buyer, note, tuple(tags), expected_version + 1, by, now)
        self._profiles[(shop, buyer)] = saved
        return saved, True

    async def close_conversation(self, conv_id: str, by: str, now: int) -> ClosedRecord:
        self._check_open()
        conv = self._conversations.get(conv_id)
        if conv is None:
            raise NotFound(conv_id)
        record = self._closes[conv_id] = ClosedRecord(conv_id, by, now, conv.last_seq)
        return record

    async def reopen_conversation(self, conv_id: str) -> ClosedRecord | None:
        self._check_open()
        still = self._still_closed(conv_id)
        self._closes.pop(conv_id, None)
        return still

    async def closed_conversations(self, conv_ids: list[str]) -> dict[str, ClosedRecord]:
        self._check_open()
        found = {conv_id: self._still_closed(conv_id) for conv_id in conv_ids}
        return {conv_id: record for conv_id, record in found.items() if record is not None}

    def _still_closed(self, conv_id: str) -> ClosedRecord | None:
        record = self._closes.get(conv_id)
        if record is None:
            return None
        messages = self._messages.get(conv_id, [])  # seq = index + 1
        if any(m.record.role == "buyer" for m in messages[record.seq:]):
            return None
        return record
