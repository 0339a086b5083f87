"""Camera faults seen through the whole app: /healthz, /status and the page's mosaic.

Real RTSP cameras from the GStreamer farm. A camera that disappears (its mount removed, as
when it reboots) or hangs (mounted, sending nothing) is shown offline and HORS LIGNE, then
live again once it is back, without restarting anything. Cameras that never answer (a
closed local port; a port that accepts and stays silent) delay neither the other cameras,
nor the answers of the bot, nor its stop.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.media.conftest import FarmHandle
from tests.web.support import TEST_MEDIA, Cam, LiveApp, cells, cookie, free_port, image, looks_offline


async def get_json(s: aiohttp.ClientSession, url: str, **kw: Any) -> Any:
    async with s.get(url, **kw) as r:
        assert r.status == 200, r.status
        return await r.json()


async def offline_cells(s: aiohttp.ClientSession, app: LiveApp, ck: str) -> list[bool]:
    layout = await get_json(s, f"{app.base}/live/api/media", headers=cookie(ck))
    async with s.get(f"{app.base}/live/api/mosaic.jpg", headers=cookie(ck)) as r:
        return [looks_offline(c) for c in cells(image(await r.read()), layout)]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        yield srv.getsockname()[1]


async def test_camera_that_stops_is_hors_ligne_then_live_again(tmp_path: Path, web_farm: FarmHandle) -> None:
    app = await LiveApp(tmp_path / "data", [Cam("parvis", "Parvis nord", web_farm.url(1)),
                                            Cam("fosse", "Fosse", web_farm.url(3)),
                                            Cam("quai", "Quai de livraison", web_farm.url(4))]).start()
    try:
        await app.online()
        incident, link = await app.alert()
        async with aiohttp.ClientSession() as s:
            ck = await app.login(s, link)
            assert await offline_cells(s, app, ck) == [False, False, False]

            async def health() -> dict[str, Any]:
                cams: dict[str, Any] = (await get_json(s, f"{app.base}/healthz/details"))["cameras"]
                return cams

            assert set(await health()) == {"parvis", "fosse", "quai"}
            # the quay's camera reboots (mount gone), the pit's hangs (connected, sends nothing)
            web_farm.command("pause 4")
            web_farm.command("freeze 3")
            try:
                # the hung one is offline once its packets are stale; counted as such for good once
                # the reader gave up on it (read timeout) and reconnects
                deadline = time.monotonic() + 20  # generous: a loaded CI machine reads late
                while (h := await health())["quai"]["online"] or h["fosse"]["online"] or not h["fosse"]["reconnects"]:
                    assert time.monotonic() < deadline, h
                    await asyncio.sleep(0.1)
                assert h["parvis"]["online"] and h["fosse"]["last_packet_age"] >= 2.5
                await asyncio.sleep(1.1)  # the shared page mosaic is at most 1 s old
                assert await offline_cells(s, app, ck) == [False, True, True]
                status = app.desk.status().text("fr")
                assert "Caméras : 1/3 en ligne — hors ligne : Fosse, Quai de livraison" in status, status
            finally:
                web_farm.command("resume 4")
                web_farm.command("thaw 3")
            back = await app.online(timeout=20)
            h = await health()
            assert h["quai"]["reconnects"] >= 1 and all(c["online"] for c in h.values())
            await asyncio.sleep(1.1)
            assert await offline_cells(s, app, ck) == [False, False, False]
            assert "Caméras : 3/3 en ligne" in app.desk.status().text("fr")
            print(f"\nback online {back:.1f} s after the farm resumed")
        await app.end(incident)
    finally:
        await app.stop()


async def test_cameras_that_never_answer_delay_nothing(tmp_path: Path, web_farm: FarmHandle,
                                                       silent_port: int) -> None:
    """A camera that accepts the connection and never answers holds its reader in a blocking
    open for the whole open timeout, made long here (30 s). Nothing else may wait for it: the
    good cameras, the health page, the page's mosaic and the stop each finish well inside that
    timeout (a third of it), which they could not if any of them waited on the silent camera.
    The bounds test that independence, not a speed: the speeds are bench/'s."""
    closed = free_port()  # bound then released: nothing listens there
    silent_open = 30.0
    options = replace(TEST_MEDIA, rtsp_open_timeout=silent_open, rtsp_read_timeout=silent_open)
    within = silent_open / 3
    app = LiveApp(tmp_path / "data", [Cam("ferme", "Porte fermée", f"rtsp://127.0.0.1:{closed}/cam"),
                                      Cam("muette", "Caméra muette", f"rtsp://127.0.0.1:{silent_port}/cam"),
                                      Cam("parvis", "Parvis nord", web_farm.url(1)),
                                      Cam("hall", "Hall d'entrée", web_farm.url(2))], options=options)
    await app.start()
    try:
        took = await app.online(["parvis", "hall"], timeout=within)
        async with aiohttp.ClientSession() as s:
            h = (await asyncio.wait_for(get_json(s, f"{app.base}/healthz/details"), within))["cameras"]
            assert not h["ferme"]["online"] and not h["muette"]["online"] and h["parvis"]["online"]
            incident, link = await app.alert()
            ck = await app.login(s, link)
            assert await asyncio.wait_for(offline_cells(s, app, ck), within) == [True, True, False, False]
            await app.end(incident)
        print(f"\ngood cameras online {took:.2f} s after start")
    finally:
        # the silent camera is inside its blocking open: the stop does not wait for it
        await asyncio.wait_for(app.stop(), app.options.stop_timeout + within)
