"""The presence heartbeat refreshes every connection without holding the event loop:
it works in slices and lets other work run between them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import chat.hub
from chat.auth import Identity
from chat.backends.memory import MemoryBroker, MemoryPresence
from chat.clock import SystemClock
from chat.hub import Hub
from chat.store.memory import MemoryStore

from .conftest import make_config


class Conn:
    """Just what the heartbeat reads of a connection."""

    def __init__(self, n: int) -> None:
        self.identity = Identity(f"u{n}", "buyer", None, None, 0)
        self.id = f"conn-{n}"
        self.status = "online"
        self.watched: set[str] = set()

    @property
    def me(self) -> Identity:
        return self.identity


class CountingPresence(MemoryPresence):
    def __init__(self, log: list[Any]) -> None:
        super().__init__(ttl_ms=300)
        self.log = log

    async def touch(self, entries: list[Any], now: int) -> list[Any]:
        self.log.append(("touch", len(entries)))
        return await super().touch(entries, now)


async def test_a_beat_is_sliced_and_other_work_runs_between_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chat.hub, "BEAT_SLICE", 4)
    log: list[Any] = []
    hub = Hub(make_config(tmp_path, presence_ttl=0.3, loop_stall_ms=0), MemoryStore(), MemoryBroker(),
              CountingPresence(log), SystemClock())
    await hub.start()
    try:
        for n in range(10):
            hub._subscribers.add(Conn(n))  # type: ignore[arg-type]

        async def other_work() -> None:
            while True:
                log.append(("other",))
                await asyncio.sleep(0)

        task = asyncio.create_task(other_work())
        await asyncio.sleep(0.25)  # at least one beat (every 0.1 s)
        task.cancel()
        touches = [i for i, entry in enumerate(log) if entry[0] == "touch"]
        assert touches and all(log[i][1] <= 4 for i in touches)
        # Between two slices of one beat, the other task ran.
        first = touches[:3]
        assert [log[i][1] for i in first] == [4, 4, 2]
        assert any(entry == ("other",) for entry in log[first[0]:first[1]])
        assert any(entry == ("other",) for entry in log[first[1]:first[2]])
    finally:
        await hub.stop()
