"""Pictures in the chat store's PostgreSQL database (``media`` and ``media_links``).

With a PostgreSQL store every hub node may run on another machine, so pictures go where
the messages are: one backup, one place to delete a conversation's evidence from. The
tables are created by the chat store's migrations (:mod:`chat.store.pg_schema`), which
run before this store starts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from ..store.pg_schema import SCHEMA_NAME, split_schema
from ..store.pg_writer import Conn, Pool, connect
from .images import Picture
from .store import Variant

T = TypeVar("T")


class PostgresMediaStore:
    def __init__(self, url: str, *, schema: str | None = None, pool_size: int = 4) -> None:
        self.url, url_schema = split_schema(url)
        self.schema = schema or url_schema
        if not SCHEMA_NAME.match(self.schema):
            raise ValueError(f"bad schema name {self.schema!r}")
        self._pool_size = pool_size
        self._pool: Pool | None = None

    async def _connect(self) -> Conn:
        return await connect(self.url, self.schema, app="tradechat-media", store="media store")

    async def start(self) -> None:
        self._pool = Pool(self._connect, self._pool_size)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _run(self, job: Callable[[Conn], Awaitable[T]]) -> T:
        if self._pool is None:
            raise ConnectionError("the media store is closed")
        try:
            async with self._pool.connection() as (conn, _reused):
                return await job(conn)
        except psycopg.OperationalError as exc:
            raise ConnectionError(f"media store: {exc}") from exc

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> None:
        async def job(conn: Conn) -> None:
            await conn.execute(sql, params)

        await self._run(job)

    async def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        async def job(conn: Conn) -> tuple[Any, ...] | None:
            return await (await conn.execute(sql, params)).fetchone()

        return await self._run(job)

    async def put(self, picture: Picture) -> None:
        await self._execute(
            "INSERT INTO media (sha256, mime, width, height, data, thumb) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (sha256) DO NOTHING",
            (picture.sha256, picture.mime, picture.width, picture.height, picture.data, picture.thumb),
        )

    async def get(self, sha256: str, variant: Variant) -> bytes | None:
        column = "data" if variant == "full" else "thumb"
        row = await self._one(f"SELECT {column} FROM media WHERE sha256 = %s", (sha256,))
        return None if row is None else bytes(row[0])

    async def bind(self, sha256: str, conv: str, uploader: str, now: int) -> None:
        await self._execute(
            "INSERT INTO media_links (sha256, conv, uploader, created_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (sha256, conv) DO NOTHING",
            (sha256, conv, uploader, now),
        )

    async def bound(self, sha256: str, conv: str) -> bool:
        row = await self._one("SELECT 1 FROM media_links WHERE sha256 = %s AND conv = %s", (sha256, conv))
        return row is not None
