"""Evidence packages: one conversation's record, signed, for arbiters and courts.

A package is one JSON object (``format`` :data:`FORMAT`):

``conversation``
    the conversation as stored (buyer, shop, listing snapshot, ``last_seq``...);
``messages``
    every message in seq order with its hashed fields (see :mod:`chat.store.chain`),
    ``recalled`` and ``hash``: recalled originals stay, next to their ``recall`` notices;
``chain``
    the algorithm, the genesis value, the head (last hash) and its length;
``recalls``, ``images``, ``cards``
    indexes into ``messages`` for a reader: what was recalled and by which notice, the
    pictures' URLs (the chain covers them; the hub never holds the pictures' bytes),
    the payment cards with the ledger event each one shows;
``ledger``
    the ledger's own record for the conversation: its orders as they are now, every
    event (each with the full entity after the change) and the transfers the events
    name. A card's ``event`` that is not among them is reported by verification;
``signature``
    HMAC-SHA256 with ``EVIDENCE_KEY`` over the canonical JSON (:func:`chain.canonical_json`)
    of the package without ``signature``.

Why HMAC and not a public-key signature: Ed25519 would let anyone verify with the
public key alone and is the better scheme, but it needs a library this project does not
depend on, while HMAC is in the standard library. The cost is that a verifier holds the
key and could forge packages, so ``EVIDENCE_KEY`` goes only to the people who must
verify (the marketplace's arbitration desk), never to the parties; the chain inside
does not depend on the key.

What the chain proves: a row edited, deleted or reordered in the chat database after
it was stored no longer links, and :func:`verify` names the first broken link. What it
does not prove alone: someone able to rewrite the database *and* recompute every later
hash is caught only against a head hash seen earlier (a package exported before, or a
``hash`` a client received).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from .store import chain
from .store.base import MessageRecord, Store

FORMAT = "tradechat-evidence/1"
SIGNATURE = "HMAC-SHA256"
PAGE = 500


def key_id(key: bytes) -> str:
    """Names a key without revealing it, so a verifier can tell it holds the wrong one."""
    return hashlib.sha256(b"tradechat-evidence-key:" + key).hexdigest()[:16]


def sign(package: dict[str, Any], key: bytes) -> dict[str, Any]:
    """``package`` with its ``signature`` (any previous one replaced)."""
    unsigned = {k: v for k, v in package.items() if k != "signature"}
    value = hmac.new(key, chain.canonical_json(unsigned), hashlib.sha256).hexdigest()
    return {**unsigned, "signature": {"alg": SIGNATURE, "key_id": key_id(key), "value": value}}


def _message(m: MessageRecord) -> dict[str, Any]:
    return {**chain.record_fields(m), "recalled": m.recalled, "hash": m.hash}


def _ledger(service: Any, conv_id: str, cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The ledger's record of the conversation (runs in a worker thread: the ledger is
    synchronous). Events are read by conversation straight from the outbox table, which
    has no index on it: an export is rare, a scan is acceptable."""
    orders = [o.model_dump(mode="json") for o in service.orders_in_conversation(conv_id)]
    rows = service.store.read(lambda sql: sql.rows(
        "SELECT id, entity_kind, entity_id, action, state, payload, created_at FROM events"
        " WHERE conversation_id = ? ORDER BY id", (conv_id,),
    ))
    events = [{"id": r[0], "entity": r[1], "entity_id": r[2], "action": r[3], "state": r[4],
               "payload": json.loads(r[5]), "created_at": r[6]} for r in rows]
    transfer_ids = sorted({e["entity_id"] for e in events if e["entity"] == "transfer"}
                          | {c["id"] for c in cards if c.get("entity") == "transfer" and c.get("id")})
    transfers = [service.get_transfer(t).model_dump(mode="json") for t in transfer_ids]
    return {"orders": orders, "events": events, "transfers": transfers}


