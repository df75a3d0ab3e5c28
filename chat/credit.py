"""``credit``: the buyer's credit for the shop's agents, next to the conversation.

The shop's credit is public (``GET /presence/shop/<id>``, shown by the widget before a chat
starts); a buyer's is not: only the agents of a shop the buyer talks to may read it, through
one of that shop's conversations, so an agent cannot look up arbitrary users. It is read from
the ledger like the shop's (payments must be on: else ``5002``), and cached for 15 s per buyer:
agents switching between a buyer's conversations cost one read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from payments import PaymentError
from payments.trade_record import buyer_trade_record

from .handlers.context import Connection, Handler
from .protocol.backoffice_frames import CreditRequest
from .protocol.errors import ErrorCode, ProtocolError

if TYPE_CHECKING:
    from .money import MoneyDesk

log = logging.getLogger(__name__)

CACHE_MS = 15_000
_CACHE_MAX = 50_000


class BuyerCredit:
    """Answers ``credit`` for one hub node, over its money desk's ledger."""

    def __init__(self, desk: MoneyDesk) -> None:
        self.desk = desk
        self._cache: dict[str, tuple[int, dict[str, Any]]] = {}

    async def view(self, buyer: str, now_ms: int) -> dict[str, Any]:
        """Credit and trade record of ``buyer`` (at most ``CACHE_MS`` old)."""
        cached = self._cache.get(buyer)
        if cached is not None and now_ms - cached[0] < CACHE_MS:
            return cached[1]
        service = self.desk.service
        try:
            credit = await asyncio.to_thread(service.ratings.buyer_credit, buyer)
            record = await asyncio.to_thread(buyer_trade_record, service.store, buyer)
        except PaymentError as exc:
            raise ProtocolError(exc.code, exc.message) from exc
        except OSError as exc:
            log.warning("could not read the credit of %s", buyer, exc_info=True)
            raise ProtocolError(ErrorCode.UNAVAILABLE, "the ledger cannot be read right now") from exc
        view = {**credit.model_dump(mode="json", include={"subject", "score", "level", "positive_rate_bps", "ratings",
                                                            "disputes_lost"}),
                "trades": record.trades, "disputes": record.disputes}
        if len(self._cache) > _CACHE_MAX:
            self._cache.clear()
        self._cache[buyer] = (now_ms, view)
        return view

    async def answer(self, c: Connection, frame: CreditRequest, rid: int | None) -> None:
        if c.me.role != "agent":
            raise ProtocolError(ErrorCode.ROLE_NOT_ALLOWED, "only the shop's agents read a buyer's credit")
        record = await c.conversation(frame.conv)
        view = await self.view(record.buyer, c.hub.clock.now_ms())
        c.reply({"type": "credit", "re": rid, "conv": record.id, **view})


def credit_handlers(desk: MoneyDesk) -> dict[type, Handler]:
    """The ``credit`` entry of the dispatch table (registered with the money commands)."""
    return {CreditRequest: BuyerCredit(desk).answer}
