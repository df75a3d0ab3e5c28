"""Which conversations an arbiter may read (history, pictures, evidence; never write).

One whose order is or was disputed (``hub.disputed``, asked of the ledger), or one a party
reported: a report invites the platform to look. Parties' access is not decided here.
Both are reads of the stores' own indexes, so a report or a dispute made on another node
counts at once, and nothing grows in memory.
"""

from __future__ import annotations

from .hub import Hub


async def arbiter_may_read(hub: Hub, conv_id: str) -> bool:
    """Whether an arbiter may read this (existing) conversation: reported, or disputed."""
    if await hub.store.is_reported(conv_id):
        return True
    disputed = hub.disputed
    return disputed is not None and await disputed(conv_id)
