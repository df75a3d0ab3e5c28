"""The escrow (guaranteed trade) state machine for orders.

::

    OFFERED --pay--> HELD --ship--> SHIPPED --confirm / timer--> RELEASED
       |              |               |
     cancel           +--request_refund--> REFUND_REQUESTED --accept--> REFUNDED
       v                                         |
    CANCELLED                                 refuse
                                                 v
                 RELEASED <--confirm / timer-- REFUND_REFUSED --dispute--> DISPUTED
                                                                              |
                                                               arbiter decides v
                                                                           RESOLVED

The auto-confirm timer runs in SHIPPED (and again in REFUND_REFUSED after a refused
refund of a shipped order); REFUND_REQUESTED and DISPUTED pause it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final

from payments.statemachine import Machine, Role

if TYPE_CHECKING:
    from payments.models import Actor, Order


class OrderState(StrEnum):
    OFFERED = "OFFERED"
    CANCELLED = "CANCELLED"
    HELD = "HELD"
    SHIPPED = "SHIPPED"
    REFUND_REQUESTED = "REFUND_REQUESTED"
    REFUND_REFUSED = "REFUND_REFUSED"
    DISPUTED = "DISPUTED"
    RELEASED = "RELEASED"
    REFUNDED = "REFUNDED"
    RESOLVED = "RESOLVED"


class OrderAction(StrEnum):
    OFFER = "offer"
    CANCEL = "cancel"
    PAY = "pay"
    SHIP = "ship"
    EXTEND = "extend"
    CONFIRM = "confirm"
    AUTO_CONFIRM = "auto_confirm"
    REQUEST_REFUND = "request_refund"
    ACCEPT_REFUND = "accept_refund"
    REFUSE_REFUND = "refuse_refund"
    DISPUTE = "dispute"
    DECIDE = "decide"


S = OrderState
A = OrderAction
B, G, R, T = Role.BUYER, Role.AGENT, Role.ARBITER, Role.SYSTEM

ORDERS: Final = Machine[OrderState, OrderAction](
    "order",
    {
        (S.OFFERED, A.OFFER): (S.OFFERED, {G}),
        (S.OFFERED, A.CANCEL): (S.CANCELLED, {B, G}),
        (S.OFFERED, A.PAY): (S.HELD, {B}),
        (S.HELD, A.SHIP): (S.SHIPPED, {G}),
        (S.SHIPPED, A.EXTEND): (S.SHIPPED, {B}),
        (S.HELD, A.CONFIRM): (S.RELEASED, {B}),
        (S.SHIPPED, A.CONFIRM): (S.RELEASED, {B}),
        (S.REFUND_REFUSED, A.CONFIRM): (S.RELEASED, {B}),
        (S.SHIPPED, A.AUTO_CONFIRM): (S.RELEASED, {T}),
        (S.REFUND_REFUSED, A.AUTO_CONFIRM): (S.RELEASED, {T}),
        (S.HELD, A.REQUEST_REFUND): (S.REFUND_REQUESTED, {B}),
        (S.SHIPPED, A.REQUEST_REFUND): (S.REFUND_REQUESTED, {B}),
        (S.REFUND_REQUESTED, A.ACCEPT_REFUND): (S.REFUNDED, {G}),
        (S.REFUND_REQUESTED, A.REFUSE_REFUND): (S.REFUND_REFUSED, {G}),
        (S.REFUND_REFUSED, A.DISPUTE): (S.DISPUTED, {B, G}),
        (S.DISPUTED, A.DECIDE): (S.RESOLVED, {R}),
    },
    paid_action=A.PAY,
    unpaid_states=(S.OFFERED, S.CANCELLED),
)

#: States in which the order's money sits in the platform's escrow-hold account.
HOLDING_STATES: Final = frozenset(
    {S.HELD, S.SHIPPED, S.REFUND_REQUESTED, S.REFUND_REFUSED, S.DISPUTED}
)
#: States in which a running auto-confirm deadline releases the money.
TIMED_STATES: Final = frozenset({S.SHIPPED, S.REFUND_REFUSED})


def order_roles(actor: Actor, order: Order) -> set[Role]:
    """The roles ``actor`` holds with respect to ``order``."""
    roles: set[Role] = set()
    if actor.role == "buyer" and actor.user_id == order.buyer_id:
        roles.add(Role.BUYER)
    if actor.role == "agent" and actor.shop_id == order.shop_id:
        roles.add(Role.AGENT)
    if actor.role == "arbiter":
        roles.add(Role.ARBITER)
    return roles


def order_due(order: Order, now: int) -> bool:
    """True when the auto-confirm deadline has passed (``now >= auto_confirm_at``)."""
    return (
        order.state in TIMED_STATES
        and order.auto_confirm_at is not None
        and now >= order.auto_confirm_at
    )
