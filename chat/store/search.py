"""Conversation search shared by every store: what a query matches and how hits are paged.

A store finds candidate text messages its own way (an index, a scan); this module decides
what counts as a match, so all stores answer alike. A query matches a conversation by its
buyer id, its listing (id or title) or the text of its messages; letters are compared
without case. Recalled messages are never matched by their text.
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import ConversationRecord, SearchHit

SEQS_PER_HIT = 5
"""Matching messages named per conversation, newest first (the client opens at the first)."""
SNIPPET = 60
"""Characters of text around a match in a hit's snippet."""
TEXT_ROWS = 2000
"""Candidate text messages a store reads per query, newest first: a bounded scan, so one
common word in a large shop cannot make a query read its whole history."""


def scope(query: str, shop: str | None, buyer: str | None) -> tuple[str, str, str] | None:
    """(the stripped query, ``"shop"`` or ``"buyer"``, whose conversations) for a search, or
    None when there is nothing to search: an empty query, or not exactly one of shop and buyer."""
    query = query.strip()
    if not query or (shop is None) == (buyer is None):
        return None
    return (query, "shop", shop) if shop is not None else (query, "buyer", buyer or "")


def fold(text: str) -> str:
    return text.casefold()


def matches(text: str, query: str) -> bool:
    return fold(query) in fold(text)


def snippet(text: str, query: str) -> str:
    """The text around the first match, with an ellipsis where it was cut."""
    at = fold(text).find(fold(query))
    if at < 0 or len(text) <= SNIPPET:
        return text[:SNIPPET]
    start = max(0, min(at - SNIPPET // 3, len(text) - SNIPPET))
    cut = text[start:start + SNIPPET]
    return ("…" if start else "") + cut + ("…" if start + SNIPPET < len(text) else "")


def fields_matched(record: ConversationRecord, query: str) -> list[str]:
    """Which of the conversation's own fields the query matches: ``buyer``, ``listing``."""
    found = []
    if matches(record.buyer, query):
        found.append("buyer")
    listing = record.listing
    if matches(str(listing.get("id", "")), query) or matches(str(listing.get("title", "")), query):
        found.append("listing")
    return found


def _below(record: ConversationRecord, before: tuple[int, str] | None) -> bool:
    """Whether the record comes after ``before`` in most-recent-first order (an empty id:
    at or before that time), as ``recent_conversations`` pages."""
    if before is None:
        return True
    if before[1] == "":
        return record.updated_at <= before[0]
    return (record.updated_at, record.id) < before


def collect(
    records: Iterable[ConversationRecord],
    texts: Iterable[tuple[str, int, str]],
    query: str,
    *,
    before: tuple[int, str] | None,
    limit: int,
) -> list[SearchHit]:
    """The hits among ``records`` (the asker's conversations), given candidate ``texts``
    ``(conv, seq, text)`` of unrecalled text messages (checked again here: a store's
    prefilter may be wider), most recently active first, after the ``(updated_at, id)``
    position ``before``; at most ``limit``."""
    by_conv: dict[str, list[tuple[int, str]]] = {}
    for conv, seq, text in texts:
        if matches(text, query):
            by_conv.setdefault(conv, []).append((seq, text))
    hits: list[SearchHit] = []
    for record in records:
        if not _below(record, before):
            continue
        fields = fields_matched(record, query)
        found = sorted(by_conv.get(record.id, ()), reverse=True)
        if found:
            fields.append("text")
        if not fields:
            continue
        seqs = tuple(seq for seq, _ in found[:SEQS_PER_HIT])
        hits.append(SearchHit(record, tuple(fields), seqs, snippet(found[0][1], query) if found else None))
    hits.sort(key=lambda h: (h.conversation.updated_at, h.conversation.id), reverse=True)
    return hits[:limit]
