"""What only the PostgreSQL store has to get right: its change clock against transactions
still open, group commit, a bad value in a batch, lost connections, its schema and epoch.

The contract every store keeps is in ``test_store_contract.py``; these use the same
database (``CHAT_TEST_PG``), a fresh schema each.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import psycopg
import pytest

from chat.store import pg_queries
from chat.store.pg_schema import LATEST
from chat.store.postgres import PostgresStore

from .test_store_contract import LISTING, PG_URL, drop_schemas


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"chat_test_{uuid.uuid4().hex[:12]}"
    yield name
    drop_schemas([name])


@pytest.fixture
async def stores(schema: str) -> AsyncIterator[Callable[[], PostgresStore]]:
    """Makes store instances ("nodes") on the test's schema; closes them afterwards."""
    made: list[PostgresStore] = []

    def make() -> PostgresStore:
        made.append(PostgresStore(PG_URL, schema=schema, pool_size=4))
        return made[-1]

    yield make
    for store in made:
        await store.close()


async def raw(schema: str) -> psycopg.AsyncConnection[object]:
    return await psycopg.AsyncConnection.connect(PG_URL, autocommit=True, options=f"-c search_path={schema}")


def batch_params(conv: str, cmid: str) -> dict[str, list[object]]:
    """APPEND_BATCH's parameters for one text message."""
    return {"conv": [conv], "sender": ["b"], "role": ["buyer"], "kind": ["text"], "body": [b"\x80"], "ts": [5],
            "cmid": [cmid], "digest": [b"x"], "auto": [False], "before": [b"{"], "after": [b"}"],
            "ev_ord": [], "ev_id": [], "ev_type": [], "ev_data": []}


async def test_token_taken_while_another_node_has_not_committed_lists_its_write(
    schema: str, stores: Callable[[], PostgresStore]
) -> None:
    """Another node's append transaction is open (its stamp taken) when the token is issued and
    commits after: the token still lists that conversation. A counter or sequence value
    taken inside the transaction would hide it forever."""
    store = stores()
    await store.start()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    await store.open_conversation("c2", "b", "s", {**LISTING, "id": "l2"}, "a", 1)
    other = await raw(schema)
    try:
        async with other.transaction():
            await other.execute(pg_queries.APPEND_BATCH, batch_params("c1", "late"))
            token = await store.change_token()
            await store.append("c2", "b", "buyer", "text", {"text": "quick"}, "q", 6)  # commits first
        assert sorted(c.id for c in await store.changed_since(token, buyer="b") or []) == ["c1", "c2"]
        later = await store.change_token()
        assert await store.changed_since(later, buyer="b") == []
    finally:
        await other.close()
    assert [m.cmid for m in await store.messages("c1")] == [None, "late"]


async def test_concurrent_appends_share_commits(schema: str, stores: Callable[[], PostgresStore]) -> None:
    """Hundreds of appends to as many conversations, sent at once, take far fewer transactions
    than messages (each batch stamps its conversations with one transaction id)."""
    store = stores()
    await store.start()
    convs = [f"c{i}" for i in range(300)]
    for conv in convs:
        await store.open_conversation(conv, "b", "s", {**LISTING, "id": conv}, "a", 1)
    await asyncio.gather(*(store.append(c, "b", "buyer", "text", {"text": "x"}, "m", 2) for c in convs))
    conn = await raw(schema)
    try:
        cur = await conn.execute("SELECT count(DISTINCT change) FROM conversations")
        row = await cur.fetchone()
    finally:
        await conn.close()
    assert row is not None and row[0] <= 30, f"{row[0]} transactions for 300 appends"


async def test_a_value_postgresql_refuses_fails_alone(stores: Callable[[], PostgresStore]) -> None:
    """A NUL character (which PostgreSQL text cannot hold) fails its own append only; the
    batch it shared is stored one by one."""
    store = stores()
    await store.start()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    results = await asyncio.gather(
        store.append("c1", "b", "buyer", "text", {"text": "ok1"}, "g1", 2),
        store.append("c1", "b\x00", "buyer", "text", {"text": "bad"}, "g2", 2),
        store.append("c1", "b", "buyer", "text", {"text": "ok2"}, "g3", 2),
        return_exceptions=True,
    )
    assert isinstance(results[1], Exception) and not isinstance(results[0], Exception)
    assert [m.body["text"] for m in await store.messages("c1", after=1)] == ["ok1", "ok2"]


