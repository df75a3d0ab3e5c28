"""The chat event outbox in the PostgreSQL store (:class:`chat.store.chat_events.ChatEvents`).

A mixin of :class:`chat.store.postgres.PostgresStore`. Messages' events are inserted by
the append batch statement itself (``evented`` in :data:`chat.store.pg_queries.APPEND_BATCH`),
a conversation's and a report's by :func:`insert_events` in their own transaction. The
outbox is read without paging by id (everything not dropped is pending), so ids that
commit out of order need no lock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .chat_events import EVENT_COLUMNS, ChatEvent, NewEvent, event_row
from .pg_writer import Conn

T = TypeVar("T")

INSERT = (
    "INSERT INTO chat_events (event_id, type, conv, seq, data, created_at) VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (event_id) DO NOTHING"
)


async def insert_events(conn: Conn, conv_id: str, seq: int, events: Sequence[NewEvent], now: int) -> None:
    """Within the caller's transaction."""
    if events:
        async with conn.cursor() as cur:
            await cur.executemany(INSERT, [(e.event_id, e.type, conv_id, seq, e.data_json(), now) for e in events])


class PostgresChatEvents:
    if TYPE_CHECKING:
        async def _run(self, job: Callable[[Conn], Awaitable[T]], *, transaction: bool = False) -> T: ...

        async def _all(self, sql: str, params: Any) -> list[tuple[Any, ...]]: ...

    async def add_events(self, conv_id: str, events: list[NewEvent], now: int) -> None:
        async def job(conn: Conn) -> None:
            await insert_events(conn, conv_id, 0, events, now)

        await self._run(job, transaction=True)

    async def pending_events(self, limit: int = 500) -> list[ChatEvent]:
        rows = await self._all(f"SELECT {EVENT_COLUMNS} FROM chat_events ORDER BY id LIMIT %s", (limit,))
        return [event_row(r) for r in rows]

    async def drop_events(self, ids: list[int]) -> None:
        async def job(conn: Conn) -> None:
            await conn.execute("DELETE FROM chat_events WHERE id = ANY(%s)", (ids,))

        if ids:
            await self._run(job)
