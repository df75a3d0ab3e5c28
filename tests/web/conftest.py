"""Browser tests: a real hub in-process (DEMO on) and Debian's Chromium driven by Playwright.

Screenshots of the key states go to ``artifacts/screenshots/``; with
``SAVE_DOC_SCREENSHOTS=1`` the ones the README shows are also written to
``docs/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from chat.config import Config
from chat.server import ChatServer, build
from tests.chat.conftest import make_config, server_factory  # noqa: F401 (a fixture)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "screenshots"
DOC_SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 10_000
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


def web_config(tmp_path: Path) -> Config:
    """The test hub's settings with the demo on (and a PIN pepper of its own, as production needs)."""
    return make_config(tmp_path, demo="on", pin_pepper="web-tests-pin-pepper-0123456789")


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[ChatServer]:
    server = build(web_config(tmp_path))
    await server.start()
    yield server
    await server.close()


@pytest.fixture
def base_url(hub: ChatServer) -> str:
    return f"http://127.0.0.1:{hub.port}"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium fonts-wqy-zenhei)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        await browser.close()


PageFactory = Callable[..., Awaitable[tuple[BrowserContext, Page]]]


@pytest.fixture
async def new_page(browser: Browser) -> AsyncIterator[PageFactory]:
    """A page in its own context (own storage, like a second browser window); page errors fail the test."""
    errors: list[str] = []
    contexts: list[BrowserContext] = []

    async def make(**options: Any) -> tuple[BrowserContext, Page]:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = await browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = await context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return context, page

    yield make
    for context in contexts:
        await context.close()
    assert not errors, f"errors in the page: {errors}"


async def shot(page: Page, name: str, *, doc: bool = False) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    if doc and os.environ.get("SAVE_DOC_SCREENSHOTS"):
        DOC_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SHOTS / f"{name}.png")
