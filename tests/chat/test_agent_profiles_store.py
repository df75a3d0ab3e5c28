"""Agents' display names and avatars in the store contract (``Directory.set_agent_profile`` and
``agent_profiles``). On every store (memory, SQLite, PostgreSQL), with the fixtures of
``test_store_contract``; a second ``open_store()`` is another node on the same database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from chat.store.base import AgentProfileRecord, Store

from . import test_store_contract as contract

store_kind = contract.store_kind
new_place = contract.new_place
open_store = contract.open_store


async def test_the_latest_token_s_name_and_avatar_are_kept_per_shop(open_store: Callable[[], Awaitable[Store]]) -> None:
    store = await open_store()
    assert await store.agent_profiles("s") == {}
    await store.register_agent("s", "a1", 1)
    await store.register_agent("s", "plain", 1)
    await store.set_agent_profile("s", "a1", "丽丽", "https://cdn.example.com/a1.png")
    await store.set_agent_profile("s", "a2", "Bo", None)  # recorded before register_agent too
    await store.set_agent_profile("s", "plain", None, None)
    await store.set_agent_profile("other", "a1", "Other shop", None)
    assert await store.agent_profiles("s") == {
        "a1": AgentProfileRecord("s", "a1", "丽丽", "https://cdn.example.com/a1.png"),
        "a2": AgentProfileRecord("s", "a2", "Bo", None),
    }
    # connecting again with a token without them clears them; registering keeps them
    await store.set_agent_profile("s", "a1", None, None)
    await store.register_agent("s", "a2", 2)
    assert await store.agent_profiles("s") == {"a2": AgentProfileRecord("s", "a2", "Bo", None)}
    assert set(await store.agent_loads("s")) == {"a1", "a2", "plain"}
    other = await open_store()
    assert await other.agent_profiles("other") == {"a1": AgentProfileRecord("other", "a1", "Other shop", None)}
