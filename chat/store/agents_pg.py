"""Agents' display names and avatars in the PostgreSQL store (columns of schema version 7).

A mixin of :class:`chat.store.postgres.PostgresStore`, over its pooled ``_one``/``_all``. A
profile recorded before the agent's first ``register_agent`` creates its row (``last_seen`` 0
until then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import AgentProfileRecord


class PostgresAgentProfiles:
    if TYPE_CHECKING:
        async def _one(self, sql: str, params: Any) -> tuple[Any, ...] | None: ...

        async def _all(self, sql: str, params: Any) -> list[tuple[Any, ...]]: ...

    async def set_agent_profile(self, shop: str, agent: str, name: str | None, avatar: str | None) -> None:
        await self._one(
            "INSERT INTO agents (shop, agent, last_seen, name, avatar) VALUES (%s, %s, 0, %s, %s)"
            " ON CONFLICT (shop, agent) DO UPDATE SET name = excluded.name, avatar = excluded.avatar RETURNING 1",
            (shop, agent, name, avatar),
        )

    async def agent_profiles(self, shop: str) -> dict[str, AgentProfileRecord]:
        rows = await self._all(
            "SELECT agent, name, avatar FROM agents WHERE shop = %s AND (name IS NOT NULL OR avatar IS NOT NULL)",
            (shop,),
        )
        return {agent: AgentProfileRecord(shop, agent, name, avatar) for agent, name, avatar in rows}
