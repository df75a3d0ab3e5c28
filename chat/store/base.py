"""The durable store of conversations and messages, as small interfaces.

:class:`Store` is the sum of what it holds: the message log (:class:`MessageLog`), the
directory of conversations and agents (:class:`Directory`), named cursors
(:class:`Cursors`), reports and blocks (:class:`Safety`), follows and broadcasts
(:class:`Follows`), the shop's notes on buyers and closed conversations (:class:`Inbox`),
search (:class:`Search`) and its lifecycle.
Implementations: ``memory`` (the reference), ``sqlite`` (the embedded default) and
``postgres``.

Guarantees every implementation keeps (checked by ``tests/chat/test_store_contract.py``):

* A method that returns has committed: an acknowledged message survives a
  crash of the process (kill -9) once ``append`` has returned.
* Sequence numbers are per conversation, start at 1 and have no gaps.
* ``(conversation, sender, cmid)`` is unique: appending it again returns the
  stored message with ``duplicate=True`` and writes nothing.
* Messages are never deleted; a recall marks the original and appends a
  ``recall`` message, so the history stays complete evidence.
* Every message carries ``hash``, its link in the conversation's hash chain
  (:mod:`chat.store.chain`), computed in the transaction that stores it from the
  previous message's hash: ``chain.first_broken`` finds nothing in any conversation however many
  nodes append to it at once. ``recalled`` is not hashed, so a recall keeps it valid.
* A report is stored once per ``(reporter, conversation, seq)``; report ids grow in
  commit order. A block is one row per ``(shop, buyer, side)``; lifting it removes only
  that side's.
* Every committed message moves its conversation past the store's change
  token: a conversation written after ``change_token`` returned is listed by
  ``changed_since`` with that token. Resuming devices rely on this (not on any
  cache or queue) to learn which conversations moved while they were away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .chat_events import ChatEvents, NewEvent
from .records import AgentProfileRecord as AgentProfileRecord
from .records import BroadcastRecord as BroadcastRecord
from .records import BuyerProfileRecord as BuyerProfileRecord
from .records import ClosedRecord as ClosedRecord
from .records import FollowRecord as FollowRecord

Side = Literal["buyer", "shop"]
Role = Literal["buyer", "agent", "arbiter", "system"]


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: str
    buyer: str
    shop: str
    listing: dict[str, Any]
    agent: str | None
    last_seq: int
    created_at: int
    status: str = "open"
    updated_at: int = 0
    """Time of the last message (epoch ms): the inbox sorts by it."""


@dataclass(frozen=True, slots=True)
class MessageRecord:
    conv: str
    seq: int
    sender: str
    role: Role
    kind: str
    body: dict[str, Any]
    ts: int
    cmid: str | None
    recalled: bool = False
    hash: str | None = None
    """The message's link in its conversation's hash chain (hex; see :mod:`chat.store.chain`);
    None only for a row written by a release from before the chain."""


@dataclass(frozen=True, slots=True)
class Appended:
    """What ``append`` committed, with the conversation's agent at that moment
    (so fan-out follows hand-overs made on other nodes)."""

    message: MessageRecord
    duplicate: bool
    agent: str | None


@dataclass(frozen=True, slots=True)
class ReportRecord:
    """A party's report of a message (``seq``) or of a whole conversation (``seq`` 0)."""

    id: int
    """Increasing in the order reports were committed: the server API pages by it."""
    conv: str
    seq: int
    reporter: str
    side: Side
    """The reporter's side of the conversation."""
    buyer: str
    shop: str
    reason: str
    created_at: int


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """One side's block between a buyer and a shop: ``side`` ``buyer`` means the buyer
    blocked the shop, ``shop`` that an agent (``by``) blocked the buyer for the shop."""

    shop: str
    buyer: str
    side: Side
    by: str
    reason: str | None
    created_at: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A conversation a search matched, and where: ``fields`` among ``buyer``, ``listing``
    and ``text``; for text, the matching messages' seqs (newest first, at most a few) and a
    snippet of the newest one."""

    conversation: ConversationRecord
    fields: tuple[str, ...]
    seqs: tuple[int, ...] = ()
    snippet: str | None = None


class StoreError(Exception):
    """Base of store failures that are the caller's fault."""


class ClientIdReused(StoreError):
    """The same ``cmid`` was sent before with a different body."""


class NotFound(StoreError):
    pass


