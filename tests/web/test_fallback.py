"""Video without Media Source Extensions: native HLS and live pictures, under the WebSocket's rules.

One app for the module (synthetic cameras); the test that ends access runs last.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import av
import pytest
import pytest_asyncio

from bot.web import fallback
from tests.web.conftest import chromium, wait_js
from tests.web.support import AGENT, Cam, LiveApp, cookie, image, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

CAMS = [Cam("parvis", "Parvis nord"), Cam("hall", "Hall d'entrée"),
        Cam("parking", "Parking public", masks=((0.5, 0.0, 0.5, 0.5),))]
# before any script of the page: a browser without MSE (an iPhone before iOS 17.1)
NO_MSE = "delete window.MediaSource; delete window.ManagedMediaSource; delete window.WebKitMediaSource;"
NO_HLS = "HTMLMediaElement.prototype.canPlayType = function () { return ''; };"
# MSE without H.264 (a browser built without it)
NO_H264 = "MediaSource.isTypeSupported = function () { return false; };"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[LiveApp, str, str]]:
    app = await LiveApp(tmp_path_factory.mktemp("fallback") / "data", CAMS).start()
    try:
        await app.online(timeout=20)
        incident, link = await app.alert()
        yield app, incident, link
    finally:
        await app.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium for the module (the shared fixture is per test)."""
    async with chromium() as b:
        yield b


async def playlist(http: aiohttp.ClientSession, base: str, camera: str, headers: dict[str, str],
                   quality: str = "hd") -> str:
    url = f"{base}/live/api/cam/{camera}/hls/{quality}/index.m3u8"
    for _ in range(100):
        async with http.get(url, headers=headers) as r:
            if r.status == 200:
                assert r.headers["Cache-Control"] == "no-store"
                assert r.content_type == "application/vnd.apple.mpegurl"
                return await r.text()
            assert r.status == 503, r.status
        await asyncio.sleep(0.1)
    raise AssertionError("no playlist")


async def test_hls_serves_a_live_window_that_decodes(live: tuple[LiveApp, str, str]) -> None:
    app, incident, link = live
    async with aiohttp.ClientSession() as http:
        headers = cookie(await app.login(http, link))
        text = await playlist(http, app.base, "parvis", headers)
        lines = text.splitlines()
        assert lines[0] == "#EXTM3U" and any(x.startswith("#EXT-X-TARGETDURATION:") for x in lines)
        init_uri = next(x.split('"')[1] for x in lines if x.startswith("#EXT-X-MAP"))
        segs = [x for x in lines if x.startswith("seg-")]
        assert segs
        parts = []
        for uri in (init_uri, segs[-1]):
            async with http.get(f"{app.base}/live/api/cam/parvis/hls/hd/{uri}", headers=headers) as r:
                assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
                parts.append(await r.read())
        assert parts[0][4:8] == b"ftyp" and parts[1][4:8] == b"moof"
        with av.open(io.BytesIO(parts[0] + parts[1])) as container:
            frames = list(container.decode(video=0))
        assert len(frames) >= 10 and frames[0].width == 320
        # the data-saving choice is a stream of its own, from the substream
        assert "seg-" in await playlist(http, app.base, "parvis", headers, quality="saver")
        assert app.records(incident, "stream_opened")[-1].details["mode"] == "hls"


async def test_hls_refuses_without_cookie_masked_and_unknown(live: tuple[LiveApp, str, str]) -> None:
    app, _, link = live
    async with aiohttp.ClientSession() as http:
        base = f"{app.base}/live/api/cam"
        for path in ("parvis/hls/hd/index.m3u8", "parvis/hls/hd/seg-1.m4s", "parvis/hls/saver/init-1.mp4"):
            async with http.get(f"{base}/{path}") as r:
                assert r.status == 401
        headers = cookie(await app.login(http, link))
        for path in ("parking/hls/hd/index.m3u8", "nowhere/hls/hd/index.m3u8", "parvis/hls/hd/seg-999999.m4s",
                     "parvis/hls/4k/index.m3u8", "parvis/hls/hd/..%2F..%2Fetc%2Fpasswd"):
            async with http.get(f"{base}/{path}", headers=headers) as r:
                assert r.status in (404, 400), (path, r.status)


