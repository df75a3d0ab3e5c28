"""Every server frame the hub builds, in one place, as plain dicts.

The pydantic models in :mod:`chat.protocol.frames` define (and the tests check)
the shapes; these builders are what the hot path calls, so they build dicts
directly instead of models. Stored records reach them through small structural
types, which keeps this package free of the store and of I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class StoredMessage(Protocol):
    """What a ``msg`` frame shows of a stored message (``chat.store.base.MessageRecord``)."""

    @property
    def conv(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def sender(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def body(self) -> Mapping[str, Any]: ...
    @property
    def ts(self) -> int: ...
    @property
    def cmid(self) -> str | None: ...
    @property
    def recalled(self) -> bool: ...


class StoredConversation(Protocol):
    """What a conversation view shows of a stored conversation."""

    @property
    def id(self) -> str: ...
    @property
    def buyer(self) -> str: ...
    @property
    def shop(self) -> str: ...
    @property
    def listing(self) -> Mapping[str, Any]: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def last_seq(self) -> int: ...
    @property
    def created_at(self) -> int: ...
    @property
    def updated_at(self) -> int: ...


def msg_frame(m: StoredMessage) -> dict[str, Any]:
    """The ``msg`` frame of a stored message (recalled content is withheld)."""
    return {
        "type": "msg", "conv": m.conv, "seq": m.seq, "sender": m.sender, "role": m.role, "kind": m.kind,
        "body": {} if m.recalled else m.body, "ts": m.ts, "cmid": m.cmid, "recalled": m.recalled,
    }


def conversation_view(
    c: StoredConversation, last: StoredMessage | None, unread: int, marks: Mapping[str, int]
) -> dict[str, Any]:
    """A ``ConversationView`` from the point of view of one side."""
    return {
        "id": c.id, "buyer": c.buyer, "shop": c.shop, "listing": c.listing, "agent": c.agent,
        "last_seq": last.seq if last else c.last_seq, "unread": unread, "read": marks,
        "created_at": c.created_at, "updated_at": c.updated_at,
        "last_message": msg_frame(last) if last else None,
    }


def presence_frame(entity: str, status: str, last_seen: int | None) -> dict[str, Any]:
    return {"type": "presence", "entity": entity, "status": status, "last_seen": last_seen}


def error_frame(rid: int | None, code: int, message: str, details: object) -> dict[str, Any]:
    return {"type": "error", "re": rid, "code": code, "message": message, "details": details}


def ack_frame(rid: int | None, conv: str, cmid: str, seq: int, ts: int, duplicate: bool) -> dict[str, Any]:
    return {"type": "ack", "re": rid, "conv": conv, "cmid": cmid, "seq": seq, "ts": ts, "duplicate": duplicate}


def ok_frame(rid: int | None) -> dict[str, Any]:
    return {"type": "ok", "re": rid}


def receipt_frame(conv: str, user: str, side: str, seq: int, unread: int | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "receipt", "conv": conv, "user": user, "side": side, "seq": seq}
    if unread is not None:
        frame["unread"] = unread
    return frame


def typing_frame(conv: str, user: str, active: bool) -> dict[str, Any]:
    return {"type": "typing", "conv": conv, "user": user, "active": active}
