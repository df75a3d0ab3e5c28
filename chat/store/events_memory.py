"""The chat event outbox in the memory store: the reference reading of
:class:`chat.store.chat_events.ChatEvents`.

A mixin of :class:`chat.store.memory.MemoryStore`; every method runs without awaiting
(atomic on one event loop), so an event is "committed" with the write that calls
:meth:`MemoryChatEvents._emit` in the same step.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from .chat_events import ChatEvent, NewEvent


class MemoryChatEvents:
    def _check_open(self) -> None: ...

    def _init_events(self) -> None:
        self._events: dict[int, ChatEvent] = {}  # in id order
        self._event_ids = 0

    def _emit(self, conv_id: str, seq: int, events: Sequence[NewEvent], now: int) -> None:
        for event in events:
            if any(e.event_id == event.event_id for e in self._events.values()):
                continue
            self._event_ids += 1
            self._events[self._event_ids] = ChatEvent(
                self._event_ids, event.event_id, event.type, conv_id, seq, copy.deepcopy(event.data), now)

    async def add_events(self, conv_id: str, events: list[NewEvent], now: int) -> None:
        self._check_open()
        self._emit(conv_id, 0, events, now)

    async def pending_events(self, limit: int = 500) -> list[ChatEvent]:
        self._check_open()
        return [copy.deepcopy(e) for e in list(self._events.values())[:limit]]

    async def drop_events(self, ids: list[int]) -> None:
        self._check_open()
        for event_id in ids:
            self._events.pop(event_id, None)
