"""Tables of the ledger, written once for both dialects.

``journal``, ``entries`` and ``events`` are append-only: triggers refuse UPDATE and
DELETE, so a correction can only be a new, reversing transaction. Balances in
``accounts`` are a cache of the entries, updated in the same transaction and guarded by
``CHECK (kind = 'world' OR balance >= 0)``. ``event_seq`` hands out event ids under a row
lock, so ids increase in commit order and a reader polling ``id > cursor`` never skips
an event that commits late.
"""

from __future__ import annotations

from collections.abc import Callable

from payments.store import Dialect

_TABLES = """
CREATE TABLE IF NOT EXISTS accounts (
    id {pk},
    owner TEXT NOT NULL,
    kind TEXT NOT NULL
        CHECK (kind IN ('available', 'escrow_hold', 'pending_transfer', 'fees', 'world')),
    currency TEXT NOT NULL,
    balance {int} NOT NULL DEFAULT 0,
    UNIQUE (owner, kind, currency),
    CHECK (kind = 'world' OR balance >= 0),
    CHECK ((kind = 'world') = (owner = 'world'))
){strict};

CREATE TABLE IF NOT EXISTS journal (
    id {pk},
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    ref_kind TEXT,
    ref_id TEXT,
    idem_scope TEXT,
    idem_key TEXT,
    created_at {int} NOT NULL
){strict};
CREATE INDEX IF NOT EXISTS journal_ref ON journal (ref_kind, ref_id);

CREATE TABLE IF NOT EXISTS entries (
    id {pk},
    tx_id {int} NOT NULL REFERENCES journal (id),
    account_id {int} NOT NULL REFERENCES accounts (id),
    direction TEXT NOT NULL CHECK (direction IN ('D', 'C')),
    amount {int} NOT NULL CHECK (amount > 0),
    balance_after {int} NOT NULL,
    created_at {int} NOT NULL
){strict};
CREATE INDEX IF NOT EXISTS entries_account ON entries (account_id, id);
CREATE INDEX IF NOT EXISTS entries_account_time ON entries (account_id, created_at);
CREATE INDEX IF NOT EXISTS entries_tx ON entries (tx_id);

CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    shop_id TEXT NOT NULL,
    buyer_id TEXT NOT NULL,
    listing_id TEXT NOT NULL,
    title TEXT NOT NULL,
    unit_price {int} NOT NULL CHECK (unit_price > 0),
    quantity {int} NOT NULL CHECK (quantity > 0),
    amount {int} NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL,
    version {int} NOT NULL,
    held {int} NOT NULL CHECK (held >= 0),
    tracking_note TEXT,
    extended {int} NOT NULL,
    auto_confirm_at {int},
    paused_remaining_ms {int},
    deadline_at {int},
    refund_amount {int},
    refund_reason TEXT,
    dispute_reason TEXT,
    disputed_by TEXT,
    outcome TEXT,
    buyer_refund {int} NOT NULL,
    seller_gross {int} NOT NULL,
    fee {int} NOT NULL,
    settled_by TEXT,
    created_at {int} NOT NULL,
    updated_at {int} NOT NULL,
    paid_at {int},
    shipped_at {int},
    settled_at {int},
    after_sale_amount {int},
    after_sale_reason TEXT,
    after_sale_refund {int} NOT NULL DEFAULT 0,
    after_sale_from_deposit {int} NOT NULL DEFAULT 0
){strict};
CREATE INDEX IF NOT EXISTS orders_due ON orders (auto_confirm_at)
    WHERE auto_confirm_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS orders_conversation ON orders (conversation_id);

CREATE TABLE IF NOT EXISTS transfers (
    transfer_id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    from_user TEXT NOT NULL,
    to_user TEXT NOT NULL,
    from_account TEXT,
    to_account TEXT,
    amount {int} NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL,
    version {int} NOT NULL,
    expires_at {int} NOT NULL,
    created_at {int} NOT NULL,
    updated_at {int} NOT NULL,
    settled_at {int}
){strict};
CREATE INDEX IF NOT EXISTS transfers_due ON transfers (expires_at) WHERE state = 'PENDING';

CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    op TEXT NOT NULL,
    params_hash TEXT NOT NULL,
    response TEXT,
    created_at {int} NOT NULL,
    PRIMARY KEY (scope, key)
){strict};

CREATE TABLE IF NOT EXISTS events (
    id {int} PRIMARY KEY,
    entity_kind TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at {int} NOT NULL
){strict};
CREATE INDEX IF NOT EXISTS events_entity ON events (entity_kind, entity_id);

CREATE TABLE IF NOT EXISTS event_seq (
    singleton {int} PRIMARY KEY CHECK (singleton = 1),
    last_id {int} NOT NULL
){strict};
INSERT INTO event_seq (singleton, last_id) VALUES (1, 0) ON CONFLICT DO NOTHING;

-- One rating per side of a released order (payments.ratings).
CREATE TABLE IF NOT EXISTS ratings (
    order_id TEXT NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('buyer', 'shop')),
    rater TEXT NOT NULL,
    score TEXT NOT NULL CHECK (score IN ('good', 'neutral', 'bad')),
    comment TEXT,
    item {int},
    service {int},
    shipping {int},
    amended {int} NOT NULL,
    created_at {int} NOT NULL,
    updated_at {int} NOT NULL,
    PRIMARY KEY (order_id, side)
){strict};

-- Withdrawals wait in the payout clearing account until the payout is confirmed.
CREATE TABLE IF NOT EXISTS withdrawals (
    withdrawal_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    amount {int} NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'COMPLETED', 'FAILED')),
    reference TEXT,
    reason TEXT,
    created_at {int} NOT NULL,
    settled_at {int}
){strict};
CREATE INDEX IF NOT EXISTS withdrawals_pending ON withdrawals (created_at) WHERE state = 'PENDING';

-- Webhook deliveries of the events above (payments.webhooks): the cursor moves in the
-- transaction that queues the deliveries, so each event is queued exactly once.
CREATE TABLE IF NOT EXISTS webhook_cursor (
    singleton {int} PRIMARY KEY CHECK (singleton = 1),
    last_event {int} NOT NULL
){strict};
-- Starts at the events already there: a ledger that gains webhooks does not resend its past.
INSERT INTO webhook_cursor (singleton, last_event)
    SELECT 1, COALESCE(MAX(id), 0) FROM events WHERE true ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts {int} NOT NULL,
    next_at {int} NOT NULL,
    created_at {int} NOT NULL,
    delivered_at {int},
    last_error TEXT,
    retry_from {int} NOT NULL
){strict};
CREATE INDEX IF NOT EXISTS webhooks_due ON webhooks (next_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhooks_failed ON webhooks (id) WHERE state = 'failed';
CREATE INDEX IF NOT EXISTS webhooks_delivered ON webhooks (delivered_at) WHERE state = 'delivered';

CREATE TABLE IF NOT EXISTS pins (
    user_id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    failures {int} NOT NULL,
    locked_until {int},
    version {int} NOT NULL,
    updated_at {int} NOT NULL
){strict};

CREATE TABLE IF NOT EXISTS quick_pay (
    principal TEXT NOT NULL,
    currency TEXT NOT NULL,
    per_payment {int} NOT NULL CHECK (per_payment > 0),
    daily {int} NOT NULL CHECK (daily >= per_payment),
    updated_at {int} NOT NULL,
    PRIMARY KEY (principal, currency)
){strict};

CREATE TABLE IF NOT EXISTS quick_payments (
    order_id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount {int} NOT NULL CHECK (amount > 0),
    created_at {int} NOT NULL
){strict};
CREATE INDEX IF NOT EXISTS quick_payments_window ON quick_payments (principal, currency, created_at);
CREATE INDEX IF NOT EXISTS quick_payments_age ON quick_payments (created_at);
"""

