"""The live page in three engines from Debian packages: Chromium (Playwright), Firefox ESR
(WebDriver BiDi) and WebKitGTK (WebKitWebDriver under Xvfb).

In each: sign in from the link, the mosaic refreshes, a tapped camera plays (MSE video, or a
fallback where the engine has no MSE) and moves, and `/end` leaves "Accès terminé" with no
picture on the page. One app for the module, served over HTTPS like production (the viewer
cookie is Secure: WebKit keeps it only there); each test opens and ends its own incident.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.web.conftest import chromium, missing
from tests.web.engines import (
    FIREFOX,
    WEBKIT_DRIVER,
    XVFB,
    Driver,
    FirefoxBiDi,
    PlaywrightPage,
    WebKitDriver,
    sign_in,
    tls_context,
    wait_ended,
    watch_camera,
)
from tests.web.support import AGENT, Cam, LiveApp

pytestmark = pytest.mark.asyncio(loop_scope="module")

CAMS = [Cam("parvis", "Parvis nord"), Cam("hall", "Hall d'entrée")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveApp]:
    folder = tmp_path_factory.mktemp("engines")
    live = await LiveApp(folder / "data", CAMS, ssl=tls_context(folder)).start()
    try:
        await live.online(timeout=20)
        yield live
    finally:
        await live.stop()


async def check_engine(app: LiveApp, driver: Driver) -> str:
    incident, link = await app.alert()
    try:
        await sign_in(driver, link.replace("http://", "https://"), AGENT, app.passwords[AGENT])
        run = await watch_camera(driver, "parvis")
        assert run.first_frame_ms > 0
    finally:
        await app.end(incident)
    await wait_ended(driver)
    return run.fallback


async def test_chromium(app: LiveApp) -> None:
    async with chromium() as browser:
        page = await PlaywrightPage(browser).start()
        assert await check_engine(app, page) == "none"  # MSE


async def test_firefox_esr(app: LiveApp) -> None:
    if not Path(FIREFOX).exists():
        missing(f"{FIREFOX} not found (apt-get install firefox-esr)")
    driver = await FirefoxBiDi().start()
    try:
        assert await check_engine(app, driver) == "none"  # MSE
    finally:
        await driver.close()


async def test_webkitgtk(app: LiveApp) -> None:
    for binary, package in ((WEBKIT_DRIVER, "webkit2gtk-driver"), (XVFB, "xvfb")):
        if not Path(binary).exists():
            missing(f"{binary} not found (apt-get install {package})")
    driver = await WebKitDriver().start()
    try:
        # WebKitGTK has MSE (GStreamer); whichever path it takes must play
        assert await check_engine(app, driver) in ("none", "hls", "pictures")
    finally:
        await driver.close()
