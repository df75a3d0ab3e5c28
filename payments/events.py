"""The events outbox: what the chat hub turns into payment cards.

Every state change of an order or transfer writes one row in the same database
transaction as its journal entries, so an event exists if and only if the change
committed, and exactly once. Ids come from a locked sequence row and therefore increase
in commit order without gaps: a reader that remembers the last id it handled and asks
for ``events_after(last_id)`` sees every event once.

An event (:class:`~payments.models.PaymentEvent`) carries ``entity_kind`` (``order`` or
``transfer``), ``entity_id``, ``conversation_id``, ``action`` (``offered``,
``repriced``, ``cancelled``, ``paid``, ``shipped``, ``extended``, ``released``,
``refund_requested``, ``refund_accepted``, ``refund_granted`` (by the timer, or at once
when the shop did not ship in time), ``refund_refused``, ``disputed``, ``resolved``,
``expired`` (an unpaid offer lapsed); ``pending``, ``accepted``, ``declined``,
``expired``), the new ``state``
and a ``payload``: the full JSON view of the entity after the change (``Order`` or
``Transfer`` fields: amounts, deadlines, version) plus ``actor`` - ``{"user_id",
"role", "shop_id"}`` of who acted, with role ``system`` for the timer.
"""

from __future__ import annotations

from typing import Any, Final

from payments.models import Actor, Order, Transfer
from payments.repository import Repo

SYSTEM_ACTOR: Final[dict[str, Any]] = {"user_id": None, "role": "system", "shop_id": None}


def record_event(
    repo: Repo, view: Order | Transfer, action: str, actor: Actor | None, now: int
) -> int:
    """Write the outbox row for ``view`` (the entity after the change); return its id."""
    payload = {**view.model_dump(mode="json"),
               "actor": actor.model_dump() if actor else SYSTEM_ACTOR}
    if isinstance(view, Order):
        kind, entity_id = "order", view.order_id
    else:
        kind, entity_id = "transfer", view.transfer_id
    return repo.add_event(kind, entity_id, view.conversation_id, action, view.state.value,
                          payload, now)