APPEND_ONLY = ("journal", "entries", "events")

_SQLITE_TRIGGERS = """
CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;
"""

_POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION payments_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
"""

_POSTGRES_TRIGGERS = """
CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION payments_append_only();
CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION payments_append_only();
"""


def statements(dialect: Dialect) -> list[str]:
    """The DDL for ``dialect``, one statement per item, safe to run again."""
    if dialect == "sqlite":
        tables = _TABLES.format(pk="INTEGER PRIMARY KEY", int="INTEGER", strict=" STRICT")
        triggers = "".join(_SQLITE_TRIGGERS.format(table=t) for t in APPEND_ONLY)
        parts = _split(tables) + _split_triggers(triggers)
    else:
        tables = _TABLES.format(pk="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                                int="BIGINT", strict="")
        triggers = "".join(_POSTGRES_TRIGGERS.format(table=t) for t in APPEND_ONLY)
        parts = [*_split(tables), _POSTGRES_FUNCTION.strip(), *_split(triggers)]
    return parts


ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("orders", "deadline_at", "{int}"),
    ("transfers", "from_account", "TEXT"),
    ("transfers", "to_account", "TEXT"),
    ("pins", "scheme", "TEXT"),
    ("pins", "key_id", "TEXT"),
    ("orders", "after_sale_amount", "{int}"),
    ("orders", "after_sale_reason", "TEXT"),
    ("orders", "after_sale_refund", "{int} NOT NULL DEFAULT 0"),
    ("orders", "after_sale_from_deposit", "{int} NOT NULL DEFAULT 0"),
)
"""Columns added after the first release, so older files and databases gain them on open."""

BACKFILLS: tuple[str, ...] = (
    # Before accounts, a transfer moved money between the users' own wallets.
    "UPDATE transfers SET from_account = 'user:' || from_user WHERE from_account IS NULL",
    "UPDATE transfers SET to_account = 'user:' || to_user WHERE to_account IS NULL",
    # PINs were keyed by the bare user id, whatever the role; they become the buyer's
    # (agents set their own). A principal always holds a "/", which no id can.
    "UPDATE pins SET user_id = 'buyer/' || user_id WHERE user_id NOT LIKE '%/%'",
    # PINs hashed before keyed hashing are argon2id; they are re-keyed on next use.
    "UPDATE pins SET scheme = 'argon2id' WHERE scheme IS NULL",
)
"""Idempotent data upgrades, run after the columns exist."""


def upgrades(dialect: Dialect, has_column: Callable[[str, str], bool]) -> list[str]:
    """The statements that bring an existing ledger to this version (none on a fresh one)."""
    adds = []
    for table, column, template in ADDED_COLUMNS:
        kind = template.format(int="BIGINT" if dialect == "postgresql" else "INTEGER")
        if dialect == "postgresql":
            adds.append(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        elif not has_column(table, column):
            adds.append(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    # The timer's index over the new column (CREATE TABLE IF NOT EXISTS adds no column to
    # an old table, so it cannot be created with the tables).
    index = ("CREATE INDEX IF NOT EXISTS orders_deadline ON orders (deadline_at) "
             "WHERE deadline_at IS NOT NULL")
    return [*adds, index, *BACKFILLS]


def _split(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _split_triggers(script: str) -> list[str]:
    return [s.strip() + " END" for s in script.split("END;") if s.strip()]