async def test_hls_refuses_other_sites_and_ends_when_the_page_lets_go(live: tuple[LiveApp, str, str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app, incident, link = live
    monkeypatch.setattr(fallback, "IDLE_S", 0.5)
    async with aiohttp.ClientSession() as http:
        headers = cookie(await app.login(http, link))
        url = f"{app.base}/live/api/cam/hall/hls/saver/index.m3u8"
        async with http.get(url, headers={**headers, "Sec-Fetch-Site": "cross-site"}) as r:
            assert r.status == 403
        await playlist(http, app.base, "hall", headers, quality="saver")
    await until(lambda: any(r.details.get("camera") == "hall" and r.details.get("reason") == "client_closed"
                            for r in app.records(incident, "stream_closed")), 10)
    # the two records pair by stream id, so the closure report's timeline counts HLS viewers too
    opened = next(r.details for r in app.records(incident, "stream_opened") if r.details["camera"] == "hall")
    closed = next(r.details for r in app.records(incident, "stream_closed") if r.details["camera"] == "hall")
    assert opened["mode"] == closed["mode"] == "hls" and opened["person"] == AGENT
    assert opened["stream"] and opened["stream"] == closed["stream"]


async def read_pictures(ws: aiohttp.ClientWebSocketResponse, count: int) -> tuple[str, list[bytes]]:
    mime = ""
    pictures: list[bytes] = []
    while len(pictures) < count:
        msg = await ws.receive(timeout=10)
        if msg.type is aiohttp.WSMsgType.TEXT:
            mime = mime or msg.data
        elif msg.type is aiohttp.WSMsgType.BINARY:
            pictures.append(msg.data)
        else:
            raise AssertionError(f"closed: {msg}")
    return mime, pictures


async def test_live_pictures_over_the_websocket(live: tuple[LiveApp, str, str]) -> None:
    app, incident, link = live
    async with aiohttp.ClientSession() as http:
        headers = cookie(await app.login(http, link))
        async with http.ws_connect(f"{app.base}/live/api/cam/hall/ws?mode=pictures", headers=headers) as ws:
            mime, pictures = await read_pictures(ws, 4)
        assert mime == "image/jpeg"
        shown = [image(p) for p in pictures]
        assert shown[0].width <= 640 and len(set(pictures)) == len(pictures)  # moving, stamped
        opened = [r.details for r in app.records(incident, "stream_opened")]
        assert any(d["camera"] == "hall" and d["person"] == AGENT and d["mode"] == "pictures" and d["stream"]
                   for d in opened)


async def page_without_mse(browser: Any, link: str, password: str, *scripts: str) -> Any:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    for script in scripts:
        await context.add_init_script(script)
    page = await context.new_page()
    await page.goto(link)
    await page.fill("#person", AGENT)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/live/view")
    await wait_js(page, "Number(document.getElementById('mosaic').getAttribute('data-refreshes') || 0) >= 1")
    return page


async def open_camera(page: Any, camera: str) -> str:
    await page.tap(f"#mosaic-hits .hit[data-camera='{camera}']")
    await wait_js(page, "document.getElementById('player').getAttribute('data-state') === 'playing'", 20)
    return str(await page.evaluate("document.getElementById('player').getAttribute('data-fallback')"))


async def test_chromium_without_mse_plays_the_fallback(live: tuple[LiveApp, str, str], browser: Any) -> None:
    app, _, link = live
    page = await page_without_mse(browser, link, app.passwords[AGENT], NO_MSE)
    native_hls = await page.evaluate("!!document.createElement('video').canPlayType('application/vnd.apple.mpegurl')")
    kind = await open_camera(page, "parvis")
    assert kind == ("hls" if native_hls else "pictures")
    if kind == "pictures":  # pictures keep coming
        await wait_js(page, "document.getElementById('player-still').naturalWidth > 0")
    await page.click("#player-close")
    # the last resort, forced: live pictures in the still element, the watermark over them
    page = await page_without_mse(browser, link, app.passwords[AGENT], NO_MSE, NO_HLS)
    assert await open_camera(page, "hall") == "pictures"
    first = await page.evaluate("document.getElementById('player-still').src")
    await wait_js(page, f"document.getElementById('player-still').src !== {first!r}")
    assert await page.evaluate("document.getElementById('player-overlay').textContent.length > 0")
    await page.context.close()
    page = await page_without_mse(browser, link, app.passwords[AGENT], NO_H264)
    assert await open_camera(page, "parvis") == "pictures"
    await page.context.close()


async def test_end_cuts_hls_and_pictures(live: tuple[LiveApp, str, str], browser: Any, tmp_path: Path) -> None:
    app, incident, link = live
    page = await page_without_mse(browser, link, app.passwords[AGENT], NO_MSE, NO_HLS)
    await open_camera(page, "parvis")
    async with aiohttp.ClientSession() as http:
        headers = cookie(await app.login(http, link))
        text = await playlist(http, app.base, "hall", headers)
        seg = [x for x in text.splitlines() if x.startswith("seg-")][-1]
        await app.end(incident)
        for path in ("hall/hls/hd/index.m3u8", f"hall/hls/hd/{seg}"):
            async with http.get(f"{app.base}/live/api/cam/{path}", headers=headers) as r:
                assert r.status == 410
    await wait_js(page, "document.getElementById('player').getAttribute('data-state') === 'ended'"
                        " || !document.getElementById('ended').hidden", 10)
    await until(lambda: app.registre is not None and all(
        any(r.details.get("mode") == mode and r.details.get("reason") in ("access_ended", "session_ended")
            for r in app.records(incident, "stream_closed")) for mode in ("hls", "pictures")), 10)
    await page.context.close()
