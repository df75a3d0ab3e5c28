"""A payments client that the crash test kills with SIGKILL at a random moment.

Usage: ``python crash_worker.py STORE_URL ROUND SEED``. It performs random payments,
transfers, accepts, confirms, deposits (also into the shop's deposit) and after-sale claims
and answers, with the
deadlines of transfers and after-sale claims short enough that timers act between kills, and prints one JSON line per operation
*after* the call returned (so after commit), flushed: those are the acknowledged ops.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys

from payments import Actor, PaymentService, PaymentSettings, PinHashing, open_store
from payments.errors import PaymentError, PinWrong

PIN = "135790"
BUYERS = ["u1", "u2", "u3", "u4"]
AGENT = Actor(user_id="agent", role="agent", shop_id="s1")


def ack(**fields: object) -> None:
    print(json.dumps(fields, sort_keys=True), flush=True)


def main() -> None:
    url, round_, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    store = open_store(url)
    service = PaymentService(store, settings=PaymentSettings(
        pin_hashing=PinHashing(time_cost=1, memory_cost_kib=8, parallelism=1),
        transfer_expiry_ms=300, after_sale_answer_period_ms=300, limits={}))
    for user in BUYERS:
        with contextlib.suppress(PinWrong):  # set in an earlier round
            service.set_pin(Actor(user_id=user, role="buyer"), PIN)
        service.deposit(f"user:{user}", 10**9, "CNY", f"seed-{user}")
    paid: list[tuple[str, str]] = []
    pending: list[tuple[str, str]] = []
    released: list[tuple[str, str]] = []
    claimed: list[tuple[str, str]] = []
    for i in range(100_000):
        kind = rng.choice(["pay", "pay", "transfer", "accept", "confirm", "deposit", "due", "claim", "answer",
                           "fund_deposit"])
        user = rng.choice(BUYERS)
        actor = Actor(user_id=user, role="buyer")
        key = f"r{round_}-{i}"
        try:
            if kind == "pay":
                order_id = f"o-{key}"
                service.offer(AGENT, order_id=order_id, conversation_id="c", shop_id="s1",
                              buyer_id=user, listing_id="l", title="tea",
                              unit_price=rng.randint(1, 10_000), quantity=1, currency="CNY")
                service.pay(actor, order_id=order_id, pin=PIN, idem_key=key)
                paid.append((user, order_id))
                ack(op="pay", user=user, key=key, order_id=order_id)
            elif kind == "transfer":
                to = rng.choice([b for b in BUYERS if b != user])
                amount = rng.randint(1, 5000)
                t = service.transfer(actor, conversation_id="c", to_account=f"user:{to}", amount=amount,
                                     currency="CNY", pin=PIN, idem_key=key)
                pending.append((to, t.transfer_id))
                ack(op="transfer", user=user, key=key, to=to, amount=amount,
                    transfer_id=t.transfer_id)
            elif kind == "accept" and pending:
                to, transfer_id = pending.pop(rng.randrange(len(pending)))
                service.accept_transfer(Actor(user_id=to, role="buyer"),
                                        transfer_id=transfer_id, idem_key=key)
                ack(op="accept", user=to, key=key, transfer_id=transfer_id)
            elif kind == "confirm" and paid:
                buyer_id, order_id = paid.pop(rng.randrange(len(paid)))
                service.confirm(Actor(user_id=buyer_id, role="buyer"), order_id=order_id,
                                idem_key=key)
                released.append((buyer_id, order_id))
                ack(op="confirm", user=buyer_id, key=key, order_id=order_id)
            elif kind == "claim" and released:
                buyer_id, order_id = released.pop(rng.randrange(len(released)))
                amount = rng.randint(1, service.get_order(order_id).amount)
                service.claim_after_sale(Actor(user_id=buyer_id, role="buyer"), order_id=order_id, amount=amount,
                                         reason="broke", idem_key=key)
                claimed.append((buyer_id, order_id))
                ack(op="claim", user=buyer_id, key=key, order_id=order_id, amount=amount)
            elif kind == "answer" and claimed:
                buyer_id, order_id = claimed.pop(rng.randrange(len(claimed)))
                accept = rng.random() < 0.7
                service.answer_after_sale(AGENT, order_id=order_id, accept=accept, idem_key=key)
                ack(op="answer", user=AGENT.user_id, key=key, order_id=order_id, accept=accept)
            elif kind == "fund_deposit":
                amount = rng.randint(1, 10**5)
                service.deposit("deposit:s1", amount, "CNY", key)
                ack(op="fund_deposit", user="s1", key=key, amount=amount)
            elif kind == "deposit":
                amount = rng.randint(1, 10**6)
                service.deposit(f"user:{user}", amount, "CNY", key)
                ack(op="deposit", user=user, key=key, amount=amount)
            elif kind == "due":
                service.run_due()
        except PaymentError as exc:
            if exc.code != 6021:  # an expired transfer cannot be accepted; fine
                raise


if __name__ == "__main__":
    main()
