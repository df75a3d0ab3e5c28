"""In-memory store: the reference implementation of :class:`chat.store.base.Store`.

Each method is the plainest reading of the protocol's docstrings (and, where they are
silent, of what the SQLite store does), kept in dicts and lists, so the contract suite
holds every other store to something obviously correct. For tests and single-process
experiments only: nothing survives a restart of the process. ``close`` and ``start``
keep the data, so a "reopened" instance still has it.

Every method runs to completion without awaiting, so on one event loop each call is
atomic, and checks everything that can fail before it changes anything. Callers get
copies: mutating a returned listing or body (or one passed in) never changes the store.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import chain
from .agents_memory import MemoryAgentProfiles
from .base import (
    Appended,
    BlockRecord,
    ClientIdReused,
    ConversationRecord,
    MessageRecord,
    NotFound,
    RecallRefused,
    ReportRecord,
    Role,
    Side,
    StoreError,
    newer_signed_card,
)
from .chat_events import NewEvent
from .events_memory import MemoryChatEvents
from .follows_memory import MemoryFollows
from .inbox_memory import MemoryInbox
from .search_memory import MemorySearch

WRITTEN_KINDS = ("text", "image", "product")
"""What a person writes: the only kinds that can be recalled or count as a question or answer."""

NOT_UNREAD_KINDS = ("recall", "card_update")
"""Bookkeeping messages: they change what is shown, nobody has to read them."""


def _digest(kind: str, body: dict[str, Any]) -> str:
    """What a re-sent ``cmid`` must match: keys in another order are the same body, while
    1, 1.0 and true are not (as in JSON)."""
    return json.dumps([kind, body], sort_keys=True, separators=(",", ":"), default=repr)


@dataclass(slots=True)
class _Conversation:
    id: str
    buyer: str
    shop: str
    listing_id: str
    listing: dict[str, Any]
    agent: str | None
    created_at: int
    updated_at: int
    last_seq: int = 0
    status: str = "open"
    read: dict[str, int] = field(default_factory=lambda: {"buyer": 0, "shop": 0})
    change: int = 0
    """The change clock's value at this conversation's last message."""

    def record(self) -> ConversationRecord:
        return ConversationRecord(
            id=self.id, buyer=self.buyer, shop=self.shop, listing=copy.deepcopy(self.listing), agent=self.agent,
            last_seq=self.last_seq, created_at=self.created_at, status=self.status, updated_at=self.updated_at,
        )


@dataclass(slots=True)
class _Message:
    record: MessageRecord
    """Its body is the store's own copy: hand out ``public()``, never this."""
    digest: str
    auto: bool

    def public(self) -> MessageRecord:
        return dataclasses.replace(self.record, body=copy.deepcopy(self.record.body))


@dataclass(slots=True)
class _Agent:
    last_seen: int = 0
    auto_text: str | None = None
    auto_on: bool = False


def _newest(items: list[Any], limit: int) -> list[Any]:
    """The last ``limit`` items (``items[-0:]`` would be all of them)."""
    return items[len(items) - limit :] if limit > 0 else []


