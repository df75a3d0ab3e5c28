"""A lean websocket client for load generation (RFC 6455, binary frames only).

The generator shares the machine with the hub, so every microsecond it spends
per frame is one the hub does not get. This client is an ``asyncio.Protocol``
that parses frames straight from ``data_received`` and writes without
awaiting. Client frames must be masked; it masks with the all-zero key, which
is valid on the wire and leaves the payload untouched, so a write is a header
and the payload. (Random keys protect intermediaries from cache poisoning by
hostile page scripts; a load generator talking to its own hub does not need
that.)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_ZERO_MASK = b"\x00\x00\x00\x00"
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")

OnFrame = Callable[[bytes], None]
OnClose = Callable[[int | None, str], None]


class HandshakeError(ConnectionError):
    """The server did not switch protocols."""


def _header(opcode: int, length: int) -> bytes:
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, 0x80 | length)) + _ZERO_MASK
    if length < 65536:
        return bytes((first, 0x80 | 126)) + _U16.pack(length) + _ZERO_MASK
    return bytes((first, 0x80 | 127)) + _U64.pack(length) + _ZERO_MASK


class WsClient(asyncio.Protocol):
    """One connection. ``on_frame`` gets each complete data message's payload."""

    def __init__(self, host: str, path: str, on_frame: OnFrame, on_close: OnClose,
                 headers: dict[str, str] | None = None) -> None:
        self.on_frame = on_frame
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.close_code: int | None = None
        self._buf = b""
        self._fragments: list[bytes] = []
        self._closed_reported = False
        key = base64.b64encode(os.urandom(16))
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13"]
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ready.add_done_callback(_retrieve)

    # --- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self._buf += data
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > 16384:
                    self._fail(HandshakeError("oversized handshake response"))
                return
            response, self._buf = self._buf[:end].decode("latin-1"), self._buf[end + 4:]
            status = response.split("\r\n", 1)[0]
            if " 101 " not in status + " " or self._accept.decode() not in response:
                self._fail(HandshakeError(status))
                return
            self.open = True
            if not self.ready.done():
                self.ready.set_result(None)
            if not self._buf:
                return
            data, self._buf = self._buf, b""
        buf = self._buf + data if self._buf else data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = _U16.unpack_from(buf, pos + 2)[0]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = _U64.unpack_from(buf, pos + 2)[0]
                head = 10
            if b1 & 0x80:  # servers never mask; tolerate it anyway
                head += 4
            end = pos + head + length
            if end > size:
                break
            payload = buf[pos + head:end]
            if b1 & 0x80:
                mask = buf[end - length - 4:end - length]
                payload = bytes(c ^ mask[i & 3] for i, c in enumerate(payload))
            pos = end
            opcode = b0 & 0x0F
            if opcode == 2 or opcode == 1:
                if b0 & 0x80:
                    self.on_frame(payload)
                else:
                    self._fragments = [payload]
            elif opcode == 0:
                self._fragments.append(payload)
                if b0 & 0x80:
                    whole = b"".join(self._fragments)
                    self._fragments = []
                    self.on_frame(whole)
            elif opcode == 9:
                self._write(10, payload)
            elif opcode == 8:
                code = _U16.unpack_from(payload)[0] if len(payload) >= 2 else 1005
                self.close_code = code
                self._write(8, payload[:2])
                self._report(code, payload[2:].decode("utf-8", "replace"))
                if self.transport is not None:
                    self.transport.close()
                return
        self._buf = buf[pos:] if pos < size else b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed during handshake"))
        self._report(self.close_code or 1006, str(exc) if exc else "")

    # --- API -----------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Queue one binary message; never blocks."""
        if self.open and self.transport is not None:
            self.transport.write(_header(2, len(payload)) + payload)

    def buffered(self) -> int:
        return 0 if self.transport is None else self.transport.get_write_buffer_size()

    def close(self, code: int = 1000) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self.open:
            self._write(8, _U16.pack(code))
            self.open = False
        self.transport.close()

    def abort(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.abort()

    # --- internals -----------------------------------------------------------

    def _write(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_header(opcode, len(payload)) + payload)

    def _fail(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()

    def _report(self, code: int | None, reason: str) -> None:
        if not self._closed_reported:
            self._closed_reported = True
            self.on_close(code, reason)


def _retrieve(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


async def connect(url: str, on_frame: OnFrame, on_close: OnClose, *, within: float = 10.0,
                  headers: dict[str, str] | None = None) -> WsClient:
    """Open a websocket to ``ws://host:port/path`` and finish the handshake."""
    parts = urlsplit(url)
    if parts.scheme != "ws":
        raise ValueError(f"only ws:// URLs are supported, not {url!r}")
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: WsClient(f"{host}:{port}", path, on_frame, on_close, headers), host, port),
        within,
    )
    await asyncio.wait_for(asyncio.shield(proto.ready), within)
    return proto
