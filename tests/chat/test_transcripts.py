"""Replay the sample transcripts of docs/transcripts/ against a real hub.

The transcripts are documentation for client writers (whole flows, frame by
frame); replaying them keeps them true. The format and the matching rules are
described in docs/transcripts/README.md: pattern keys must match (extra keys in
the real frame are fine), ``"*"`` is any value, ``"$name"`` captures a value the
server made and stands for it afterwards. Per actor, replies and ``msg`` pushes
must come in the transcript's order, each stream on its own (a card may come
just before or after the ``payment`` reply); other pushes (presence, receipts,
typing) match wherever they are, and those the transcript leaves out are skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import pytest
from pydantic import TypeAdapter

from chat.protocol.frames import ClientFrame
from chat.server import ChatServer

from .client import TIMEOUT, Client
from .conftest import token
from .test_money import api

TRANSCRIPTS = Path(__file__).resolve().parents[2] / "docs" / "transcripts"
PATHS = sorted(TRANSCRIPTS.glob("*.json"))

PUSH_TYPES = frozenset({"msg", "receipt", "typing", "presence"})
"""Server frames that are not replies (they never carry ``re``)."""
ORDERED = frozenset({"reply", "msg"})
"""Streams whose frames must all be expected, in order; the others match anywhere and may be left out."""
QUIET = 0.3
"""How long an actor must stay silent before "nothing unexpected is left" is believed."""
PLACEHOLDER = re.compile(r"^\$[A-Za-z_][A-Za-z0-9_]*$")
ANY = "*"
STEP_KINDS = ("connect", "disconnect", "send", "expect", "fund")

_client_frame: TypeAdapter[Any] = TypeAdapter(ClientFrame)


class TranscriptError(AssertionError):
    pass


def stream(frame: dict[str, Any]) -> str:
    """Which ordered stream a frame (or a pattern) belongs to: ``reply``, or the push type."""
    kind = frame.get("type")
    return kind if isinstance(kind, str) and kind in PUSH_TYPES else "reply"


def substitute(value: Any, bound: dict[str, Any]) -> Any:
    """A frame to send with every ``$name`` (in keys and values) replaced by its bound value."""
    if isinstance(value, str) and PLACEHOLDER.match(value):
        if value not in bound:
            raise TranscriptError(f"{value} is used before any frame provided it")
        return bound[value]
    if isinstance(value, dict):
        return {substitute(k, bound): substitute(v, bound) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, bound) for v in value]
    return value


def match(pattern: Any, actual: Any, bound: dict[str, Any]) -> bool:
    """Whether ``actual`` fits ``pattern``; captures new ``$name`` values into ``bound`` (a scratch copy)."""
    if pattern == ANY:
        return True
    if isinstance(pattern, str) and PLACEHOLDER.match(pattern):
        if pattern in bound:
            return type(bound[pattern]) is type(actual) and bound[pattern] == actual
        bound[pattern] = actual
        return True
    if isinstance(pattern, dict):
        if not isinstance(actual, dict):
            return False
        for key, want in pattern.items():
            name = substitute(key, bound)
            if name not in actual or not match(want, actual[name], bound):
                return False
        return True
    if isinstance(pattern, list):
        return (isinstance(actual, list) and len(actual) == len(pattern)
                and all(match(p, a, bound) for p, a in zip(pattern, actual, strict=True)))
    # 1 is not 1.0 and true is not 1 on this protocol: compare types too.
    return type(pattern) is type(actual) and pattern == actual


@dataclass
class Actor:
    name: str
    client: Client
    pending: list[dict[str, Any]] = field(default_factory=list)
    """Frames received and not matched yet, in arrival order."""

    async def pull(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for one more frame; False when none came."""
        try:
            frame = await asyncio.wait_for(self.client.pushed.get(), timeout)
        except TimeoutError:
            failure = self.client.closed.exception() if self.client.closed.done() else None
            if failure is not None:
                raise failure from None  # e.g. a frame the models refuse
            return False
        self.pending.append(frame)
        return True

    def take(self, pattern: dict[str, Any], bound: dict[str, Any]) -> dict[str, Any] | None:
        """Consume the frame that fits ``pattern``; raise if the next frame of an ordered stream does not."""
        want = stream(pattern)
        for i, frame in enumerate(self.pending):
            if stream(frame) != want:
                continue
            scratch = dict(bound)
            if match(pattern, frame, scratch):
                bound.update(scratch)
                return self.pending.pop(i)
            if want in ORDERED:
                raise TranscriptError(f"{self.name} expected\n  {pattern}\nbut the next {want} is\n  {frame}")
        return None

    async def expect(self, pattern: dict[str, Any], bound: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while (frame := self.take(pattern, bound)) is None:
            left = deadline - time.monotonic()
            if left <= 0 or not await self.pull(left):
                raise TranscriptError(f"{self.name} expected\n  {pattern}\nwithin {TIMEOUT} s; unmatched: {self.pending}")
        return frame

    async def nothing_left(self) -> None:
        """Every reply and ``msg`` this actor got was expected: the transcript shows all of them."""
        while await self.pull(QUIET):
            pass
        extra = [frame for frame in self.pending if stream(frame) in ORDERED]
        if extra:
            raise TranscriptError(f"{self.name} got frames the transcript does not expect: {extra}")


async def replay(steps: list[dict[str, Any]], url: str, fund: Callable[[dict[str, Any], str], Awaitable[None]]) -> None:
    actors: dict[str, Actor] = {}
    bound: dict[str, Any] = {}
    for number, step in enumerate(steps, 1):
        kinds = [k for k in STEP_KINDS if k in step]
        unknown = set(step) - {*STEP_KINDS, "actor", "note"}
        assert len(kinds) <= 1 and not unknown, f"step {number}: one of {STEP_KINDS} (and actor, note): {step}"
        if not kinds:
            continue  # a note
        kind, name = kinds[0], step.get("actor")
        try:
            if kind == "fund":
                await fund(step["fund"], f"transcript-fund-{number}")
                continue
            assert isinstance(name, str), "this step needs an actor"
            if kind == "connect":
                assert name not in actors, f"{name} is already connected"
                claims = step["connect"]
                bound[f"${name}_token"] = token(claims["user"], claims["role"], claims.get("shop"))
                actors[name] = Actor(name, await Client.connect(url))
                continue
            actor = actors[name]
            if kind == "disconnect":
                await actor.nothing_left()
                await actor.client.close()
                del actors[name]
            elif kind == "send":
                frame = substitute(step["send"], bound)
                _client_frame.validate_python(frame)  # a transcript only shows valid frames
                await actor.client.send_raw(msgpack.packb(frame, use_bin_type=True))
            else:
                assert isinstance(step["expect"].get("type"), str), "a pattern names its frame type"
                await actor.expect(step["expect"], bound)
        except (AssertionError, KeyError, ValueError) as exc:  # ValueError: a frame the models refuse
            note = f" ({step['note']})" if "note" in step else ""
            raise TranscriptError(f"step {number}{note}: {exc}") from None
    for actor in actors.values():
        try:
            await actor.nothing_left()
        except TranscriptError as exc:
            raise TranscriptError(f"end of transcript: {exc}") from None
        await actor.client.close()


def load(path: Path) -> list[dict[str, Any]]:
    """The steps of a transcript file (read outside the event loop)."""
    steps = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(steps, list) and all(isinstance(s, dict) for s in steps), f"{path.name}: not a list of steps"
    return steps


def test_the_documented_transcripts_exist() -> None:
    """The README promises these two flows; a renamed file should not silently drop out of the replay."""
    assert {"open-chat-pay-confirm", "reconnect-resume"} <= {p.stem for p in PATHS}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
async def test_transcript_replays_against_a_real_hub(path: Path, server_factory: Any) -> None:
    """Every frame the transcript expects arrives, in order per actor, and nothing else that counts."""
    steps = load(path)
    server: ChatServer = await server_factory()

    async def fund(body: dict[str, Any], key: str) -> None:
        status, receipt = await asyncio.to_thread(api, server, "POST", "/api/v1/deposits", {**body, "key": key})
        assert status == 201, receipt

    await replay(steps, f"ws://127.0.0.1:{server.port}/ws", fund)


def test_matcher_rules() -> None:
    """The rules the README states: subsets, "*", captures that must agree later, strict scalar types."""
    bound: dict[str, Any] = {}
    assert match({"type": "ack", "seq": "$seq", "ts": ANY}, {"type": "ack", "seq": 2, "ts": 5, "re": 1}, bound)
    assert bound == {"$seq": 2}
    assert not match({"seq": "$seq"}, {"seq": 3}, dict(bound))
    assert not match({"ts": ANY}, {}, {})
    assert not match({"n": 1}, {"n": 1.0}, {}) and not match({"n": 1}, {"n": True}, {})
    assert not match({"l": [1]}, {"l": [1, 2]}, {})
    assert match({"cursors": {"$c": 3}}, {"cursors": {"c_1": 3}}, {"$c": "c_1"})
    assert substitute({"cursors": {"$c": "$seq"}}, {"$c": "c_1", "$seq": 3}) == {"cursors": {"c_1": 3}}
    with pytest.raises(TranscriptError):
        substitute({"conv": "$nope"}, {})
