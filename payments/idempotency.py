"""Idempotency keys: one key, one effect, one answer - kept as long as the journal.

A money command names ``(scope, key, op, params)``; the scope is the acting user
(``user:<id>``) or, for funding by the marketplace backend, ``funding:<owner>``. The
first successful execution stores a hash of ``op`` and ``params`` together with its
response, in the same transaction as its journal entries. Later calls with the same key
get that stored response back, even if the entity has changed since; with other
parameters they are refused (``IdempotencyConflict``). A refused command stores nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from payments.errors import IdempotencyConflict, InvalidRequest

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class IdempotencyKey:
    scope: str
    key: str
    op: str
    params_hash: str

    @classmethod
    def of(cls, scope: str, key: object, op: str, params: dict[str, Any]) -> IdempotencyKey:
        if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidRequest(
                "A request key (1-200 characters) is required for payments.", field="idem_key"
            )
        text = json.dumps({"op": op, "params": params}, sort_keys=True, separators=(",", ":"))
        return cls(scope, key, op, hashlib.sha256(text.encode()).hexdigest())

    def check(self, stored_hash: str) -> None:
        if stored_hash != self.params_hash:
            raise IdempotencyConflict(key=self.key)

    @property
    def ref(self) -> tuple[str, str]:
        return (self.scope, self.key)
