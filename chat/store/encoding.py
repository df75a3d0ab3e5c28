"""How stored bodies are encoded and compared, shared by every durable store.

Bodies and listings are stored as msgpack (compact, and it keeps bytes and ints exact).
A message's ``digest`` identifies its (kind, body) for the ``cmid`` check: a resend with
the same cmid and the same content is a duplicate, with other content it is refused. The
digest canonicalises maps (keys sorted), so it does not depend on key order.
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

import msgpack

from .base import BlockRecord, BroadcastRecord, FollowRecord, ReportRecord, Side


def pack(obj: Any) -> bytes:
    data: bytes = msgpack.packb(obj, use_bin_type=True)
    return data


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


def canonical(value: Any) -> Any:
    """Maps with their keys sorted, so a body's digest does not depend on key order."""
    if isinstance(value, dict):
        return [[k, canonical(value[k])] for k in sorted(value)]
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def digest(kind: str, body: dict[str, Any]) -> bytes:
    return hashlib.blake2b(pack([kind, canonical(body)]), digest_size=16).digest()


def legacy_digest(kind: str, body: dict[str, Any]) -> bytes:
    """The digest rows written before bodies were canonicalised carry (key order kept)."""
    return hashlib.blake2b(pack([kind, body]), digest_size=16).digest()


REPORT_COLUMNS = "id, conv, seq, reporter, side, buyer, shop, reason, created_at"
BLOCK_COLUMNS = "shop, buyer, side, by_user, reason, created_at"


def report_row(row: tuple[Any, ...]) -> ReportRecord:
    """A report from a row of :data:`REPORT_COLUMNS` (both SQL stores use the same columns)."""
    return ReportRecord(int(row[0]), row[1], int(row[2]), row[3], cast(Side, row[4]), row[5], row[6], row[7],
                        int(row[8]))


def block_row(row: tuple[Any, ...]) -> BlockRecord:
    """A block from a row of :data:`BLOCK_COLUMNS`."""
    return BlockRecord(row[0], row[1], cast(Side, row[2]), row[3], row[4], int(row[5]))


FOLLOW_COLUMNS = "shop, buyer, conv, created_at"
BROADCAST_COLUMNS = "id, shop, key, by_user, body, created_at, total, cursor, delivered, skipped, done, finished_at"


def follow_row(row: tuple[Any, ...], blocked: bool = False) -> FollowRecord:
    """A follow from a row of :data:`FOLLOW_COLUMNS`."""
    return FollowRecord(row[0], row[1], row[2], int(row[3]), blocked)


def broadcast_row(row: tuple[Any, ...]) -> BroadcastRecord:
    """A broadcast job from a row of :data:`BROADCAST_COLUMNS`."""
    return BroadcastRecord(
        int(row[0]), row[1], row[2], row[3], unpack(bytes(row[4])), int(row[5]), int(row[6]), row[7], int(row[8]),
        int(row[9]), bool(row[10]), None if row[11] is None else int(row[11]),
    )
