"""After-sale refunds (售后): a buyer's claim after the money was released to the shop.

Within ``after_sale_period_ms`` of the release (until the released order's ``deadline_at``;
a release from before after-sale existed has none, so it takes no claim) the buyer may claim up to what it paid
(once per order). The shop accepts (it pays: balance first, then its deposit) or refuses;
unanswered in ``after_sale_answer_period_ms`` the claim is granted. A refused claim may go
to the arbiter within ``after_sale_dispute_period_ms`` (``dispute``), else it closes. A
granted claim the shop's balance and deposit cannot cover together goes to the arbiter
rather than below zero; the arbiter's ``decide`` pays what it decides, refused with
:class:`~payments.errors.ShopFundsShort` while the shop's money cannot cover it.

The states and deadlines are in :mod:`payments.escrow`; each command is one command
transaction of :class:`~payments.commands.CommandRunner`.
"""

from __future__ import annotations

from payments.commands import CommandRunner, CommandTx, bump
from payments.errors import InvalidAmount, InvalidRequest, ShopFundsShort, WrongState
from payments.escrow import OrderAction, OrderState
from payments.ledger import available, deposit_owner, shop_owner
from payments.models import Actor, Order
from payments.money import check_amount, format_amount

MAX_REASON = 500


def claimable(order: Order) -> int:
    """The most a buyer may claim back after the release: what it paid, less refunds."""
    return order.amount - order.buyer_refund


class AfterSaleCommands(CommandRunner):
    """The after-sale half of :class:`~payments.service.PaymentService`."""

    def claim_after_sale(
        self, actor: Actor, *, order_id: str, amount: int, reason: str, idem_key: str | None = None
    ) -> Order:
        """Buyer claims ``amount`` back from a released order (see the module doc)."""
        check_amount(amount, field="amount")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
            raise InvalidRequest(f"The reason is missing or longer than {MAX_REASON} characters.", field="reason")

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            if order.deadline_at is None or tx.now > order.deadline_at:
                raise WrongState("The after-sale period of this order has ended.",
                                 state=order.state.value, action=OrderAction.CLAIM_AFTER_SALE.value)
            if amount > claimable(order):
                raise InvalidAmount(
                    f"The claim can be at most {format_amount(claimable(order), order.currency)}.", field="amount")
            return bump(order, tx.now, state=state, after_sale_amount=amount, after_sale_reason=reason,
                        deadline_at=tx.now + self.settings.after_sale_answer_period_ms)

        return self._order_command(actor, order_id, OrderAction.CLAIM_AFTER_SALE, "after_sale_requested", act,
                                   idem_key, {"amount": amount, "reason": reason})

    def answer_after_sale(
        self, actor: Actor, *, order_id: str, accept: bool, idem_key: str | None = None
    ) -> Order:
        """Shop agent pays the claim (``accept``) or refuses it (the buyer may then dispute)."""
        if not isinstance(accept, bool):
            raise InvalidRequest("accept must be true or false.", field="accept")

        def act(tx: CommandTx, order: Order, state: OrderState) -> Order:
            if accept:
                return self._grant_after_sale(tx, order, state)
            return bump(order, tx.now, state=state,
                        deadline_at=tx.now + self.settings.after_sale_dispute_period_ms)

        action = OrderAction.ACCEPT_AFTER_SALE if accept else OrderAction.REFUSE_AFTER_SALE
        return self._order_command(actor, order_id, action,
                                   self._after_sale_event if accept else "after_sale_refused", act,
                                   idem_key, {"accept": accept})


def decide_after_sale(
    runner: CommandRunner, tx: CommandTx, order: Order, state: OrderState, outcome: str, buyer_amount: int | None
) -> Order:
    """The arbiter's decision on an after-sale claim: ``release`` keeps the money with the
    shop, ``refund`` pays the whole claim, ``split`` pays ``buyer_amount`` (less than it)."""
    claim = order.after_sale_amount or 0
    if outcome == "split" and (buyer_amount is None or buyer_amount >= claim):
        raise InvalidAmount("A split must pay less than the claim.", field="buyer_amount")
    part = {"release": 0, "refund": claim}.get(outcome, buyer_amount or 0)
    from_deposit = 0
    if part:
        paid = runner._pay_after_sale(tx, order, part)
        if paid is None:
            covered = sum(tx.repo.balance(available(owner, order.currency))
                          for owner in (shop_owner(order.shop_id), deposit_owner(order.shop_id)))
            raise ShopFundsShort(
                f"The shop's balance and deposit hold {format_amount(covered, order.currency)}.",
                covered=covered, currency=order.currency)
        from_deposit = paid
    return bump(order, tx.now, state=state, outcome=outcome, after_sale_refund=part,
                after_sale_from_deposit=from_deposit, deadline_at=None)


def decide_event(order: Order) -> str:
    """The event of a decided claim: money moved, or the shop keeps it."""
    return "after_sale_resolved" if order.after_sale_refund else "after_sale_rejected"