async def build(store: Store, conv_id: str, key: bytes, now_ms: int, service: Any = None) -> dict[str, Any] | None:
    """The signed package of ``conv_id``, or None if there is no such conversation.
    ``service`` (a :class:`payments.PaymentService`) adds the ledger's record."""
    conv = await store.get_conversation(conv_id)
    if conv is None:
        return None
    messages: list[MessageRecord] = []
    while True:
        page = await store.messages(conv_id, after=messages[-1].seq if messages else 0, limit=PAGE)
        messages.extend(page)
        if len(page) < PAGE:
            break
    listed = [_message(m) for m in messages]
    cards = [
        {"seq": m.seq, "kind": m.kind, "entity": m.body.get("entity"), "id": m.body.get("id"),
         "event": m.body.get("event"), "action": m.body.get("action"), "state": m.body.get("state")}
        for m in messages if m.kind in ("card", "card_update")
    ]
    package: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": now_ms,
        "conversation": {
            "id": conv.id, "buyer": conv.buyer, "shop": conv.shop, "listing": conv.listing, "agent": conv.agent,
            "status": conv.status, "last_seq": conv.last_seq, "created_at": conv.created_at,
            "updated_at": conv.updated_at,
        },
        "chain": {
            "algorithm": chain.ALGORITHM, "genesis": chain.genesis(conv_id).hex(),
            "head": messages[-1].hash if messages else None, "length": len(messages),
        },
        "messages": listed,
        "recalls": [{"seq": m.body.get("seq"), "notice": m.seq} for m in messages if m.kind == "recall"],
        "images": [{"seq": m.seq, "url": m.body.get("url")} for m in messages if m.kind == "image"],
        "cards": cards,
        "ledger": None if service is None else await asyncio.to_thread(_ledger, service, conv_id, cards),
    }
    return sign(package, key)


@dataclass(frozen=True, slots=True)
class Report:
    """What :func:`verify` found; ``ok`` only if every check passed."""

    broken: tuple[int, str] | None
    """The first broken link of the chain: (seq, why)."""
    signature: str
    """``valid``, ``invalid``, ``missing``, ``wrong key`` or ``not checked`` (no key given)."""
    problems: tuple[str, ...]
    """Anything else that does not hold (format, cards without their ledger event)."""

    @property
    def ok(self) -> bool:
        return self.broken is None and self.signature == "valid" and not self.problems


def verify(package: Any, key: bytes | None) -> Report:
    """Check a package offline: the chain from its genesis, the signature (with ``key``)
    and that every payment card's event is among the ledger's events."""
    if not isinstance(package, dict) or package.get("format") != FORMAT:
        return Report(None, "not checked", (f"not an evidence package of format {FORMAT}",))
    problems: list[str] = []
    found = package.get("conversation")
    conv: dict[str, Any] = found if isinstance(found, dict) else {}
    conv_id = str(conv.get("id", ""))
    messages = package.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return Report(None, "not checked", ("messages must be a list of objects",))
    last_seq = conv.get("last_seq")
    broken = chain.first_broken(conv_id, messages, last_seq if isinstance(last_seq, int) else None)
    summary = package.get("chain")
    head = summary.get("head") if isinstance(summary, dict) else None
    if broken is None and messages and head != messages[-1].get("hash"):
        problems.append("the chain's head is not the last message's hash")
    ledger = package.get("ledger")
    if isinstance(ledger, dict):
        known = {e.get("id") for e in ledger.get("events", []) if isinstance(e, dict)}
        for m in messages:
            body = m.get("body")
            if m.get("kind") in ("card", "card_update") and isinstance(body, dict) and body.get("event") not in known:
                problems.append(f"the card at seq {m.get('seq')} shows ledger event {body.get('event')},"
                                " which is not in the ledger's events")
    return Report(broken, _signature(package, key), tuple(problems))


def _signature(package: dict[str, Any], key: bytes | None) -> str:
    given = package.get("signature")
    if not isinstance(given, dict) or not isinstance(given.get("value"), str):
        return "missing"
    if key is None:
        return "not checked"
    if given.get("alg") != SIGNATURE:
        return "invalid"
    expected = sign(package, key)["signature"]
    if hmac.compare_digest(expected["value"], given["value"]):
        return "valid"
    return "wrong key" if given.get("key_id") != expected["key_id"] else "invalid"


def verify_file(path: str, key: str) -> int:
    """``python -m chat verify``: print what :func:`verify` found; 0 if all holds, 1 if
    anything does not (or the file cannot be read). An empty ``key`` checks the chain
    only and still exits 1: an unsigned result is not a verified one."""
    try:
        with open(path, encoding="utf-8") as fh:
            package = json.load(fh)
    except (OSError, ValueError, RecursionError) as exc:
        print(f"FAILED: cannot read {path}: {exc}")
        return 1
    report = verify(package, key.encode() if key else None)
    if report.ok:
        chain_info = package.get("chain", {})
        print(f"OK: conversation {package['conversation'].get('id')}, {chain_info.get('length')} messages,"
              f" head {chain_info.get('head')}, signature valid")
        return 0
    if report.broken is not None:
        seq, why = report.broken
        print(f"FAILED: broken link at seq {seq}: {why}")
    for problem in report.problems:
        print(f"FAILED: {problem}")
    if report.signature != "valid":
        hint = " (set EVIDENCE_KEY or pass --key)" if report.signature == "not checked" else ""
        print(f"FAILED: signature {report.signature}{hint}")
    return 1
