"""Agents' display names and avatars in the memory store: the reference reading of
``set_agent_profile``/``agent_profiles`` in :class:`chat.store.base.Directory`."""

from __future__ import annotations

from .base import AgentProfileRecord


class MemoryAgentProfiles:
    def _check_open(self) -> None: ...

    def _init_agent_profiles(self) -> None:
        self._agent_profiles: dict[tuple[str, str], AgentProfileRecord] = {}  # (shop, agent)

    async def set_agent_profile(self, shop: str, agent: str, name: str | None, avatar: str | None) -> None:
        self._check_open()
        self._agent_profiles[(shop, agent)] = AgentProfileRecord(shop, agent, name, avatar)

    async def agent_profiles(self, shop: str) -> dict[str, AgentProfileRecord]:
        self._check_open()
        return {
            agent: record for (of, agent), record in self._agent_profiles.items()
            if of == shop and (record.name is not None or record.avatar is not None)
        }
