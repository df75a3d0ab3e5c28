"""One connection's outgoing side: ordered, gap-free, bounded.

Every frame for a connection goes through its :class:`Outbox`. Messages carry
``(conv, seq)``; the outbox remembers the last seq it wrote per conversation
and guarantees the client sees each conversation's messages in seq order,
once each:

* a seq at or below the cursor is a duplicate and is dropped;
* the next seq is written at once;
* a seq beyond the next one means notices crossed on their way between nodes
  (or one was lost): the outbox waits a moment (``gap_wait``) for the missing
  ones, which are usually just behind, then reads what is still missing from
  the store and writes it first. Meanwhile later frames wait in a short queue
  so order holds for everything behind them.

Writes do not await the socket: frames go straight into the transport's
buffer (as ``websockets.broadcast`` does), which is the bounded per-connection
queue. A client that lets more than ``limit_bytes`` pile up is closed with
4500 (reconnect and resume) instead of slowing anyone else down.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from .protocol.codec import encode
from .protocol.errors import CloseCode
from .protocol.views import msg_frame
from .store.base import MessageRecord

log = logging.getLogger(__name__)

GAP_WAIT = 0.1
"""Seconds a gap waits for its missing notices before the store is read. They are nearly
always on their way (the same commit batch, another node) and, with the event loop busy,
can take tens of milliseconds; a store read per such race cost ~8% of a node's throughput.
Only a notice really lost (a broker outage) pays the whole wait."""

Fetch = Callable[[str, int, int], Awaitable[list[MessageRecord]]]
"""``fetch(conv, after, before)``: stored messages strictly between two seqs."""


class Transport:
    """What the outbox needs from a connection; the server adapts websockets to it."""

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def buffered(self) -> int:
        raise NotImplementedError

    def close(self, code: int, reason: str) -> None:
        raise NotImplementedError


class Outbox:
    __slots__ = ("_fetch", "_gap", "_gap_timer", "_hold", "_on_gap", "_on_slow", "_on_write", "_pump", "_waiting",
                 "closed", "cursors", "follow_new", "gap_wait", "limit_bytes", "sent_here", "transport")

    def __init__(
        self,
        transport: Transport,
        fetch: Fetch,
        *,
        limit_bytes: int,
        on_write: Callable[[float | None], None] | None = None,
        on_slow: Callable[[], None] | None = None,
        on_gap: Callable[[], None] | None = None,
        gap_wait: float = GAP_WAIT,
    ) -> None:
        self.transport = transport
        self._fetch = fetch
        self.limit_bytes = limit_bytes
        self._on_write = on_write
        self._on_slow = on_slow
        self._on_gap = on_gap
        self.gap_wait = gap_wait
        self.cursors: dict[str, int] = {}
        """Last seq written per conversation; absent means not yet followed."""
        self.follow_new = False
        """After a sync, conversations not in ``cursors`` are new: follow them from seq 0."""
        self.sent_here: dict[tuple[str, str, str], None] = {}
        """(conv, sender, cmid) of messages this connection posted: it has their ack, so a gap
        fill must not write them back to it (bounded, oldest forgotten first)."""
        self._waiting: deque[tuple[Any, ...]] | None = None
        """What waits behind a hold or a gap; made when needed and dropped once drained (an
        empty deque is ~600 bytes, on every idle connection)."""
        self._hold = 0
        self._pump: asyncio.Task[None] | None = None
        self._gap: tuple[str, int] | None = None
        """(conv, seq) of a gap whose missing messages are awaited before the store is read."""
        self._gap_timer: asyncio.TimerHandle | None = None
        self.closed = False

    # --- entry points -------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        """A reply or event with no seq: written in order with everything else."""
        self.send_bytes(encode(frame))

    def send_bytes(self, data: bytes, t0: float | None = None) -> None:
        if self._waiting or self._hold:
            self._queue().append(("raw", data, t0))
        else:
            self._write(data, t0)

    def message(self, conv: str, seq: int, frame: bytes, *, echo: bool = True, t0: float | None = None) -> None:
        """A stored message; ``echo=False`` advances the cursor without writing (the sender's own)."""
        gap = self._gap
        if gap is not None and not self._hold and conv == gap[0] and seq == self.cursors.get(conv, 0) + 1:
            # A message the gap was waiting for: it goes out now, ahead of what waits behind it,
            # and so do its successors that arrived out of order while the gap was open.
            while True:
                self.cursors[conv] = seq
                if echo:
                    self._write(frame, t0)
                if seq + 1 >= gap[1]:  # nothing is missing any more: no store read needed
                    self._stop_gap_wait()
                    self._drain()
                    return
                queued = self._take_queued(conv, seq + 1)
                if queued is None:
                    return
                _, _, seq, frame, echo, t0 = queued
        if self._waiting or self._hold:
            self._queue().append(("msg", conv, seq, frame, echo, t0))
            return
        self._message(conv, seq, frame, echo, t0)

    def hold(self) -> None:
        """Queue everything until :meth:`release` (while a sync computes what to send)."""
        self._hold += 1

    def release(self) -> None:
        self._hold -= 1
        if not self._hold:
            self._drain()

    def posting(self, conv: str, sender: str, cmid: str) -> None:
        """Called before a send is stored, so a racing gap fill already skips it."""
        self.sent_here[(conv, sender, cmid)] = None
        if len(self.sent_here) > 1024:
            del self.sent_here[next(iter(self.sent_here))]

    def set_cursor(self, conv: str, seq: int) -> None:
        self.cursors[conv] = max(seq, self.cursors.get(conv, 0))

    # --- internals ----------------------------------------------------------

    def _message(self, conv: str, seq: int, frame: bytes, echo: bool, t0: float | None) -> None:
        cursor = self.cursors.get(conv)
        if cursor is None:
            if not self.follow_new:
                return
            cursor = 0
        if seq <= cursor:
            return
        if seq == cursor + 1:
            self.cursors[conv] = seq
            if echo:
                self._write(frame, t0)
            return
        # A gap: everything else waits behind this message until the gap is filled.
        self._queue().appendleft(("msg", conv, seq, frame, echo, t0))
        self._gap = (conv, seq)
        self._gap_timer = asyncio.get_running_loop().call_later(self.gap_wait, self._fill_gap)

    def _take_queued(self, conv: str, seq: int) -> tuple[Any, ...] | None:
        """Remove and return the queued notice of ``(conv, seq)``, if one is waiting."""
        waiting = self._waiting
        if waiting is None:
            return None
        for i, item in enumerate(waiting):
            if item[0] == "msg" and item[1] == conv and item[2] == seq:
                del waiting[i]
                return item
        return None

    def _stop_gap_wait(self) -> None:
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        self._gap = self._gap_timer = None

    def _fill_gap(self) -> None:
        """The wait is over and messages are still missing: read them from the store."""
        gap = self._gap
        self._stop_gap_wait()
        if gap is None or self.closed:
            return
        conv, before = gap
        if self._on_gap is not None:
            self._on_gap()
        self._pump = asyncio.ensure_future(self._fill(conv, self.cursors.get(conv, 0), before))

    async def _fill(self, conv: str, after: int, before: int) -> None:
        try:
            while after + 1 < before and not self.closed:
                batch = await self._fetch(conv, after, before)
                if not batch:
                    break
                for record in batch:
                    if record.seq == self.cursors.get(conv, 0) + 1:
                        self.cursors[conv] = record.seq
                        if record.cmid is None or (conv, record.sender, record.cmid) not in self.sent_here:
                            self._write(encode(msg_frame(record)), None)
                after = batch[-1].seq
        except Exception:
            log.exception("gap fill failed for %s after %d; closing for resume", conv, after)
            self._close(CloseCode.OVERLOADED, "gap fill failed; resume")
            return
        finally:
            self._pump = None
        # The missing range is now written (or was lost from the store, which
        # cannot happen for committed messages): jump the cursor to the gap's end.
        self.cursors[conv] = max(self.cursors.get(conv, 0), before - 1)
        self._drain()

    def _queue(self) -> deque[tuple[Any, ...]]:
        if self._waiting is None:
            self._waiting = deque()
        return self._waiting

    def _drain(self) -> None:
        while self._waiting and not self._hold and self._pump is None and self._gap is None:
            item = self._waiting.popleft()
            if item[0] == "raw":
                self._write(item[1], item[2])
            else:
                self._message(*item[1:])
        if self._waiting is not None and not self._waiting:
            self._waiting = None

    def _write(self, data: bytes, t0: float | None) -> None:
        if self.closed:
            return
        self.transport.write(data)
        if self._on_write is not None:
            self._on_write(t0)
        if self.transport.buffered() > self.limit_bytes:
            if self._on_slow is not None:
                self._on_slow()
            self._close(CloseCode.SLOW_CONSUMER, "too slow to read; reconnect and resume")

    def _close(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self._stop_gap_wait()
            self._waiting = None
            self.transport.close(code, reason)
