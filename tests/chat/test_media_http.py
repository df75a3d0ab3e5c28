"""Pictures over HTTP against real hub nodes: upload limits, who may fetch, signed addresses.

Run on the embedded default (SQLite, pictures as files under the data directory) and on
PostgreSQL (pictures in the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest
from PIL import Image

from chat.server import ChatServer

from . import media_samples as samples
from .client import LISTING, Client
from .conftest import PG_URL, token


@dataclass
class Setup:
    server: ChatServer
    hub: str
    upload: str
    conv: str
    buyer: Client

    async def close(self) -> None:
        await self.buyer.close()


@pytest.fixture(params=["sqlite-files", "postgres"])
def deployment(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "postgres":
        return {"database_url": f"{PG_URL}?schema={request.getfixturevalue('pg_schema')}"}
    return {}


async def start(server_factory: Callable[..., Any], **overrides: Any) -> Setup:
    server: ChatServer = await server_factory(**overrides)
    hub = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as http, http.get(f"{hub}/media") as answer:
        limits = await answer.json()
    buyer = await Client.connect(f"ws://127.0.0.1:{server.port}/", token("b1"))
    conv = (await buyer.request({"type": "open", "shop": "shop1", "listing": LISTING}))["conversation"]["id"]
    return Setup(server, hub, limits["upload_url"], conv, buyer)


def bearer(user: str, role: str = "buyer", shop: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, role, shop)}"}


async def upload(s: Setup, data: bytes, headers: dict[str, str] | None = None,
                 conv: str | None = None) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(
        s.upload, params={"conv": conv if conv is not None else s.conv}, data=data,
        headers=bearer("b1") if headers is None else headers,
    ) as answer:
        return answer.status, await answer.json()


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as answer:
        return answer.status, await answer.read(), answer.headers


async def test_buyer_uploads_a_photo_and_the_shop_sees_it(
    server_factory: Callable[..., Any], deployment: dict[str, Any], tmp_path: Path,
) -> None:
    s = await start(server_factory, **deployment)
    agent = await Client.connect(f"ws://127.0.0.1:{s.server.port}/", token("a1", "agent", shop="shop1"))
    await agent.request({"type": "sync"})
    status, answer = await upload(s, samples.jpeg(800, 600, gps=True))
    assert status == 201, answer
    sha = answer["id"]
    assert answer["url"] == f"/media/{sha}" and answer["type"] == "image/jpeg"
    assert answer["body"] == {"kind": "image", "url": f"/media/{sha}", "width": 800, "height": 600}

    ack = await s.buyer.request({"type": "send", "conv": s.conv, "cmid": "pic-1", "body": answer["body"]})
    assert ack["type"] == "ack"
    seen = await agent.next("msg", conv=s.conv, kind="image")
    assert seen["body"]["url"] == f"/media/{sha}"

    # The agent asks for addresses an <img> can use, then loads both without any header.
    status, raw, _ = await get(f"{s.hub}/media/{sha}/link?conv={s.conv}", bearer("a1", "agent", "shop1"))
    assert status == 200
    links = json.loads(raw)
    status, full, headers = await get(s.hub + links["url"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert hashlib.sha256(full).hexdigest() == sha and headers["ETag"] == f'"{sha}"'
    assert b"Exif" not in full and b"CameraMaker" not in full
    status, thumb, headers = await get(s.hub + links["thumb"])
    assert status == 200 and headers["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.size == (320, 240)
    status, _, _ = await get(s.hub + links["url"], {"If-None-Match": f'"{sha}"'})
    assert status == 304

    if deployment:
        with psycopg.connect(deployment["database_url"].split("?")[0], autocommit=True) as conn:
            schema = deployment["database_url"].split("schema=")[1]
            row = conn.execute(f'SELECT length(data) FROM "{schema}".media WHERE sha256 = %s', (sha,)).fetchone()
        assert row == (len(full),)
    else:
        assert (tmp_path / "media" / sha[:2] / sha).read_bytes() == full
    await agent.close()
    await s.close()


async def test_only_the_parties_see_a_picture_and_404_hides_the_rest(
    server_factory: Callable[..., Any], deployment: dict[str, Any],
) -> None:
    s = await start(server_factory, **deployment)
    status, answer = await upload(s, samples.png())
    assert status == 201
    sha, conv = answer["id"], s.conv
    signed = answer["signed"]
    assert (await get(s.hub + signed["thumb"]))[0] == 200  # the uploader's own addresses work

    # With a token: the buyer and the shop's agents, nobody else.
    assert (await get(f"{s.hub}/media/{sha}?conv={conv}", bearer("b1")))[0] == 200
    assert (await get(f"{s.hub}/media/{sha}/thumb?conv={conv}", bearer("a2", "agent", "shop1")))[0] == 200
    for stranger in (bearer("b2"), bearer("a9", "agent", "shop2"), bearer("judge", "arbiter")):
        for path in (f"/media/{sha}?conv={conv}", f"/media/{sha}/link?conv={conv}"):
            status, body, _ = await get(s.hub + path, stranger)
            assert status == 404, (stranger, path, body)
    # Unknown picture, or a picture named under a conversation it was not uploaded for: the same 404.
    other = (await s.buyer.request({"type": "open", "shop": "shop1", "listing": {**LISTING, "id": "l-2"}}))
    assert (await get(f"{s.hub}/media/{'0' * 64}?conv={conv}", bearer("b1")))[0] == 404
    assert (await get(f"{s.hub}/media/{sha}?conv={other['conversation']['id']}", bearer("b1")))[0] == 404

    # Without a token: 401 with the websocket's codes.
    status, body, _ = await get(f"{s.hub}/media/{sha}?conv={conv}")
    assert status == 401 and json.loads(body)["code"] == 2001
    status, body, _ = await get(f"{s.hub}/media/{sha}?conv={conv}", {"Authorization": "Bearer nonsense"})
    assert status == 401 and json.loads(body)["code"] == 2002

    # Signed addresses: tampered, moved to another conversation, expired, or used for /link: 404.
    url = signed["url"]
    assert (await get(s.hub + url[:-1] + ("0" if url[-1] != "0" else "1")))[0] == 404
    assert (await get(s.hub + url.replace(conv, other["conversation"]["id"])))[0] == 404
    signer = s.server.media.routes.service.signer if s.server.media else None
    assert signer is not None
    old = signer.address(sha, conv, "full", now_s=1_000_000)
    assert (await get(s.hub + old))[0] == 404
    assert (await get(s.hub + url.replace(f"/media/{sha}?", f"/media/{sha}/link?")))[0] == 404
    await s.close()


async def test_an_arbiter_sees_the_pictures_of_a_disputed_conversation_only(
    server_factory: Callable[..., Any],
) -> None:
    s = await start(server_factory)
    status, answer = await upload(s, samples.gif())
    assert status == 201
    path = f"{s.hub}/media/{answer['id']}?conv={s.conv}"
    disputed: set[str] = set()

    async def is_disputed(conv: str) -> bool:
        return conv in disputed

    s.server.hub.disputed = is_disputed
    assert (await get(path, bearer("judge", "arbiter")))[0] == 404
    disputed.add(s.conv)
    assert (await get(path, bearer("judge", "arbiter")))[0] == 200
    # Arbiters read evidence; they never add to it.
    status, body = await upload(s, samples.png(), bearer("judge", "arbiter"))
    assert status == 404 and body["code"] == 3001
    await s.close()


async def test_uploads_are_refused_with_typed_errors(server_factory: Callable[..., Any]) -> None:
    s = await start(server_factory, media_max_bytes=200_000, media_max_pixels=1_000_000, media_per_minute=8)
    cases: list[tuple[bytes, dict[str, str] | None, str | None, int, int]] = [
        (b"\x00" * 200_001, None, None, 413, 1008),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None, None, 415, 1007),
        (samples.bomb(), None, None, 413, 1009),
        (samples.png(), {}, None, 401, 2001),
        (samples.png(), bearer("b1"), "", 400, 1004),
        (samples.png(), bearer("b2"), None, 404, 3001),  # not their conversation
        (samples.png(), bearer("b1"), "c_nope", 404, 3001),
        (samples.png(), bearer("a1", "agent", "shop1"), None, 201, 0),
    ]
    for data, headers, conv, status, code in cases:
        got, body = await upload(s, data, headers, conv)
        assert (got, body.get("code", 0)) == (status, code), (status, code, body)
    assert body["type"] == "image/png"
    # The rest of this minute's allowance (8), then 429 with when to retry.
    results = [await upload(s, samples.png()) for _ in range(8)]
    assert [r[0] for r in results][-1] == 429
    assert results[-1][1]["code"] == 4001 and results[-1][1]["retry_after_ms"] == 7500
    await s.close()


async def test_the_hub_announces_its_limits_and_upload_address(server_factory: Callable[..., Any]) -> None:
    s = await start(server_factory)
    async with aiohttp.ClientSession() as http, http.get(f"{s.hub}/media") as answer:
        limits = await answer.json()
    assert limits["upload_url"] == f"http://127.0.0.1:{s.server.media.server.port}/media"  # type: ignore[union-attr]
    assert limits["max_bytes"] == 10 * 1024 * 1024
    assert limits["types"] == ["image/gif", "image/jpeg", "image/png", "image/webp"]
    async with aiohttp.ClientSession() as http, http.options(s.upload) as answer:
        assert answer.status == 204 and answer.headers["Access-Control-Allow-Origin"] == "*"
    # A back office on another origin asks for addresses with its token: the preflight is answered.
    async with aiohttp.ClientSession() as http, http.options(
        f"{s.hub}/media/{'0' * 64}/link?conv={s.conv}",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"},
    ) as answer:
        assert answer.status == 204 and "Authorization" in answer.headers["Access-Control-Allow-Headers"]
    await s.close()


async def test_decoding_runs_off_the_event_loop(
    server_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slow decode (a big photo) must not stall the node: other requests are answered meanwhile."""
    from chat.media import service as media_service

    real = media_service.process

    def slow(data: bytes, max_pixels: int) -> Any:
        time.sleep(1.0)
        return real(data, max_pixels)

    monkeypatch.setattr(media_service, "process", slow)
    s = await start(server_factory)
    gaps: list[float] = []

    async def ticker() -> None:  # the node shares this event loop: any stall shows as a gap
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    assert (await upload(s, samples.png()))[0] == 201
    assert time.monotonic() - started >= 1.0  # the slow decode did run
    ticking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticking
    assert len(gaps) > 20 and max(gaps) < 0.5, f"the event loop stalled for {max(gaps):.2f} s"
    await s.close()
