"""OFF_PLATFORM_ACTION end to end, through real hub nodes and sockets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chat.detect.screen import WARNING_TEXT

from .test_delivery import open_pair

PHONE = "加我 vx 一三八 1234 5678，私下交易便宜"


async def warning(client: Any, conv: str) -> dict[str, Any]:
    """The next warning pushed to ``client`` (other system notes, such as a hand-over, are skipped)."""
    while True:
        note = await client.next("msg", conv=conv, kind="system")
        if note["body"].get("event") == "off_platform_warning":
            return dict(note)


async def started(server_factory: Callable[..., Any], action: str) -> str:
    server = await server_factory(off_platform_action=action)
    return f"ws://127.0.0.1:{server.port}/"


async def test_note_delivers_flags_and_warns_the_buyer_once_a_day(url: str) -> None:
    """The default: the message arrives as sent with its flags, and one warning follows
    (a second flagged message the same day gets none)."""
    buyer, agent, conv = await open_pair(url)
    ack = await agent.send_text(conv, PHONE, "n1")
    assert ack["type"] == "ack"
    got = await buyer.next("msg", conv=conv, seq=ack["seq"])
    assert got["body"]["text"] == PHONE and got["body"]["flags"] == ["wechat", "payment"]
    assert "masked" not in got["body"]
    note = await warning(buyer, conv)
    assert note["body"]["text"] == WARNING_TEXT and note["body"]["to"] == "buyer" and note["sender"] == "system"
    assert "不受" in WARNING_TEXT and "not protected" in WARNING_TEXT
    await buyer.send_text(conv, "我的微信是 lily8888", "n2")
    await agent.next("msg", conv=conv, sender="b1")
    await buyer.no_frame("msg", conv=conv, kind="system", sender="system", wait=0.5)
    page = await buyer.request({"type": "history", "conv": conv})
    events = [m["body"].get("event") for m in page["messages"] if m["kind"] == "system"]
    assert events.count("off_platform_warning") == 1
    flagged = [m["body"]["flags"] for m in page["messages"] if m["kind"] == "text"]
    assert flagged == [["wechat", "payment"], ["wechat"]]


async def test_clean_text_is_untouched(server_factory: Callable[..., Any]) -> None:
    buyer, agent, conv = await open_pair(await started(server_factory, "mask"))
    text = "订单号 20231202003412，顺丰 SF1234567890123，¥1380，尺码 38-42"
    ack = await buyer.send_text(conv, text, "c1")
    got = await agent.next("msg", conv=conv, seq=ack["seq"])
    assert got["body"] == {"text": text}


async def test_mask_stores_only_the_masked_text(server_factory: Callable[..., Any]) -> None:
    buyer, agent, conv = await open_pair(await started(server_factory, "mask"))
    ack = await agent.send_text(conv, "电话 ①③⑧ 1234 5678 联系", "m1")
    got = await buyer.next("msg", conv=conv, seq=ack["seq"])
    assert got["body"] == {"text": "电话 *** 联系", "flags": ["phone"], "masked": True}
    page = await agent.request({"type": "history", "conv": conv})
    assert not any("5678" in str(m["body"]) for m in page["messages"])
    await buyer.no_frame("msg", conv=conv, kind="system")
    # A resend of the same message is the same masked body: a duplicate, not 4005.
    again = await agent.send_text(conv, "电话 ①③⑧ 1234 5678 联系", "m1")
    assert again["type"] == "ack" and again["duplicate"] is True and again["seq"] == ack["seq"]


async def test_mask_finds_a_number_sent_in_pieces(server_factory: Callable[..., Any]) -> None:
    buyer, agent, conv = await open_pair(await started(server_factory, "mask"))
    for cmid, piece in (("p1", "138"), ("p2", "1234")):
        await buyer.send_text(conv, piece, cmid)
    ack = await buyer.send_text(conv, "5678", "p3")
    got = await agent.next("msg", conv=conv, seq=ack["seq"])
    assert got["body"] == {"text": "***", "flags": ["phone"], "masked": True}


async def test_block_refuses_and_stores_nothing(server_factory: Callable[..., Any]) -> None:
    buyer, agent, conv = await open_pair(await started(server_factory, "block"))
    reply = await buyer.send_text(conv, "转我支付宝，便宜100", "b1")
    assert reply["type"] == "error" and reply["code"] == 4006 and reply["details"] == {"flags": ["payment"]}
    await agent.no_frame("msg", conv=conv, sender="b1")
    ok = await buyer.send_text(conv, "好的，我在平台下单", "b2")
    assert ok["type"] == "ack"
    page = await agent.request({"type": "history", "conv": conv})
    texts = [m["body"]["text"] for m in page["messages"] if m["kind"] == "text"]
    assert texts == ["好的，我在平台下单"]


async def test_off_checks_nothing(server_factory: Callable[..., Any]) -> None:
    buyer, agent, conv = await open_pair(await started(server_factory, "off"))
    ack = await buyer.send_text(conv, PHONE, "o1")
    got = await agent.next("msg", conv=conv, seq=ack["seq"])
    assert got["body"] == {"text": PHONE}
    await buyer.no_frame("msg", conv=conv, kind="system")


async def test_a_client_cannot_set_flags(server_factory: Callable[..., Any]) -> None:
    buyer, _agent, conv = await open_pair(await started(server_factory, "note"))
    body = {"kind": "text", "text": "hello", "flags": [], "masked": True}
    reply = await buyer.request({"type": "send", "conv": conv, "cmid": "x1", "body": body})
    assert reply["type"] == "error" and reply["code"] == 1004
