"""kill -9 in the middle of payments: acknowledged ops survive, the rest is all or nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from paysupport import PG_URL, settings

from payments import Actor, PaymentService, check_invariants, open_store
from payments.store import Store

WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 4


def run_and_kill(url: str, round_: int, rng: random.Random) -> list[dict[str, object]]:
    """Start a worker, SIGKILL it after a random delay, return what it acknowledged."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    lines: list[str] = []
    with subprocess.Popen([sys.executable, str(WORKER), url, str(round_),
                           str(rng.randrange(2**32))],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          text=True) as proc:
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []))
        reader.start()
        deadline = time.monotonic() + 10
        while not lines and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)  # wait until it is really paying
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == -signal.SIGKILL, stderr
    assert lines, f"the worker acknowledged nothing: {stderr}"
    return [json.loads(line) for line in lines if line.strip()]


def verify_after_sale(service: PaymentService, op: dict[str, object]) -> None:
    """An acknowledged claim or answer is committed: the order moved on, a replay of the key
    answers as the first time (and moves nothing), and a paid claim is in the journal once."""
    order_id, key = str(op["order_id"]), str(op["key"])
    if op["op"] == "claim":
        order = service.claim_after_sale(Actor(user_id=str(op["user"]), role="buyer"), order_id=order_id,
                                         amount=int(str(op["amount"])), reason="broke", idem_key=key)
        assert order.after_sale_amount == op["amount"] and order.state.value != "RELEASED"
        return
    agent = Actor(user_id=str(op["user"]), role="agent", shop_id="s1")
    order = service.answer_after_sale(agent, order_id=order_id, accept=bool(op["accept"]), idem_key=key)
    expected = {"AFTER_SALE_REFUNDED", "AFTER_SALE_DISPUTED"} if op["accept"] else {"AFTER_SALE_REFUSED"}
    assert order.state.value in expected, (op, order.state)
    paid = service.store.read(lambda sql: sql.rows(
        "SELECT COUNT(*) FROM journal WHERE ref_kind = 'order' AND ref_id = ? AND kind = 'after_sale_refund'",
        (order_id,)))[0][0]
    assert paid == (1 if order.state.value == "AFTER_SALE_REFUNDED" else 0)


def verify(store: Store, acked: list[dict[str, object]]) -> None:
    """Every acknowledged op is committed; replaying it answers the same and moves nothing."""
    check_invariants(store)
    service = PaymentService(store, settings=settings(limits={}))
    before = store.read(lambda sql: sql.rows("SELECT owner, kind, balance FROM accounts "
                                             "ORDER BY owner, kind"))
    for op in acked:
        key, user = str(op["key"]), str(op["user"])
        if op["op"] in ("claim", "answer"):
            verify_after_sale(service, op)
            continue
        scope = "deposit:s1" if op["op"] == "fund_deposit" else f"user:{user}"
        recorded = store.read(lambda sql, s=scope, k=key: sql.rows(
            "SELECT j.kind FROM journal j WHERE j.idem_key = ? AND j.idem_scope IN (?, ?)",
            (k, s, f"funding:{s}")))
        assert len(recorded) == 1, f"acknowledged {op} is not in the journal exactly once"
        actor = Actor(user_id=user, role="buyer")
        if op["op"] == "pay":
            order = service.pay(actor, order_id=str(op["order_id"]), pin="000000",
                                idem_key=key)
            assert order.state.value == "HELD" and order.paid_at is not None
        elif op["op"] == "transfer":
            t = service.transfer(actor, conversation_id="c", to_account=f"user:{op['to']}",
                                 amount=int(str(op["amount"])), currency="CNY", pin="000000",
                                 idem_key=key)
            assert t.transfer_id == op["transfer_id"]
        elif op["op"] == "deposit":
            r = service.deposit(f"user:{user}", int(str(op["amount"])), "CNY", key)
            assert r.amount == op["amount"]
        elif op["op"] == "fund_deposit":
            r = service.deposit("deposit:s1", int(str(op["amount"])), "CNY", key)
            assert r.amount == op["amount"]
    after = store.read(lambda sql: sql.rows("SELECT owner, kind, balance FROM accounts "
                                            "ORDER BY owner, kind"))
    assert after == before
    check_invariants(store)


@pytest.mark.slow
def test_kill_9_sqlite(tmp_path: Path) -> None:
    """Several SIGKILLed rounds on one SQLite file lose no acknowledged operation."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    rng = random.Random()
    for round_ in range(ROUNDS):
        acked = run_and_kill(url, round_, rng)
        store = open_store(url)
        try:
            verify(store, acked)
        finally:
            store.close()


@pytest.mark.slow
def test_kill_9_several_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    """Three processes paying on one file at once, all killed: nothing acknowledged is lost."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    open_store(url).close()  # create the schema before the race
    rng = random.Random()
    results: list[list[dict[str, object]]] = [[], [], []]
    threads = [threading.Thread(target=lambda i=i: results[i].extend(
        run_and_kill(url, 100 + i, random.Random(rng.random())))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results)
    store = open_store(url)
    try:
        verify(store, [op for acked in results for op in acked])
    finally:
        store.close()


@pytest.mark.slow
def test_kill_9_postgres() -> None:
    """The same against PostgreSQL."""
    import uuid

    import psycopg

    schema = f"pay_crash_{uuid.uuid4().hex[:12]}"
    url = f"{PG_URL}?schema={schema}"
    rng = random.Random()
    try:
        for round_ in range(ROUNDS):
            acked = run_and_kill(url, round_, rng)
            store = open_store(url)
            try:
                verify(store, acked)
            finally:
                store.close()
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
