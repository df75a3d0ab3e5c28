"""A simple in-memory model agrees with the store after every random step.

Hypothesis drives deposits (also into shops' deposits), withdrawals, offers, payments,
shipping, extensions, confirmations, refunds, disputes, decisions, cancellations,
after-sale claims, answers, disputes and decisions on released orders, transfers, accepts,
declines, wrong PINs, clock steps (also backwards) with ``run_due``, and replays or
misuses of old idempotency keys. After each step every balance, order and transfer of
the store must equal the model's, and :func:`check_invariants` must pass.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from paysupport import DAY, PIN, FakeClock, make_store
from paysupport import settings as pay_settings

from payments import (
    Actor,
    FundingReceipt,
    Order,
    PaymentError,
    PaymentService,
    SpendLimits,
    check_invariants,
)

USERS = ["u1", "u2", "u3"]
SHOPS = ["s1", "s2"]
CURRENCIES = ["CNY", "USD"]
SLOTS = 4
FEE_BPS = 250
PER_TX, DAILY = 5000, 12000
HOUR = 3_600_000
LOCK_MS = 3 * HOUR
OWNERS = [f"user:{u}" for u in USERS] + [f"shop:{s}" for s in SHOPS] + [f"deposit:{s}" for s in SHOPS]
AFTER_SALE_ACTIONS = {"RELEASED": "claim", "AFTER_SALE_REQUESTED": "answer", "AFTER_SALE_REFUSED": "dispute",
                      "AFTER_SALE_DISPUTED": "decide"}
TERMINAL = {"CANCELLED", "RELEASED", "REFUNDED", "RESOLVED", "AFTER_SALE_REFUNDED", "AFTER_SALE_CLOSED",
            "AFTER_SALE_RESOLVED"}
ALL_ACTIONS = ["pay", "ship", "extend", "confirm", "cancel", "request_refund",
               "answer_refund", "dispute", "decide"]
ORDER_STEP: dict[str, st.SearchStrategy[Any]] = {
    "slot": st.integers(0, SLOTS - 1), "choice": st.integers(0, 99), "n": st.integers(1, 7000),
    "flag": st.booleans(), "outcome": st.sampled_from(["release", "refund", "split"]),
    "legal": st.integers(0, 5)}
LEGAL_ACTIONS = {
    "OFFERED": ["pay", "pay", "pay", "cancel"],
    "HELD": ["ship", "ship", "confirm", "request_refund"],
    "SHIPPED": ["extend", "confirm", "request_refund", "request_refund", "request_refund"],
    "REFUND_REQUESTED": ["answer_refund"],
    "REFUND_REFUSED": ["confirm", "dispute", "dispute"],
    "DISPUTED": ["decide"],
}


@dataclass
class MOrder:
    order_id: str
    shop: str
    buyer: str
    amount: int
    currency: str
    state: str = "OFFERED"
    held: int = 0
    auto_confirm_at: int | None = None
    paused: int | None = None
    extended: bool = False
    refund_amount: int | None = None
    deadline_at: int | None = None
    terms: tuple[int, int] = (0, 0)
    settled_at: int | None = None
    buyer_refund: int = 0
    after_sale_amount: int | None = None
    after_sale_refund: int = 0


@dataclass
class MTransfer:
    transfer_id: str
    sender: str
    to: str
    amount: int
    currency: str
    expires_at: int
    state: str = "PENDING"


@dataclass
class MPin:
    failures: int = 0
    locked_until: int | None = None


@dataclass
class Model:
    balances: dict[tuple[str, str, str], int] = field(default_factory=dict)
    orders: dict[str, MOrder] = field(default_factory=dict)
    transfers: list[MTransfer] = field(default_factory=list)
    spends: list[tuple[str, str, int, int]] = field(default_factory=list)
    pins: dict[str, MPin] = field(default_factory=lambda: {u: MPin() for u in USERS})

    def move(self, src: tuple[str, str], dst: tuple[str, str], currency: str, n: int) -> None:
        if n:
            self.balances[(*src, currency)] = self.balances.get((*src, currency), 0) - n
            self.balances[(*dst, currency)] = self.balances.get((*dst, currency), 0) + n

    def available(self, owner: str, currency: str) -> int:
        return self.balances.get((owner, "available", currency), 0)

    def settle(self, o: MOrder, buyer_part: int, state: str, now: int = 0) -> None:
        seller = o.held - buyer_part
        fee = seller * FEE_BPS // 10_000
        escrow = (f"order:{o.order_id}", "escrow_hold")
        self.move(escrow, (f"user:{o.buyer}", "available"), o.currency, buyer_part)
        self.move(escrow, (f"shop:{o.shop}", "available"), o.currency, seller - fee)
        self.move(escrow, ("platform", "fees"), o.currency, fee)
        o.state, o.held, o.auto_confirm_at, o.paused = state, 0, None, None
        o.deadline_at = now + 15 * DAY if state == "RELEASED" else None
        o.settled_at, o.buyer_refund = now, buyer_part

    def pay_after_sale(self, o: MOrder, amount: int) -> bool:
        """The shop pays a claim back: its balance first, then its deposit; False (nothing
        moved) when both together hold less."""
        shop, deposit = f"shop:{o.shop}", f"deposit:{o.shop}"
        from_shop = min(amount, self.available(shop, o.currency))
        if amount - from_shop > self.available(deposit, o.currency):
            return False
        self.move((shop, "available"), (f"user:{o.buyer}", "available"), o.currency, from_shop)
        self.move((deposit, "available"), (f"user:{o.buyer}", "available"), o.currency, amount - from_shop)
        o.after_sale_refund = amount
        return True

    def grant_after_sale(self, o: MOrder, now: int) -> None:
        assert o.after_sale_amount is not None
        if self.pay_after_sale(o, o.after_sale_amount):
            o.state, o.deadline_at = "AFTER_SALE_REFUNDED", None
        else:
            o.state, o.deadline_at = "AFTER_SALE_DISPUTED", now + 7 * DAY

    def order_due(self, o: MOrder, now: int) -> bool:
        if o.state in ("SHIPPED", "REFUND_REFUSED"):
            return o.auto_confirm_at is not None and now >= o.auto_confirm_at
        if o.state in ("OFFERED", "REFUND_REQUESTED", "AFTER_SALE_REQUESTED", "AFTER_SALE_REFUSED"):
            return o.deadline_at is not None and now >= o.deadline_at
        return False

    def apply_due(self, o: MOrder, now: int) -> None:
        """The timer's effect: an unpaid offer lapses, an unanswered refund or after-sale
        claim is granted, a refused claim closes, otherwise the money is released."""
        if o.state == "OFFERED":
            o.state, o.deadline_at = "CANCELLED", None
        elif o.state == "REFUND_REQUESTED":
            assert o.refund_amount is not None
            self.settle(o, o.refund_amount, "REFUNDED", now)
        elif o.state == "AFTER_SALE_REQUESTED":
            self.grant_after_sale(o, now)
        elif o.state == "AFTER_SALE_REFUSED":
            o.state, o.deadline_at = "AFTER_SALE_CLOSED", None
        else:
            self.settle(o, 0, "RELEASED", now)

    def time_out(self, now: int) -> set[tuple[str, str]]:
        done = set()
        for o in self.orders.values():
            if self.order_due(o, now):
                self.apply_due(o, now)
                done.add(("order", o.order_id))
        for t in self.transfers:
            if t.state == "PENDING" and now >= t.expires_at:
                self.expire(t)
                done.add(("transfer", t.transfer_id))
        return done

    def expire(self, t: MTransfer) -> None:
        t.state = "EXPIRED"
        self.move(("platform", "pending_transfer"), (f"user:{t.sender}", "available"),
                  t.currency, t.amount)

    def spend_check(self, user: str, currency: str, amount: int, now: int) -> int | None:
        """The code a payment or transfer fails with after the PIN, or None."""
        if currency == "CNY":
            if amount > PER_TX:
                return 6050
            spent = sum(a for u, c, t, a in self.spends
                        if u == user and c == currency and t >= now - DAY + 1)
            if spent + amount > DAILY:
                return 6050
        if self.available(f"user:{user}", currency) < amount:
            return 6010
        return None

    def pin_locked(self, user: str, now: int) -> bool:
        pin = self.pins[user]
        return pin.locked_until is not None and now < pin.locked_until


class LedgerMachine(RuleBasedStateMachine):
    store_kind = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self._stack = contextlib.ExitStack()
        self.store = self._stack.enter_context(make_store(self.store_kind))
        self.clock = FakeClock()
        self.service = PaymentService(self.store, clock=self.clock, settings=pay_settings(
            fee_bps=FEE_BPS, limits={"CNY": SpendLimits(per_transaction=PER_TX, daily=DAILY)}))
        self.model = Model()
        for user in USERS:
            self.service.set_pin(Actor(user_id=user, role="buyer"), PIN)
            for currency in CURRENCIES:
                self.service.deposit(f"user:{user}", 15_000, currency, f"start-{currency}")
                self.model.move(("world", "world"), (f"user:{user}", "available"), currency,
                                15_000)
        self.generation = [0] * SLOTS
        self.keys: list[tuple[str, Any, Any]] = []  # (key, call with that key, response)
        self.withdrawals: list[tuple[str, str, int, str]] = []  # pending: (id, owner, amount, currency)
        self.counter = 0

    def teardown(self) -> None:
        self._stack.close()

    # -- helpers ---------------------------------------------------------------------------

    def key(self) -> str:
        self.counter += 1
        return f"k{self.counter}"

    def expect(self, code: int | None, call: Any) -> Any:
        try:
            result = call()
        except PaymentError as exc:
            assert exc.code == code, f"expected {code}, got {exc!r}"
            return None
        assert code is None, f"expected error {code}, got success {result!r}"
        return result

    def keyed(self, code: int | None, make_call: Any) -> Any:
        """Run a keyed command; remember successful ones for later replays."""
        key = self.key()
        result = self.expect(code, lambda: make_call(key))
        if result is not None:
            self.keys.append((key, make_call, result))
        return result

    @staticmethod
    def buyer(user: str) -> Actor:
        return Actor(user_id=user, role="buyer")

    @staticmethod
    def agent(shop: str) -> Actor:
        return Actor(user_id=f"agent-{shop}", role="agent", shop_id=shop)

    def order(self, slot: int) -> tuple[str, MOrder | None]:
        order_id = f"o{slot}-{self.generation[slot]}"
        return order_id, self.model.orders.get(order_id)

    def touch(self, o: MOrder | None) -> None:
        """A command on a past-deadline order first applies the timeout, as the store does."""
        if o is not None and self.model.order_due(o, self.clock.now):
            self.model.apply_due(o, self.clock.now)

    @initialize(prices=st.lists(st.integers(1, 6000), min_size=SLOTS, max_size=SLOTS))
    def open_offers(self, prices: list[int]) -> None:
        """Every slot starts with an offer, so payments can happen from the first step."""
        for slot, price in enumerate(prices):
            self.offer(slot, price, 1, 1)

    # -- funding -------------------------------------------------------------------------------

    @rule(owner=st.sampled_from(OWNERS), amount=st.integers(1, 20_000), currency=st.sampled_from(CURRENCIES))
    def deposit(self, owner: str, amount: int, currency: str) -> None:
        self.keyed(None, lambda k: self.service.deposit(owner, amount, currency, k))
        self.model.move(("world", "world"), (owner, "available"), currency, amount)

    @rule(owner=st.sampled_from(OWNERS), amount=st.integers(1, 20_000), currency=st.sampled_from(CURRENCIES))
    def withdraw(self, owner: str, amount: int, currency: str) -> None:
        ok = self.model.available(owner, currency) >= amount
        receipt = self.keyed(None if ok else 6010,
                             lambda k: self.service.withdraw(owner, amount, currency, k))
        if ok:
            self.model.move((owner, "available"), ("payouts", "pending_transfer"), currency, amount)
            self.withdrawals.append((receipt.withdrawal_id, owner, amount, currency))

    @precondition(lambda self: self.withdrawals)
    @rule(index=st.integers(0, 1000), paid=st.booleans(), again=st.booleans())
    def payout_confirmed(self, index: int, paid: bool, again: bool) -> None:
        """The payout system says a pending withdrawal was paid out or failed (sometimes twice,
        sometimes contradicting itself: the first word wins)."""
        wid, owner, amount, currency = self.withdrawals.pop(index % len(self.withdrawals))
        desk = self.service.withdrawals
        (desk.complete(wid, "ref") if paid else desk.fail(wid, "bounced"))
        dst = ("world", "world") if paid else (owner, "available")
        self.model.move(("payouts", "pending_transfer"), dst, currency, amount)
        if again:
            (desk.complete(wid, "ref") if paid else desk.fail(wid, "bounced"))
            self.expect(6021, lambda: desk.fail(wid, "x") if paid else desk.complete(wid, "x"))

    # -- orders ----------------------------------------------------------------------------------

    @rule(slot=st.integers(0, SLOTS - 1), price=st.integers(1, 3000), qty=st.integers(1, 2),
          other_currency=st.integers(0, 9))
    def offer(self, slot: int, price: int, qty: int, other_currency: int) -> None:
        """Offer in a slot: re-price its open order, or start a new one once it settled."""
        order_id, o = self.order(slot)
        if o is not None and o.state in TERMINAL:
            self.generation[slot] += 1
            order_id, o = self.order(slot)
        currency = CURRENCIES[(slot + (other_currency == 0)) % 2]
        shop, buyer = SHOPS[slot % 2], USERS[slot % 3]
        self.touch(o)  # a lapsed offer is cancelled first, then the re-offer refused
        if o is None:
            code = None
        elif o.state != "OFFERED":
            code = 6021
        else:
            code = 6003 if o.currency != currency else None
        self.expect(code, lambda: self.service.offer(
            self.agent(shop), order_id=order_id, conversation_id=f"c{slot}", shop_id=shop,
            buyer_id=buyer, listing_id="l", title="tea", unit_price=price, quantity=qty,
            currency=currency))
        if code is None and (o is None or o.terms != (price, qty)):  # same terms: no change
            self.model.orders[order_id] = MOrder(order_id, shop, buyer, price * qty, currency,
                                                 deadline_at=self.clock.now + 3 * DAY,
                                                 terms=(price, qty))

    def order_step(self, slot: int, choice: int, n: int, flag: bool, outcome: str,
                   legal: int) -> None:
        """Mostly (legal != 0) an action the order's state allows, else any action."""
        order_id, o = self.order(slot)
        options = LEGAL_ACTIONS.get(o.state, []) if (o is not None and legal) else []
        action = options[choice % len(options)] if options else ALL_ACTIONS[
            choice % len(ALL_ACTIONS)]
        if legal and o is not None and o.held and action == "request_refund":
            n = min(n, o.held)
        if legal and o is not None and o.held > 1 and outcome == "split":
            n = 1 + n % (o.held - 1)
        if o is not None and o.state.startswith("AFTER_SALE") and action in ("dispute", "decide"):
            self.touch(o)  # the slot's order is in after-sale: dispute and decide act on the claim
            self.after_sale_act(o, action, n, flag, outcome, legal=bool(legal), by_agent=not flag)
            return
        owner = o or MOrder(order_id, SHOPS[slot % 2], USERS[slot % 3], 0, "CNY")
        buyer, agent = self.buyer(owner.buyer), self.agent(owner.shop)
        svc = self.service
        if action == "pay":
            self.pay(order_id, o)
        elif action == "ship":
            if self.transition(order_id, o, {"HELD"}, lambda: svc.ship(agent, order_id=order_id)):
                assert o is not None
                o.state, o.auto_confirm_at, o.deadline_at = "SHIPPED", self.clock.now + 10 * DAY, None
        elif action == "extend":
            self.touch(o)
            can = {"SHIPPED"} if o is not None and not o.extended else set()
            if self.transition(order_id, o, can, lambda: svc.extend(buyer, order_id=order_id)):
                assert o is not None and o.auto_confirm_at is not None
                o.extended, o.auto_confirm_at = True, o.auto_confirm_at + 5 * DAY
        elif action == "confirm":
            if self.transition(order_id, o, {"HELD", "SHIPPED", "REFUND_REFUSED"},
                               lambda: svc.confirm(buyer, order_id=order_id)):
                assert o is not None
                self.model.settle(o, 0, "RELEASED", self.clock.now)
        elif action == "cancel":
            if self.transition(order_id, o, {"OFFERED"}, lambda: svc.cancel(
                    buyer if flag else agent, order_id=order_id)):
                assert o is not None
                o.state, o.deadline_at = "CANCELLED", None
        elif action == "request_refund":
            self.request_refund(order_id, o, n)
        elif action == "answer_refund":
            if self.transition(order_id, o, {"REFUND_REQUESTED"}, lambda: svc.answer_refund(
                    agent, order_id=order_id, accept=flag)):
                assert o is not None
                if flag:
                    assert o.refund_amount is not None
                    self.model.settle(o, o.refund_amount, "REFUNDED", self.clock.now)
                else:
                    o.state, o.deadline_at = "REFUND_REFUSED", None
                    o.auto_confirm_at, o.paused = self.clock.now + max(o.paused or 0, DAY), None
        elif action == "dispute":
            if self.transition(order_id, o, {"REFUND_REFUSED"}, lambda: svc.dispute(
                    buyer if flag else agent, order_id=order_id, reason="r")):
                assert o is not None
                if o.auto_confirm_at is not None:
                    o.paused, o.auto_confirm_at = o.auto_confirm_at - self.clock.now, None
                o.state, o.deadline_at = "DISPUTED", self.clock.now + 7 * DAY
        else:
            self.decide(order_id, o, outcome, n)

    def pay(self, order_id: str, o: MOrder | None) -> None:
        now = self.clock.now
        code: int | None
        if o is None:
            code = 6020
        elif not self.model.order_due(o, now) and o.state != "OFFERED":
            code = 6021 if o.state == "CANCELLED" else 6060
        elif self.model.pin_locked(o.buyer, now):
            code = 6041
        elif self.model.order_due(o, now):
            self.touch(o)
            code = 6021 if o.state == "CANCELLED" else 6060
        else:
            code = self.model.spend_check(o.buyer, o.currency, o.amount, now)
        user = o.buyer if o else "u1"
        self.keyed(code, lambda k: self.service.pay(self.buyer(user), order_id=order_id,
                                                    pin=PIN, idem_key=k))
        if code is None:
            assert o is not None
            self.model.move((f"user:{o.buyer}", "available"), (f"order:{o.order_id}", "escrow_hold"),
                            o.currency, o.amount)
            o.state, o.held, o.deadline_at = "HELD", o.amount, now + 2 * DAY
            self.model.spends.append((o.buyer, o.currency, now, o.amount))
            self.model.pins[o.buyer].failures = 0

    def transition(self, order_id: str, o: MOrder | None, legal: set[str], call: Any) -> bool:
        """Run an order command expected to succeed iff the state is in ``legal``."""
        self.touch(o)
        code = 6020 if o is None else (None if o.state in legal else 6021)
        self.expect(code, call)
        return code is None

    def request_refund(self, order_id: str, o: MOrder | None, amount: int) -> None:
        self.touch(o)
        if o is None:
            code: int | None = 6020
        elif o.state not in ("HELD", "SHIPPED"):
            code = 6021
        else:
            code = 6001 if amount > o.held else None
        self.expect(code, lambda: self.service.request_refund(
            self.buyer(o.buyer if o else "u1"), order_id=order_id, amount=amount,
            reason="r"))
        if code is None and o is not None:
            late = o.state == "HELD" and o.deadline_at is not None and self.clock.now >= o.deadline_at
            if o.auto_confirm_at is not None:
                o.paused, o.auto_confirm_at = o.auto_confirm_at - self.clock.now, None
            o.state, o.refund_amount = "REFUND_REQUESTED", amount
            o.deadline_at = self.clock.now + 2 * DAY
            if late:  # not shipped in time: granted at once, without the shop
                self.model.settle(o, amount, "REFUNDED", self.clock.now)

    def decide(self, order_id: str, o: MOrder | None, outcome: str, part: int) -> None:
        self.touch(o)
        if o is None:
            code: int | None = 6020
        elif o.state != "DISPUTED":
            code = 6021
        else:
            code = 6001 if outcome == "split" and part >= o.held else None
        arbiter = Actor(user_id="judge", role="arbiter")
        self.expect(code, lambda: self.service.decide(
            arbiter, order_id=order_id, outcome=outcome,  # type: ignore[arg-type]
            buyer_amount=part if outcome == "split" else None))
        if code is None and o is not None:
            buyer_part = {"release": 0, "refund": o.held, "split": part}[outcome]
            self.model.settle(o, buyer_part, "RESOLVED", self.clock.now)

    # Order actions are most of what happens, so five rules share the weight.

    @rule(**ORDER_STEP)
    def order_step_a(self, **kw: Any) -> None:
        self.order_step(**kw)

    @rule(**ORDER_STEP)
    def order_step_b(self, **kw: Any) -> None:
        self.order_step(**kw)

    @rule(**ORDER_STEP)
    def order_step_c(self, **kw: Any) -> None:
        self.order_step(**kw)

    @rule(**ORDER_STEP)
    def order_step_d(self, **kw: Any) -> None:
        self.order_step(**kw)

    @rule(**ORDER_STEP)
    def order_step_e(self, **kw: Any) -> None:
        self.order_step(**kw)

    # -- after sale --------------------------------------------------------------------------------

    @precondition(lambda self: any(o.state in AFTER_SALE_ACTIONS for o in self.model.orders.values()))
    @rule(index=st.integers(0, 1000), choice=st.integers(0, 99), n=st.integers(1, 7000), flag=st.booleans(),
          outcome=st.sampled_from(["release", "refund", "split"]), legal=st.integers(0, 5))
    def after_sale_step(self, index: int, choice: int, n: int, flag: bool, outcome: str, legal: int) -> None:
        """On a released order (of any slot's past): claim, answer, dispute, decide; mostly
        (legal != 0) what its state allows, else any of them."""
        pool = [o for o in self.model.orders.values() if o.state in AFTER_SALE_ACTIONS]
        o = pool[index % len(pool)]
        self.touch(o)
        actions = ["claim", "answer", "dispute", "decide"]
        action = AFTER_SALE_ACTIONS.get(o.state, "claim") if legal else actions[choice % 4]
        self.after_sale_act(o, action, n, flag, outcome, legal=bool(legal))

    def after_sale_act(self, o: MOrder, action: str, n: int, flag: bool, outcome: str, *, legal: bool,
                       by_agent: bool = False) -> None:
        now, svc = self.clock.now, self.service
        if legal and action == "claim":
            n = 1 + n % (o.amount - o.buyer_refund)
        claim = o.after_sale_amount or 0
        if legal and outcome == "split" and claim > 1:
            n = 1 + n % (claim - 1)
        expected = {"claim": "RELEASED", "answer": "AFTER_SALE_REQUESTED", "dispute": "AFTER_SALE_REFUSED",
                    "decide": "AFTER_SALE_DISPUTED"}[action]
        code: int | None = None if o.state == expected else 6021
        if action == "dispute" and by_agent and code is None:
            code = 6022  # only the buyer takes a refused claim to the arbiter
        if action == "claim":
            if code is None and (o.deadline_at is None or now > o.deadline_at):
                code = 6021
            if code is None and n > o.amount - o.buyer_refund:
                code = 6001
            self.keyed(code, lambda k: svc.claim_after_sale(self.buyer(o.buyer), order_id=o.order_id, amount=n,
                                                            reason="r", idem_key=k))
            if code is None:
                o.state, o.after_sale_amount, o.deadline_at = "AFTER_SALE_REQUESTED", n, now + 2 * DAY
        elif action == "answer":
            self.expect(code, lambda: svc.answer_after_sale(self.agent(o.shop), order_id=o.order_id, accept=flag,
                                                            idem_key=self.key()))
            if code is None and flag:
                self.model.grant_after_sale(o, now)
            elif code is None:
                o.state, o.deadline_at = "AFTER_SALE_REFUSED", now + 7 * DAY
        elif action == "dispute":
            who = self.agent(o.shop) if by_agent else self.buyer(o.buyer)
            self.keyed(code, lambda k: svc.dispute(who, order_id=o.order_id, reason="r", idem_key=k))
            if code is None:
                o.state, o.deadline_at = "AFTER_SALE_DISPUTED", now + 7 * DAY
        else:
            part = {"release": 0, "refund": claim, "split": n}[outcome]
            if code is None and outcome == "split" and n >= claim:
                code = 6001
            covered = sum(self.model.available(f"{kind}:{o.shop}", o.currency) for kind in ("shop", "deposit"))
            if code is None and part > covered:
                code = 6011
            arbiter = Actor(user_id="judge", role="arbiter")
            self.expect(code, lambda: svc.decide(
                arbiter, order_id=o.order_id, outcome=outcome,  # type: ignore[arg-type]
                buyer_amount=n if outcome == "split" else None, idem_key=self.key()))
            if code is None:
                assert not part or self.model.pay_after_sale(o, part)
                o.state, o.deadline_at = "AFTER_SALE_RESOLVED", None

    @rule(slot=st.integers(0, SLOTS - 1), who=st.sampled_from(["stranger", "agent", "arbiter"]))
    def wrong_actor_confirms(self, slot: int, who: str) -> None:
        order_id, o = self.order(slot)
        if o is None:
            return
        actor = {"stranger": self.buyer("nobody"), "agent": self.agent(o.shop),
                 "arbiter": Actor(user_id="judge", role="arbiter")}[who]
        self.touch(o)
        self.expect(6022, lambda: self.service.confirm(actor, order_id=order_id))

    # -- transfers ---------------------------------------------------------------------------------

    @rule(sender=st.sampled_from(USERS), to=st.sampled_from(USERS),
          amount=st.integers(1, 8000), currency=st.sampled_from(CURRENCIES))
    def transfer(self, sender: str, to: str, amount: int, currency: str) -> None:
        if sender == to:
            return
        now = self.clock.now
        code = 6041 if self.model.pin_locked(sender, now) else (
            self.model.spend_check(sender, currency, amount, now))
        result = self.keyed(code, lambda k: self.service.transfer(
            self.buyer(sender), conversation_id="c", to_account=f"user:{to}", amount=amount,
            currency=currency, pin=PIN, idem_key=k))
        if code is None:
            self.model.move((f"user:{sender}", "available"), ("platform", "pending_transfer"),
                            currency, amount)
            self.model.transfers.append(MTransfer(result.transfer_id, sender, to, amount,
                                                  currency, now + DAY))
            self.model.spends.append((sender, currency, now, amount))
            self.model.pins[sender].failures = 0

    @precondition(lambda self: self.model.transfers)
    @rule(index=st.integers(0, 100), accept=st.booleans())
    def answer_transfer(self, index: int, accept: bool) -> None:
        pending = [t for t in self.model.transfers if t.state == "PENDING"]
        pool = pending if pending and index % 5 else self.model.transfers
        t = pool[index % len(pool)]
        if t.state == "PENDING" and self.clock.now >= t.expires_at:
            self.model.expire(t)
        code = None if t.state == "PENDING" else 6021
        method = self.service.accept_transfer if accept else self.service.decline_transfer
        self.expect(code, lambda: method(self.buyer(t.to), transfer_id=t.transfer_id))
        if code is None:
            t.state = "ACCEPTED" if accept else "DECLINED"
            self.model.move(("platform", "pending_transfer"),
                            (f"user:{t.to if accept else t.sender}", "available"),
                            t.currency, t.amount)

    @rule(user=st.sampled_from(USERS))
    def wrong_pin(self, user: str) -> None:
        now = self.clock.now
        pin = self.model.pins[user]
        if self.model.pin_locked(user, now):
            code = 6041
        else:
            pin.failures += 1
            code = 6040
            if pin.failures >= 5:
                pin.failures, pin.locked_until, code = 0, now + LOCK_MS, 6041
        other = next(u for u in USERS if u != user)
        self.expect(code, lambda: self.service.transfer(
            self.buyer(user), conversation_id="c", to_account=f"user:{other}", amount=1, currency="CNY",
            pin="000000", idem_key=self.key()))

    # -- time ----------------------------------------------------------------------------------------

    @rule(step=st.sampled_from([-2 * DAY, -1, 1, HOUR, DAY, 3 * DAY, 5 * DAY, 10 * DAY]))
    def time_passes(self, step: int) -> None:
        self.clock.advance(step)
        expected = self.model.time_out(self.clock.now)
        changes = self.service.run_due()
        assert {(c.entity_kind, c.entity_id) for c in changes} == expected

    # -- idempotency -------------------------------------------------------------------------------

    @precondition(lambda self: self.keys)
    @rule(index=st.integers(0, 1000))
    def replay(self, index: int) -> None:
        key, make_call, first = self.keys[index % len(self.keys)]
        assert make_call(key) == first

    @precondition(lambda self: self.keys)
    @rule(index=st.integers(0, 1000))
    def reuse_key_with_other_params(self, index: int) -> None:
        key, _, first = self.keys[index % len(self.keys)]
        if isinstance(first, FundingReceipt):
            call = lambda: self.service.deposit(first.owner, 10**9, "CNY", key)  # noqa: E731
        elif isinstance(first, Order):
            call = lambda: self.service.pay(  # noqa: E731
                self.buyer(first.buyer_id), order_id="other", pin=PIN, idem_key=key)
        else:
            call = lambda: self.service.transfer(  # noqa: E731
                self.buyer(first.from_user), conversation_id="c", to_account=first.to_account,
                amount=first.amount + 1, currency=first.currency, pin=PIN, idem_key=key)
        self.expect(6030, call)

    # -- agreement ---------------------------------------------------------------------------------

    @invariant()
    def store_agrees_with_model(self) -> None:
        rows = self.store.read(lambda sql: sql.rows(
            "SELECT owner, kind, currency, balance FROM accounts"))
        actual = {(o, k, c): b for o, k, c, b in rows if b}
        assert actual == {k: v for k, v in self.model.balances.items() if v}
        for order_id, mo in self.model.orders.items():
            so = self.service.get_order(order_id)
            assert (so.state.value, so.held, so.auto_confirm_at, so.paused_remaining_ms,
                    so.extended, so.amount, so.deadline_at, so.after_sale_amount, so.after_sale_refund) == (
                        mo.state, mo.held, mo.auto_confirm_at, mo.paused, mo.extended, mo.amount,
                        mo.deadline_at, mo.after_sale_amount, mo.after_sale_refund), order_id
        for mt in self.model.transfers:
            assert self.service.get_transfer(mt.transfer_id).state.value == mt.state
        check_invariants(self.store)


class PostgresLedgerMachine(LedgerMachine):
    store_kind = "postgres"


FAST = settings(max_examples=30, stateful_step_count=80, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])


class TestModelSqlite(LedgerMachine.TestCase):  # type: ignore[name-defined]
    """Random operations on SQLite agree with the model and keep every invariant."""

    settings = FAST


class TestModelPostgres(PostgresLedgerMachine.TestCase):  # type: ignore[name-defined]
    """Random operations on PostgreSQL agree with the model and keep every invariant."""

    settings = FAST
