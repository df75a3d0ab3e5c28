"""The per-connection outbox alone: order, duplicates, gap fills and the slow-reader cut-off."""

from __future__ import annotations

import asyncio

import msgpack

from chat.outbox import Outbox, Transport
from chat.protocol.views import msg_frame
from chat.store.base import MessageRecord


class RecordingTransport(Transport):
    def __init__(self) -> None:
        self.frames: list[dict[str, object]] = []
        self.closed: tuple[int, str] | None = None
        self.backlog = 0

    def write(self, data: bytes) -> None:
        self.frames.append(msgpack.unpackb(data))
        self.backlog += len(data)

    def buffered(self) -> int:
        return self.backlog

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


def record(conv: str, seq: int, sender: str = "u", cmid: str | None = None) -> MessageRecord:
    return MessageRecord(conv, seq, sender, "buyer", "text", {"text": str(seq)}, 0, cmid)


def frame(conv: str, seq: int) -> bytes:
    return msgpack.packb(msg_frame(record(conv, seq)))


class Store:
    def __init__(self, count: int) -> None:
        self.messages = [record("c", i) for i in range(1, count + 1)]
        self.calls = 0

    async def fetch(self, conv: str, after: int, before: int) -> list[MessageRecord]:
        self.calls += 1
        await asyncio.sleep(0.01)
        return [m for m in self.messages if after < m.seq < before][:3]


def seqs(t: RecordingTransport) -> list[object]:
    return [f.get("seq") for f in t.frames]


async def test_in_order_messages_are_written_at_once() -> None:
    """The next seq is written immediately; duplicates and old seqs are dropped."""
    t = RecordingTransport()
    box = Outbox(t, Store(0).fetch, limit_bytes=10**6)
    box.set_cursor("c", 0)
    for s in (1, 2, 2, 1, 3):
        box.message("c", s, frame("c", s))
    assert seqs(t) == [1, 2, 3]


async def test_gap_is_filled_from_the_store_before_later_frames() -> None:
    """A jump in seq fetches the missing range (in pages), and frames behind it wait their turn."""
    t = RecordingTransport()
    store = Store(10)
    gaps: list[bool] = []
    box = Outbox(t, store.fetch, limit_bytes=10**6, on_gap=lambda: gaps.append(True), gap_wait=0.01)
    box.set_cursor("c", 1)
    box.message("c", 9, frame("c", 9))
    box.send({"type": "pong", "ts": 1})
    box.message("c", 10, frame("c", 10))
    box.message("c", 5, frame("c", 5))
    await asyncio.sleep(0.2)
    assert seqs(t) == [2, 3, 4, 5, 6, 7, 8, 9, None, 10]
    assert store.calls == 3 and gaps == [True]


async def test_gap_closed_by_the_late_notice_needs_no_store_read() -> None:
    """Notices a moment behind (same commit batch, another node) close the gap while the outbox
    waits for them: no store read, and the order on the wire is still by seq, then the rest."""
    t = RecordingTransport()
    store = Store(10)
    gaps: list[bool] = []
    box = Outbox(t, store.fetch, limit_bytes=10**6, on_gap=lambda: gaps.append(True))
    box.set_cursor("c", 1)
    box.message("c", 4, frame("c", 4))
    box.send({"type": "ack", "seq": 5})  # e.g. the ack of this connection's own next message
    box.message("c", 3, frame("c", 3))  # out of order: still missing 2, so it waits
    box.message("c", 2, frame("c", 2))
    await asyncio.sleep(0.05)
    assert seqs(t) == [2, 3, 4, 5]
    assert [f["type"] for f in t.frames] == ["msg", "msg", "msg", "ack"]
    assert store.calls == 0 and gaps == []


async def test_gap_wait_ends_with_a_store_read_when_the_notice_never_comes() -> None:
    """A notice lost on the way: after the short wait the outbox reads the store."""
    t = RecordingTransport()
    store = Store(10)
    box = Outbox(t, store.fetch, limit_bytes=10**6, gap_wait=0.01)
    box.set_cursor("c", 1)
    box.message("c", 3, frame("c", 3))
    await asyncio.sleep(0.005)
    assert seqs(t) == [] and store.calls == 0
    await asyncio.sleep(0.1)
    assert seqs(t) == [2, 3] and store.calls == 1


async def test_unfollowed_conversations_are_ignored_until_sync() -> None:
    """Before a sync, messages of conversations without a cursor are not written."""
    t = RecordingTransport()
    box = Outbox(t, Store(3).fetch, limit_bytes=10**6)
    box.message("c", 1, frame("c", 1))
    assert t.frames == []
    box.follow_new = True
    box.message("c", 1, frame("c", 1))
    assert seqs(t) == [1]


async def test_hold_queues_until_release() -> None:
    """While held, everything waits; release writes it in arrival order through the cursors."""
    t = RecordingTransport()
    box = Outbox(t, Store(0).fetch, limit_bytes=10**6)
    box.set_cursor("c", 0)
    box.hold()
    box.message("c", 1, frame("c", 1))
    box.send({"type": "ok"})
    assert t.frames == []
    box.release()
    assert [f["type"] for f in t.frames] == ["msg", "ok"]


async def test_own_messages_are_not_echoed_even_by_a_gap_fill() -> None:
    """The sending connection has the ack: neither the live notice nor a gap fill writes its message back."""
    t = RecordingTransport()
    store = Store(0)
    store.messages = [record("c", 1, "me", "m1"), record("c", 2, "other", "m1"), record("c", 3)]
    box = Outbox(t, store.fetch, limit_bytes=10**6, gap_wait=0.01)
    box.set_cursor("c", 0)
    box.posting("c", "me", "m1")
    box.message("c", 4, frame("c", 4))
    await asyncio.sleep(0.1)
    assert seqs(t) == [2, 3, 4]
    box.message("c", 5, frame("c", 5), echo=False)
    assert seqs(t) == [2, 3, 4] and box.cursors["c"] == 5


async def test_reader_that_falls_behind_is_closed_for_resume() -> None:
    """Past the byte limit the connection is closed with 4500 and nothing more is written."""
    t = RecordingTransport()
    slow: list[bool] = []
    box = Outbox(t, Store(0).fetch, limit_bytes=500, on_slow=lambda: slow.append(True))
    box.set_cursor("c", 0)
    for s in range(1, 50):
        box.message("c", s, frame("c", s))
    assert t.closed is not None and t.closed[0] == 4500
    assert slow == [True]
    assert len(t.frames) < 49
