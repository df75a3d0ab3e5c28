"""All SQL of the ledger, shared by the SQLite and PostgreSQL stores.

Every method runs inside the caller's transaction (a :class:`~payments.store.Sql`).
Row locks (``FOR UPDATE``) are taken on PostgreSQL only; SQLite already holds the single
write lock for the whole transaction. Locks are always taken in the same order - entity
row, then accounts sorted by key, then the event sequence - so concurrent money
transactions cannot deadlock one another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from payments.errors import InsufficientBalance
from payments.ledger import SPENDING_KINDS, AccountKey, Posting
from payments.models import Order, PaymentEvent, StatementLine, Transfer
from payments.store import Sql

ORDER_COLUMNS: Final = tuple(Order.model_fields)
TRANSFER_COLUMNS: Final = tuple(Transfer.model_fields)


class ConcurrentUpdate(Exception):
    """A compare-and-set found a different version: the store retries the transaction."""


@dataclass(frozen=True)
class IdempotencyRecord:
    op: str
    params_hash: str
    response: str | None


@dataclass(frozen=True)
class PinRecord:
    hash: str
    failures: int
    locked_until: int | None
    version: int
    scheme: str = "argon2id"
    """How ``hash`` was made (:mod:`payments.pin`): ``argon2id`` or ``hmac-sha256``."""
    key_id: str | None = None
    """Which pepper keyed an ``hmac-sha256`` hash (its fingerprint, never the pepper)."""


def _column_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if hasattr(value, "value"):  # enums
        return value.value
    return value


class Repo:
    """Typed access to the ledger tables inside one transaction."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql
        self._lock = " FOR UPDATE" if sql.dialect == "postgresql" else ""

    # -- orders and transfers ------------------------------------------------------------

    def get_order(self, order_id: str, *, lock: bool = False) -> Order | None:
        rows = self.sql.rows(
            f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE order_id = ?"
            + (self._lock if lock else ""),
            (order_id,),
        )
        return Order.model_validate(dict(zip(ORDER_COLUMNS, rows[0], strict=True))) if rows else None

    def orders_in_conversation(self, conversation_id: str) -> list[Order]:
        rows = self.sql.rows(
            f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE conversation_id = ? ORDER BY created_at, order_id",
            (conversation_id,),
        )
        return [Order.model_validate(dict(zip(ORDER_COLUMNS, row, strict=True))) for row in rows]

    def disputed_orders(self, limit: int) -> list[Order]:
        """Orders waiting for an arbiter, the nearest decision deadline first (a dispute always
        sets ``deadline_at``; the condition lets the partial deadline index serve the query)."""
        rows = self.sql.rows(
            f"SELECT {', '.join(ORDER_COLUMNS)} FROM orders WHERE deadline_at IS NOT NULL "
            "AND state IN ('DISPUTED', 'AFTER_SALE_DISPUTED') "
            "ORDER BY deadline_at, order_id LIMIT ?",
            (limit,),
        )
        return [Order.model_validate(dict(zip(ORDER_COLUMNS, row, strict=True))) for row in rows]

    def insert_order(self, order: Order) -> None:
        self._insert("orders", ORDER_COLUMNS, order)

    def update_order(self, order: Order, expected_version: int) -> None:
        self._update("orders", "order_id", ORDER_COLUMNS, order, expected_version)

    def get_transfer(self, transfer_id: str, *, lock: bool = False) -> Transfer | None:
        rows = self.sql.rows(
            f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM transfers WHERE transfer_id = ?"
            + (self._lock if lock else ""),
            (transfer_id,),
        )
        if not rows:
            return None
        return Transfer.model_validate(dict(zip(TRANSFER_COLUMNS, rows[0], strict=True)))

    def insert_transfer(self, transfer: Transfer) -> None:
        self._insert("transfers", TRANSFER_COLUMNS, transfer)

    def update_transfer(self, transfer: Transfer, expected_version: int) -> None:
        self._update("transfers", "transfer_id", TRANSFER_COLUMNS, transfer, expected_version)

    def due_orders(self, now: int, states: list[str], limit: int) -> list[str]:
        marks = ", ".join("?" for _ in states)
        rows = self.sql.rows(
            "SELECT order_id FROM orders WHERE auto_confirm_at IS NOT NULL "
            f"AND auto_confirm_at <= ? AND state IN ({marks}) "
            "ORDER BY auto_confirm_at LIMIT ?",
            (now, *states, limit),
        )
        return [r[0] for r in rows]

    def due_deadlines(self, now: int, states: list[str], limit: int) -> list[str]:
        """Orders in ``states`` whose ``deadline_at`` has passed (unpaid offers, unanswered
        refund requests)."""
        marks = ", ".join("?" for _ in states)
        rows = self.sql.rows(
            "SELECT order_id FROM orders WHERE deadline_at IS NOT NULL "
            f"AND deadline_at <= ? AND state IN ({marks}) "
            "ORDER BY deadline_at LIMIT ?",
            (now, *states, limit),
        )
        return [r[0] for r in rows]

    def due_transfers(self, now: int, limit: int) -> list[str]:
        rows = self.sql.rows(
            "SELECT transfer_id FROM transfers WHERE state = 'PENDING' AND expires_at <= ? "
            "ORDER BY expires_at LIMIT ?",
            (now, limit),
        )
        return [r[0] for r in rows]

    def _insert(self, table: str, columns: tuple[str, ...], view: Order | Transfer) -> None:
        values = [_column_value(getattr(view, c)) for c in columns]
        self.sql.run(
            f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})",
            values,
        )

    def _update(
        self,
        table: str,
        key: str,
        columns: tuple[str, ...],
        view: Order | Transfer,
        expected_version: int,
    ) -> None:
        sets = [c for c in columns if c != key]
        changed = self.sql.run(
            f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in sets)} "
            f"WHERE {key} = ? AND version = ?",
            [*(_column_value(getattr(view, c)) for c in sets), getattr(view, key),
             expected_version],
        )
        if changed != 1:
            raise ConcurrentUpdate(f"{table} {getattr(view, key)} changed concurrently")

    # -- accounts and journal ------------------------------------------------------------

    def lock_accounts(self, keys: list[AccountKey]) -> None:
        """Create missing accounts and lock them, in sorted key order."""
        for key in sorted(set(keys)):
            self.sql.run(
                "INSERT INTO accounts (owner, kind, currency, balance) VALUES (?, ?, ?, 0) "
                "ON CONFLICT (owner, kind, currency) DO NOTHING",
                (key.owner, key.kind.value, key.currency),
            )
            if self._lock:
                self.sql.rows(
                    "SELECT id FROM accounts WHERE owner = ? AND kind = ? AND currency = ?"
                    + self._lock,
                    (key.owner, key.kind.value, key.currency),
                )

    def post(
        self, posting: Posting, now: int, idem: tuple[str, str] | None = None
    ) -> tuple[int, dict[AccountKey, int]]:
        """Write one journal transaction and apply it to the balances.

        Debits of non-world accounts are conditional (``balance >= amount``), so a balance
        can never go below zero even without the CHECK backstop. Returns the transaction
        id and each touched account's balance after it.
        """
        self.lock_accounts(posting.accounts)
        scope, key = idem or (None, None)
        tx_id: int = self.sql.rows(
            "INSERT INTO journal (kind, currency, ref_kind, ref_id, idem_scope, idem_key, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (posting.kind.value, posting.currency, posting.ref_kind, posting.ref_id, scope,
             key, now),
        )[0][0]
        after: dict[AccountKey, int] = {}
        for leg in sorted(posting.legs, key=lambda leg: leg.account):
            acc = leg.account
            if leg.direction == "D":
                rows = self.sql.rows(
                    "UPDATE accounts SET balance = balance - ? "
                    "WHERE owner = ? AND kind = ? AND currency = ? "
                    "AND (kind = 'world' OR balance >= ?) RETURNING id, balance",
                    (leg.amount, acc.owner, acc.kind.value, acc.currency, leg.amount),
                )
                if not rows:
                    raise InsufficientBalance(
                        currency=acc.currency, needed=leg.amount, available=self.balance(acc)
                    )
            else:
                rows = self.sql.rows(
                    "UPDATE accounts SET balance = balance + ? "
                    "WHERE owner = ? AND kind = ? AND currency = ? RETURNING id, balance",
                    (leg.amount, acc.owner, acc.kind.value, acc.currency),
                )
            account_id, balance = rows[0]
            after[acc] = balance
            self.sql.run(
                "INSERT INTO entries (tx_id, account_id, direction, amount, balance_after, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (tx_id, account_id, leg.direction, leg.amount, balance, now),
            )
        return tx_id, after

    def balance(self, key: AccountKey) -> int:
        rows = self.sql.rows(
            "SELECT balance FROM accounts WHERE owner = ? AND kind = ? AND currency = ?",
            (key.owner, key.kind.value, key.currency),
        )
        return int(rows[0][0]) if rows else 0

    def available_balances(self, owner: str) -> dict[str, int]:
        rows = self.sql.rows(
            "SELECT currency, balance FROM accounts WHERE owner = ? AND kind = 'available' ORDER BY currency",
            (owner,),
        )
        return {str(currency): int(balance) for currency, balance in rows}

    def spent_since(self, owner: str, currency: str, since: int) -> int:
        """Sum of the owner's payments and transfers out made at or after ``since``."""
        kinds = ", ".join(f"'{k.value}'" for k in SPENDING_KINDS)
        rows = self.sql.rows(
            "SELECT COALESCE(SUM(e.amount), 0) FROM entries e "
            "JOIN accounts a ON a.id = e.account_id JOIN journal j ON j.id = e.tx_id "
            "WHERE a.owner = ? AND a.kind = 'available' AND a.currency = ? "
            f"AND e.direction = 'D' AND e.created_at >= ? AND j.kind IN ({kinds})",
            (owner, currency, since),
        )
        return int(rows[0][0])

    def statement(
        self, key: AccountKey, limit: int, before: int | None
    ) -> list[StatementLine]:
        rows = self.sql.rows(
            "SELECT e.id, e.tx_id, j.kind, j.ref_kind, j.ref_id, e.direction, e.amount, "
            "e.balance_after, e.created_at FROM entries e "
            "JOIN accounts a ON a.id = e.account_id JOIN journal j ON j.id = e.tx_id "
            "WHERE a.owner = ? AND a.kind = ? AND a.currency = ? AND e.id < ? "
            "ORDER BY e.id DESC LIMIT ?",
            (key.owner, key.kind.value, key.currency,
             before if before is not None else 2**62, limit),
        )
        return [
            StatementLine(
                entry_id=r[0], tx_id=r[1], tx_kind=r[2], ref_kind=r[3], ref_id=r[4],
                amount=r[6] if r[5] == "C" else -r[6], balance_after=r[7], created_at=r[8],
            )
            for r in rows
        ]

    # -- idempotency ---------------------------------------------------------------------

    def idem_lookup(self, scope: str, key: str) -> IdempotencyRecord | None:
        rows = self.sql.rows(
            "SELECT op, params_hash, response FROM idempotency WHERE scope = ? AND key = ?",
            (scope, key),
        )
        return IdempotencyRecord(*rows[0]) if rows else None

    def idem_claim(self, scope: str, key: str, op: str, params_hash: str, now: int) -> bool:
        """Reserve the key; False if another transaction committed it first.

        On PostgreSQL a concurrent claim of the same key waits here until the first
        claimer commits or rolls back, which is what serialises concurrent replays.
        """
        rows = self.sql.rows(
            "INSERT INTO idempotency (scope, key, op, params_hash, response, created_at) "
            "VALUES (?, ?, ?, ?, NULL, ?) ON CONFLICT (scope, key) DO NOTHING RETURNING key",
            (scope, key, op, params_hash, now),
        )
        return bool(rows)

    def idem_complete(self, scope: str, key: str, response: str) -> None:
        self.sql.run(
            "UPDATE idempotency SET response = ? WHERE scope = ? AND key = ? "
            "AND response IS NULL",
            (response, scope, key),
        )

    # -- events --------------------------------------------------------------------------

    def add_event(
        self,
        entity_kind: str,
        entity_id: str,
        conversation_id: str,
        action: str,
        state: str,
        payload: dict[str, Any],
        now: int,
    ) -> int:
        event_id: int = self.sql.rows(
            "UPDATE event_seq SET last_id = last_id + 1 WHERE singleton = 1 RETURNING last_id"
        )[0][0]
        self.sql.run(
            "INSERT INTO events (id, entity_kind, entity_id, conversation_id, action, state, "
            "payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, entity_kind, entity_id, conversation_id, action, state,
             json.dumps(payload, sort_keys=True, separators=(",", ":")), now),
        )
        return event_id

    def events_after(self, cursor: int, limit: int) -> list[PaymentEvent]:
        rows = self.sql.rows(
            "SELECT id, entity_kind, entity_id, conversation_id, action, state, payload, "
            "created_at FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (cursor, limit),
        )
        return [
            PaymentEvent(
                id=r[0], entity_kind=r[1], entity_id=r[2], conversation_id=r[3], action=r[4],
                state=r[5], payload=json.loads(r[6]), created_at=r[7],
            )
            for r in rows
        ]

    # -- payment PINs --------------------------------------------------------------------

    def get_pin(self, user_id: str, *, lock: bool = False) -> PinRecord | None:
        rows = self.sql.rows(
            "SELECT hash, failures, locked_until, version, COALESCE(scheme, 'argon2id'), key_id "
            "FROM pins WHERE user_id = ?"
            + (self._lock if lock else ""),
            (user_id,),
        )
        return PinRecord(*rows[0]) if rows else None

    def put_pin(
        self, user_id: str, pin_hash: str, now: int, scheme: str = "argon2id",
        key_id: str | None = None,
    ) -> None:
        self.sql.run(
            "INSERT INTO pins (user_id, hash, failures, locked_until, version, updated_at, "
            "scheme, key_id) VALUES (?, ?, 0, NULL, 1, ?, ?, ?) ON CONFLICT (user_id) DO UPDATE "
            "SET hash = excluded.hash, failures = 0, locked_until = NULL, "
            "version = pins.version + 1, updated_at = excluded.updated_at, "
            "scheme = excluded.scheme, key_id = excluded.key_id",
            (user_id, pin_hash, now, scheme, key_id),
        )

    def rekey_pin(
        self, user_id: str, version: int, pin_hash: str, scheme: str, key_id: str
    ) -> None:
        """Store the same PIN under another hash (scheme or pepper); not a PIN change, so
        ``version`` stays and payments verified against it meanwhile still commit."""
        self.sql.run(
            "UPDATE pins SET hash = ?, scheme = ?, key_id = ? WHERE user_id = ? AND version = ?",
            (pin_hash, scheme, key_id, user_id, version),
        )

    def pin_failed(self, user_id: str, now: int, max_attempts: int, lock_ms: int) -> PinRecord:
        """Count a wrong PIN; the ``max_attempts``-th in a row locks the PIN until later."""
        self.sql.run(
            "UPDATE pins SET failures = failures + 1, updated_at = ? WHERE user_id = ?",
            (now, user_id),
        )
        self.sql.run(
            "UPDATE pins SET failures = 0, locked_until = ? WHERE user_id = ? "
            "AND failures >= ?",
            (now + lock_ms, user_id, max_attempts),
        )
        record = self.get_pin(user_id)
        if record is None:  # only called for a user whose PIN was just read in this transaction
            raise LookupError(f"no PIN record for {user_id}")
        return record

    def pin_succeeded(self, user_id: str) -> None:
        self.sql.run(
            "UPDATE pins SET failures = 0 WHERE user_id = ? AND failures > 0", (user_id,)
        )
