"""The server API: what the marketplace's own backend calls (JSON over HTTP).

Funding (deposits and withdrawals), balances and statements, and read access
to orders and transfers. Every request carries ``Authorization: Bearer
<SERVER_SECRET>``; user tokens are not accepted here. It runs on its own port
(``API_PORT``) because it takes request bodies, which the websocket port does
not, and because it should not be reachable from browsers at all.

Amounts are integers in minor units; a float, a string or a missing key is a
400 with a payment error code, never a rounded guess.

``GET /api/v1/conversations/<id>/evidence`` exports a conversation's signed evidence
package (:mod:`chat.evidence`): it needs the chat store, which the node hands over
with ``EVIDENCE_KEY``; without the key the route answers 503.

``GET /api/v1/reports?after=&limit=`` pages through the reports parties made (oldest first,
``next_after`` while there may be more) and ``GET /api/v1/shops/<shop>/blocks`` lists a
shop's blocks, both sides' (:mod:`chat.handlers.safety`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from payments import PaymentError, PaymentService
from payments.webhooks import WebhookOutbox

from . import evidence
from .store.base import Store

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS = {6010: 402, 6020: 404, 6021: 409, 6023: 409, 6030: 409, 6060: 409, 6022: 403, 6041: 423, 6090: 503}


def _error(status: int, code: int, message: str, **details: Any) -> web.Response:
    return web.json_response({"code": code, "message": message, **details}, status=status)


def build_app(
    service: PaymentService, server_secret: str, *, store: Store | None = None, evidence_key: str = "",
    now_ms: Callable[[], int] | None = None,
) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not server_secret:
            return _error(503, 5002, "the server API is disabled: set SERVER_SECRET")
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(given[7:].strip(), server_secret):
            return _error(401, 2002, "a valid 'Authorization: Bearer <server secret>' header is required")
        try:
            return await handler(request)
        except PaymentError as exc:
            return web.json_response(exc.to_dict(), status=_STATUS.get(exc.code, 400))

    async def body(request: web.Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except RecursionError as exc:  # json nests by recursion: a deep body is refused, not a 500
            raise web.HTTPBadRequest(
                text=json.dumps({"code": 1004, "message": "the body is nested too deeply"}),
                content_type="application/json",
            ) from exc
        except (ValueError, json.JSONDecodeError) as exc:
            raise web.HTTPBadRequest(
                text=json.dumps({"code": 1004, "message": f"the body must be a JSON object: {exc}"}),
                content_type="application/json",
            ) from exc
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(
                text=json.dumps({"code": 1004, "message": "the body must be a JSON object"}),
                content_type="application/json",
            )
        return data

    def funding(kind: str) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            data = await body(request)
            command = service.deposit if kind == "deposit" else service.withdraw
            # The ledger validates types itself (a float amount is 6001, not rounded).
            args: list[Any] = [data.get("owner"), data.get("amount"), data.get("currency"), data.get("key")]
            receipt = await asyncio.to_thread(command, *args)
            return web.json_response(receipt.model_dump(mode="json"), status=201)

        return handle

    async def balance(request: web.Request) -> web.Response:
        owner = request.match_info["owner"]
        balances = await asyncio.to_thread(service.balances, owner)
        return web.json_response({"owner": owner, "balances": balances})

    async def statement(request: web.Request) -> web.Response:
        q = request.query
        try:
            limit = int(q.get("limit", "50"))
            before = int(q["before"]) if "before" in q else None
        except ValueError:
            return _error(400, 1004, "limit and before must be integers")
        result = await asyncio.to_thread(
            service.statement, request.match_info["owner"], q.get("currency", ""), limit=limit, before=before
        )
        return web.json_response(result.model_dump(mode="json"))

    async def order(request: web.Request) -> web.Response:
        found = await asyncio.to_thread(service.get_order, request.match_info["id"])
        return web.json_response(found.model_dump(mode="json"))

    async def transfer(request: web.Request) -> web.Response:
        found = await asyncio.to_thread(service.get_transfer, request.match_info["id"])
        return web.json_response(found.model_dump(mode="json"))

    def settle_withdrawal(outcome: str) -> Handler:
        async def handle(request: web.Request) -> web.Response:
            data = await body(request)
            desk = service.withdrawals
            command = desk.complete if outcome == "complete" else desk.fail
            note = data.get("reference" if outcome == "complete" else "reason")
            done = await asyncio.to_thread(command, request.match_info["id"], note)  # type: ignore[arg-type]
            return web.json_response(done.model_dump(mode="json"))

        return handle

    async def withdrawal(request: web.Request) -> web.Response:
        found = await asyncio.to_thread(service.withdrawals.get, request.match_info["id"])
        return web.json_response(found.model_dump(mode="json"))

    async def credit(request: web.Request) -> web.Response:
        kind, _, subject = request.match_info["subject"].partition(":")
        if kind == "shop":
            found = await asyncio.to_thread(service.ratings.shop_credit, subject)
        elif kind == "user":
            found = await asyncio.to_thread(service.ratings.buyer_credit, subject)
        else:
            return _error(400, 6000, "the subject must look like shop:<id> or user:<id>")
        return web.json_response(found.model_dump(mode="json"))

    async def order_ratings(request: web.Request) -> web.Response:
        found = await asyncio.to_thread(service.ratings.ratings_of, request.match_info["id"])
        return web.json_response({"ratings": [r.model_dump(mode="json") for r in found]})

    async def reconciliation(request: web.Request) -> web.Response:
        q = request.query
        try:
            since, until = int(q["from"]), int(q["to"])
        except (KeyError, ValueError):
            return _error(400, 1004, "from and to (epoch ms) are required integers")
        report = await asyncio.to_thread(service.reconciliation, q.get("currency", ""), since, until)
        return web.json_response(report.model_dump(mode="json"))

    webhooks = WebhookOutbox(service.store, service.clock)

    async def failed_webhooks(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _error(400, 1004, "limit must be an integer")
        found = await asyncio.to_thread(webhooks.failed, limit, request.query.get("after", ""))
        return web.json_response({"webhooks": [d.view() for d in found],
                                  "next_after": found[-1].id if len(found) == limit else None})

    async def replay_webhook(request: web.Request) -> web.Response:
        delivery_id = request.match_info["id"]
        count = await asyncio.to_thread(webhooks.replay, None if delivery_id == "failed" else delivery_id)
        if delivery_id != "failed" and count == 0:
            found = await asyncio.to_thread(webhooks.get, delivery_id)
            if found is None:
                return _error(404, 6020, "no such webhook", id=delivery_id)
            return _error(409, 6021, f"only a failed webhook can be replayed; this one is {found.state}",
                          state=found.state)
        return web.json_response({"replayed": count})

    async def export_evidence(request: web.Request) -> web.Response:
        if store is None or not evidence_key:
            return _error(503, 5002, "evidence export is disabled: set EVIDENCE_KEY")
        conv_id = request.match_info["id"]
        at = now_ms() if now_ms is not None else int(time.time() * 1000)
        package = await evidence.build(store, conv_id, evidence_key.encode(), at, service)
        if package is None:
            return _error(404, 3001, "no such conversation", id=conv_id)
        return web.json_response(package)

    async def reports(request: web.Request) -> web.Response:
        if store is None:
            return _error(503, 5002, "reports need the chat store")
        try:
            after = int(request.query.get("after", "0"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            return _error(400, 1004, "after and limit must be integers")
        if not 1 <= limit <= 1000 or after < 0:
            return _error(400, 1004, "limit must be 1 to 1000 and after at least 0")
        found = await store.reports(after=after, limit=limit)
        return web.json_response({"reports": [dataclasses.asdict(r) for r in found],
                                  "next_after": found[-1].id if len(found) == limit else None})

    async def shop_blocks(request: web.Request) -> web.Response:
        if store is None:
            return _error(503, 5002, "blocks need the chat store")
        shop = request.match_info["shop"]
        found = await store.blocks_of_shop(shop)
        return web.json_response({"shop": shop, "blocks": [dataclasses.asdict(b) for b in found]})

    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app.add_routes(
        [
            web.post("/api/v1/deposits", funding("deposit")),
            web.post("/api/v1/withdrawals", funding("withdraw")),
            web.get("/api/v1/withdrawals/{id}", withdrawal),
            web.post("/api/v1/withdrawals/{id}/complete", settle_withdrawal("complete")),
            web.post("/api/v1/withdrawals/{id}/fail", settle_withdrawal("fail")),
            web.get("/api/v1/balances/{owner}", balance),
            web.get("/api/v1/statements/{owner}", statement),
            web.get("/api/v1/orders/{id}", order),
            web.get("/api/v1/transfers/{id}", transfer),
            web.get("/api/v1/reconciliation", reconciliation),
            web.get("/api/v1/credit/{subject}", credit),
            web.get("/api/v1/orders/{id}/ratings", order_ratings),
            web.get("/api/v1/webhooks/failed", failed_webhooks),
            web.post("/api/v1/webhooks/{id}/replay", replay_webhook),
            web.get("/api/v1/conversations/{id}/evidence", export_evidence),
            web.get("/api/v1/reports", reports),
            web.get("/api/v1/shops/{shop}/blocks", shop_blocks),
        ]
    )
    return app


class ApiServer:
    """The server API's listener, started and stopped with the hub node."""

    def __init__(self, service: PaymentService, server_secret: str, host: str, port: int,
                 *, reuse_port: bool = False, store: Store | None = None, evidence_key: str = "",
                 now_ms: Callable[[], int] | None = None) -> None:
        self.app = build_app(service, server_secret, store=store, evidence_key=evidence_key, now_ms=now_ms)
        self.host = host
        self.port = port
        self.reuse_port = reuse_port
        """Bind with SO_REUSEPORT: every worker of ``serve --workers`` answers on this port."""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_port=self.reuse_port or None)
        await site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
