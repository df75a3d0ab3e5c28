"""Guaranteed delivery over real sockets: acks, idempotent resends, resume, devices, history."""

from __future__ import annotations

import asyncio
from typing import Any

from .client import LISTING, Client
from .conftest import token


async def open_pair(
    url: str, buyer_id: str = "b1", shop: str = "shop1", agent_id: str = "a1"
) -> tuple[Client, Client, str]:
    agent = await Client.connect(url, token(agent_id, "agent", shop=shop))
    await agent.request({"type": "sync"})
    buyer = await Client.connect(url, token(buyer_id))
    opened = await buyer.request({"type": "open", "shop": shop, "listing": LISTING})
    conv = opened["conversation"]["id"]
    await agent.next("msg", conv=conv)
    return buyer, agent, conv


async def test_resend_with_same_cmid_is_not_duplicated(url: str) -> None:
    """The same client message id gets the same seq back, flagged duplicate, and is delivered once."""
    buyer, agent, conv = await open_pair(url)
    first = await buyer.send_text(conv, "hello", "same-id")
    second = await buyer.send_text(conv, "hello", "same-id")
    assert second["seq"] == first["seq"] and second["duplicate"] is True
    got = await agent.next("msg", conv=conv)
    assert got["seq"] == first["seq"]
    await agent.no_frame("msg", conv=conv)
    page = await agent.request({"type": "history", "conv": conv})
    assert [m["seq"] for m in page["messages"]] == [1, 2]


async def test_cmid_reused_for_other_content_is_refused(url: str) -> None:
    """Reusing a client id for a different body is an error, not a silent overwrite."""
    buyer, _agent, conv = await open_pair(url)
    await buyer.send_text(conv, "hello", "x1")
    reply = await buyer.send_text(conv, "something else", "x1")
    assert reply["type"] == "error" and reply["code"] == 4005


async def test_disconnected_client_resumes_exactly_what_it_missed(url: str) -> None:
    """After a drop, sync with cursors pushes every missed message once, in order, then live resumes."""
    buyer, agent, conv = await open_pair(url)
    await buyer.send_text(conv, "m0", "m0")
    seen = (await agent.next("msg", conv=conv))["seq"]
    await agent.close()
    for i in range(1, 26):
        await buyer.send_text(conv, f"m{i}", f"m{i}")
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    synced_task = asyncio.create_task(agent.request({"type": "sync", "cursors": {conv: seen}}))
    missed = await agent.messages(conv, 25)
    synced = await synced_task
    assert [m["seq"] for m in missed] == list(range(seen + 1, seen + 26))
    assert [m["body"]["text"] for m in missed] == [f"m{i}" for i in range(1, 26)]
    view = next(c for c in synced["conversations"] if c["id"] == conv)
    assert view["last_seq"] == seen + 25
    # live again, no duplicates of what was pushed
    ack = await buyer.send_text(conv, "live", "live")
    got = await agent.next("msg", conv=conv)
    assert got["seq"] == ack["seq"] == seen + 26
    await agent.no_frame("msg", conv=conv)


