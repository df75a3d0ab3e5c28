"""Where pictures live: a narrow interface and its memory and file-system implementations.

A picture is stored once per content hash (a second upload of the same bytes is a no-op)
and *bound* to every conversation it was uploaded for; the binding is what fetching is
authorised by. Binding needs the bytes (an upload), so knowing a hash is not enough to
make a picture visible in a conversation of one's own. The PostgreSQL implementation is
:mod:`.pg_store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Literal, Protocol

from .images import Picture

Variant = Literal["full", "thumb"]
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class MediaStore(Protocol):
    """Pictures by SHA-256 of their stored bytes, and the conversations they are bound to."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, picture: Picture) -> None:
        """Store the picture (and its thumbnail); idempotent, durable when it returns."""
        ...

    async def get(self, sha256: str, variant: Variant) -> bytes | None:
        """The stored bytes of the picture or of its thumbnail, or None."""
        ...

    async def bind(self, sha256: str, conv: str, uploader: str, now: int) -> None:
        """Record that the picture was uploaded for ``conv`` (idempotent)."""
        ...

    async def bound(self, sha256: str, conv: str) -> bool: ...


class MemoryMediaStore:
    """For tests and ``sqlite:///:memory:`` hubs: gone with the process."""

    def __init__(self) -> None:
        self._blobs: dict[tuple[str, Variant], bytes] = {}
        self._links: set[tuple[str, str]] = set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def put(self, picture: Picture) -> None:
        self._blobs[(picture.sha256, "thumb")] = picture.thumb
        self._blobs[(picture.sha256, "full")] = picture.data

    async def get(self, sha256: str, variant: Variant) -> bytes | None:
        return self._blobs.get((sha256, variant))

    async def bind(self, sha256: str, conv: str, uploader: str, now: int) -> None:
        self._links.add((sha256, conv))

    async def bound(self, sha256: str, conv: str) -> bool:
        return (sha256, conv) in self._links


def _write_atomically(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename, fsync the directory: a reader sees
    the whole file or none, even after a power cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileMediaStore:
    """Files under one directory (the data directory's ``media/`` by default).

    ``ab/<sha>`` is the picture, ``ab/<sha>.thumb`` its thumbnail (written first, so a
    picture that is there is complete), and ``ab/<sha>.links/<sha256 of conv id>`` one
    empty file per binding (hashed: a conversation id may be ``..``). Several processes
    on one machine may share the directory.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    async def start(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def _path(self, sha256: str, variant: Variant) -> Path:
        if not SHA256.match(sha256):  # the hash comes from a URL: never a path of its own
            raise ValueError("not a SHA-256 hex digest")
        return self.root / sha256[:2] / (sha256 if variant == "full" else f"{sha256}.thumb")

    def _link(self, sha256: str, conv: str) -> Path:
        name = hashlib.sha256(conv.encode()).hexdigest()
        return self._path(sha256, "full").with_name(f"{sha256}.links") / name

    async def put(self, picture: Picture) -> None:
        full = self._path(picture.sha256, "full")

        def write() -> None:
            if full.exists():
                return
            _write_atomically(self._path(picture.sha256, "thumb"), picture.thumb)
            _write_atomically(full, picture.data)

        await asyncio.to_thread(write)

    async def get(self, sha256: str, variant: Variant) -> bytes | None:
        path = self._path(sha256, variant)

        def read() -> bytes | None:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(read)

    async def bind(self, sha256: str, conv: str, uploader: str, now: int) -> None:
        link = self._link(sha256, conv)
        await asyncio.to_thread(_write_atomically, link, f"{uploader}\n{now}\n".encode())

    async def bound(self, sha256: str, conv: str) -> bool:
        return await asyncio.to_thread(self._link(sha256, conv).exists)
