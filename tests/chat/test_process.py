"""The hub as a real process: kill -9 loses no acknowledged message; SIGTERM says 1001."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .client import LISTING, Client
from .conftest import token
from .procs import HubProcess


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubProcess]:
    proc = HubProcess(tmp_path / "chat.db")
    await proc.start()
    yield proc
    proc.stop()


async def test_kill_9_loses_no_acknowledged_message(hub: HubProcess) -> None:
    """Messages acked before a SIGKILL are all in history after restart; none is duplicated."""
    buyer = await Client.connect(hub.url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    acked: dict[str, int] = {}
    sent = 0

    async def pump() -> None:
        nonlocal sent
        while True:
            cmid = f"k{sent}"
            sent += 1
            reply = await buyer.send_text(conv, cmid, cmid)
            acked[cmid] = reply["seq"]

    task = asyncio.create_task(pump())
    await asyncio.sleep(random.uniform(0.3, 0.8))
    hub.kill()
    with pytest.raises((ConnectionError, TimeoutError, Exception)):
        await asyncio.wait_for(task, 5)
    assert len(acked) > 10, "the test did not get far enough to mean anything"

    await hub.start()
    buyer = await Client.connect(hub.url, token("b1"))
    # the client retries what it never got an ack for: same cmid, no duplicate
    retry = await buyer.send_text(conv, f"k{sent - 1}", f"k{sent - 1}")
    stored: dict[str, int] = {}
    after = 0
    while True:
        page = await buyer.request({"type": "history", "conv": conv, "after": after, "limit": 200})
        for m in page["messages"]:
            if m["kind"] == "text":
                assert m["cmid"] not in stored, "duplicate message after restart"
                stored[m["cmid"]] = m["seq"]
        if not page["more"]:
            break
        after = page["messages"][-1]["seq"]
    for cmid, seq in acked.items():
        assert stored.get(cmid) == seq, f"acknowledged {cmid} (seq {seq}) lost"
    assert stored[f"k{sent - 1}"] == retry["seq"]
    seqs = sorted(stored.values())
    assert seqs == list(range(2, 2 + len(seqs))), "gap in the sequence"


async def test_sigterm_closes_connections_with_1001_and_clients_resume(hub: HubProcess) -> None:
    """SIGTERM closes every connection with 1001 and exits 0; a client resumes on the next process."""
    agent = await Client.connect(hub.url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(hub.url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    await agent.next("msg", conv=conv)
    code = await asyncio.to_thread(hub.terminate)
    assert code == 0
    for client in (agent, buyer):
        closed, _ = await asyncio.wait_for(client.closed, 5)
        assert closed == 1001
    await hub.start()
    buyer = await Client.connect(hub.url, token("b1"))
    await buyer.send_text(conv, "after restart", "ar")
    agent = await Client.connect(hub.url, token("a1", "agent", shop="shop1"))
    task = asyncio.create_task(agent.request({"type": "sync", "cursors": {conv: 1}}))
    got = await agent.next("msg", conv=conv)
    await task
    assert got["body"] == {"text": "after restart"}


async def test_clients_vanishing_mid_stream_log_no_errors(hub: HubProcess) -> None:
    """Connections reset by the network while the hub (on uvloop, as deployed) writes to them
    leave no traceback or unhandled-callback error in its log."""
    buyer = await Client.connect(hub.url, token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    for round_ in range(6):
        agents = [await Client.connect(hub.url, token(f"a{i}", "agent", shop="shop1")) for i in range(4)]
        for agent in agents:
            await agent.request({"type": "sync", "cursors": {conv: 1}})
        sends = [buyer.send_text(conv, "x" * 2000, f"r{round_}-{i}") for i in range(40)]
        task = asyncio.gather(*sends)
        await asyncio.sleep(0.005 * round_)
        for agent in agents:
            transport = agent.ws.transport
            if transport is not None:
                transport.abort()  # a reset, not a close: the hub finds out while writing
        await task
    await asyncio.sleep(0.5)
    assert (await buyer.request({"type": "ping"}))["type"] == "pong"
    log = hub.log.read_text()
    assert "Traceback" not in log and "RuntimeError" not in log and "Exception in callback" not in log, log[-3000:]