async def test_inbox_cursor_fast_path_reports_only_changed_conversations(url: str) -> None:
    """A sync with the inbox token from the last sync looks only at conversations written since."""
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    buyers = [await Client.connect(url, token(f"b{i}")) for i in range(3)]
    convs = [
        (await b.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"] for b in buyers
    ]
    first = await agent.request({"type": "sync", "cursors": {c: 1 for c in convs}})
    assert first["full"] is True and first["inbox"]
    cursors = {c["id"]: c["last_seq"] for c in first["conversations"]}
    await agent.close()
    await buyers[1].send_text(convs[1], "only this one", "o1")
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    task = asyncio.create_task(agent.request({"type": "sync", "cursors": cursors, "inbox": first["inbox"]}))
    pushed = await agent.next("msg", conv=convs[1])
    second = await task
    assert pushed["body"] == {"text": "only this one"}
    assert second["full"] is False
    assert [c["id"] for c in second["conversations"]] == [convs[1]]


async def test_unknown_inbox_cursor_falls_back_to_full_sync(url: str) -> None:
    """A token the store cannot use (another store, garbage) gives a full sync, not a silent miss."""
    buyer, _agent, conv = await open_pair(url)
    synced = await buyer.request({"type": "sync", "cursors": {conv: 0}, "inbox": "nonsense-42"})
    assert synced["full"] is True
    assert [c["id"] for c in synced["conversations"]] == [conv]


async def test_every_device_of_a_user_gets_messages_and_own_sends(url: str) -> None:
    """A second device gets the counterpart's and the user's own messages; the sending device gets an ack only."""
    buyer, agent, conv = await open_pair(url)
    phone = await Client.connect(url, token("b1"))
    await phone.request({"type": "sync", "cursors": {conv: 1}})
    await buyer.send_text(conv, "from laptop", "l1")
    assert (await phone.next("msg", conv=conv))["body"] == {"text": "from laptop"}
    await buyer.no_frame("msg", conv=conv)
    await agent.send_text(conv, "reply", "r1")
    assert (await phone.next("msg", conv=conv))["seq"] == 3
    assert (await buyer.next("msg", conv=conv))["seq"] == 3


async def test_history_pages_backwards_and_forwards(url: str) -> None:
    """History gives the latest page by default, then oldest-first pages before or after a seq."""
    buyer, _agent, conv = await open_pair(url)
    for i in range(30):
        await buyer.send_text(conv, f"t{i}", f"h{i}")
    last = await buyer.request({"type": "history", "conv": conv, "limit": 10})
    assert [m["seq"] for m in last["messages"]] == list(range(22, 32)) and last["more"] is True
    page = await buyer.request({"type": "history", "conv": conv, "before": 31, "limit": 10})
    assert [m["seq"] for m in page["messages"]] == list(range(21, 31)) and page["more"] is True
    older = await buyer.request({"type": "history", "conv": conv, "before": 3, "limit": 10})
    assert [m["seq"] for m in older["messages"]] == [1, 2] and older["more"] is False
    after = await buyer.request({"type": "history", "conv": conv, "after": 25, "limit": 10})
    assert [m["seq"] for m in after["messages"]] == [26, 27, 28, 29, 30, 31] and after["more"] is False


async def test_read_receipts_and_unread_counts(url: str) -> None:
    """Reading moves the side's mark, tells the counterpart, and updates the reader's own unread count."""
    buyer, agent, conv = await open_pair(url)
    for i in range(3):
        await buyer.send_text(conv, f"q{i}", f"q{i}")
    await agent.messages(conv, 3)
    synced = await agent.request({"type": "sync", "cursors": {conv: 4}})
    assert synced["conversations"][0]["unread"] == 4  # product card + 3 questions
    assert synced["total_unread"] == 4
    assert (await agent.request({"type": "read", "conv": conv, "seq": 3}))["type"] == "ok"
    mine = await agent.next("receipt", conv=conv)
    assert mine["seq"] == 3 and mine["unread"] == 1 and mine["side"] == "shop"
    theirs = await buyer.next("receipt", conv=conv)
    assert theirs["seq"] == 3 and theirs["side"] == "shop" and theirs.get("unread") is None
    # marks never move back, and never beyond the last message
    await agent.request({"type": "read", "conv": conv, "seq": 1})
    assert (await agent.next("receipt", conv=conv))["seq"] == 3
    await agent.request({"type": "read", "conv": conv, "seq": 999})
    assert (await agent.next("receipt", conv=conv))["seq"] == 4


async def test_typing_is_relayed_not_stored(url: str) -> None:
    """Typing reaches the counterpart only and leaves no trace in history."""
    buyer, agent, conv = await open_pair(url)
    await buyer.request({"type": "typing", "conv": conv, "active": True})
    got = await agent.next("typing", conv=conv)
    assert got == {"type": "typing", "conv": conv, "user": "b1", "active": True}
    await buyer.no_frame("typing")
    page = await buyer.request({"type": "history", "conv": conv})
    assert [m["kind"] for m in page["messages"]] == ["product"]


async def test_recall_within_window_only_by_sender(url: str) -> None:
    """The sender recalls a message: content is withheld from history, everyone sees the recall."""
    buyer, agent, conv = await open_pair(url)
    ack = await buyer.send_text(conv, "oops, my phone number", "p1")
    await agent.next("msg", conv=conv)
    denied = await agent.request({"type": "recall", "conv": conv, "seq": ack["seq"]})
    assert denied["type"] == "error" and denied["code"] == 4003
    card = await buyer.request({"type": "recall", "conv": conv, "seq": 1})
    assert card["code"] == 4004  # the opening product card is not the buyer's to withdraw
    ok = await buyer.request({"type": "recall", "conv": conv, "seq": ack["seq"]})
    assert ok["type"] == "ok"
    notice = await agent.next("msg", conv=conv, kind="recall")
    assert notice["body"] == {"seq": ack["seq"]}
    page = await agent.request({"type": "history", "conv": conv})
    recalled = next(m for m in page["messages"] if m["seq"] == ack["seq"])
    assert recalled["recalled"] is True and recalled["body"] == {}
    again = await buyer.request({"type": "recall", "conv": conv, "seq": ack["seq"]})
    assert again["code"] == 4004


async def test_recall_window_passes(server_factory: Any) -> None:
    """After the recall window the sender's recall is refused with 4002."""
    server = await server_factory(recall_window=0.2)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, _agent, conv = await open_pair(url)
    ack = await buyer.send_text(conv, "late", "late")
    await asyncio.sleep(0.35)
    reply = await buyer.request({"type": "recall", "conv": conv, "seq": ack["seq"]})
    assert reply["code"] == 4002


async def test_many_messages_from_both_sides_arrive_complete_and_in_order(url: str) -> None:
    """Pipelined sends from both sides: every message reaches the other exactly once, in seq order."""
    buyer, agent, conv = await open_pair(url)

    async def burst(client: Client, prefix: str) -> list[int]:
        acks = await asyncio.gather(*(client.send_text(conv, f"{prefix}{i}", f"{prefix}{i}") for i in range(100)))
        return [a["seq"] for a in acks]

    buyer_seqs, agent_seqs = await asyncio.gather(burst(buyer, "b"), burst(agent, "a"))
    assert sorted(buyer_seqs + agent_seqs) == list(range(2, 202))
    at_agent = [m["seq"] for m in await agent.messages(conv, 100)]
    at_buyer = [m["seq"] for m in await buyer.messages(conv, 100)]
    assert at_agent == sorted(buyer_seqs) and at_buyer == sorted(agent_seqs)


def stuck_client(port: int, frames: list[dict[str, Any]]) -> Any:
    """A client that sends its frames and then never reads again (tiny receive buffer)."""
    import socket

    import msgpack
    from websockets.client import ClientProtocol
    from websockets.uri import parse_uri

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    proto = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"))
    proto.send_request(proto.connect())
    sock.sendall(b"".join(proto.data_to_send()))
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    proto.receive_data(response)
    for frame in frames:
        proto.send_binary(msgpack.packb(frame))
    sock.sendall(b"".join(proto.data_to_send()))
    return sock


async def test_slow_reader_is_closed_with_4500_and_resumes_without_loss(server_factory: Any) -> None:
    """A client that stops reading is cut off with 4500 while others flow on; it resumes and loses nothing."""
    server = await server_factory(outbox_bytes=64 * 1024, rate_per_second=1e6, rate_burst=10**6, sync_limit=100_000)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, agent, conv = await open_pair(url)
    await agent.close()
    stuck = await asyncio.to_thread(stuck_client, server.port, [
        {"type": "auth", "id": 1, "token": token("a1", "agent", shop="shop1")},
        {"type": "sync", "id": 2, "cursors": {conv: 1}},
    ])
    # a bystander keeps getting its messages while the stuck one is cut off
    bystander_buyer, bystander_agent, other = await open_pair(url, buyer_id="b2", shop="shop2", agent_id="z1")
    big = "x" * 3900
    metrics = server.hub.metrics
    acked = 0
    for i in range(5000):
        reply = await buyer.send_text(conv, f"{big}{i}", f"big{i}")
        assert reply["type"] == "ack", reply
        acked = reply["seq"]
        if i % 100 == 0:
            await bystander_buyer.send_text(other, f"ping{i}", f"ping{i}")
            assert (await bystander_agent.next("msg", conv=other))["body"] == {"text": f"ping{i}"}
        if metrics.slow_consumers._value.get() >= 1:
            break
    assert metrics.slow_consumers._value.get() == 1
    stuck.close()
    # it reconnects and resumes from the last seq it processed (here: nothing after 1)
    agent = await Client.connect(url, token("a1", "agent", shop="shop1"))
    task = asyncio.create_task(agent.request({"type": "sync", "cursors": {conv: 1}}, timeout=30))
    pushed = await agent.messages(conv, acked - 1)
    synced = await task
    assert [m["seq"] for m in pushed] == list(range(2, acked + 1))
    assert synced["conversations"][0]["last_seq"] == acked


async def test_big_shop_gets_recent_conversations_first_and_pages_the_rest(server_factory: Any) -> None:
    """A full sync lists the 200 most recently active conversations; older ones page with ``conversations``."""
    from chat.handlers import conversations as session

    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    store = server.hub.store
    for i in range(session.SYNC_CONVERSATIONS + 30):
        await store.open_conversation(f"c{i:04d}", f"b{i}", "bigshop", {**LISTING, "id": f"l{i}"}, "a1", 1000 + i)
    agent = await Client.connect(url, token("a1", "agent", shop="bigshop"))
    synced = await agent.request({"type": "sync"})
    listed = [c["id"] for c in synced["conversations"]]
    assert synced["more"] is True and len(listed) == session.SYNC_CONVERSATIONS
    assert listed[0] == f"c{session.SYNC_CONVERSATIONS + 29:04d}"  # newest activity first
    assert synced["total_unread"] == session.SYNC_CONVERSATIONS + 30  # counts every conversation
    last = synced["conversations"][-1]
    seen = set(listed)
    cursor = {"before_ts": last["updated_at"], "before_id": last["id"]}
    while True:
        page = await agent.request({"type": "conversations", **cursor, "limit": 20})
        seen.update(c["id"] for c in page["conversations"])
        if not page["more"]:
            break
        tail = page["conversations"][-1]
        cursor = {"before_ts": tail["updated_at"], "before_id": tail["id"]}
    assert len(seen) == session.SYNC_CONVERSATIONS + 30
    buyer = await Client.connect(url, token("b3"))
    assert [c["id"] for c in (await buyer.request({"type": "conversations"}))["conversations"]] == ["c0003"]
