"""Accounts, not bare user ids: a buyer moves its own money, an agent its shop's, and each
principal (role + id) has its own PIN and idempotency keys. Ledgers written before
accounts existed upgrade in place."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from paysupport import PG_URL, PIN, agent, buyer, funded_buyer, offer, settings

from payments import PaymentService, TransferState, check_invariants
from payments.errors import Forbidden, InsufficientBalance, InvalidRequest, PinNotSet
from payments.postgres_store import PostgresStore
from payments.sqlite_store import SqliteStore
from payments.store import Store

AGENT_PIN = "975310"


def test_an_agent_spends_the_shops_account_with_its_own_pin(service: PaymentService) -> None:
    funded_buyer(service, 1_000, user_id="u77")
    same_id = agent("s1", "u77")
    with pytest.raises(PinNotSet):  # the buyer u77's PIN is not the agent u77's
        service.transfer(same_id, conversation_id="c", to_account="user:b2", amount=10, currency="CNY",
                         pin=PIN, idem_key="k1")
    service.set_pin(same_id, AGENT_PIN)
    with pytest.raises(InsufficientBalance):  # the shop has nothing; u77's wallet is not the shop's
        service.transfer(same_id, conversation_id="c", to_account="user:b2", amount=10, currency="CNY",
                         pin=AGENT_PIN, idem_key="k2")
    service.deposit("shop:s1", 500, "CNY", "fund-shop")
    sent = service.transfer(same_id, conversation_id="c", to_account="user:b2", amount=10, currency="CNY",
                            pin=AGENT_PIN, idem_key="k3")
    assert (sent.from_account, sent.to_account, sent.from_user, sent.to_user) == ("shop:s1", "user:b2", "u77", "b2")
    assert service.balance("shop:s1", "CNY") == 490 and service.balance("user:u77", "CNY") == 1_000
    # The buyer u77's PIN still works for the buyer.
    service.transfer(buyer("u77"), conversation_id="c", to_account="shop:s1", amount=5, currency="CNY",
                     pin=PIN, idem_key="k3")


def test_any_agent_of_the_receiving_shop_answers_and_nobody_else(service: PaymentService) -> None:
    funded_buyer(service, 1_000)
    sent = service.transfer(buyer(), conversation_id="c", to_account="shop:s1", amount=300, currency="CNY",
                            pin=PIN, idem_key="t1")
    for outsider in (agent("s2", "alice"), buyer("s1"), buyer("alice")):
        with pytest.raises(Forbidden):
            service.accept_transfer(outsider, transfer_id=sent.transfer_id)
    done = service.accept_transfer(agent("s1", "another"), transfer_id=sent.transfer_id)
    assert done.state is TransferState.ACCEPTED
    assert service.balance("shop:s1", "CNY") == 300 and service.balance("user:alice", "CNY") == 0


def test_a_transfer_to_ones_own_account_is_refused(service: PaymentService) -> None:
    service.deposit("shop:s1", 500, "CNY", "fund-shop")
    service.set_pin(agent(), AGENT_PIN)
    with pytest.raises(InvalidRequest):
        service.transfer(agent(), conversation_id="c", to_account="shop:s1", amount=1, currency="CNY",
                         pin=AGENT_PIN, idem_key="self")


def _reopen(kind: str, store: Store) -> Store:
    if kind == "sqlite":
        assert isinstance(store, SqliteStore)
        return SqliteStore(store.path)
    assert isinstance(store, PostgresStore)
    return PostgresStore(PG_URL, schema=store.schema, pool_size=2)


def _make_legacy(kind: str, store: Store) -> None:
    """Turn the ledger back into its pre-account shape: no account columns on transfers,
    PINs keyed by the bare user id."""
    statements = [
        "ALTER TABLE transfers DROP COLUMN from_account",
        "ALTER TABLE transfers DROP COLUMN to_account",
        "UPDATE pins SET user_id = substr(user_id, 7) WHERE user_id LIKE 'buyer/%'",
        *(f"ALTER TABLE orders DROP COLUMN {c}" for c in (
            "after_sale_amount", "after_sale_reason", "after_sale_refund", "after_sale_from_deposit")),
    ]
    if kind == "sqlite":
        assert isinstance(store, SqliteStore)
        with sqlite3.connect(store.path) as conn:
            for stmt in statements:
                conn.execute(stmt)
    else:
        assert isinstance(store, PostgresStore)
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{store.schema}"')
            for stmt in statements:
                conn.execute(stmt)


def test_a_ledger_from_before_accounts_upgrades_on_open(store: Store) -> None:
    kind = "sqlite" if isinstance(store, SqliteStore) else "postgres"
    first = PaymentService(store, settings=settings())
    funded_buyer(first, 1_000)
    pending = first.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=100, currency="CNY",
                             pin=PIN, idem_key="t1")
    offer(first, price=50)
    first.pay(buyer(), order_id="o1", pin=PIN, idem_key="p1")
    first.confirm(buyer(), order_id="o1")
    store.close()
    _make_legacy(kind, store)
    reopened = _reopen(kind, store)
    try:
        service = PaymentService(reopened, settings=settings())
        old = service.get_transfer(pending.transfer_id)
        assert (old.from_account, old.to_account) == ("user:bob", "user:carol")
        assert service.has_pin(buyer()) and not service.has_pin(agent("s1", "bob"))
        service.accept_transfer(buyer("carol"), transfer_id=pending.transfer_id)
        assert service.balance("user:carol", "CNY") == 100
        # Orders from before after-sale gain its columns, empty, and take a claim.
        released = service.get_order("o1")
        assert (released.after_sale_amount, released.after_sale_refund) == (None, 0)
        assert service.claim_after_sale(buyer(), order_id="o1", amount=10, reason="r").after_sale_amount == 10
        # The migrated PIN is the buyer's and still works.
        service.transfer(buyer(), conversation_id="c", to_account="user:carol", amount=1, currency="CNY",
                         pin=PIN, idem_key="t2")
        check_invariants(reopened)
    finally:
        reopened.close()
