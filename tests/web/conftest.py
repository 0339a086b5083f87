"""Fixtures for the page and media tests: the RTSP camera farm and Debian's Chromium.

Both need Debian packages (scripts/system-deps.sh installs them). Without them a test skips
and says which packages are missing; with CI=true (CI installs them) it fails instead, so a
broken CI image cannot turn these tests into silent skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.media.synthetic import EncodedLoop, encode_loop
from tests.media.conftest import FarmHandle, farm_available, start_farm

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def missing(reason: str) -> None:
    """Skip, or fail in CI where the packages are installed on purpose."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def web_farm_loop() -> EncodedLoop:
    return encode_loop("Ferme RTSP", width=640, height=360, seconds=2)


@pytest.fixture(scope="session")
def web_farm(web_farm_loop: EncodedLoop) -> Iterator[FarmHandle]:
    """Four RTSP cameras served by Debian's GStreamer RTSP server (tests/media/farm.py), each
    with its low-resolution substream."""
    reason = farm_available()
    if reason:
        missing(reason)
    sub = encode_loop("Ferme RTSP", width=320, height=180, seconds=2, bitrate=250_000)
    handle = start_farm(web_farm_loop, mounts=4, sub=sub)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="session")
def farm_or_none(request: pytest.FixtureRequest) -> FarmHandle | None:
    """The farm when it can run, else None (synthetic cameras); in CI the farm must run."""
    if farm_available() is not None and os.environ.get("CI") != "true":
        return None
    farm: FarmHandle = request.getfixturevalue("web_farm")
    return farm


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as b:
        yield b


async def wait_js(page: Any, expression: str, timeout: float = 10.0) -> float:
    """Poll a JS expression until truthy; returns the seconds it took.

    Playwright's wait_for_function evaluates strings with eval, which the page's CSP
    (rightly) forbids; evaluate() goes through DevTools and is not affected.
    """
    t0 = time.monotonic()
    while True:
        if await page.evaluate(expression):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {expression}")
        await asyncio.sleep(0.05)
