"""Commissioning against real RTSP cameras: ``run --console`` with the example config's cameras
on the GStreamer farm, and no chat room at all: ``/alerte``, a police viewer signs in and sees
the live mosaic, ``/fin`` closes it."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from pathlib import Path

import aiohttp

from tests.config_support import set_password
from tests.e2e.test_console_run import Run
from tests.e2e.test_demo import login
from tests.media.conftest import FarmHandle

PASSWORD = "commissioning-" + "Zenith-42"


def on_farm(cfg: Path, farm: FarmHandle) -> None:
    """Every camera of the example on one of the farm's mounts; bac-perrin's password known."""
    cams = cfg / "cameras.toml"
    mounts = itertools.cycle(range(farm.mounts))
    cams.write_text(re.sub(r'rtsp://127\.0\.0\.\d+[^"]*', lambda _: farm.url(next(mounts)),
                           cams.read_text(encoding="utf-8")), encoding="utf-8")
    set_password(cfg, "bac-perrin", PASSWORD)


async def cameras_online(s: aiohttp.ClientSession, base: str, timeout: float = 40) -> int:
    deadline = time.monotonic() + timeout
    online = 0
    while time.monotonic() < deadline:
        async with s.get(f"{base}/healthz/details") as r:
            online = sum(1 for h in (await r.json())["cameras"].values() if h.get("online"))
        if online:
            return online
        await asyncio.sleep(0.5)
    return online


async def test_commissioning_on_the_rtsp_farm(tmp_path: Path, farm: FarmHandle) -> None:
    run = Run(tmp_path, "mlefevre", prepare=lambda cfg: on_farm(cfg, farm))
    try:
        await run.started()
        run.type("/alerte attaque_armee essai de mise en service")
        link = (await run.read_until(r"(http://127\.0\.0\.1:\d+/live/\S+)")).group(1)
        async with aiohttp.ClientSession() as s:
            status, cookie = await login(s, link, "bac-perrin", PASSWORD)
            assert status == 303 and cookie
            headers = {"Cookie": f"vigie_session={cookie}"}
            async with s.get(f"{run.base}/live/view", headers=headers) as r:
                assert r.status == 200 and "Lucie Perrin" in await r.text()
            assert await cameras_online(s, run.base) > 0, run.log.read_text()
            async with s.get(f"{run.base}/live/api/mosaic.jpg", headers=headers) as r:
                assert r.status == 200 and (await r.read())[:2] == b"\xff\xd8"
            run.type("/fin")
            await run.read_until(r"ACCÈS TERMINÉ")
            async with s.get(f"{run.base}/live/api/state", headers=headers) as r:
                assert r.status == 410
            async with s.get(link) as r:
                assert r.status == 410
    finally:
        run.stop()
