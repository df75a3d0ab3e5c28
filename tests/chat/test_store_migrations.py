"""Versioned schema migrations: files from before versions upgrade cleanly, and
``python -m chat migrate`` brings either store up to date and says its version."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from chat.store import pg_schema
from chat.store import sqlite_schema as sqlite_store
from chat.store.sqlite import SQLiteStore

from .test_store_contract import LISTING, PG_URL, drop_schemas


async def test_file_made_before_versions_is_version_1_with_its_data_and_tokens(tmp_path: Path) -> None:
    """A file created by the unversioned schema (today's ``SCHEMA``, no ``schema_version``)
    opens as version 1 and migrates on to the latest with its messages, and its change tokens
    still work."""
    path = tmp_path / "chat.db"
    store = SQLiteStore(str(path), synchronous="NORMAL")
    await store.start()
    await store.open_conversation("c1", "b", "s", LISTING, "a", 1)
    token = await store.change_token()
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE schema_version")  # as the release before versions left it
    conn.commit()
    conn.close()

    again = SQLiteStore(str(path), synchronous="NORMAL")
    await again.start()
    try:
        assert again.version == sqlite_store.LATEST
        assert [m.seq for m in await again.messages("c1")] == [1]
        await again.append("c1", "b", "buyer", "text", {"text": "hi"}, "m", 2)
        assert [c.id for c in await again.changed_since(token, buyer="b") or []] == ["c1"]
    finally:
        await again.close()
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT version FROM schema_version")] == list(range(1, sqlite_store.LATEST + 1))
    conn.close()


async def test_a_migration_that_fails_leaves_the_file_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps run in one transaction: one that fails takes none of its changes with it."""
    path = tmp_path / "chat.db"
    store = SQLiteStore(str(path), synchronous="NORMAL")
    assert await store.migrate() == sqlite_store.LATEST

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("the next step failed")

    monkeypatch.setattr(sqlite_store, "MIGRATIONS", (*sqlite_store.MIGRATIONS, (sqlite_store.LATEST + 1, broken)))
    with pytest.raises(RuntimeError):
        await store.migrate()
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_version")]
    conn.close()
    assert "half_done" not in tables and versions == list(range(1, sqlite_store.LATEST + 1))


def run_migrate(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "chat", "migrate"], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


async def test_migrate_command_on_sqlite_and_postgresql(tmp_path: Path) -> None:
    """``python -m chat migrate`` prints the version and exits 0, twice in a row, for a file and
    for a PostgreSQL schema (two at once on PostgreSQL: one migrates, the other waits)."""
    for _ in range(2):
        done = run_migrate(f"sqlite:///{tmp_path}/data/chat.db", tmp_path)
        assert done.stdout.strip() == f"chat store schema version {sqlite_store.LATEST}", done.stderr
        assert done.returncode == 0
    schema = f"chat_test_{uuid.uuid4().hex[:12]}"
    url = f"{PG_URL}?schema={schema}"
    try:
        results = await asyncio.gather(*(asyncio.to_thread(run_migrate, url, tmp_path) for _ in range(2)))
        results.append(run_migrate(url, tmp_path))
        for done in results:
            assert done.stdout.strip() == f"chat store schema version {pg_schema.LATEST}", done.stderr
            assert done.returncode == 0
    finally:
        drop_schemas([schema])
    bad = run_migrate("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    assert bad.returncode == 1 and "error" in bad.stderr
