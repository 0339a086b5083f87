"""Cameras outside the convention's scope, or private, never appear: not opened, not listed, not
drawn, not streamed. Every media route wants a live session, re-checked on each request."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.web.support import TEST_MEDIA, Cam, LiveApp, cookie, image

CAMS = [Cam("parvis", "Parvis nord"), Cam("loges", "Loges artistes", private=True),
        Cam("reserve", "Réserve", in_scope=False),
        Cam("parking", "Parking public", masks=((0.5, 0.0, 0.5, 0.5),))]


@pytest.fixture
async def app(tmp_path: Path):  # noqa: ANN201 - async fixture
    live = await LiveApp(tmp_path / "data", CAMS).start()
    try:
        await live.online()
        yield live
    finally:
        await live.stop()


async def test_out_of_scope_and_private_cameras_appear_nowhere(app: LiveApp) -> None:
    assert [c.camera_id for c in app.media.hub] == ["parvis", "parking"]  # never even opened
    incident, link = await app.alert()
    async with aiohttp.ClientSession() as s:
        ck = await app.login(s, link)
        h = cookie(ck)
        async with s.get(f"{app.base}/live/api/state", headers=h) as r:
            assert [c["id"] for c in (await r.json())["cameras"]] == ["parvis", "parking"]
        async with s.get(f"{app.base}/live/api/media", headers=h) as r:
            media = await r.json()
            assert [c["id"] for c in media["cameras"]] == ["parvis", "parking"]
            assert [c["masked"] for c in media["cameras"]] == [False, True]
            assert media["mosaic"]["columns"] == 2 and media["mosaic"]["rows"] == 1
        async with s.get(f"{app.base}/live/view", headers=h) as r:
            page = await r.text()
            assert "Loges" not in page and "Réserve" not in page and 'data-camera="parking"' in page
        async with s.get(f"{app.base}/live/api/mosaic.jpg", headers=h) as r:
            w, th = TEST_MEDIA.tile_size  # the mosaic has exactly the two cameras in scope, side by side
            assert image(await r.read()).size == (2 * w, th + max(28, th // 5))
        async with s.get(f"{app.base}/healthz/details") as r:
            assert set((await r.json())["cameras"]) == {"parvis", "parking"}
        ws = app.base.replace("http", "ws")
        for camera in ("loges", "reserve", "nowhere", "..%2Fparvis"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await s.ws_connect(f"{ws}/live/api/cam/{camera}/ws", headers=h)
            assert err.value.status == 404, camera
        # a page of another site cannot open a stream with the viewer's cookie
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(f"{ws}/live/api/cam/parvis/ws", headers={**h, "Origin": "https://evil.example"})
        assert err.value.status == 403
        # the masked camera streams masked stills, never video
        async with s.ws_connect(f"{ws}/live/api/cam/parking/ws", headers=h) as masked:
            assert await masked.receive_str(timeout=5) == "image/jpeg"
            still = image(await masked.receive_bytes(timeout=5))
            # the mask (right half of the top half) is solid black in the picture
            box = still.crop((int(still.width * 0.8), 60, still.width - 10, 120)).resize((8, 8))
            assert max(max(p) for p in [box.getpixel((x, y)) for x in range(8) for y in range(8)]) < 90
        opened = app.records(incident, "stream_opened")[-1].details
        assert {k: opened[k] for k in ("camera", "person", "mode")} == {
            "camera": "parking", "person": "demo-agent", "mode": "masked_stills"}
    await app.end(incident)


async def test_media_routes_need_a_live_session(app: LiveApp) -> None:
    incident, link = await app.alert()
    async with aiohttp.ClientSession() as s:
        ws = app.base.replace("http", "ws")
        for path in ("/live/api/media", "/live/api/mosaic.jpg", "/live/api/cam/parvis/ws"):
            async with s.get(app.base + path) as r:
                assert r.status == 401 and r.headers["Cache-Control"] == "no-store", path
            async with s.get(app.base + path, headers=cookie("forged-cookie-value")) as r:
                assert r.status == 410, path
        ck = await app.login(s, link)
        async with s.get(f"{app.base}/live/api/mosaic.jpg", headers=cookie(ck)) as r:
            assert r.status == 200 and r.content_type == "image/jpeg"
            assert r.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in r.headers[
                "Content-Security-Policy"]
        await app.end(incident)
        for path in ("/live/api/media", "/live/api/mosaic.jpg"):
            async with s.get(app.base + path, headers=cookie(ck)) as r:
                assert r.status == 410, path
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(f"{ws}/live/api/cam/parvis/ws", headers=cookie(ck))
        assert err.value.status == 410
