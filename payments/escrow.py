r"""The escrow (guaranteed trade) state machine for orders.

::

    OFFERED --pay--> HELD --ship--> SHIPPED --confirm / timer--> RELEASED
       |              |  \            |
     cancel /         |   +--confirm--------------------------> RELEASED
     timer            +--request_refund--> REFUND_REQUESTED --accept / timer--> REFUNDED
       v                                         |
    CANCELLED                                 refuse
                                                 v
                 RELEASED <--confirm / timer-- REFUND_REFUSED --dispute--> DISPUTED
                                                                              |
                                                               arbiter decides v
                                                                           RESOLVED

    After-sale (售后), within ``after_sale_period_ms`` of the release:

    RELEASED --claim_after_sale--> AFTER_SALE_REQUESTED --accept / timer--> AFTER_SALE_REFUNDED
                                     |        \
                                   refuse      +--(shop's money short)--> AFTER_SALE_DISPUTED
                                     v                                        |
               AFTER_SALE_CLOSED <--timer-- AFTER_SALE_REFUSED --dispute------+
                                                                              | arbiter decides
                                                                              v
                                                                      AFTER_SALE_RESOLVED

Nothing waits forever. Each waiting state has one deadline (:data:`DEADLINES`):

* OFFERED: unpaid by ``deadline_at`` (``offer_expiry_ms``), the timer cancels it.
* HELD: not shipped by ``deadline_at`` (``ship_period_ms``), a buyer's refund request
  is granted at once, without the shop.
* SHIPPED: ``auto_confirm_at`` (``auto_confirm_period_ms``) releases to the shop.
* REFUND_REQUESTED: unanswered by ``deadline_at`` (``refund_answer_period_ms``), the
  timer grants the refund. The auto-confirm countdown is paused meanwhile.
* REFUND_REFUSED: the buyer may dispute until ``auto_confirm_at`` (what was left of the
  countdown, at least ``resume_min_period_ms``); then the timer releases.
* DISPUTED: ``deadline_at`` (``arbiter_period_ms``) is the arbiter's promised decision
  time, shown to both sides; the money waits for the arbiter.
* RELEASED: the buyer may claim an after-sale refund until ``deadline_at``
  (``after_sale_period_ms``); nothing happens when it passes.
* AFTER_SALE_REQUESTED: unanswered by ``deadline_at`` (``after_sale_answer_period_ms``),
  the timer grants the claim.
* AFTER_SALE_REFUSED: the buyer may dispute until ``deadline_at``
  (``after_sale_dispute_period_ms``); then the timer closes the claim.
* AFTER_SALE_DISPUTED: ``deadline_at`` (``arbiter_period_ms``), as DISPUTED.

An after-sale refund is paid by the shop after the release: from its balance first, then
from its deposit (保证金, ``deposit:<shop>``, funded by the marketplace). When both together
fall short, a granted claim goes to the arbiter instead of driving anything below zero.
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
    AFTER_SALE_REQUESTED = "AFTER_SALE_REQUESTED"
    AFTER_SALE_REFUSED = "AFTER_SALE_REFUSED"
    AFTER_SALE_DISPUTED = "AFTER_SALE_DISPUTED"
    AFTER_SALE_REFUNDED = "AFTER_SALE_REFUNDED"
    AFTER_SALE_CLOSED = "AFTER_SALE_CLOSED"
    AFTER_SALE_RESOLVED = "AFTER_SALE_RESOLVED"


class OrderAction(StrEnum):
    OFFER = "offer"
    CANCEL = "cancel"
    PAY = "pay"
    SHIP = "ship"
    EXTEND = "extend"
    CONFIRM = "confirm"
    AUTO_CONFIRM = "auto_confirm"
    EXPIRE = "expire"
    AUTO_REFUND = "auto_refund"
    REQUEST_REFUND = "request_refund"
    ACCEPT_REFUND = "accept_refund"
    REFUSE_REFUND = "refuse_refund"
    DISPUTE = "dispute"
    DECIDE = "decide"
    CLAIM_AFTER_SALE = "claim_after_sale"
    ACCEPT_AFTER_SALE = "accept_after_sale"
    REFUSE_AFTER_SALE = "refuse_after_sale"
    AUTO_AFTER_SALE = "auto_after_sale"
    ESCALATE_AFTER_SALE = "escalate_after_sale"
    CLOSE_AFTER_SALE = "close_after_sale"


S = OrderState
A = OrderAction
B, G, R, T = Role.BUYER, Role.AGENT, Role.ARBITER, Role.SYSTEM

ORDERS: Final = Machine[OrderState, OrderAction](
    "order",
    {
        (S.OFFERED, A.OFFER): (S.OFFERED, {G}),
        (S.OFFERED, A.CANCEL): (S.CANCELLED, {B, G}),
        (S.OFFERED, A.EXPIRE): (S.CANCELLED, {T}),
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
        (S.REFUND_REQUESTED, A.AUTO_REFUND): (S.REFUNDED, {T}),
        (S.REFUND_REQUESTED, A.REFUSE_REFUND): (S.REFUND_REFUSED, {G}),
        (S.REFUND_REFUSED, A.DISPUTE): (S.DISPUTED, {B, G}),
        (S.DISPUTED, A.DECIDE): (S.RESOLVED, {R}),
        (S.RELEASED, A.CLAIM_AFTER_SALE): (S.AFTER_SALE_REQUESTED, {B}),
        (S.AFTER_SALE_REQUESTED, A.ACCEPT_AFTER_SALE): (S.AFTER_SALE_REFUNDED, {G}),
        (S.AFTER_SALE_REQUESTED, A.AUTO_AFTER_SALE): (S.AFTER_SALE_REFUNDED, {T}),
        (S.AFTER_SALE_REQUESTED, A.ESCALATE_AFTER_SALE): (S.AFTER_SALE_DISPUTED, {T}),
        (S.AFTER_SALE_REQUESTED, A.REFUSE_AFTER_SALE): (S.AFTER_SALE_REFUSED, {G}),
        (S.AFTER_SALE_REFUSED, A.DISPUTE): (S.AFTER_SALE_DISPUTED, {B}),
        (S.AFTER_SALE_REFUSED, A.CLOSE_AFTER_SALE): (S.AFTER_SALE_CLOSED, {T}),
        (S.AFTER_SALE_DISPUTED, A.DECIDE): (S.AFTER_SALE_RESOLVED, {R}),
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
#: What the timer does when ``deadline_at`` passes, per state (the other deadlines are
#: shown, not acted on: HELD's ship-by, DISPUTED's decide-by).
DEADLINE_ACTIONS: Final = {
    S.OFFERED: A.EXPIRE, S.REFUND_REQUESTED: A.AUTO_REFUND,
    S.AFTER_SALE_REQUESTED: A.AUTO_AFTER_SALE, S.AFTER_SALE_REFUSED: A.CLOSE_AFTER_SALE,
}
#: The deadline each waiting state has, as (field, setting): documented, and checked.
DEADLINES: Final = {
    S.OFFERED: ("deadline_at", "offer_expiry_ms"),
    S.HELD: ("deadline_at", "ship_period_ms"),
    S.SHIPPED: ("auto_confirm_at", "auto_confirm_period_ms"),
    S.REFUND_REQUESTED: ("deadline_at", "refund_answer_period_ms"),
    S.REFUND_REFUSED: ("auto_confirm_at", "resume_min_period_ms"),
    S.DISPUTED: ("deadline_at", "arbiter_period_ms"),
    S.RELEASED: ("deadline_at", "after_sale_period_ms"),
    S.AFTER_SALE_REQUESTED: ("deadline_at", "after_sale_answer_period_ms"),
    S.AFTER_SALE_REFUSED: ("deadline_at", "after_sale_dispute_period_ms"),
    S.AFTER_SALE_DISPUTED: ("deadline_at", "arbiter_period_ms"),
}
#: States of an order whose money was released to the shop: a trade (rated, counted in
#: credit), whatever an after-sale claim did afterwards.
RELEASED_STATES: Final = frozenset({
    S.RELEASED, S.AFTER_SALE_REQUESTED, S.AFTER_SALE_REFUSED, S.AFTER_SALE_DISPUTED, S.AFTER_SALE_REFUNDED,
    S.AFTER_SALE_CLOSED, S.AFTER_SALE_RESOLVED,
})
RELEASED_SQL: Final = ", ".join(f"'{s.value}'" for s in sorted(RELEASED_STATES))
#: States in which an after-sale claim is open (the shop's money may still move).
AFTER_SALE_OPEN: Final = frozenset({S.AFTER_SALE_REQUESTED, S.AFTER_SALE_REFUSED, S.AFTER_SALE_DISPUTED})


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
    """True when a deadline the timer acts on has passed: auto-confirm in SHIPPED or
    REFUND_REFUSED, ``deadline_at`` in the states of :data:`DEADLINE_ACTIONS`."""
    if order.state in TIMED_STATES:
        return order.auto_confirm_at is not None and now >= order.auto_confirm_at
    if order.state in DEADLINE_ACTIONS:
        return order.deadline_at is not None and now >= order.deadline_at
    return False
