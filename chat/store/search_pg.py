"""Conversation search in the PostgreSQL store: a bounded scan, no index of its own.

Bodies are msgpack (``bytea``), so SQL cannot read a message's text, and an index on it would
need a text column written by the append batch statement, the store's hot path. Instead the
query scans the asker's text messages (the conversations index by shop or buyer, then the
messages' primary key), newest first, comparing ``encode(body, 'escape')`` with ILIKE: that
form keeps ASCII as it is and writes every other byte as the same octal escape the query's
own UTF-8 gets, so a substring of the text (Chinese included) is a substring of it. It may
match a map key or an escape's digits as well; :func:`chat.store.search.collect` checks each
candidate after decoding. At most :data:`TEXT_ROWS` candidates are read per query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import ConversationRecord, SearchHit
from .encoding import unpack
from .search import TEXT_ROWS, collect, scope

_PATTERN = (
    "'%%' || replace(replace(replace(encode(convert_to(%s, 'UTF8'), 'escape'), '^', '^^'), '%%', '^%%'),"
    " '_', '^_') || '%%'"
)
_TEXTS = (
    "SELECT m.conv, m.seq, m.body FROM conversations c JOIN messages m ON m.conv = c.id"
    f" WHERE c.{{who}} = %s AND m.kind = 'text' AND NOT m.recalled"
    f" AND encode(m.body, 'escape') ILIKE {_PATTERN} ESCAPE '^' ORDER BY m.ts DESC LIMIT %s"
)


class PostgresSearch:
    if TYPE_CHECKING:
        async def _all(self, sql: str, params: Any) -> list[tuple[Any, ...]]: ...

        async def conversations_of_shop(self, shop: str) -> list[ConversationRecord]: ...

        async def conversations_of_buyer(self, buyer: str) -> list[ConversationRecord]: ...

    async def search_conversations(
        self, query: str, *, shop: str | None = None, buyer: str | None = None,
        before: tuple[int, str] | None = None, limit: int = 20,
    ) -> list[SearchHit]:
        scoped = scope(query, shop, buyer)
        if scoped is None:
            return []
        query, who, owner = scoped
        rows = await self._all(_TEXTS.format(who=who), (owner, query, TEXT_ROWS))
        texts = []
        for conv, seq, body in rows:
            text = unpack(bytes(body)).get("text")
            if isinstance(text, str):
                texts.append((str(conv), int(seq), text))
        records = await (self.conversations_of_shop(shop) if shop is not None
                         else self.conversations_of_buyer(buyer or ""))
        return collect(records, texts, query, before=before, limit=limit)
