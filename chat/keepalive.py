"""Keepalive pings for every connection of a node in one sweep, not one task each.

A connection whose network went dark without a close must still be found and closed,
so the shop stops showing as online and its buyers' devices reconnect. ``websockets``
does this with a keepalive task per connection that sleeps, pings and awaits the pong
under a timeout: with 10,000 idle connections that is 500 such coroutine runs a second,
the largest cost of an idle node. Here one task walks the node's connections every
``interval`` seconds, in slices so the loop stays free between them. For each open
connection it checks the ping it sent on the previous sweep: unanswered for longer
than ``timeout``, the connection is closed with 1011 (as ``websockets`` would); then it
sends the next ping. A pong is matched by ``websockets`` itself (``pending_pings``), so
the sweep only reads whether the future it registered is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from .tasks import cancel_and_wait

log = logging.getLogger(__name__)

SLICE = 500
"""Connections pinged before letting other work run."""


class KeepAlive:
    """Pings ``connections()`` every ``interval`` s; closes those silent for ``timeout`` s."""

    def __init__(self, connections: Callable[[], Iterable[ServerConnection]], interval: float,
                 timeout: float) -> None:
        self.connections = connections
        self.interval = interval
        self.timeout = timeout
        self.closed_silent = 0
        """Connections closed because a ping went unanswered (for metrics and tests)."""
        self._pings: dict[ServerConnection, tuple[bytes, asyncio.Future[float], float]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="keepalive")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            live = [ws for ws in self.connections() if ws.state is State.OPEN]
            for old in set(self._pings) - set(live):
                del self._pings[old]
            for start in range(0, len(live), SLICE):
                now = loop.time()
                for ws in live[start:start + SLICE]:
                    self._check_and_ping(ws, now)
                await asyncio.sleep(0)

    def _check_and_ping(self, ws: ServerConnection, now: float) -> None:
        previous = self._pings.get(ws)
        if previous is not None:
            data, answered, sent_at = previous
            if not answered.done():
                if now - sent_at < self.timeout:
                    return  # still within its time: no second ping on top
                self.closed_silent += 1
                del self._pings[ws]
                ws.pending_pings.pop(data, None)
                # The peer is gone or stuck: say why (1011) if a byte can still get through,
                # and drop the TCP connection now rather than wait for a close handshake.
                with contextlib.suppress(Exception):
                    ws.protocol.fail(1011, "keepalive ping timeout")
                    ws.send_data()
                ws.transport.abort()
                return
        if ws.state is not State.OPEN:
            return
        data = os.urandom(4)
        answered = asyncio.get_running_loop().create_future()
        ws.pending_pings[data] = (answered, now)  # websockets resolves it when the pong comes
        self._pings[ws] = (data, answered, now)
        try:
            ws.protocol.send_ping(data)
            ws.send_data()
        except Exception:  # the connection is going away; its reader will notice
            log.debug("keepalive ping to a closing connection dropped", exc_info=True)


class TokenDeadlines:
    """Closes connections whose token expires, with one timer per second that has any.

    A ``TimerHandle`` per connection (its callback and arguments) costs about 260 bytes
    of every idle connection; a token's ``exp`` is whole seconds, so connections are
    grouped by it and each second that has any gets one timer. ``close`` is called
    with each due connection at that second, as the per-connection timer did."""

    def __init__(self, close: Callable[[Any], None]) -> None:
        self._close = close
        self._due: dict[int, tuple[set[Any], asyncio.TimerHandle]] = {}

    def add(self, exp: int, conn: Any, delay: float) -> None:
        """Close ``conn`` at second ``exp``, which is ``delay`` seconds from now."""
        entry = self._due.get(exp)
        if entry is None:
            handle = asyncio.get_running_loop().call_later(max(0.0, delay), self._fire, exp)
            entry = self._due[exp] = (set(), handle)
        entry[0].add(conn)

    def discard(self, exp: int, conn: Any) -> None:
        entry = self._due.get(exp)
        if entry is None:
            return
        entry[0].discard(conn)
        if not entry[0]:
            entry[1].cancel()
            del self._due[exp]

    def _fire(self, exp: int) -> None:
        conns, _ = self._due.pop(exp, (set(), None))
        for conn in conns:
            try:
                self._close(conn)
            except Exception:  # one connection's failure must not spare the others
                log.exception("closing a connection whose token expired failed")

    def __len__(self) -> int:
        return sum(len(conns) for conns, _ in self._due.values())
