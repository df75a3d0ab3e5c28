"""The arbiter's desk: ``reports``, ``disputes`` and ``evidence``, for arbiters only (3003).

``reports`` pages through what buyers and agents reported (as ``GET /api/v1/reports`` does
for the marketplace), each with the reported message; ``disputes`` lists the orders waiting
for a decision, nearest deadline first (read from the ledger: ``5002`` without payments);
``evidence`` is a conversation's signed package (:mod:`chat.evidence`, the same builder as
the server API; ``5002`` without ``EVIDENCE_KEY``), for a conversation the arbiter may read
(disputed or reported: :mod:`chat.arbiter_access`). Deciding stays the money command
``decide``.

:data:`HANDLERS` works without the ledger; :func:`ledger_handlers` replaces two of its
entries where payments are enabled (registered with the money commands).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from payments import PaymentError

from .. import evidence as packages
from ..protocol import arbiter_frames as af
from ..protocol.codec import encode
from ..protocol.errors import ErrorCode, ProtocolError
from ..protocol.views import msg_frame
from ..store.base import ReportRecord
from .context import Connection, Handler


def _arbiter_only(c: Connection, what: str) -> None:
    if c.me.role != "arbiter":
        raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, f"only arbiters read {what}")


async def _entry(c: Connection, r: ReportRecord) -> dict[str, Any]:
    message = None
    if r.seq:
        found = await c.hub.store.messages(r.conv, after=r.seq - 1, limit=1)
        if found and found[0].seq == r.seq:
            message = msg_frame(found[0])
    return {"id": r.id, "conv": r.conv, "seq": r.seq, "reporter": r.reporter, "side": r.side, "buyer": r.buyer,
            "shop": r.shop, "reason": r.reason, "created_at": r.created_at, "message": message}


async def reports(c: Connection, frame: af.ReportsRequest, rid: int | None) -> None:
    _arbiter_only(c, "reports")
    found = await c.hub.store.reports(after=frame.after, limit=frame.limit)
    entries = [await _entry(c, r) for r in found]
    c.reply({"type": "reports", "re": rid, "reports": entries,
             "next_after": found[-1].id if len(found) == frame.limit else None})


async def evidence(c: Connection, frame: af.EvidenceRequest, rid: int | None, *, service: Any = None) -> None:
    """The package, with the ledger's record when ``service`` (the payments service) is given."""
    _arbiter_only(c, "evidence packages")
    key = c.hub.config.evidence_key
    if not key:
        raise ProtocolError(ErrorCode.UNAVAILABLE, "evidence export is disabled: set EVIDENCE_KEY")
    record = await c.conversation(frame.conv, evidence=True)
    package = await packages.build(c.hub.store, record.id, key.encode(), c.hub.clock.now_ms(), service)
    if package is None:
        raise ProtocolError(ErrorCode.NOT_FOUND)
    data = encode({"type": "evidence", "re": rid, "conv": record.id, "package": package})
    # More than half the outbox would close the connection as a slow consumer (4500).
    limit = c.hub.config.outbox_bytes // 2
    if len(data) > limit:
        raise ProtocolError(ErrorCode.EVIDENCE_TOO_LARGE, details={"bytes": len(data), "max_bytes": limit})
    c.outbox.send_bytes(data)


async def disputes(c: Connection, frame: af.DisputesRequest, rid: int | None, *, service: Any) -> None:
    _arbiter_only(c, "disputes")
    try:
        orders = await asyncio.to_thread(service.disputed_orders, frame.limit + 1)
    except PaymentError as exc:
        raise ProtocolError(exc.code, exc.message) from exc
    entries = [
        {"order": o.order_id, "conv": o.conversation_id, "shop": o.shop_id, "buyer": o.buyer_id, "title": o.title,
         "amount": o.amount, "held": o.held, "currency": o.currency, "refund_amount": o.refund_amount,
         "dispute_reason": o.dispute_reason, "disputed_by": o.disputed_by, "deadline_at": o.deadline_at,
         "updated_at": o.updated_at, "state": o.state.value, "after_sale_amount": o.after_sale_amount,
         "after_sale_reason": o.after_sale_reason}
        for o in orders[: frame.limit]
    ]
    c.reply({"type": "disputes", "re": rid, "disputes": entries, "more": len(orders) > frame.limit})


async def disputes_without_ledger(c: Connection, frame: af.DisputesRequest, rid: int | None) -> None:
    _arbiter_only(c, "disputes")
    raise ProtocolError(ErrorCode.UNAVAILABLE, "payments are not enabled on this server")


HANDLERS: dict[type, Handler] = {
    af.ReportsRequest: reports,
    af.EvidenceRequest: evidence,
    af.DisputesRequest: disputes_without_ledger,
}


def ledger_handlers(service: Any) -> dict[type, Handler]:
    """``evidence`` with the ledger's record and ``disputes`` from it, over ``service``."""
    return {
        af.EvidenceRequest: functools.partial(evidence, service=service),
        af.DisputesRequest: functools.partial(disputes, service=service),
    }
