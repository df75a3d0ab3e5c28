"""Overload: a node refuses what it cannot answer in time, with a typed, retryable answer,
loses nothing it accepted, and takes sends again as soon as the load drops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from chat.admission import Admission

from .client import Client
from .conftest import token
from .test_delivery import open_pair


async def test_sends_beyond_the_limit_are_refused_then_retried_without_loss(
    server_factory: Callable[..., Any],
) -> None:
    """The store is held (as a saturated disk would); two sends are in progress, the limit
    is two: the third is refused with 5003 and ``retry_after_ms``, stores nothing, and
    goes through when resent with the same ``cmid`` once the store moves again. (Three
    devices of one buyer: a connection's requests are answered in order.)"""
    server = await server_factory(overload_ms=100, overload_min_pending=2)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, agent, conv = await open_pair(url)
    phone = await Client.connect(url, token("b1"))
    tablet = await Client.connect(url, token("b1"))
    store = server.hub.store
    gate, both_held = asyncio.Event(), asyncio.Event()
    original = store.append
    held = 0

    async def held_append(*args: Any, **kwargs: Any) -> Any:
        nonlocal held
        held += 1
        if held == 2:
            both_held.set()
        await gate.wait()
        return await original(*args, **kwargs)

    store.append = held_append  # type: ignore[method-assign]
    first = asyncio.create_task(phone.send_text(conv, "one", "m1"))
    second = asyncio.create_task(tablet.send_text(conv, "two", "m2"))
    await asyncio.wait_for(both_held.wait(), 5)
    assert server.hub.admission.pending == 2
    refused = await buyer.send_text(conv, "three", "m3")
    assert refused["type"] == "error" and refused["code"] == 5003
    assert 0 < refused["details"]["retry_after_ms"] <= 7500
    gate.set()
    assert sorted([(await t)["seq"] for t in (first, second)]) == [2, 3]
    again = await buyer.send_text(conv, "three", "m3")
    assert again["type"] == "ack" and again["seq"] == 4 and not again["duplicate"]
    texts = [m["body"].get("text") for m in await agent.messages(conv, 3)]
    assert sorted(texts[:2]) == ["one", "two"] and texts[2] == "three"  # m3 exactly once, after the retry
    # Back to normal at once: nothing in progress, nothing refused.
    assert server.hub.admission.pending == 0
    for n in range(5):
        assert (await buyer.send_text(conv, f"after {n}", f"n{n}"))["type"] == "ack"


def test_below_the_floor_nothing_is_refused_even_when_the_loop_is_late() -> None:
    admission = Admission(budget_ms=100, min_pending=4)
    admission.lag = 2.0
    assert [admission.enter() for _ in range(4)] == [None] * 4
    retry = admission.enter()
    assert retry is not None and 1000 <= retry <= 3000  # the lag, spread by ±50%


def test_the_limit_follows_the_answer_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 1,000 answers a second and a 100 ms budget, about 100 sends may be in progress."""
    clock = [1000.0]
    monkeypatch.setattr("chat.admission.time.monotonic", lambda: clock[0])
    admission = Admission(budget_ms=100, min_pending=10)
    for _ in range(40):  # 4 s of 1,000 answers a second
        for _ in range(100):
            assert admission.enter() is None
            admission.leave()
        clock[0] += 0.1
    taken = 0
    while admission.enter() is None:
        taken += 1
    assert 90 <= taken <= 110
    admission.lag = 0.0
    for _ in range(taken):
        admission.leave()
    assert admission.enter() is None


def test_off_refuses_nothing() -> None:
    admission = Admission(budget_ms=0, min_pending=0)
    admission.lag = 10.0
    assert all(admission.enter() is None for _ in range(1000))