class MemoryStore(MemoryFollows, MemoryInbox, MemorySearch, MemoryAgentProfiles, MemoryChatEvents):
    """Conversations, messages, agents and cursors in dicts (see :mod:`chat.store.memory`)."""

    def __init__(self) -> None:
        self._started = False
        self._conversations: dict[str, _Conversation] = {}  # in creation order
        self._by_listing: dict[tuple[str, str, str], str] = {}  # (buyer, shop, listing id) -> conversation id
        self._messages: dict[str, list[_Message]] = {}  # conversation id -> messages, seq = index + 1
        self._by_cmid: dict[tuple[str, str, str], _Message] = {}  # (conversation, sender, cmid)
        self._agents: dict[tuple[str, str], _Agent] = {}  # (shop, agent)
        self._cursors: dict[str, int] = {}
        self._reports: list[ReportRecord] = []  # id = index + 1
        self._report_keys: dict[tuple[str, str, int], ReportRecord] = {}  # (reporter, conversation, seq)
        self._blocks: dict[tuple[str, str, str], BlockRecord] = {}  # (shop, buyer, side)
        self._init_follows()
        self._init_inbox()
        self._init_agent_profiles()
        self._init_events()
        # The change clock: each message moves it by one and stamps its conversation. The
        # epoch names this instance, so a token of another store (or a restarted process)
        # cannot be mistaken for a position in this one.
        self._epoch = uuid.uuid4().hex[:12]
        self._clock = 0

    def _check_open(self) -> None:
        """Refuse work while closed, as a real store does, so lifecycle bugs show in tests."""
        if not self._started:
            raise ConnectionError("the store is closed")

    def _conversation(self, conv_id: str) -> _Conversation:
        conv = self._conversations.get(conv_id)
        if conv is None:
            raise NotFound(conv_id)
        return conv

    def _owned(self, buyer: str | None, shop: str | None) -> list[_Conversation]:
        """The buyer's conversations, or else the shop's (none when neither is given)."""
        if buyer is not None:
            return [c for c in self._conversations.values() if c.buyer == buyer]
        return [c for c in self._conversations.values() if c.shop == shop]

    # --- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        self._started = True

    async def close(self) -> None:
        self._started = False

    async def ping(self) -> bool:
        return self._started

    # --- writes -------------------------------------------------------------

    async def open_conversation(
        self, conv_id: str, buyer: str, shop: str, listing: dict[str, Any], agent: str | None, now: int,
        events: Sequence[NewEvent] = (),
    ) -> tuple[ConversationRecord, MessageRecord | None]:
        self._check_open()
        existing = self._by_listing.get((buyer, shop, listing["id"]))
        if existing is not None:
            conv = self._conversations[existing]
            if newer_signed_card(listing, conv.listing):
                # A card the marketplace signed replaces what a browser sent earlier.
                conv.listing = copy.deepcopy(listing)
            return conv.record(), None
        if conv_id in self._conversations:
            raise StoreError(f"conversation id {conv_id} is already taken")
        self._conversations[conv_id] = _Conversation(
            id=conv_id, buyer=buyer, shop=shop, listing_id=listing["id"], listing=copy.deepcopy(listing),
            agent=agent, created_at=now, updated_at=now,
        )
        self._by_listing[(buyer, shop, listing["id"])] = conv_id
        self._messages[conv_id] = []
        card = self._append(conv_id, buyer, "buyer", "product", {"listing": listing}, None, now).message
        self._emit(conv_id, 0, events, now)
        return self._conversations[conv_id].record(), card

    async def append(
        self, conv_id: str, sender: str, role: Role, kind: str, body: dict[str, Any], cmid: str | None, now: int,
        events: Sequence[NewEvent] = (),
    ) -> Appended:
        self._check_open()
        done = self._append(conv_id, sender, role, kind, body, cmid, now)
        if not done.duplicate:
            self._emit(conv_id, done.message.seq, events, now)
        return done

    def _append(
        self, conv_id: str, sender: str, role: Role, kind: str, body: dict[str, Any], cmid: str | None, now: int
    ) -> Appended:
        digest = _digest(kind, body)
        if cmid is not None:
            stored = self._by_cmid.get((conv_id, sender, cmid))
            if stored is not None:
                if stored.digest != digest:
                    raise ClientIdReused(cmid)
                return Appended(stored.public(), True, self._conversations[conv_id].agent)
        conv = self._conversation(conv_id)
        history = self._messages[conv_id]
        prev = bytes.fromhex(history[-1].record.hash or "") if history else chain.genesis(conv_id)
        link = chain.message_hash(prev, conv_id, conv.last_seq + 1, sender, role, kind, body, now, cmid).hex()
        self._clock += 1
        conv.change = self._clock
        conv.last_seq += 1
        conv.updated_at = max(conv.updated_at, now)
        message = _Message(
            MessageRecord(conv_id, conv.last_seq, sender, role, kind, copy.deepcopy(body), now, cmid, hash=link),
            digest,
            auto=bool(body.get("auto")),
        )
        self._messages[conv_id].append(message)
        if cmid is not None:
            self._by_cmid[(conv_id, sender, cmid)] = message
        return Appended(message.public(), False, conv.agent)

    async def recall(self, conv_id: str, seq: int, by: str, now: int, window_ms: int) -> Appended:
        self._check_open()
        messages = self._messages.get(conv_id, [])
        if not 1 <= seq <= len(messages):
            raise NotFound(f"{conv_id}#{seq}")
        original = messages[seq - 1]
        if original.record.sender != by:
            raise RecallRefused("sender")
        # Only what a client posted itself (it has a cmid): not the opening card, cards or notes.
        if original.record.kind not in WRITTEN_KINDS or original.record.cmid is None or original.record.recalled:
            raise RecallRefused("kind")
        if now - original.record.ts > window_ms:
            raise RecallRefused("window")
        original.record = dataclasses.replace(original.record, recalled=True)
        # "~" cannot appear in a client's cmid, so this id never collides with one.
        return self._append(conv_id, by, original.record.role, "recall", {"seq": seq}, f"~recall:{seq}", now)

    async def set_read(self, conv_id: str, side: Side, seq: int) -> int:
        self._check_open()
        conv = self._conversation(conv_id)
        conv.read[side] = max(conv.read[side], min(seq, conv.last_seq))
        return conv.read[side]

    async def assign(self, conv_id: str, agent: str) -> ConversationRecord:
        self._check_open()
        conv = self._conversation(conv_id)
        conv.agent = agent
        return conv.record()

    async def register_agent(self, shop: str, agent: str, now: int) -> None:
        self._check_open()
        self._agents.setdefault((shop, agent), _Agent()).last_seen = now

    async def set_cursor(self, name: str, value: int) -> None:
        self._check_open()
        self._cursors[name] = max(self._cursors.get(name, 0), value)

    async def set_auto_reply(self, shop: str, agent: str, active: bool, text: str | None) -> str | None:
        self._check_open()
        state = self._agents.setdefault((shop, agent), _Agent())
        state.auto_on = active
        if text is not None:
            state.auto_text = text
        return state.auto_text

    # --- reads --------------------------------------------------------------

    async def get_conversation(self, conv_id: str) -> ConversationRecord | None:
        self._check_open()
        conv = self._conversations.get(conv_id)
        return None if conv is None else conv.record()

    async def find_conversation(self, buyer: str, shop: str, listing_id: str) -> ConversationRecord | None:
        self._check_open()
        conv_id = self._by_listing.get((buyer, shop, listing_id))
        return None if conv_id is None else self._conversations[conv_id].record()

    async def conversations_of_buyer(self, buyer: str) -> list[ConversationRecord]:
        self._check_open()
        return [c.record() for c in sorted(self._owned(buyer, None), key=lambda c: c.created_at)]

    async def conversations_of_shop(self, shop: str) -> list[ConversationRecord]:
        self._check_open()
        return [c.record() for c in sorted(self._owned(None, shop), key=lambda c: c.created_at)]

    async def conversations(self, conv_ids: list[str]) -> list[ConversationRecord]:
        self._check_open()
        return [self._conversations[i].record() for i in conv_ids if i in self._conversations]

    async def recent_conversations(
        self, *, buyer: str | None = None, shop: str | None = None, before: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> list[ConversationRecord]:
        """``before`` with an empty id (no conversation has one) means "at or before that time":
        a client that only knows the time of its last conversation skips nothing."""
        self._check_open()
        rows = self._owned(buyer, shop)
        if before is not None:
            at, after_id = before
            rows = [c for c in rows if c.updated_at < at or (c.updated_at == at and (not after_id or c.id < after_id))]
        rows.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
        return [c.record() for c in rows[: max(limit, 0)]]

    async def messages(
        self, conv_id: str, *, after: int = 0, before: int | None = None, limit: int = 50
    ) -> list[MessageRecord]:
        self._check_open()
        rows = [
            m for m in self._messages.get(conv_id, [])
            if m.record.seq > after and (before is None or m.record.seq < before)
        ]
        rows = _newest(rows, limit) if before is not None else rows[: max(limit, 0)]
        return [m.public() for m in rows]

    async def last_messages(self, conv_ids: list[str]) -> dict[str, MessageRecord]:
        self._check_open()
        return {i: self._messages[i][-1].public() for i in conv_ids if self._messages.get(i)}

    async def read_marks(self, conv_ids: list[str]) -> dict[str, dict[str, int]]:
        self._check_open()
        return {i: dict(self._conversations[i].read) for i in conv_ids if i in self._conversations}

    async def unread_counts(self, conv_ids: list[str], side: Side) -> dict[str, int]:
        """Counted: what the other side, an arbiter or the system posted after the mark, less
        recalled messages and bookkeeping (recall notices, card updates). An unknown
        conversation has nothing unread."""
        self._check_open()
        own_role = "buyer" if side == "buyer" else "agent"
        out: dict[str, int] = {}
        for conv_id in conv_ids:
            conv = self._conversations.get(conv_id)
            mark = 0 if conv is None else conv.read[side]
            out[conv_id] = sum(
                1 for m in self._messages.get(conv_id, [])
                if m.record.seq > mark and m.record.role != own_role
                and m.record.kind not in NOT_UNREAD_KINDS and not m.record.recalled
            )
        return out

    async def add_report(
        self, conv_id: str, seq: int, reporter: str, side: Side, buyer: str, shop: str, reason: str, now: int,
        events: Sequence[NewEvent] = (),
    ) -> tuple[ReportRecord, bool]:
        self._check_open()
        found = self._report_keys.get((reporter, conv_id, seq))
        if found is not None:
            return found, False
        report = ReportRecord(len(self._reports) + 1, conv_id, seq, reporter, side, buyer, shop, reason, now)
        self._reports.append(report)
        self._report_keys[(reporter, conv_id, seq)] = report
        self._emit(conv_id, seq, events, now)
        return report, True

    async def is_reported(self, conv_id: str) -> bool:
        self._check_open()
        return any(r.conv == conv_id for r in self._reports)

    async def reports(self, *, after: int = 0, limit: int = 100) -> list[ReportRecord]:
        self._check_open()
        return self._reports[max(0, after):][:limit]

    async def set_block(
        self, shop: str, buyer: str, side: Side, by: str, reason: str | None, now: int
    ) -> tuple[BlockRecord, bool]:
        self._check_open()
        found = self._blocks.get((shop, buyer, side))
        if found is not None:
            return found, False
        block = self._blocks[(shop, buyer, side)] = BlockRecord(shop, buyer, side, by, reason, now)
        return block, True

    async def remove_block(self, shop: str, buyer: str, side: Side) -> bool:
        self._check_open()
        return self._blocks.pop((shop, buyer, side), None) is not None

    async def blocks_between(self, shop: str, buyer: str) -> list[BlockRecord]:
        self._check_open()
        return [b for side in ("buyer", "shop") if (b := self._blocks.get((shop, buyer, side))) is not None]

    async def blocks_of_shop(self, shop: str) -> list[BlockRecord]:
        self._check_open()
        return sorted((b for b in self._blocks.values() if b.shop == shop),
                      key=lambda b: (b.created_at, b.buyer, b.side))

    async def message_by_cmid(self, conv_id: str, sender: str, cmid: str) -> MessageRecord | None:
        self._check_open()
        stored = self._by_cmid.get((conv_id, sender, cmid))
        return None if stored is None else stored.public()

    async def get_cursor(self, name: str) -> int:
        self._check_open()
        return self._cursors.get(name, 0)

    async def first_responses(self, shop: str, since: int) -> list[int | None]:
        """A question is a buyer's own message (it has a cmid, so not the opening card); the
        answer is an agent's written message at or after it, not an auto-reply. Listed by
        conversation id."""
        self._check_open()
        out: list[int | None] = []
        for conv in sorted(self._owned(None, shop), key=lambda c: c.id):
            written = [m for m in self._messages[conv.id] if m.record.kind in WRITTEN_KINDS]
            asked = [m.record.ts for m in written if m.record.role == "buyer" and m.record.cmid is not None
                     and m.record.ts >= since]
            if not asked:
                continue
            at = min(asked)
            answers = [m.record.ts for m in written if m.record.role == "agent" and not m.auto and m.record.ts >= at]
            out.append(min(answers) - at if answers else None)
        return out

    async def auto_reply(self, shop: str, agent: str) -> str | None:
        self._check_open()
        state = self._agents.get((shop, agent))
        return state.auto_text if state is not None and state.auto_on else None

    async def agent_loads(self, shop: str) -> dict[str, int]:
        """Known agents are those registered or with an auto-reply, and any agent a conversation
        is assigned to."""
        self._check_open()
        loads = {agent: 0 for (s, agent) in sorted(self._agents) if s == shop}
        for conv in self._owned(None, shop):
            if conv.status == "open" and conv.agent is not None:
                loads[conv.agent] = loads.get(conv.agent, 0) + 1
        return loads

    async def change_token(self) -> str:
        self._check_open()
        return f"{self._epoch}.{self._clock}"

    async def changed_since(
        self, token: str, *, buyer: str | None = None, shop: str | None = None, limit: int = 10_000
    ) -> list[ConversationRecord] | None:
        """Exactly the conversations stamped after the token (never "a few more")."""
        self._check_open()
        epoch, _, mark = token.partition(".")
        # ASCII only: "²".isdigit() is true but int() refuses it.
        if epoch != self._epoch or not (mark.isascii() and mark.isdigit()) or int(mark) > self._clock:
            return None
        changed = [c.record() for c in self._owned(buyer, shop) if c.change > int(mark)]
        return None if len(changed) > limit else changed
