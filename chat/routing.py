"""Who a conversation is delivered to: pure decisions, no I/O.

Channels name what a node subscribes to in the broker:

* ``u:<user>``: everything for one user's devices (messages, receipts, typing);
* ``s:<shop>``: messages of the shop's unassigned conversations, for all its agents;
* ``p:<entity>``: presence changes of a user (``u:<id>``) or a shop (``s:<id>``).
"""

from __future__ import annotations

from .auth import Identity
from .backends.base import Status
from .store.base import ConversationRecord


def user_channel(user: str) -> str:
    return f"u:{user}"


def shop_channel(shop: str) -> str:
    return f"s:{shop}"


def presence_channel(entity: str) -> str:
    return f"p:{entity}"


def user_entity(user: str) -> str:
    return f"u:{user}"


def shop_entity(shop: str) -> str:
    return f"s:{shop}"


def can_access(identity: Identity, conv: ConversationRecord) -> bool:
    """Only the conversation's buyer and the shop's agents read or write it."""
    if identity.role == "buyer":
        return conv.buyer == identity.user
    if identity.role == "agent":
        return conv.shop == identity.shop
    return False


def live_channels(buyer: str, shop: str, agent: str | None, sender: str) -> list[str]:
    """Channels a new message is published on: both sides, plus the sender's other devices."""
    channels = [user_channel(buyer), user_channel(agent) if agent else shop_channel(shop)]
    if sender not in (buyer, agent) and sender != "system":
        channels.append(user_channel(sender))
    return channels


def counterpart_channels(identity: Identity, conv: ConversationRecord) -> list[str]:
    """Where an ephemeral event from ``identity`` (typing) goes."""
    if identity.role == "buyer":
        return [user_channel(conv.agent) if conv.agent else shop_channel(conv.shop)]
    return [user_channel(conv.buyer)]


def choose_agent(loads: dict[str, int], online: dict[str, Status]) -> str | None:
    """The online (not away) agent with the fewest open conversations; then away ones;
    then anyone the shop has; ties broken by id so every node picks the same one."""
    for pool in (
        [a for a, s in online.items() if s == "online"],
        [a for a, s in online.items() if s == "away"],
        list(loads),
    ):
        if pool:
            return min(pool, key=lambda a: (loads.get(a, 0), a))
    return None
