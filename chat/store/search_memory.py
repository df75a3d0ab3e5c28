"""Conversation search in the memory store: a scan of the asker's conversations and their
messages, the reference reading of :class:`chat.store.base.Search`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import ConversationRecord, SearchHit
from .search import TEXT_ROWS, collect, matches, scope


class MemorySearch:
    _messages: dict[str, list[Any]]

    def _check_open(self) -> None: ...

    if TYPE_CHECKING:
        async def conversations_of_shop(self, shop: str) -> list[ConversationRecord]: ...

        async def conversations_of_buyer(self, buyer: str) -> list[ConversationRecord]: ...

    async def search_conversations(
        self, query: str, *, shop: str | None = None, buyer: str | None = None,
        before: tuple[int, str] | None = None, limit: int = 20,
    ) -> list[SearchHit]:
        self._check_open()
        scoped = scope(query, shop, buyer)
        if scoped is None:
            return []
        query, who, owner = scoped
        records = await (self.conversations_of_shop(owner) if who == "shop" else self.conversations_of_buyer(owner))
        texts: list[tuple[int, str, int, str]] = []
        for record in records:
            for m in self._messages.get(record.id, []):
                r = m.record
                text = r.body.get("text")
                if r.kind == "text" and not r.recalled and isinstance(text, str) and matches(text, query):
                    texts.append((r.ts, r.conv, r.seq, text))
        texts.sort(reverse=True)
        return collect(records, ((c, s, t) for _, c, s, t in texts[:TEXT_ROWS]), query, before=before, limit=limit)
