"""Tap → first frame in three engines, and on the fallbacks, against one real bot.

    .venv/bin/python -m bench.media.bench_engines [--opens 8] [--source farm|synthetic]

Engines from Debian packages (tests/web/engines.py): Chromium (Playwright), Firefox ESR
(WebDriver BiDi), WebKitGTK (WebKitWebDriver under Xvfb); in Chromium also the two paths of
a browser without MSE: native HLS, and live pictures (MSE and HLS removed before the page
loads). Each row signs in once, then opens the same camera ``--opens`` times: the figure is
the page's own ``data-first-frame-ms``, from the tap (the player's ``open()``) to the first
frame shown (``requestVideoFrameCallback``, else ``playing``; a picture's ``load``). The
first open is printed apart: an HLS stream stays warm for 10 s after the player closes, so
later opens find its segments ready.

Cameras: the GStreamer RTSP farm (1080p25, GOP 2 s, with a 320x180 substream) when Debian's
packages are there, else synthetic cameras. Baseline: an aiohttp client's WebSocket connect
→ first fMP4 fragment (the server's share). Nothing is asserted; figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.media.synthetic import encode_loop  # noqa: E402
from tests.media.conftest import FarmHandle, farm_available, start_farm  # noqa: E402
from tests.web import engines  # noqa: E402
from tests.web.conftest import chromium  # noqa: E402
from tests.web.engines import PLAYER, Driver  # noqa: E402
from tests.web.support import AGENT, Cam, LiveApp, cookie  # noqa: E402

NO_MSE = "delete window.MediaSource; delete window.ManagedMediaSource;"
NO_HLS = "HTMLMediaElement.prototype.canPlayType = function () { return ''; };"
CAMERA = "cam1"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


async def opens(driver: Driver, count: int) -> tuple[str, list[float]]:
    times: list[float] = []
    path = ""
    for _ in range(count):
        await driver.evaluate(f"document.querySelector(\"#mosaic-hits .hit[data-camera='{CAMERA}']\").click()")
        await engines.wait_for(driver, f"{PLAYER}.getAttribute('data-state') === 'playing'", 30)
        times.append(float(await driver.evaluate(f"Number({PLAYER}.getAttribute('data-first-frame-ms'))")))
        path = str(await driver.evaluate(f"{PLAYER}.getAttribute('data-fallback')"))
        await driver.evaluate("document.getElementById('player-close').click()")
        await asyncio.sleep(0.5)
    return path, times


async def baseline(app: LiveApp, link: str, count: int) -> list[float]:
    times = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as http:
        headers = cookie(await app.login(http, link))
        for _ in range(count):
            t0 = time.perf_counter()
            async with http.ws_connect(f"{app.base}/live/api/cam/{CAMERA}/ws", headers=headers) as ws:
                while (await ws.receive()).type is not aiohttp.WSMsgType.BINARY:
                    pass
                times.append((time.perf_counter() - t0) * 1000)
    return times


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--opens", type=int, default=8)
    parser.add_argument("--source", choices=("farm", "synthetic"), default="farm")
    args = parser.parse_args()
    farm: FarmHandle | None = None
    if args.source == "farm" and farm_available() is None:
        loop = encode_loop("Banc", width=1920, height=1080, seconds=4, gop=50, bitrate=4_000_000)
        sub = encode_loop("Banc", width=320, height=180, seconds=4, gop=50, bitrate=250_000)
        farm = start_farm(loop, mounts=2, sub=sub)
    cams = [Cam(f"cam{i}", f"Caméra {i}", farm.url(i) if farm else None,
                substream_url=farm.sub_url(i) if farm else None) for i in (1, 2)]
    folder = Path(tempfile.mkdtemp(prefix="vigie-bench-engines-"))
    app = await LiveApp(folder / "data", cams, ssl=engines.tls_context(folder)).start()
    rows: list[tuple[str, str, list[float]]] = []
    try:
        await app.online(timeout=60)
        incident, link = await app.alert()
        link = link.replace("http://", "https://")
        rows.append(("aiohttp WebSocket (baseline)", "connect → 1st fragment",
                     await baseline(app, link, args.opens)))

        async def row(name: str, start: Callable[[], Awaitable[Driver]]) -> None:
            driver = await start()
            try:
                await engines.sign_in(driver, link, AGENT, app.passwords[AGENT])
                path, times = await opens(driver, args.opens)
                rows.append((name, {"none": "MSE"}.get(path, path), times))
            except Exception as exc:  # one engine failing must not hide the others' figures
                print(f"{name}: {exc!r}", file=sys.stderr)
            finally:
                await driver.close()

        async with chromium() as browser:
            await row("Chromium (Playwright)", lambda: engines.PlaywrightPage(browser).start())
            await row("Chromium without MSE", lambda: engines.PlaywrightPage(browser).start(NO_MSE))
            await row("Chromium without MSE nor HLS", lambda: engines.PlaywrightPage(browser).start(NO_MSE, NO_HLS))
        await row("Firefox ESR (BiDi)", lambda: engines.FirefoxBiDi().start())
        await row("WebKitGTK (WebKitWebDriver)", lambda: engines.WebKitDriver().start())
        await app.end(incident)
    finally:
        await app.stop()
        if farm is not None:
            farm.stop()
    print(f"\ntap → first frame, {args.opens} opens each, cameras: {'farm 1080p25' if farm else 'synthetic'}")
    print(f"{'engine':32} {'path':24} {'first open':>10} {'median ms':>10} {'p95 ms':>8}")
    for name, path, times in rows:
        print(f"{name:32} {path:24} {times[0]:10.0f} {statistics.median(times):10.0f} "
              f"{percentile(times, 0.95):8.0f}")


if __name__ == "__main__":
    asyncio.run(main())
