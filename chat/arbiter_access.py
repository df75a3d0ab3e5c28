"""Which conversations an arbiter may read (history, pictures, evidence; never write).

One whose order is or was disputed (``hub.disputed``, asked of the ledger), or one a party
reported: a report invites the platform to look. Parties' access is not decided here.

Reported conversations are kept per node as a set of ids, filled by paging through the
store's reports from the last id seen (report ids grow in commit order, so a page from the
cursor misses none). A conversation not in the set costs one store read to catch up, so a
report made on another node a moment ago is found; one in the set costs nothing. The set
holds one id per reported conversation ever, which a marketplace's report volume keeps small
next to its messages; an indexed "is this conversation reported" query in the store would
make it unnecessary.
"""

from __future__ import annotations

import asyncio

from .hub import Hub

PAGE = 1000
_CACHE = "arbiter_access"


class ReportedConversations:
    """The ids of every conversation with at least one report, caught up on demand."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.cursor = 0
        self._lock = asyncio.Lock()

    async def contains(self, hub: Hub, conv_id: str) -> bool:
        if conv_id in self.ids:
            return True
        async with self._lock:
            while True:
                page = await hub.store.reports(after=self.cursor, limit=PAGE)
                self.ids.update(r.conv for r in page)
                if page:
                    self.cursor = page[-1].id
                if len(page) < PAGE:
                    break
        return conv_id in self.ids


def reported_conversations(hub: Hub) -> ReportedConversations:
    found = hub.caches.get(_CACHE)
    if not isinstance(found, ReportedConversations):
        found = ReportedConversations()
        hub.caches[_CACHE] = found
    return found


async def arbiter_may_read(hub: Hub, conv_id: str) -> bool:
    """Whether an arbiter may read this (existing) conversation: reported, or disputed."""
    if await reported_conversations(hub).contains(hub, conv_id):
        return True
    disputed = hub.disputed
    return disputed is not None and await disputed(conv_id)