class BroadcastTooSoon(StoreError):
    """The shop has used its broadcasts for the window; the next one may go in ``retry_after_ms``."""

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"retry after {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class RecallRefused(StoreError):
    def __init__(self, reason: Literal["window", "sender", "kind"]) -> None:
        super().__init__(reason)
        self.reason = reason


def side_of(role: str) -> Side | None:
    """Which side of a conversation a role writes for (arbiters and system: neither)."""
    if role == "buyer":
        return "buyer"
    if role == "agent":
        return "shop"
    return None


def newer_signed_card(offered: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether ``offered`` replaces the ``stored`` snapshot of a listing: only a card the
    marketplace signed, and only one signed later than a signed card already stored (so an
    older, still valid token cannot roll a price back)."""
    if not offered.get("verified") or offered == stored:
        return False
    if not stored.get("verified"):
        return True
    return int(offered.get("signed_at") or 0) > int(stored.get("signed_at") or 0)


class Lifecycle(Protocol):
    """Opening and closing the store, and whether it answers (``/readyz``)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...


class MessageLog(Protocol):
    """The messages: appended under gapless per-conversation seqs, idempotent by cmid, never
    deleted, hash-chained; read by range; recall, read marks and the response figures
    (queries over the log)."""

    async def append(
        self,
        conv_id: str,
        sender: str,
        role: Role,
        kind: str,
        body: dict[str, Any],
        cmid: str | None,
        now: int,
        events: Sequence[NewEvent] = (),
    ) -> Appended:
        """Store a message under the next seq (or find the one ``cmid`` already stored);
        ``events`` go to the outbox (:mod:`chat.store.chat_events`) with a new message only."""

    async def messages(
        self, conv_id: str, *, after: int = 0, before: int | None = None, limit: int = 50
    ) -> list[MessageRecord]:
        """Oldest first. With ``before``, the newest ``limit`` messages below it."""

    async def last_messages(self, conv_ids: list[str]) -> dict[str, MessageRecord]: ...

    async def message_by_cmid(self, conv_id: str, sender: str, cmid: str) -> MessageRecord | None: ...

    async def recall(self, conv_id: str, seq: int, by: str, now: int, window_ms: int) -> Appended:
        """Mark ``seq`` recalled and append the ``recall`` message announcing it."""

    async def set_read(self, conv_id: str, side: Side, seq: int) -> int:
        """Move a side's read mark forward (never back); returns the mark now."""

    async def read_marks(self, conv_ids: list[str]) -> dict[str, dict[str, int]]: ...

    async def unread_counts(self, conv_ids: list[str], side: Side) -> dict[str, int]:
        """Messages the other side (or the system, or an arbiter) posted after ``side``'s read
        mark; recalled messages, ``recall`` notices and ``card_update`` messages never count."""

    async def first_responses(self, shop: str, since: int) -> list[int | None]:
        """Per conversation of the shop where the buyer wrote at or after ``since``: ms from
        the buyer's first message in the window to the first agent reply after it that is
        not an auto-reply, or None if none came."""

    async def change_token(self) -> str:
        """An opaque position in the store's history of changes, taken now."""

    async def changed_since(
        self, token: str, *, buyer: str | None = None, shop: str | None = None, limit: int = 10_000
    ) -> list[ConversationRecord] | None:
        """The buyer's (or the shop's) conversations that got a message after ``token`` was
        taken, in no particular order; it may list a few more. ``None`` when the token cannot
        be used (another store's, garbage) or more than ``limit`` changed: read them all."""


class Directory(Protocol):
    """Who talks to whom: conversations (one per buyer, shop and listing) with their product
    card and assigned agent, the shops' agents and their away replies."""

    async def open_conversation(
        self,
        conv_id: str,
        buyer: str,
        shop: str,
        listing: dict[str, Any],
        agent: str | None,
        now: int,
        events: Sequence[NewEvent] = (),
    ) -> tuple[ConversationRecord, MessageRecord | None]:
        """Create the (buyer, shop, listing) conversation with its product card, or return
        the existing one (and ``None`` for the card). ``conv_id`` is used only on creation.
        A ``verified`` listing (signed by the marketplace) replaces the stored snapshot of an
        existing conversation if :func:`newer_signed_card` says so; an unverified one never
        does. The check and the replacement are one atomic step. ``events`` are written on
        creation only."""

    async def get_conversation(self, conv_id: str) -> ConversationRecord | None: ...

    async def find_conversation(self, buyer: str, shop: str, listing_id: str) -> ConversationRecord | None:
        """The (buyer, shop, listing) conversation, if it exists."""

    async def conversations_of_buyer(self, buyer: str) -> list[ConversationRecord]: ...

    async def conversations_of_shop(self, shop: str) -> list[ConversationRecord]: ...

    async def conversations(self, conv_ids: list[str]) -> list[ConversationRecord]: ...

    async def recent_conversations(
        self, *, buyer: str | None = None, shop: str | None = None, before: tuple[int, str] | None = None,
        limit: int = 50,
    ) -> list[ConversationRecord]:
        """A buyer's or a shop's conversations, most recently active first, strictly after
        the ``(updated_at, id)`` position ``before`` (keyset paging; an empty id means "at or
        before that time")."""

    async def assign(self, conv_id: str, agent: str) -> ConversationRecord: ...

    async def register_agent(self, shop: str, agent: str, now: int) -> None: ...

    async def set_agent_profile(self, shop: str, agent: str, name: str | None, avatar: str | None) -> None:
        """Record a connecting agent's name and avatar (None clears one): the latest token wins."""

    async def agent_profiles(self, shop: str) -> dict[str, AgentProfileRecord]:
        """The shop's agents that have a display name or an avatar, by agent id."""

    async def set_auto_reply(self, shop: str, agent: str, active: bool, text: str | None) -> str | None:
        """Switch an agent's away reply on or off (``text`` None keeps the stored text);
        returns the text now stored."""

    async def auto_reply(self, shop: str, agent: str) -> str | None:
        """The agent's away reply if it is switched on, else None."""

    async def agent_loads(self, shop: str) -> dict[str, int]:
        """Open conversations per known agent of a shop (zero for idle agents)."""


class Cursors(Protocol):
    """Named durable positions (how far a relay got in another log)."""

    async def get_cursor(self, name: str) -> int:
        """A named, durable position (0 if never set), e.g. how far payment events were posted."""

    async def set_cursor(self, name: str, value: int) -> None:
        """Move a named cursor forward (never back)."""


class Safety(Protocol):
    """Reports of messages and conversations, and blocks between a buyer and a shop."""

    async def add_report(
        self, conv_id: str, seq: int, reporter: str, side: Side, buyer: str, shop: str, reason: str, now: int,
        events: Sequence[NewEvent] = (),
    ) -> tuple[ReportRecord, bool]:
        """Store a report (``seq`` 0: the conversation), or return the one ``(reporter,
        conv_id, seq)`` already made (the first reason stays) with ``False``. Report ids
        increase in commit order, so paging with ``reports(after=...)`` misses none."""

    async def is_reported(self, conv_id: str) -> bool:
        """Whether a party reported the conversation or one of its messages (an indexed read)."""

    async def reports(self, *, after: int = 0, limit: int = 100) -> list[ReportRecord]:
        """Reports with an id above ``after``, lowest id first."""

    async def set_block(
        self, shop: str, buyer: str, side: Side, by: str, reason: str | None, now: int
    ) -> tuple[BlockRecord, bool]:
        """Record ``side``'s block between ``buyer`` and ``shop``, or return the one already
        there (unchanged) with ``False``."""

    async def remove_block(self, shop: str, buyer: str, side: Side) -> bool:
        """Lift ``side``'s block (only that side's); whether there was one."""

    async def blocks_between(self, shop: str, buyer: str) -> list[BlockRecord]:
        """Both sides' blocks between them (none, one or two), buyer's first."""

    async def blocks_of_shop(self, shop: str) -> list[BlockRecord]:
        """Every block the shop is in, either side's, oldest first."""


class Follows(Protocol):
    """Buyers following shops, and the shops' broadcasts to them (jobs with a cursor).

    A follow is one row per ``(shop, buyer)``. Followers are listed in code point order of
    the buyer id, which is also the order a broadcast's fan-out walks them in, so its
    ``cursor`` (the last buyer done) is a resumable position. A broadcast is stored once per
    ``(shop, key)``; at most ``limit`` new ones per shop are accepted in any ``window_ms``
    (checked and recorded in one atomic step, so nodes racing cannot exceed it). A job is
    worked by one runner at a time: ``claim_broadcast`` leases it (``owner``, until a time),
    ``advance_broadcast`` moves it forward only for the lease holder."""

    async def follow(self, shop: str, buyer: str, conv: str | None, now: int) -> tuple[FollowRecord, bool]:
        """Follow (``True``), or return the follow already there, unchanged (``False``)."""

    async def unfollow(self, shop: str, buyer: str) -> bool:
        """Stop following; whether there was a follow."""

    async def get_follow(self, shop: str, buyer: str) -> FollowRecord | None: ...

    async def follower_count(self, shop: str) -> int: ...

    async def followers(
        self, shop: str, *, after: str = "", limit: int = 100, since_before: int | None = None
    ) -> list[FollowRecord]:
        """The shop's followers with a buyer id above ``after`` (code point order), at most
        ``limit``, with ``blocked`` set where either side blocks the other. ``since_before``:
        only those who followed at or before that time (a broadcast reaches the followers it
        was sent to, not later ones)."""

    async def add_broadcast(
        self, shop: str, key: str, by: str, body: dict[str, Any], total: int, now: int, *, limit: int,
        window_ms: int,
    ) -> tuple[BroadcastRecord, bool]:
        """Record a broadcast job (``True``), or return the one ``(shop, key)`` already made
        (``False``, whatever the limit says). Raises :class:`BroadcastTooSoon` when the shop
        recorded ``limit`` broadcasts in the last ``window_ms`` (``limit`` 0: no limit)."""

    async def get_broadcast(self, broadcast_id: int) -> BroadcastRecord | None: ...

    async def broadcasts_of_shop(self, shop: str, *, limit: int = 20) -> list[BroadcastRecord]:
        """The shop's broadcasts, newest first."""

    async def claim_broadcast(self, owner: str, now: int, lease_ms: int) -> BroadcastRecord | None:
        """Lease the oldest unfinished broadcast whose lease has run out (or is ``owner``'s
        own, e.g. a restarted node of the same name) until ``now + lease_ms``; None if none."""

    async def advance_broadcast(
        self, broadcast_id: int, owner: str, cursor: str, delivered: int, skipped: int, done: bool, now: int,
        lease_ms: int,
    ) -> bool:
        """Store the job's progress (``cursor`` and the totals so far; ``done`` finishes it)
        and renew the lease; False, changing nothing, when ``owner`` no longer holds it.
        The cursor never moves back."""


class Inbox(Protocol):
    """The shop's own bookkeeping, never shown to buyers: notes and tags per buyer (one profile
    per ``(shop, buyer)``, saved only over the version the editor read, so two agents editing at
    once cannot overwrite each other unknowingly), and closed conversations. A conversation is
    closed while its close stands and no buyer message came after it (seq above the close's):
    the buyer writing reopens it by itself, with nothing to write on the send path."""

    async def buyer_profile(self, shop: str, buyer: str) -> BuyerProfileRecord | None: ...

    async def save_buyer_profile(
        self, shop: str, buyer: str, note: str, tags: tuple[str, ...], by: str, now: int, *, expected_version: int
    ) -> tuple[BuyerProfileRecord | None, bool]:
        """Replace the profile if its version is still ``expected_version`` (0: none saved yet):
        the new one (version + 1) with ``True``. Otherwise nothing is written: the current
        profile (None if there is none) with ``False``. Check and write are one atomic step."""

    async def close_conversation(self, conv_id: str, by: str, now: int) -> ClosedRecord:
        """Close the conversation at its last seq now (closing again moves the close to now);
        :class:`NotFound` if there is no such conversation."""

    async def reopen_conversation(self, conv_id: str) -> ClosedRecord | None:
        """Lift the close; the close it lifted if the conversation was still closed, else None."""

    async def closed_conversations(self, conv_ids: list[str]) -> dict[str, ClosedRecord]:
        """Those of ``conv_ids`` that are closed now (closed, and no buyer message since)."""


class Search(Protocol):
    """Finding conversations by buyer, listing or message text (:mod:`chat.store.search` says
    what matches; each store finds the candidates its own way, bounded)."""

    async def search_conversations(
        self, query: str, *, shop: str | None = None, buyer: str | None = None,
        before: tuple[int, str] | None = None, limit: int = 20,
    ) -> list[SearchHit]:
        """The shop's (or the buyer's) conversations the query matches, most recently active
        first, strictly after the ``(updated_at, id)`` position ``before`` (as
        ``recent_conversations``). Recalled messages never match by their text; only the
        newest :data:`chat.store.search.TEXT_ROWS` candidate messages are looked at."""


class Store(Lifecycle, MessageLog, Directory, Cursors, Safety, Follows, Inbox, Search, ChatEvents, Protocol):
    """Everything a hub node keeps durably. The parts are separate so that code (and a
    future implementation) can depend on only what it uses, e.g. a relay on
    :class:`Cursors` and a read path on :class:`MessageLog`; one contract suite checks all."""