async def test_lost_connections_are_unreachable_then_replaced(
    schema: str, stores: Callable[[], PostgresStore]
) -> None:
    """Connections cut by the server: the append in flight answers ConnectionError (the hub's
    "store unreachable"), a read retries once on a fresh connection, and the store works
    again without a restart."""
    store = stores()
    await store.start()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    await store.append("c1", "b", "buyer", "text", {"text": "before"}, "m0", 2)
    admin = await raw(schema)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"tradechat:{schema}",),
        )
    finally:
        await admin.close()
    assert (await store.get_conversation("c1")) is not None  # a stale pooled connection: retried
    with pytest.raises(ConnectionError):  # the writer's connection was cut: not retried (it may have committed)
        await store.append("c1", "b", "buyer", "text", {"text": "cut"}, "m1", 3)
    done = await store.append("c1", "b", "buyer", "text", {"text": "cut"}, "m1", 3)  # the client's resend
    after = await store.append("c1", "b", "buyer", "text", {"text": "after"}, "m2", 4)
    assert after.message.seq == done.message.seq + 1 == 4
    assert await store.ping()


async def test_schema_version_and_schema_from_the_url(schema: str) -> None:
    """``?schema=`` picks the schema; the database records each migration once."""
    store = PostgresStore(f"{PG_URL}?schema={schema}")
    assert store.schema == schema and "schema=" not in store.url
    assert await store.migrate() == LATEST == await store.migrate()
    conn = await raw(schema)
    try:
        cur = await conn.execute("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in await cur.fetchall()] == list(range(1, LATEST + 1))
    finally:
        await conn.close()
    with pytest.raises(ValueError):
        PostgresStore(PG_URL, schema='x"; DROP TABLE y; --')


async def test_moving_to_another_cluster_starts_a_new_epoch(
    schema: str, stores: Callable[[], PostgresStore]
) -> None:
    """A database that shows up under another PostgreSQL cluster (restored from a dump) refuses
    every token handed out before, and its new tokens work."""
    store = stores()
    await store.start()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    old = await store.change_token()
    await store.close()
    conn = await raw(schema)
    try:
        await conn.execute("UPDATE change_clock SET cluster = 'another-cluster'")
    finally:
        await conn.close()
    moved = stores()
    await moved.start()
    assert await moved.changed_since(old, buyer="b") is None
    token = await moved.change_token()
    assert token.partition(".")[0] != old.partition(".")[0]
    assert await moved.changed_since(token, buyer="b") == []
    await moved.append("c1", "b", "buyer", "text", {"text": "hi"}, "m", 2)
    assert [c.id for c in await moved.changed_since(token, buyer="b") or []] == ["c1"]


async def test_a_transaction_left_open_elsewhere_does_not_lengthen_the_lists(
    schema: str, stores: Callable[[], PostgresStore]
) -> None:
    """An unrelated transaction holding back the cluster's xmin (the ledger's, a console's):
    a token taken after a commit lists nothing committed before it."""
    store = stores()
    await store.start()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    other = await raw(schema)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_current_xact_id()")  # holds an id, so xmin stays behind it
            await store.append("c1", "b", "buyer", "text", {"text": "hi"}, "m", 2)
            token = await store.change_token()
            assert "-" in token  # the exact form: the open transaction is named in it
            assert await store.changed_since(token, buyer="b") == []
            await store.append("c1", "b", "buyer", "text", {"text": "again"}, "m2", 3)
            assert [c.id for c in await store.changed_since(token, buyer="b") or []] == ["c1"]
    finally:
        await other.close()


def test_token_positions_round_trip_and_fall_back_to_xmin_when_long() -> None:
    """The exact form names every running transaction; too many to fit in a client's 64
    characters and the token keeps only xmin (everything from it on counts as later)."""
    from chat.store.pg_queries import decode_mark, encode_mark

    assert encode_mark(100, 150, 150, []) == "50" and decode_mark(100, "50") == (150, 150, [])
    mark = encode_mark(100, 150, 160, [155, 150])
    assert mark == "50-10-5" and decode_mark(100, mark) == (150, 160, [150, 155])
    crowded = encode_mark(100, 150, 10_000, list(range(150, 10_000, 100)))
    assert crowded == "50" and len(f"{'e' * 12}.{crowded}") <= 64
    for bad in ("", "-1", "5-0", "5-3-3", "5-3-0", "5--1", "٣", "5-²"):
        assert decode_mark(100, bad) is None, bad
