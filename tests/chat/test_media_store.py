"""One contract for every picture store: memory, files under the data directory, PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from chat.media.images import process
from chat.media.pg_store import PostgresMediaStore
from chat.media.store import FileMediaStore, MediaStore, MemoryMediaStore
from chat.store.postgres import PostgresStore

from . import media_samples as samples
from .conftest import PG_URL


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture(params=["memory", "files", "postgres"])
async def media(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MediaStore]:
    store: MediaStore
    schema = ""
    if request.param == "memory":
        store = MemoryMediaStore()
    elif request.param == "files":
        store = FileMediaStore(tmp_path / "media")
    else:
        schema = f"chat_media_{uuid.uuid4().hex[:12]}"
        await PostgresStore(f"{PG_URL}?schema={schema}").migrate()  # the chat store's migrations make the tables
        store = PostgresMediaStore(f"{PG_URL}?schema={schema}")
    await store.start()
    yield store
    await store.close()
    if schema:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_a_stored_picture_comes_back_with_its_thumbnail(media: MediaStore) -> None:
    picture = process(samples.jpeg(), 10**7)
    assert await media.get(picture.sha256, "full") is None
    await media.put(picture)
    await media.put(picture)  # idempotent
    assert await media.get(picture.sha256, "full") == picture.data
    assert await media.get(picture.sha256, "thumb") == picture.thumb


async def test_bindings_are_per_conversation(media: MediaStore) -> None:
    picture = process(samples.png(), 10**7)
    await media.put(picture)
    assert not await media.bound(picture.sha256, "c_1")
    await media.bind(picture.sha256, "c_1", "b1", 1000)
    await media.bind(picture.sha256, "c_1", "b1", 2000)  # idempotent
    assert await media.bound(picture.sha256, "c_1")
    assert not await media.bound(picture.sha256, "c_2")
    assert not await media.bound("0" * 64, "c_1")


async def test_odd_conversation_ids_stay_inside_the_store(media: MediaStore, tmp_path: Path) -> None:
    picture = process(samples.gif(), 10**7)
    await media.put(picture)
    for conv in ("..", ".", "a/b", "x:y@z"):
        await media.bind(picture.sha256, conv, "b1", 1)
        assert await media.bound(picture.sha256, conv)
    assert not any(p.name == ".." for p in files_under(tmp_path))


async def test_the_file_store_writes_atomically_and_refuses_paths(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path)
    await store.start()
    picture = process(samples.webp(), 10**7)
    await store.put(picture)
    names = sorted(p.name for p in files_under(tmp_path))
    assert names == [picture.sha256, f"{picture.sha256}.thumb"]  # no temp file left behind
    with pytest.raises(ValueError):
        await store.get("../../etc/passwd", "full")


def test_the_store_is_picked_like_the_chat_store(tmp_path: Path) -> None:
    from chat.media.wiring import open_media_store

    from .conftest import make_config

    beside = open_media_store(make_config(tmp_path))
    assert isinstance(beside, FileMediaStore) and beside.root == tmp_path / "media"
    assert isinstance(open_media_store(make_config(tmp_path, database_url="sqlite:///:memory:")), MemoryMediaStore)
    assert isinstance(open_media_store(make_config(tmp_path, database_url=f"{PG_URL}?schema=x")), PostgresMediaStore)
    chosen = open_media_store(make_config(tmp_path, media_dir=str(tmp_path / "pics")))
    assert isinstance(chosen, FileMediaStore) and chosen.root == tmp_path / "pics"
