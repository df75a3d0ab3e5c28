"""The one place where order and transfer transitions are decided.

A machine is a table of legal ``(state, action) -> (new state, roles allowed)``. The
service never assigns a state itself: it asks :meth:`Machine.next`, which refuses with
``Forbidden`` when none of the actor's roles may ever take the action, and with
``WrongState`` (naming the current state, so a race's loser learns the outcome) when the
action is not legal now. States absent from every left-hand side are terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from payments.errors import AlreadyPaid, Forbidden, WrongState


class Role(StrEnum):
    """Who an actor is *with respect to one entity* (not a global permission)."""

    BUYER = "buyer"
    AGENT = "agent"
    ARBITER = "arbiter"
    SENDER = "sender"
    RECIPIENT = "recipient"
    SYSTEM = "system"


S = TypeVar("S", bound=StrEnum)
A = TypeVar("A", bound=StrEnum)


@dataclass(frozen=True)
class Rule(Generic[S]):
    target: S
    roles: frozenset[Role]


class Machine(Generic[S, A]):
    """A transition table with the refusal rules shared by orders and transfers."""

    def __init__(
        self,
        name: str,
        table: Mapping[tuple[S, A], tuple[S, Iterable[Role]]],
        *,
        paid_action: A | None = None,
        unpaid_states: Iterable[S] = (),
    ) -> None:
        self.name = name
        self.table: dict[tuple[S, A], Rule[S]] = {
            key: Rule(target, frozenset(roles)) for key, (target, roles) in table.items()
        }
        self._roles_by_action: dict[A, frozenset[Role]] = {}
        for (_, action), rule in self.table.items():
            self._roles_by_action[action] = self._roles_by_action.get(action, frozenset()) | (
                rule.roles
            )
        self._paid_action = paid_action
        self._unpaid_states = frozenset(unpaid_states)
        self.terminal: frozenset[S] = frozenset(
            {t.target for t in self.table.values()} - {s for s, _ in self.table}
        )

    def next(self, state: S, action: A, roles: Iterable[Role]) -> S:
        """Return the state after ``action`` by an actor holding ``roles``, or refuse."""
        held = frozenset(roles)
        if not held & self._roles_by_action.get(action, frozenset()):
            raise Forbidden(
                f"You are not allowed to {action.value.replace('_', ' ')} this {self.name}.",
                action=action.value,
            )
        rule = self.table.get((state, action))
        if rule is None:
            if action == self._paid_action and state not in self._unpaid_states:
                raise AlreadyPaid(
                    f"This {self.name} has already been paid.", state=state.value
                )
            raise WrongState(
                f"This {self.name} is {state.value.lower().replace('_', ' ')}; "
                f"it cannot be {_past(action.value)} now.",
                state=state.value,
                action=action.value,
            )
        if not held & rule.roles:
            raise Forbidden(
                f"You are not allowed to {action.value.replace('_', ' ')} this {self.name} now.",
                action=action.value,
                state=state.value,
            )
        return rule.target


def _past(action: str) -> str:
    words = {
        "offer": "re-offered",
        "pay": "paid",
        "ship": "shipped",
        "extend": "extended",
        "confirm": "confirmed",
        "auto_confirm": "confirmed",
        "request_refund": "refunded",
        "accept_refund": "refunded",
        "refuse_refund": "refused",
        "dispute": "disputed",
        "decide": "decided",
        "cancel": "cancelled",
        "accept": "accepted",
        "decline": "declined",
        "expire": "expired",
        "claim_after_sale": "claimed for an after-sale refund",
        "accept_after_sale": "refunded after sale",
        "refuse_after_sale": "refused",
    }
    return words.get(action, action)
