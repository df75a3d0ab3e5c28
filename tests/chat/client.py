"""A small, strict protocol client for tests: every frame it receives must
validate against the protocol models, so the server cannot drift from them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import msgpack
from pydantic import TypeAdapter
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chat.protocol.frames import ServerFrame

_server_frame: TypeAdapter[Any] = TypeAdapter(ServerFrame)
TIMEOUT = 10.0


class Client:
    node_for_agents: str | None = None
    """Set by the two-node fixture: agents connect to the second node, so traffic crosses nodes."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.pushed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.frames: list[dict[str, Any]] = []
        self.held: dict[str, set[int]] = {}
        """Per conversation, the seqs this connection holds: received as ``msg`` (live, pushed,
        or in a ``history`` page) or acked as its own (what a resume cursor counts)."""
        self._reader = asyncio.create_task(self._read())
        self.closed: asyncio.Future[tuple[int | None, str | None]] = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(cls, url: str, token: str | None = None, **kwargs: Any) -> Client:
        if cls.node_for_agents and token is not None and _role(token) == "agent":
            url = cls.node_for_agents
        ws = await connect(url, max_size=None, **kwargs)
        client = cls(ws)
        if token is not None:
            reply = await client.request({"type": "auth", "token": token})
            assert reply["type"] == "welcome", reply
            client.welcome = reply
        return client

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                assert isinstance(data, bytes), "server sent a text frame"
                frame = msgpack.unpackb(data, raw=False)
                _server_frame.validate_python(frame)
                self.frames.append(frame)
                self._hold(frame)
                rid = frame.get("re")
                if rid is not None and rid in self._waiting:
                    self._waiting.pop(rid).set_result(frame)
                else:
                    self.pushed.put_nowait(frame)
        except ConnectionClosed:
            pass
        except Exception as exc:  # surfaced through closed/futures
            if not self.closed.done():
                self.closed.set_exception(exc)
            raise
        finally:
            if not self.closed.done():
                self.closed.set_result((self.ws.close_code, self.ws.close_reason))
            for fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("closed"))
                    fut.exception()  # a request nobody awaits any more must not warn at exit

    def _hold(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind in ("msg", "ack"):
            self.held.setdefault(frame["conv"], set()).add(frame["seq"])
        elif kind == "history":
            self.held.setdefault(frame["conv"], set()).update(m["seq"] for m in frame["messages"])

    def resume_cursor(self, conv: str, start: int) -> int:
        """The cursor docs/protocol.md tells a client to resume from: the highest seq up to which
        it holds every message after ``start`` (where it began following the conversation)."""
        held = self.held.get(conv, set())
        cursor = start
        while cursor + 1 in held:
            cursor += 1
        return cursor

    async def send_raw(self, data: bytes | str) -> None:
        await self.ws.send(data)

    async def request(self, frame: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        await self.ws.send(msgpack.packb({**frame, "id": rid}, use_bin_type=True))
        return await asyncio.wait_for(fut, timeout)

    async def next(self, type_: str | None = None, timeout: float = TIMEOUT, **match: Any) -> dict[str, Any]:
        """The next pushed frame of this type (others of other types are skipped)."""
        while True:
            frame = await asyncio.wait_for(self.pushed.get(), timeout)
            if (type_ is None or frame["type"] == type_) and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def messages(self, conv: str, count: int, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        out = []
        while len(out) < count:
            out.append(await self.next("msg", timeout=timeout, conv=conv))
        return out

    async def no_frame(self, type_: str, wait: float = 0.3, **match: Any) -> None:
        """Assert no pushed frame of this type arrives within ``wait`` seconds."""
        try:
            frame = await self.next(type_, timeout=wait, **match)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame {frame}")

    async def send_text(self, conv: str, text: str, cmid: str) -> dict[str, Any]:
        return await self.request({"type": "send", "conv": conv, "cmid": cmid, "body": {"kind": "text", "text": text}})

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


def _role(token: str) -> str | None:
    import jwt

    role = jwt.decode(token, options={"verify_signature": False}).get("role")
    return role if isinstance(role, str) else None


LISTING = {"id": "l-1", "title": "Longjing green tea 250g", "price": 12800, "currency": "CNY",
           "image": "https://img.example/tea.jpg"}
