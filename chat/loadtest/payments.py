"""PAYMENT HOOK: the payment part of the mix, off until in-chat escrow is in the protocol.

When the escrow frames exist, a buyer in a share (``--pay-share``) of
conversations should, after a few messages: ask the agent for a payment card,
pay it, wait for the ``card_update`` that shows the money held, and confirm
receipt; the agent ships in between. Measure each step's round trip as its own
type (``pay``, ``confirm``) and check that every card update reaches both sides
exactly once, like messages.

Fill in :func:`payment_step` (called by the engine for conversations picked to
pay) and make :func:`require_payments` return instead of exiting.
"""

from __future__ import annotations

from typing import Any


def require_payments() -> None:
    raise SystemExit("--pay-share: escrow payments are not in the chat protocol yet; run without it")


def payment_step(actor: Any, conv: Any) -> None:
    """One step of a conversation's payment; not implemented until escrow exists."""
    raise NotImplementedError("escrow payments are not in the chat protocol yet")
