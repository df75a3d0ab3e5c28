"""The hash chain of a conversation: what makes its stored record tamper-evident.

Every message stored carries ``hash = SHA-256(prev || canonical(message))``, where
``prev`` is the 32 raw bytes of the previous message's hash in the same conversation
and, for seq 1, the genesis value ``SHA-256(UTF-8 bytes of the conversation id)``. A row
edited, deleted or reordered in the database no longer chains: recomputing the hashes
from the first message names the first broken link.

``canonical(message)`` is the UTF-8 encoding of the JSON object with exactly the keys
``body, cmid, conv, kind, role, sender, seq, ts``, written with keys sorted at every
level (by code point), no whitespace (``","`` and ``":"`` separators), non-ASCII
characters as themselves (not ``\\u`` escapes), integers in decimal and floats as
Python's ``repr`` (shortest round trip). It is exactly::

    json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

The ``recalled`` flag is deliberately not hashed: a recall marks the original (which
would otherwise change a hash already chained on) and appends a ``recall`` message,
which is itself chained, so the record says both that it was said and that it was taken
back. Every store uses this one module, so they agree byte for byte; the offline
verifier (:mod:`chat.evidence`) does too.

The PostgreSQL store hashes a whole batch inside its one statement, where a message's
seq is only known to the database: :func:`split` gives the canonical bytes before and
after the seq's digits, and the statement chains ``sha256(prev || before || seq ||
after)`` in batch order (see :mod:`chat.store.pg_queries`). The keys sort so that
``seq`` comes next to last, which is what makes that split possible.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ALGORITHM = "sha256-chain/v1"
"""Names this scheme in evidence packages, so a later change of it is told apart."""

_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_string = json.encoder.encode_basestring
"""What that encoder writes for a ``str`` (ensure_ascii=False)."""


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_body_chunks = None if _c_encoder is None else _c_encoder(None, _no_default, _string, None, ":", ",", True, False, True)
"""The C encoder :func:`json.dumps` would build for these options, built once instead of per
call (building it is most of the cost of encoding a short body). Without the circular check:
a body comes from a decoded frame, which cannot refer to itself (one that did would fail on
recursion instead)."""


def _encode_body(body: Any) -> str:
    if _body_chunks is None:
        return _encode(body)
    return "".join(_body_chunks(body, 0))


def genesis(conv_id: str) -> bytes:
    """What the first message of ``conv_id`` chains from."""
    return hashlib.sha256(conv_id.encode()).digest()


def canonical_json(value: Any) -> bytes:
    """The canonical encoding of any JSON value (also what evidence packages are signed over)."""
    return _encode(value).encode()


def fields(
    conv: str, seq: int, sender: str, role: str, kind: str, body: dict[str, Any], ts: int, cmid: str | None
) -> dict[str, Any]:
    """The hashed fields of a message, by their canonical names."""
    return {"conv": conv, "seq": seq, "sender": sender, "role": role, "kind": kind, "body": body, "ts": ts,
            "cmid": cmid}


def canonical(
    conv: str, seq: int, sender: str, role: str, kind: str, body: dict[str, Any], ts: int, cmid: str | None
) -> bytes:
    return canonical_json(fields(conv, seq, sender, role, kind, body, ts, cmid))


def split(
    conv: str, sender: str, role: str, kind: str, body: dict[str, Any], ts: int, cmid: str | None
) -> tuple[bytes, bytes]:
    """The canonical bytes before and after the seq's decimal digits, for a message whose
    seq the database assigns: ``before + str(seq).encode() + after == canonical(...)``.

    Written field by field in sorted key order (``body`` < ``cmid`` < ``conv`` < ``kind`` <
    ``role`` < ``sender`` < ``seq`` < ``ts``) with the same encoder as :func:`canonical_json`,
    so the body is encoded once and no placeholder is searched for: this runs for every
    message on the writer's thread. A test holds it equal to :func:`canonical`."""
    before = "".join((
        '{"body":', _encode_body(body), ',"cmid":', "null" if cmid is None else _encode(cmid),
        ',"conv":', _encode(conv), ',"kind":', _encode(kind), ',"role":', _encode(role),
        ',"sender":', _encode(sender), ',"seq":',
    ))
    stamp = int.__repr__(ts) if type(ts) is int else _encode(ts)
    return before.encode(), b',"ts":' + stamp.encode() + b"}"


def link(prev: bytes, canonical_bytes: bytes) -> bytes:
    """One link of the chain: the hash of a message given the previous hash."""
    return hashlib.sha256(prev + canonical_bytes).digest()


def message_hash(
    prev: bytes, conv: str, seq: int, sender: str, role: str, kind: str, body: dict[str, Any], ts: int,
    cmid: str | None,
) -> bytes:
    return link(prev, canonical(conv, seq, sender, role, kind, body, ts, cmid))


def record_fields(message: Any) -> dict[str, Any]:
    """The hashed fields of a :class:`~chat.store.base.MessageRecord`."""
    return fields(message.conv, message.seq, message.sender, message.role, message.kind, message.body,
                  message.ts, message.cmid)


def first_broken(conv_id: str, messages: list[dict[str, Any]], last_seq: int | None = None) -> tuple[int, str] | None:
    """The first link that does not hold, as ``(seq, why)``, or None if the chain is whole.

    ``messages`` are dicts with the hashed fields and ``hash`` (hex), in the order given
    (they must be seq 1, 2, 3, ...). A link is checked against the previous message's
    *stored* hash, so one edited row is named alone, and a missing row is named by the
    seq that is missing. ``last_seq`` (the conversation's own count) catches rows
    deleted from the end, which no later link could reveal.
    """
    prev = genesis(conv_id)
    expected_seq = 1
    for message in messages:
        seq = message.get("seq")
        if message.get("conv") != conv_id:
            return (expected_seq, f"message {seq} belongs to conversation {message.get('conv')!r}")
        if seq != expected_seq:
            return (expected_seq, f"message {expected_seq} is missing (the next one is {seq})")
        stored = message.get("hash")
        if not isinstance(stored, str):
            return (expected_seq, f"message {seq} has no hash")
        try:
            body = message["body"]
            computed = message_hash(prev, conv_id, seq, message["sender"], message["role"], message["kind"],
                                    body, message["ts"], message.get("cmid"))
        except (KeyError, TypeError, ValueError) as exc:
            return (expected_seq, f"message {seq} cannot be encoded: {exc}")
        if computed.hex() != stored.lower():
            return (expected_seq, f"message {seq}'s hash does not match its content and the previous hash")
        prev = bytes.fromhex(stored)
        expected_seq += 1
    if last_seq is not None and last_seq >= expected_seq:
        return (expected_seq, f"message {expected_seq} is missing (the conversation has {last_seq})")
    return None
