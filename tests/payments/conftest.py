"""Fixtures of the payments tests: every store test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from paysupport import STORES, FakeClock, make_store, settings

from payments import PaymentService, check_invariants
from payments.store import Store


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    with make_store(request.param) as s:
        yield s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store: Store, clock: FakeClock) -> Iterator[PaymentService]:
    svc = PaymentService(store, clock=clock, settings=settings())
    yield svc
    check_invariants(store)
