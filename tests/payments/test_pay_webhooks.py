"""The webhook outbox keeps what the marketplace must be told: each ledger event queued
exactly once (also with several ingesters at once), each attempt handed to one sender,
nothing dropped when the receiver keeps failing."""

from __future__ import annotations

import threading

from paysupport import FakeClock, offer

from payments import PaymentService
from payments.store import Store
from payments.webhooks import WebhookOutbox


def test_events_are_queued_exactly_once_by_concurrent_ingesters(
    service: PaymentService, store: Store, clock: FakeClock
) -> None:
    for i in range(40):
        offer(service, f"o{i}", price=10 + i)
    outboxes = [WebhookOutbox(store, clock) for _ in range(4)]
    counts: list[int] = []

    def ingest(box: WebhookOutbox) -> None:
        while n := box.ingest(limit=7):
            counts.append(n)

    threads = [threading.Thread(target=ingest, args=(b,)) for b in outboxes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 40
    assert outboxes[0].counts() == {"pending": 40}
    ids = store.read(lambda sql: sql.rows("SELECT id FROM webhooks ORDER BY id"))
    assert len({r[0] for r in ids}) == 40


def test_an_attempt_goes_to_one_sender_and_comes_back_when_its_lease_ends(
    service: PaymentService, store: Store, clock: FakeClock
) -> None:
    offer(service, "o1")
    first, second = WebhookOutbox(store, clock), WebhookOutbox(store, clock)
    first.ingest()
    taken = first.claim(lease_ms=1_000)
    assert len(taken) == 1 and taken[0].attempts == 1
    assert second.claim(lease_ms=1_000) == []  # leased to the first sender
    clock.advance(1_000)  # the first sender died mid-attempt
    again = second.claim(lease_ms=1_000)
    assert [d.id for d in again] == [taken[0].id] and again[0].attempts == 2
    second.delivered(again[0].id)
    assert second.counts() == {"delivered": 1}
    clock.advance(10_000)
    assert second.claim(lease_ms=1_000) == []


def test_retries_end_as_failed_and_a_replay_starts_over(
    service: PaymentService, store: Store, clock: FakeClock
) -> None:
    offer(service, "o1")
    box = WebhookOutbox(store, clock)
    box.ingest()
    for _ in range(3):
        (d,) = box.claim(lease_ms=100)
        assert box.attempt_failed(d, "HTTP 500", retry_in_ms=1_000, give_up_after_ms=3_500) == "pending"
        clock.advance(1_000)
    (d,) = box.claim(lease_ms=100)
    assert box.attempt_failed(d, "HTTP 503", retry_in_ms=1_000, give_up_after_ms=3_500) == "failed"
    clock.advance(60_000)
    assert box.claim(lease_ms=100) == []  # failed deliveries wait for a replay
    (failed,) = box.failed()
    assert failed.last_error == "HTTP 503" and failed.attempts == 4
    assert box.replay(failed.id) == 1 and box.replay(failed.id) == 0
    (d,) = box.claim(lease_ms=100)
    assert box.attempt_failed(d, "HTTP 500", retry_in_ms=1_000, give_up_after_ms=3_500) == "pending"


def test_a_ledger_that_gains_webhooks_does_not_resend_its_past(store: Store, clock: FakeClock) -> None:
    """The cursor starts at the events present when the table was made: here, none."""
    assert WebhookOutbox(store, clock).ingest() == 0


def test_a_pass_with_nothing_new_writes_nothing(service: PaymentService, store: Store, clock: FakeClock) -> None:
    """The sender asks on every pass; only a pass with new events takes a write transaction."""
    box = WebhookOutbox(store, clock)
    offer(service, "o1")
    assert box.ingest() == 1
    writes: list[object] = []
    real_write = store.write
    store.write = lambda fn: writes.append(fn) or real_write(fn)  # type: ignore[method-assign]
    try:
        assert box.ingest() == 0 and writes == []
        offer(service, "o2")
        writes.clear()
        assert box.ingest() == 1 and len(writes) == 1
    finally:
        store.write = real_write  # type: ignore[method-assign]


def test_delivered_webhooks_are_forgotten_after_the_retention_period(
    service: PaymentService, store: Store, clock: FakeClock
) -> None:
    box = WebhookOutbox(store, clock)
    for i in range(3):
        offer(service, f"o{i}")
    box.ingest()
    first, second, third = box.claim(lease_ms=100)
    box.delivered(first.id)
    clock.advance(10_000)
    box.delivered(second.id)
    box.attempt_failed(third, "HTTP 500", retry_in_ms=1, give_up_after_ms=0)
    assert box.prune(delivered_before=clock() - 5_000) == 1
    assert box.get(first.id) is None and box.get(second.id) is not None
    assert box.prune(delivered_before=clock() + 1) == 1
    assert box.counts() == {"failed": 1}  # failed ones stay until replayed
