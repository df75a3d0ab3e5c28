"""A lean websocket client for load generation, on websockets' sans-I/O core.

The generator shares the machine with the hub, so every microsecond it spends
per frame is one the hub does not get: a full asyncio websocket client (a
task, a queue and an awaited ``recv``/``send`` per message) costs too much.
This client is a plain ``asyncio.Protocol`` that feeds received bytes to
:class:`websockets.client.ClientProtocol` and hands every complete message to
a callback; sends never await.

The sans-I/O protocol does the RFC 6455 work, so the generator behaves on the
wire like any conforming client: the handshake checks, a fresh unpredictable
masking key for every client frame (§5.3), pongs to pings and the closing
handshake. This module only moves bytes, and coalesces them: frames queued
during one event-loop pass go out in one ``transport.write`` (one joined
``data_to_send()``) per connection, which keeps the per-message cost low when
closed-loop replies and pipelined requests pile up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

from websockets.client import ClientProtocol
from websockets.frames import BINARY, CLOSE, CONT, TEXT, Frame
from websockets.http11 import Request, Response
from websockets.protocol import CONNECTING, OPEN, SEND_EOF
from websockets.typing import BytesLike
from websockets.uri import parse_uri

CLOSE_TIMEOUT = 2.0
"""Seconds a closing connection waits for the server to close TCP (RFC 6455 §7.1.1) before aborting it."""

OnFrame = Callable[[BytesLike], None]
OnClose = Callable[[int | None, str], None]


class HandshakeError(ConnectionError):
    """The server did not switch protocols."""


class WsClient(asyncio.Protocol):
    """One connection. ``on_frame`` gets each complete data message's payload."""

    def __init__(self, ws: ClientProtocol, request: Request, on_frame: OnFrame, on_close: OnClose) -> None:
        self.ws = ws
        self.on_frame = on_frame
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.open = False
        """Handshake done and no close begun: the only state in which :meth:`send` queues a frame."""
        self.close_code: int | None = None
        """What ``on_close`` reports: set by the caller before :meth:`close`/:meth:`abort` to say why,
        else the server's close code; the first one set wins."""
        self._loop = asyncio.get_running_loop()
        self._flush_scheduled = False
        self._fragments: list[BytesLike] = []
        self._closed_reported = False
        self._close_timer: asyncio.TimerHandle | None = None
        self.ready: asyncio.Future[None] = self._loop.create_future()
        self.ready.add_done_callback(_retrieve)
        self.done: asyncio.Future[None] = self._loop.create_future()
        """Resolved when the TCP connection is gone (the closing handshake is over)."""
        ws.send_request(request)

    # --- asyncio.Protocol ----------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self._flush()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is Frame:
                opcode = event.opcode
                if opcode is BINARY or opcode is TEXT:
                    if event.fin:
                        self.on_frame(event.data)
                    else:
                        self._fragments = [event.data]
                elif opcode is CONT:
                    self._fragments.append(event.data)
                    if event.fin:
                        whole = b"".join(self._fragments)
                        self._fragments = []
                        self.on_frame(whole)
                elif opcode is CLOSE:
                    close = ws.close_rcvd
                    self.open = False
                    if self.close_code is None and close is not None:
                        self.close_code = close.code
                    self._report(self.close_code, close.reason if close is not None else "")
                # PING: the protocol has queued the pong; PONG: nothing to do.
            elif isinstance(event, Response):
                if ws.handshake_exc is not None:
                    self._fail(HandshakeError(f"{event.status_code} {event.reason_phrase}: {ws.handshake_exc}"))
                    return
                self.open = True
                if not self.ready.done():
                    self.ready.set_result(None)
        if ws.state is not OPEN:
            self.open = False
            if ws.close_expected():
                self._arm_close_timer()
        if ws.writes and not self._flush_scheduled:  # pongs and the close echo, with this pass's sends
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self._close_timer is not None:
            self._close_timer.cancel()
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed during handshake"))
        self._report(self.close_code or 1006, str(exc) if exc else "")
        if not self.done.done():
            self.done.set_result(None)

    # --- API -----------------------------------------------------------------

    def send(self, payload: bytes) -> None:
        """Queue one binary message; never blocks.

        It goes out after this loop pass's callbacks, in one write with the connection's other
        frames of the pass: a ``transport.write`` per frame is a syscall per frame.
        """
        if self.open:
            self.ws.send_binary(payload)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush)

    def buffered(self) -> int:
        """Bytes not on the wire yet: queued frames plus the transport's buffer."""
        queued = sum(len(chunk) for chunk in self.ws.writes)
        return queued + (0 if self.transport is None else self.transport.get_write_buffer_size())

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; the server closes TCP (or :data:`CLOSE_TIMEOUT` aborts it)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        state = self.ws.state
        self.open = False
        if state is OPEN:
            self.ws.send_close(code)
            self._flush()
            self._arm_close_timer()
        elif state is CONNECTING:
            transport.close()

    def abort(self) -> None:
        """Drop the connection without a closing handshake (what a lost network looks like)."""
        self.open = False
        self.ws.data_to_send()
        if self.transport is not None:
            self.transport.abort()

    # --- internals -----------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        writes = self.ws.data_to_send()
        transport = self.transport
        if not writes or transport is None or transport.is_closing():
            return
        data = writes[0] if len(writes) == 1 else b"".join(writes)
        if data:
            transport.write(data)
        if SEND_EOF in writes:
            # Only after the server closed its side: the connection is over.
            transport.close()

    def _arm_close_timer(self) -> None:
        if self._close_timer is None:
            self._close_timer = self._loop.call_later(CLOSE_TIMEOUT, self._close_timed_out)

    def _close_timed_out(self) -> None:
        if self.transport is not None and not self.done.done():
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        self.open = False
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
    uri = parse_uri(url)
    if uri.secure:
        raise ValueError(f"only ws:// URLs are supported, not {url!r}")

    def factory() -> WsClient:
        ws = ClientProtocol(uri)
        request = ws.connect()
        for name, value in (headers or {}).items():
            request.headers[name] = value
        return WsClient(ws, request, on_frame, on_close)

    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(loop.create_connection(factory, uri.host, uri.port), within)
    try:
        await asyncio.wait_for(asyncio.shield(proto.ready), within)
    except BaseException:
        proto.abort()
        raise
    return proto
