"""Webhooks, end to end: a real hub, a real HTTP receiver that fails, times out and answers
slowly, signatures checked the way a marketplace would, failures kept and replayed."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from chat.server import ChatServer
from chat.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, WebhookSender, WebhookSettings, verify
from payments.webhooks import WebhookOutbox

from .test_money import PIN, api, ready_pair

NEW_SECRET, OLD_SECRET = "whsec-new-0123456789", "whsec-old-9876543210"


@dataclass
class Receiver:
    """The marketplace's endpoint. ``script`` says what to do with the next requests:
    ``ok``, ``fail`` (HTTP 500), ``hang`` (answer after the sender's timeout), ``slow``
    (answer 200 late, but in time); then ``ok`` forever unless ``always`` is set."""

    secret: str
    script: list[str] = field(default_factory=list)
    always: str = "ok"
    got: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every request whose signature verified: (event id header, body)."""
    bad_signatures: int = 0
    requests: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        if not verify(body, request.headers.get(SIGNATURE_HEADER, ""), self.secret):
            self.bad_signatures += 1
            return web.Response(status=400)
        what = self.script.pop(0) if self.script else self.always
        if what == "hang":
            await asyncio.sleep(2)
        elif what == "slow":
            await asyncio.sleep(0.3)
        if what == "fail":
            return web.Response(status=500)
        self.got.append((request.headers[EVENT_ID_HEADER], json.loads(body)))
        return web.Response(status=204)

    def delivered_ids(self) -> set[str]:
        return {event_id for event_id, _ in self.got}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(secret=OLD_SECRET)  # a receiver that has not learned the new secret yet
    app = web.Application()
    app.router.add_post("/hooks", r.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    r.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    yield r
    await runner.cleanup()


def sender_for(server: ChatServer, url: str, **overrides: Any) -> WebhookSender:
    service = server.money.service  # type: ignore[union-attr]
    settings = WebhookSettings(url=url, secrets=(NEW_SECRET, OLD_SECRET), timeout=0.5, base_delay_ms=50,
                               max_delay_ms=200, retry_for_ms=60_000, interval=0.05)
    for key, value in overrides.items():
        settings = WebhookSettings(**{**settings.__dict__, key: value})
    return WebhookSender(WebhookOutbox(service.store, service.clock), settings)


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_the_hub_sends_signed_webhooks_for_every_order_change(
    server_factory: Any, receiver: Receiver
) -> None:
    """Configured through the environment like a deployment: WEBHOOK_URL and two secrets
    during a rotation; the receiver knows only the old one and still verifies."""
    server = await server_factory(webhook_url=receiver.url, webhook_secret=NEW_SECRET,
                                  webhook_secret_previous=OLD_SECRET)
    url = f"ws://127.0.0.1:{server.port}/"
    buyer, agent, conv = await ready_pair(server, url)
    offer = await agent.request({"type": "offer", "conv": conv, "price": 2500, "key": "offer-wh-1"})
    order = offer["view"]["order_id"]
    await buyer.request({"type": "pay", "conv": conv, "order": order, "pin": PIN, "key": "pay-wh-001"})
    await wait_for(lambda: len([b for _, b in receiver.got if b["type"].startswith("order.")]) >= 2)
    orders = [(event_id, body) for event_id, body in receiver.got if body["type"].startswith("order.")]
    kinds = [body["type"] for _, body in orders]
    assert kinds == ["order.offered", "order.paid"]  # the chat's own events: test_chat_webhooks
    _, paid = orders[1]
    assert paid["data"]["entity_id"] == order and paid["data"]["state"] == "HELD"
    assert paid["data"]["conversation_id"] == conv and paid["data"]["object"]["amount"] == 2500
    assert [event_id for event_id, _ in receiver.got] == [body["id"] for _, body in receiver.got]
    assert receiver.bad_signatures == 0


async def test_failures_timeouts_and_slow_answers_are_retried_until_delivered(
    server_factory: Any, receiver: Receiver
) -> None:
    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    _buyer, agent, conv = await ready_pair(server, url)
    receiver.script = ["fail", "hang", "fail", "slow"]
    sender = sender_for(server, receiver.url)
    await sender.start()
    try:
        for i in range(5):
            await agent.request({"type": "offer", "conv": conv, "price": 100 + i, "key": f"offer-re-{i:03}"})
        await wait_for(lambda: len(receiver.delivered_ids()) == 5)
        # The receiver has the last one before the sender has recorded it: wait for that too.
        await wait_for(lambda: sender.outbox.counts() == {"delivered": 5})
    finally:
        await sender.stop()
    # At least once: every event arrived, maybe more than once (a hung attempt may land
    # late); receivers deduplicate on the event id.
    counts = Counter(event_id for event_id, _ in receiver.got)
    assert len(counts) == 5 and receiver.requests >= 5 + 3
    outbox = sender.outbox
    assert outbox.counts() == {"delivered": 5}


async def test_a_receiver_that_keeps_failing_leaves_failed_webhooks_to_replay(
    server_factory: Any, receiver: Receiver
) -> None:
    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    _buyer, agent, conv = await ready_pair(server, url)
    receiver.always = "fail"
    sender = sender_for(server, receiver.url, retry_for_ms=300)
    await sender.start()
    try:
        await agent.request({"type": "offer", "conv": conv, "price": 700, "key": "offer-fail-1"})
        await wait_for(lambda: sender.outbox.counts().get("failed") == 1)
        status, listed = await asyncio.to_thread(api, server, "GET", "/api/v1/webhooks/failed")
        assert status == 200 and len(listed["webhooks"]) == 1
        failed = listed["webhooks"][0]
        assert failed["type"] == "order.offered" and failed["attempts"] >= 2
        assert failed["last_error"] == "HTTP 500" and failed["event"]["id"] == failed["id"]
        # The marketplace fixes its endpoint and replays.
        receiver.always = "ok"
        status, done = await asyncio.to_thread(api, server, "POST", f"/api/v1/webhooks/{failed['id']}/replay")
        assert status == 200 and done == {"replayed": 1}
        await wait_for(lambda: failed["id"] in receiver.delivered_ids())
        again = await asyncio.to_thread(api, server, "POST", f"/api/v1/webhooks/{failed['id']}/replay")
        assert again[0] == 409  # delivered: nothing to replay
        assert (await asyncio.to_thread(api, server, "POST", "/api/v1/webhooks/evt_nope/replay"))[0] == 404
        status, listed = await asyncio.to_thread(api, server, "GET", "/api/v1/webhooks/failed")
        assert listed["webhooks"] == []
    finally:
        await sender.stop()


async def test_several_senders_share_the_work_without_losing_any(
    server_factory: Any, receiver: Receiver
) -> None:
    """Three senders (three processes' worth) on one ledger: every event delivered, and
    each attempt made by one sender only (no duplicates while the receiver is healthy)."""
    server = await server_factory()
    url = f"ws://127.0.0.1:{server.port}/"
    _buyer, agent, conv = await ready_pair(server, url)
    senders = [sender_for(server, receiver.url) for _ in range(3)]
    for s in senders:
        await s.start()
    try:
        for i in range(30):
            await agent.request({"type": "offer", "conv": conv, "price": 10 + i, "key": f"offer-many-{i:02}"})
        await wait_for(lambda: len(receiver.delivered_ids()) == 30)
    finally:
        for s in senders:
            await s.stop()
    assert len(receiver.got) == 30  # each exactly once when nothing failed
