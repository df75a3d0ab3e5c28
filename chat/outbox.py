"""One connection's outgoing side: ordered, gap-free, bounded.

Every frame for a connection goes through its :class:`Outbox`. Messages carry
``(conv, seq)``; the outbox remembers the last seq it wrote per conversation
and guarantees the client sees each conversation's messages in seq order,
once each:

* a seq at or below the cursor is a duplicate and is dropped;
* the next seq is written at once;
* a seq beyond the next one means notices crossed on their way between nodes
  (or one was lost): the outbox reads the missing range from the store and
  writes it first. While it does, later frames wait in a short queue so order
  holds for everything behind them.

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
    def __init__(
        self,
        transport: Transport,
        fetch: Fetch,
        *,
        limit_bytes: int,
        on_write: Callable[[float | None], None] | None = None,
        on_slow: Callable[[], None] | None = None,
        on_gap: Callable[[], None] | None = None,
    ) -> None:
        self.transport = transport
        self._fetch = fetch
        self.limit_bytes = limit_bytes
        self._on_write = on_write
        self._on_slow = on_slow
        self._on_gap = on_gap
        self.cursors: dict[str, int] = {}
        """Last seq written per conversation; absent means not yet followed."""
        self.follow_new = False
        """After a sync, conversations not in ``cursors`` are new: follow them from seq 0."""
        self.sent_here: dict[tuple[str, str, str], None] = {}
        """(conv, sender, cmid) of messages this connection posted: it has their ack, so a gap
        fill must not write them back to it (bounded, oldest forgotten first)."""
        self._waiting: deque[tuple[Any, ...]] = deque()
        self._hold = 0
        self._pump: asyncio.Task[None] | None = None
        self.closed = False

    # --- entry points -------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        """A reply or event with no seq: written in order with everything else."""
        self.send_bytes(encode(frame))

    def send_bytes(self, data: bytes, t0: float | None = None) -> None:
        if self._waiting or self._hold:
            self._waiting.append(("raw", data, t0))
        else:
            self._write(data, t0)

    def message(self, conv: str, seq: int, frame: bytes, *, echo: bool = True, t0: float | None = None) -> None:
        """A stored message; ``echo=False`` advances the cursor without writing (the sender's own)."""
        if self._waiting or self._hold:
            self._waiting.append(("msg", conv, seq, frame, echo, t0))
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
        # A gap: fill it from the store before anything else is written.
        if self._on_gap is not None:
            self._on_gap()
        self._waiting.appendleft(("msg", conv, seq, frame, echo, t0))
        self._pump = asyncio.ensure_future(self._fill(conv, cursor, seq))

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

    def _drain(self) -> None:
        while self._waiting and not self._hold and self._pump is None:
            item = self._waiting.popleft()
            if item[0] == "raw":
                self._write(item[1], item[2])
            else:
                self._message(*item[1:])

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
            self._waiting.clear()
            self.transport.close(code, reason)
