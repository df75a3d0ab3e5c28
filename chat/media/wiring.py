"""Pick the picture store like the chat store is picked, and wire the HTTP sides."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..config import Config
from ..hub import Hub
from .http import MediaRoutes, MediaServer
from .links import Signer
from .service import MediaService
from .store import FileMediaStore, MediaStore, MemoryMediaStore


def open_media_store(config: Config) -> MediaStore:
    """PostgreSQL store: its database. SQLite file: ``MEDIA_DIR`` or ``media/`` beside the
    file. An in-memory SQLite store (tests): memory."""
    url = config.database_url
    if url.startswith(("postgresql://", "postgres://")) and not config.media_dir:
        from .pg_store import PostgresMediaStore

        return PostgresMediaStore(url)
    if config.media_dir:
        return FileMediaStore(config.media_dir)
    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else ":memory:"
    if path == ":memory:":
        return MemoryMediaStore()
    return FileMediaStore(os.path.join(os.path.dirname(os.path.abspath(path)), "media"))


@dataclass
class Media:
    server: MediaServer
    routes: MediaRoutes


def open_media(config: Config, hub: Hub, *, reuse_port: bool = False, store: MediaStore | None = None) -> Media:
    service = MediaService(
        hub, store or open_media_store(config), Signer.from_secret(config.token_secret, config.media_url_ttl),
        max_bytes=config.media_max_bytes, max_pixels=config.media_max_pixels, per_minute=config.media_per_minute,
    )
    server = MediaServer(service, config.host, config.media_port, reuse_port=reuse_port)
    return Media(server, MediaRoutes(service, server, config.media_upload_url))
