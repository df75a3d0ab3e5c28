"""The protocol layer alone: bytes in, typed frames or typed errors out, no sockets."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.protocol import frames as f
from chat.protocol.codec import decode, encode, request_id
from chat.protocol.errors import CloseCode, ErrorCode, ProtocolError, should_reconnect

from .client import LISTING


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def test_decode_builds_the_frame_model() -> None:
    """A valid frame decodes to its pydantic model with nested models."""
    body = {"kind": "text", "text": "你好"}
    frame = decode(pack({"type": "send", "id": 3, "conv": "c1", "cmid": "m-1", "body": body}))
    assert isinstance(frame, f.Send) and isinstance(frame.body, f.TextBody) and frame.body.text == "你好"
    opened = decode(pack({"type": "open", "shop": "s1", "listing": LISTING}))
    assert isinstance(opened, f.Open) and opened.listing.price == 12800


def test_every_client_frame_type_decodes() -> None:
    """Each client frame type has at least one valid minimal form."""
    samples = [
        {"type": "auth", "token": "t"},
        {"type": "open", "shop": "s", "listing": LISTING},
        {"type": "send", "conv": "c", "cmid": "m", "body": {"kind": "image", "url": "https://x/y.png"}},
        {"type": "sync"},
        {"type": "history", "conv": "c"},
        {"type": "conversations", "before_ts": 5, "before_id": "c"},
        {"type": "read", "conv": "c", "seq": 0},
        {"type": "typing", "conv": "c"},
        {"type": "recall", "conv": "c", "seq": 1},
        {"type": "presence", "status": "away"},
        {"type": "assign", "conv": "c", "agent": "a"},
        {"type": "stats", "days": 30},
        {"type": "auto_reply", "active": False},
        {"type": "ping"},
        {"type": "agents", "id": 12, "shop": "shop1"},
        {"type": "offer", "conv": "c", "price": 100, "key": "k-000001"},
        {"type": "pay", "conv": "c", "pin": "123456", "key": "k-000002"},
        {"type": "ship", "conv": "c", "order": "o", "tracking": "SF123", "key": "k-000003"},
        {"type": "confirm", "conv": "c", "order": "o", "key": "k-000004"},
        {"type": "extend", "conv": "c", "order": "o", "key": "k-000005"},
        {"type": "refund", "conv": "c", "order": "o", "amount": 5, "reason": "broken", "key": "k-000006"},
        {"type": "refund_answer", "conv": "c", "order": "o", "accept": False, "key": "k-000007"},
        {"type": "dispute", "conv": "c", "order": "o", "reason": "not as described", "key": "k-000008"},
        {"type": "decide", "conv": "c", "order": "o", "outcome": "split", "buyer_amount": 3, "key": "k-000009"},
        {"type": "after_sale", "conv": "c", "order": "o", "amount": 5, "reason": "broke", "key": "k-000019"},
        {"type": "after_sale_answer", "conv": "c", "order": "o", "accept": True, "key": "k-000020"},
        {"type": "transfer", "conv": "c", "amount": 5, "currency": "CNY", "pin": "123456", "key": "k-000010"},
        {"type": "transfer_answer", "conv": "c", "transfer": "t", "accept": True, "key": "k-000011"},
        {"type": "set_pin", "pin": "123456"},
        {"type": "set_quick_pay", "enabled": False},
        {"type": "rate", "conv": "c1", "order": "o1", "score": "good", "item": 5},
        {"type": "wallet"},
        {"type": "report", "conv": "c", "reason": "spam"},
        {"type": "block", "conv": "c"},
        {"type": "unblock", "conv": "c"},
        {"type": "credit", "conv": "c"},
        {"type": "buyer_profile", "conv": "c"},
        {"type": "edit_buyer_profile", "conv": "c", "version": 0, "note": "", "tags": []},
        {"type": "close", "conv": "c"},
        {"type": "reopen", "conv": "c"},
        {"type": "closed", "convs": []},
        {"type": "follow", "shop": "s"},
        {"type": "unfollow", "shop": "s"},
        {"type": "follow_state", "shop": "s"},
        {"type": "followers"},
        {"type": "broadcast", "key": "bcast-key-1", "text": "new arrivals"},
        {"type": "broadcasts"},
        {"type": "claim_offer", "conv": "c1", "broadcast": 7},
        {"type": "search", "q": "破损"},
        {"type": "reports"},
        {"type": "disputes"},
        {"type": "evidence", "conv": "c"},
    ]
    decoded = {type(decode(pack(s))) for s in samples}
    assert decoded == set(f.CLIENT_FRAME_TYPES)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ErrorCode.MALFORMED),
        (b"\xc1", ErrorCode.MALFORMED),
        (pack({"type": "ping"}) + b"\x00", ErrorCode.MALFORMED),
        (pack("ping"), ErrorCode.NOT_A_MAP),
        (pack({1: 2}), ErrorCode.MALFORMED),  # map keys must be strings
        (pack({"type": "nope"}), ErrorCode.UNKNOWN_TYPE),
        (pack({"type": "history", "conv": "c", "limit": 1000}), ErrorCode.INVALID_FIELDS),
        (pack({"type": "open", "shop": "s", "listing": {**LISTING, "price": -1}}), ErrorCode.INVALID_FIELDS),
        (pack({"type": "open", "shop": "s", "listing": {**LISTING, "price": True}}), ErrorCode.INVALID_FIELDS),
        (pack({"type": "sync", "cursors": {"c": "1"}}), ErrorCode.INVALID_FIELDS),
        (b"\xdd\xff\xff\xff\xff", ErrorCode.MALFORMED),  # array claiming 4 billion items
        (pack({"type": "pay", "conv": "c", "pin": "123456", "key": "short"}), ErrorCode.INVALID_FIELDS),
        (pack({"type": "pay", "conv": "c", "pin": "12345a", "key": "k-000002"}), ErrorCode.INVALID_FIELDS),
        (pack({"type": "offer", "conv": "c", "price": 1.5, "key": "k-000001"}), ErrorCode.INVALID_FIELDS),
        (pack({"type": "offer", "conv": "c", "price": 0, "key": "k-000001"}), ErrorCode.INVALID_FIELDS),
        (pack({"type": "transfer", "conv": "c", "amount": -5, "currency": "CNY", "pin": "123456", "key": "k-1234567"}),
         ErrorCode.INVALID_FIELDS),
    ],
)
def test_bad_bytes_map_to_typed_errors(data: bytes, code: ErrorCode) -> None:
    """Every way a frame can be wrong raises ProtocolError with the right code."""
    with pytest.raises(ProtocolError) as info:
        decode(data)
    assert info.value.code == code and info.value.message


@given(st.binary(max_size=256))
def test_arbitrary_bytes_never_escape_as_other_exceptions(data: bytes) -> None:
    """Fuzz: whatever the bytes, decode returns a frame or raises ProtocolError, nothing else."""
    try:
        decode(data)
    except ProtocolError as exc:
        assert 1000 <= exc.code < 2000


@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                    max_leaves=20))
def test_arbitrary_structures_never_escape(obj: Any) -> None:
    """Fuzz: any msgpack structure, including maps that look like frames, yields a frame or a 1xxx error."""
    for candidate in (obj, {"type": "send", **obj} if isinstance(obj, dict) else obj):
        try:
            decode(pack(candidate))
        except ProtocolError as exc:
            assert 1000 <= exc.code < 2000


def test_request_id_only_from_sane_ints() -> None:
    """Errors answer a request id only when it is a plain non-negative int."""
    assert request_id({"id": 5}) == 5
    assert request_id({"id": True}) is None
    assert request_id({"id": -1}) is None
    assert request_id({"id": "5"}) is None
    assert request_id([1]) is None


def test_encode_round_trips_through_the_server_models() -> None:
    """What the server encodes decodes to a valid server frame."""
    from pydantic import TypeAdapter

    frame = {"type": "ack", "re": 1, "conv": "c", "cmid": "m", "seq": 2, "ts": 3, "duplicate": False}
    adapter: TypeAdapter[Any] = TypeAdapter(f.ServerFrame)
    assert isinstance(adapter.validate_python(msgpack.unpackb(encode(frame))), f.Ack)


def test_close_codes_say_whether_to_reconnect() -> None:
    """4000–4499 mean fix first; 4500+ and going-away mean reconnect and resume."""
    assert not should_reconnect(CloseCode.AUTH_FAILED)
    assert not should_reconnect(CloseCode.TOO_MANY_ERRORS)
    assert should_reconnect(CloseCode.SLOW_CONSUMER)
    assert should_reconnect(1001)
    assert not should_reconnect(1000)
