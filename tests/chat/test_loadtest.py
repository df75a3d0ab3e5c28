"""The load generator: a short smoke run against a real hub, its correctness ledger and its wire format."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import struct
from pathlib import Path
from typing import Any

from chat.loadtest.engine import Actor, Conv, Engine
from chat.loadtest.options import Options
from chat.loadtest.runner import render, report
from chat.loadtest.wsclient import connect
from chat.server import build

from .conftest import SECRET, make_config


async def test_smoke_run_against_a_hub(tmp_path: Path) -> None:
    server = build(make_config(tmp_path, presence_ttl=30.0))
    await server.start()
    try:
        opt = Options(
            urls=[f"ws://127.0.0.1:{server.port}/ws"], secret=SECRET, duration=3.0, warmup=0.5,
            shops=4, agents_per_shop=2, buyers=24, rate=60.0, user_rate=5.0, user_burst=5.0,
            typing=0.3, read=0.5, think=(0.05, 0.2), read_delay=(0.05, 0.2), churn=0.05,
            buyer_lifetime=2.0, reconnect_delay=(0.05, 0.2), drain=5.0, progress=0.0, run_id="smoke",
        )
        results = await Engine(opt).run()
    finally:
        await server.close()
    rep = report(opt, results)
    assert rep["correctness"] == {"checked": True, "acked_messages": rep["correctness"]["acked_messages"],
                                  "lost": 0, "duplicated": 0, "reordered": 0, "ok": True}, render(rep)
    assert rep["correctness"]["acked_messages"] > 50, render(rep)
    msg = rep["types"]["msg"]
    assert msg["count"] > 50 and 0 < msg["p50_ms"] <= msg["p99_ms"] <= msg["max_ms"] < 5000, render(rep)
    assert {"ack", "connect", "open", "typing", "receipt"} <= set(rep["types"]), render(rep)
    assert rep["errors"] == {}, render(rep)
    assert rep["counts"].get("resumed", 0) >= 1 and rep["counts"].get("buyers_left", 0) >= 1, render(rep)
    assert rep["ok"], render(rep)


def _pair() -> tuple[Engine, Conv, Actor, Actor]:
    engine = Engine(Options(read=0.0, progress=0.0))
    engine.measuring = True
    buyer = Actor(engine, "b", "buyer", "s", 0, "")
    agent = Actor(engine, "a", "agent", "s", 0, "")
    conv = Conv("c1", buyer, agent)
    engine.convs[conv.id] = conv
    return engine, conv, buyer, agent


def _msg(seq: int, sender: str, cmid: str | None = None) -> dict[str, Any]:
    return {"type": "msg", "conv": "c1", "seq": seq, "sender": sender, "cmid": cmid, "body": {}}


def test_ledger_reports_loss_duplicates_and_reordering() -> None:
    engine, conv, buyer, agent = _pair()
    for seq in (2, 3, 4):
        agent.acked(conv, seq)
    buyer.on_msg(_msg(2, "a"))
    buyer.on_msg(_msg(2, "a"))  # duplicate
    buyer.on_msg(_msg(4, "a"))
    buyer.on_msg(_msg(3, "a"))  # after 4: reordered
    assert engine.results.correctness == {"duplicate": 1, "reordered": 1}
    agent.acked(conv, 5)
    engine._finalize()
    assert engine.results.correctness["lost"] == 1
    assert engine.outstanding == 1


def test_ledger_accepts_delivery_before_ack_and_resume_cursor_skips_holes_only_when_filled() -> None:
    engine, conv, buyer, agent = _pair()
    buyer.cursor["c1"] = 1  # the opening card, from ``opened``
    buyer.on_msg(_msg(2, "a"))  # delivered before the sender's ack arrives
    agent.acked(conv, 2)
    assert not conv.undelivered and engine.outstanding == 0
    buyer.acked(conv, 4)  # own message; seq 3 (the agent's) still in flight
    assert buyer.cursor["c1"] == 2
    buyer.on_msg(_msg(3, "a"))
    assert buyer.cursor["c1"] == 4
    agent.on_msg(_msg(4, "b"))
    engine._finalize()
    assert not engine.results.correctness


def test_opened_starts_the_cursor_at_last_seq_only_for_a_new_conversation() -> None:
    _, conv, buyer, _ = _pair()
    buyer.opened("c1", 1)  # new: the hub goes live after the product card
    buyer.convs.append(conv)
    assert buyer.cursor["c1"] == 1 and buyer.last["c1"] == 1
    buyer.on_msg(_msg(2, "a"))
    buyer.opened("c1", 5)  # opened again while 3..5 may still be on their way: no jump over them
    assert buyer.cursor["c1"] == 2 and buyer.last["c1"] == 5
    _, _, fresh, _ = _pair()
    fresh.on_msg(_msg(3, "a"))  # live before ``opened`` was handled: held until the cursor reaches it
    fresh.opened("c1", 2)
    assert fresh.cursor["c1"] == 3


def test_resume_below_a_hole_resends_what_lies_above_it_without_a_duplicate() -> None:
    engine, conv, buyer, agent = _pair()
    buyer.opened("c1", 1)
    buyer.convs.append(conv)
    agent.acked(conv, 3)
    buyer.on_msg(_msg(3, "a"))  # seq 2 is the buyer's own send, its ack lost with the connection
    assert buyer.cursor["c1"] == 1
    buyer.last = {"c1": buyer.cursor["c1"]}  # what ``connect`` does before ``sync``
    buyer.on_msg(_msg(2, "b", "own"))  # the hub pushes from the cursor: our own message, then 3 again
    buyer.on_msg(_msg(3, "a"))
    assert buyer.cursor["c1"] == 3
    assert not engine.results.correctness and engine.results.counts["repushed"] == 1
    buyer.on_msg(_msg(3, "a"))  # but twice on one connection is a duplicate
    assert engine.results.correctness == {"duplicate": 1}


# --- the websocket client on the wire ------------------------------------------------------------

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _client_frames(data: bytes) -> tuple[list[tuple[int, bytes, bytes]], int]:
    """Parse client→server frames: (opcode, masking key, unmasked payload), and the bytes consumed.

    Fails on an unmasked frame: RFC 6455 §5.3 requires every client frame to be masked.
    """
    frames, pos = [], 0
    while len(data) - pos >= 2:
        b0, b1 = data[pos], data[pos + 1]
        assert b1 & 0x80, f"unmasked client frame at byte {pos}"
        length, head = b1 & 0x7F, pos + 2
        if length == 126:
            (length,), head = struct.unpack_from("!H", data, head), head + 2
        elif length == 127:
            (length,), head = struct.unpack_from("!Q", data, head), head + 8
        if len(data) < head + 4 + length:
            break
        key = data[head:head + 4]
        body = data[head + 4:head + 4 + length]
        frames.append((b0 & 0x0F, key, bytes(c ^ key[i % 4] for i, c in enumerate(body))))
        pos = head + 4 + length
    return frames, pos


async def test_client_masks_every_frame_with_a_fresh_nonzero_key() -> None:
    """A hand-written server captures what the client writes: pong, data and close frames."""
    wire = bytearray()
    request: list[bytes] = []
    finished = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await talk(reader, writer)
        finally:
            finished.set()

    async def talk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request.append(head)
        found = re.search(rb"(?im)^Sec-WebSocket-Key: *(\S+)", head)
        assert found is not None
        accept = base64.b64encode(hashlib.sha1(found.group(1) + _GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        writer.write(b"\x89\x04ping" + b"\x82\x05hello")  # a ping, then a binary message (servers never mask)
        while not any(op == 8 for op, _, _ in _client_frames(bytes(wire))[0]):
            chunk = await reader.read(65536)
            if not chunk:
                break
            wire.extend(chunk)
        writer.write(b"\x88\x02\x03\xe8")  # echo a 1000 close, then close TCP as a server does
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    received: list[bytes] = []
    closes: list[tuple[int | None, str]] = []
    try:
        client = await connect(f"ws://127.0.0.1:{port}/ws", lambda data: received.append(bytes(data)),
                               lambda code, reason: closes.append((code, reason)), within=5.0)
        payloads = [bytes([i]) * size for i, size in enumerate((1, 2, 100, 125, 126, 300, 70_000))]
        for payload in payloads:
            client.send(payload)
        await asyncio.sleep(0.05)
        client.send(b"after a loop pass")
        await asyncio.sleep(0.05)
        client.close_code = 4999  # the caller's reason wins over the server's echo
        client.close()
        await asyncio.wait_for(finished.wait(), 5.0)
    finally:
        server.close()
        await server.wait_closed()

    assert request and request[0].startswith(b"GET /ws HTTP/1.1\r\n") and b"Sec-WebSocket-Version: 13" in request[0]
    frames, used = _client_frames(bytes(wire))
    assert used == len(wire), "trailing bytes after the close frame"
    assert [p for op, _, p in frames if op == 2] == [*payloads, b"after a loop pass"]
    assert [p for op, _, p in frames if op == 10] == [b"ping"]  # the pong echoes the ping
    assert [p for op, _, p in frames if op == 8] == [b"\x03\xe8"]  # close 1000, once
    keys = [key for _, key, _ in frames]
    assert len(keys) == 10 and b"\x00\x00\x00\x00" not in keys
    assert len(set(keys)) == len(keys), "masking keys repeat between frames"
    assert received == [b"hello"]
    await asyncio.wait_for(client.done, 5.0)  # the server closed TCP after its close frame
    assert closes == [(4999, "")]
