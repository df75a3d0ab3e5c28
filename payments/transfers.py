"""The transfer (转账) state machine.

A transfer reserves the sender's money in the platform's pending-transfer account, like a
two-phase pending transfer: exactly one of accept (to the recipient), decline or expiry
(back to the sender) settles it, at most once::

    PENDING --accept--> ACCEPTED
       |----decline---> DECLINED
       +----expire----> EXPIRED     (timer, when now >= expires_at)
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final

from payments.statemachine import Machine, Role

if TYPE_CHECKING:
    from payments.models import Actor, Transfer


class TransferState(StrEnum):
    PENDING = "PENDING"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    EXPIRED = "EXPIRED"


class TransferAction(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"


TRANSFERS: Final = Machine[TransferState, TransferAction](
    "transfer",
    {
        (TransferState.PENDING, TransferAction.ACCEPT): (TransferState.ACCEPTED, {Role.RECIPIENT}),
        (TransferState.PENDING, TransferAction.DECLINE): (
            TransferState.DECLINED,
            {Role.RECIPIENT},
        ),
        (TransferState.PENDING, TransferAction.EXPIRE): (TransferState.EXPIRED, {Role.SYSTEM}),
    },
)


def transfer_roles(actor: Actor, transfer: Transfer) -> set[Role]:
    """Only someone acting for the receiving account may accept or decline: the buyer for
    their own, any agent of the shop for the shop's."""
    receiving = (actor.role == "buyer" and transfer.to_account == f"user:{actor.user_id}") or (
        actor.role == "agent" and transfer.to_account == f"shop:{actor.shop_id}")
    return {Role.RECIPIENT} if receiving else set()


def transfer_due(transfer: Transfer, now: int) -> bool:
    """True when a pending transfer has expired (``now >= expires_at``)."""
    return transfer.state is TransferState.PENDING and now >= transfer.expires_at
