"""Agents' display names and avatars in the SQLite store (columns of schema version 7).

A mixin of :class:`chat.store.sqlite.SQLiteStore`: the write goes through its writer thread,
the read through its reader thread. A profile recorded before the agent's first
``register_agent`` creates its row (``last_seen`` 0 until then).
"""

from __future__ import annotations

import sqlite3

from .base import AgentProfileRecord
from .sqlite_worker import Worker


class SQLiteAgentProfiles:
    _writer: Worker
    _reader: Worker

    async def set_agent_profile(self, shop: str, agent: str, name: str | None, avatar: str | None) -> None:
        await self._writer.submit(
            lambda c: c.execute(
                "INSERT INTO agents (shop, agent, last_seen, name, avatar) VALUES (?, ?, 0, ?, ?)"
                " ON CONFLICT (shop, agent) DO UPDATE SET name=excluded.name, avatar=excluded.avatar",
                (shop, agent, name, avatar),
            )
        )

    async def agent_profiles(self, shop: str) -> dict[str, AgentProfileRecord]:
        def job(c: sqlite3.Connection) -> dict[str, AgentProfileRecord]:
            rows = c.execute(
                "SELECT agent, name, avatar FROM agents WHERE shop=? AND (name IS NOT NULL OR avatar IS NOT NULL)",
                (shop,),
            ).fetchall()
            return {
                str(agent): AgentProfileRecord(shop, str(agent), None if name is None else str(name),
                                               None if avatar is None else str(avatar))
                for agent, name, avatar in rows
            }

        return await self._reader.submit(job)
