"""PAYMENT HOOK: the payment part of the mix, not written yet.

The hub has in-chat escrow (the money commands in docs/protocol.md, served
with ``PAYMENTS=on``); the generator does not drive it. In a share
(``--pay-share``) of conversations, after a few messages, the agent should
``offer``, the buyer (PIN set, wallet funded) ``pay`` the offer, the agent
``ship`` and the buyer ``confirm``. Measure each command's round trip (its
``payment`` reply) as its own type and check that every ``card`` and
``card_update`` message reaches both sides exactly once, like messages.

Fill in :func:`payment_step` (called by the engine for conversations picked to
pay) and make :func:`require_payments` return instead of exiting.
"""

from __future__ import annotations

from typing import Any


def require_payments() -> None:
    raise SystemExit("--pay-share: the load generator does not drive escrow payments yet; run without it")


def payment_step(actor: Any, conv: Any) -> None:
    """One step of a conversation's payment; not written yet."""
    raise NotImplementedError("the load generator's payment mix is not written yet")
