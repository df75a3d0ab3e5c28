"""Shared helpers of the payments tests: stores, a settable clock, actors, fast settings."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator

import psycopg

from payments import Actor, PaymentService, PaymentSettings, PinHashing
from payments.postgres_store import PostgresStore
from payments.sqlite_store import SqliteStore
from payments.store import Store

PG_URL = os.environ.get("PAYMENTS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
STORES = ["sqlite", "postgres"]
START = 1_700_000_000_000
DAY = 86_400_000
PIN = "135790"

FAST_PIN = PinHashing(time_cost=1, memory_cost_kib=8, parallelism=1)


class FakeClock:
    """Epoch milliseconds that only move when a test says so (also backwards)."""

    def __init__(self, now: int = START) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> int:
        self.now += ms
        return self.now


@contextlib.contextmanager
def make_store(kind: str, directory: str | None = None) -> Iterator[Store]:
    """A fresh, empty store of ``kind``: a new SQLite file or a new PostgreSQL schema."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            store = SqliteStore(os.path.join(tmp, "payments.db"))
            try:
                yield store
            finally:
                store.close()
    else:
        schema = f"pay_test_{uuid.uuid4().hex[:12]}"
        store = PostgresStore(PG_URL, schema=schema, pool_size=10)
        try:
            yield store
        finally:
            store.close()
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def settings(**overrides: object) -> PaymentSettings:
    return PaymentSettings.model_validate({"pin_hashing": FAST_PIN, **overrides})


def buyer(user_id: str = "bob") -> Actor:
    return Actor(user_id=user_id, role="buyer")


def agent(shop_id: str = "s1", user_id: str = "alice") -> Actor:
    return Actor(user_id=user_id, role="agent", shop_id=shop_id)


ARBITER = Actor(user_id="judge", role="arbiter")


def offer(service: PaymentService, order_id: str = "o1", *, price: int = 60, qty: int = 1,
          currency: str = "CNY", buyer_id: str = "bob", shop_id: str = "s1") -> None:
    service.offer(agent(shop_id), order_id=order_id, conversation_id=f"c-{order_id}",
                  shop_id=shop_id, buyer_id=buyer_id, listing_id="l1", title="Green tea",
                  unit_price=price, quantity=qty, currency=currency)


def funded_buyer(service: PaymentService, amount: int = 10_000, user_id: str = "bob",
                 currency: str = "CNY") -> Actor:
    """A buyer with a PIN and ``amount`` in the wallet."""
    actor = buyer(user_id)
    service.set_pin(actor, PIN)
    service.deposit(f"user:{user_id}", amount, currency, f"fund-{user_id}-{currency}")
    return actor
