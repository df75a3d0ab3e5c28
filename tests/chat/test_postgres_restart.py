"""PostgreSQL restarted under traffic: while it is down a send is refused with a retryable
error (5002) or waits, ``/readyz`` says the store is not ready, and once it is back the
hub serves again by itself. A client that resends what was not acknowledged, with the same
``cmid``, ends with every message stored once and every acknowledged one where the ack said."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .client import LISTING, Client
from .conftest import token
from .pg_instance import PostgresInstance
from .procs import HubProcess


@pytest.fixture
async def hub_on_own_postgres(tmp_path: Path) -> AsyncIterator[tuple[HubProcess, PostgresInstance]]:
    pg = await asyncio.to_thread(PostgresInstance().start)
    hub = HubProcess(tmp_path / "chat.db", {"DATABASE_URL": pg.url, "PAYMENTS": "off"})
    try:
        await hub.start()
        yield hub, pg
    finally:
        hub.stop()
        await asyncio.to_thread(pg.remove)


def ready(hub: HubProcess) -> tuple[int, dict[str, bool]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{hub.port}/readyz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())["checks"]
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())["checks"]


async def test_a_postgresql_restart_under_traffic_loses_nothing(
    hub_on_own_postgres: tuple[HubProcess, PostgresInstance],
) -> None:
    hub, pg = hub_on_own_postgres
    agent = await Client.connect(hub.url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(hub.url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    acked: dict[int, str] = {}
    refused: list[int] = []
    outage = asyncio.Event()
    done = asyncio.Event()

    async def write() -> None:
        i = 0
        while not done.is_set():
            cmid = f"m-{i}"
            while True:  # what a client does: resend the same cmid until it is acknowledged
                reply = await buyer.send_text(conv, cmid, cmid)
                if reply["type"] == "ack":
                    acked[reply["seq"]] = cmid
                    break
                refused.append(reply["code"])
                await asyncio.sleep(0.2)
            i += 1
            await asyncio.sleep(0.01)

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.5)

    async def watch_readyz() -> list[int]:
        seen = []
        while not outage.is_set():
            status, _ = await asyncio.to_thread(ready, hub)
            seen.append(status)
            await asyncio.sleep(0.2)
        return seen

    watcher = asyncio.create_task(watch_readyz())
    await asyncio.to_thread(pg.restart_after, 2.0)
    await asyncio.sleep(3.0)  # the hub finds its way back by itself
    outage.set()
    statuses = await watcher
    done.set()
    await asyncio.wait_for(writer, 30)

    assert 503 in statuses, "readyz never reported the store down"
    assert set(refused) <= {5002}, f"a refusal that is not retryable: {set(refused)}"
    assert (await asyncio.to_thread(ready, hub))[0] == 200
    before = max(acked)
    after = await buyer.send_text(conv, "after the restart", "after")
    assert after["type"] == "ack" and after["seq"] == before + 1
    history: list[dict[str, object]] = []
    while page := (await buyer.request({"type": "history", "conv": conv, "after": len(history), "limit": 200}))[
            "messages"]:
        history += page
    seqs = [m["seq"] for m in history]
    assert seqs == list(range(1, len(seqs) + 1))
    cmids = [m["cmid"] for m in history if m["cmid"]]
    assert len(cmids) == len(set(cmids)), "a resent message was stored twice"
    by_seq = {m["seq"]: m["cmid"] for m in history}
    assert all(by_seq.get(seq) == cmid for seq, cmid in acked.items()), "an acknowledged message moved or vanished"
    assert len(acked) > 20
