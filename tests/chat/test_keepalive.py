"""Keepalive: one sweep pings every connection; a connection whose network went dark
(it stops reading, so no pong comes back) is closed and its user goes offline, while
connections that answer stay open however many sweeps pass."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .client import Client
from .conftest import token


async def test_a_silent_connection_is_closed_and_a_live_one_is_kept(server_factory: Callable[..., Any]) -> None:
    server = await server_factory(ping_interval=0.2, ping_timeout=0.3)
    url = f"ws://127.0.0.1:{server.port}/"
    live = await Client.connect(url, token("b1"))
    dark = await Client.connect(url, token("b2"))
    assert len(server.hub.subscribers()) == 2
    dark.ws.transport.pause_reading()  # the network goes dark: nothing it is sent is read, no pong
    for _ in range(100):  # the hub closes it after a sweep (0.2 s) plus the timeout (0.3 s)
        if len(server.hub.subscribers()) == 1:
            break
        await asyncio.sleep(0.05)
    assert [s.identity.user for s in server.hub.subscribers() if s.identity] == ["b1"]
    assert server._keepalive is not None and server._keepalive.closed_silent == 1
    # The live one answered every sweep meanwhile (well over 3 by now) and still works.
    assert (await live.request({"type": "ping"}))["type"] == "pong"
    state = await live.request({"type": "presence", "status": "online"})
    assert state["type"] == "ok"
    await live.close()
    dark.ws.transport.resume_reading()  # it now reads the close the hub sent
    code, _ = await asyncio.wait_for(dark.closed, 5)
    assert code in (1011, 1006)  # 1011 when the close frame got through before the reset
    await dark.close()


async def test_off_sends_no_ping(server_factory: Callable[..., Any]) -> None:
    server = await server_factory(ping_interval=0)
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/", token("b1"))
    client.ws.transport.pause_reading()
    await asyncio.sleep(0.3)
    assert len(server.hub.subscribers()) == 1
    client.ws.transport.resume_reading()
    await client.close()
