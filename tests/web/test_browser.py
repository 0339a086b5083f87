"""The live page in headless Chromium on a phone-sized viewport, against a real Vigie.

A real link from a real app (build_app on the demo's settings; cameras from the RTSP farm
when Debian's GStreamer is there, else synthetic), a roster password typed into the login
form, the mosaic refreshing, a camera opened and played through MSE, a masked camera shown as
masked stills, then the incident ends and the page must stop the video within 2 s and say so.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

from tests.media.conftest import FarmHandle
from tests.web.conftest import wait_js
from tests.web.support import AGENT, Cam, LiveApp

# what the page shows, read back through a canvas (the CSP rightly forbids fetching blob: URLs)
MOSAIC_PIXELS = """() => {
  const img = document.getElementById('mosaic-img');
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  return Array.from(g.getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 7 === 0));
}"""
VIDEO = """() => {
  const v = document.getElementById('player-video');
  return {t: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames, paused: v.paused,
          end: v.buffered.length ? v.buffered.end(v.buffered.length - 1) : null};
}"""


def cameras(farm: FarmHandle | None) -> list[Cam]:
    def url(i: int) -> str | None:
        return farm.url(i) if farm else None

    return [Cam("parvis-nord", "Parvis nord", url(1)), Cam("fosse", "Fosse", url(2)),
            Cam("hall", "Hall d'entrée", url(3)),
            Cam("parking", "Parking public", url(4), masks=((0.5, 0.0, 0.5, 0.5),))]


async def mosaic_digest(page: Any) -> str:
    return hashlib.sha256(bytes(await page.evaluate(MOSAIC_PIXELS))).hexdigest()


async def test_phone_login_mosaic_live_video_and_end(tmp_path: Path, browser: Any,
                                                     farm_or_none: FarmHandle | None) -> None:
    app = await LiveApp(tmp_path / "data", cameras(farm_or_none)).start()
    try:
        await app.online(timeout=20)
        incident, link = await app.alert()
        context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3,
                                            is_mobile=True, has_touch=True, locale="fr-FR")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        media_polls: list[float] = []
        page.on("request", lambda r: media_polls.append(time.monotonic()) if "/live/api/media" in r.url else None)

        # the link, the "who are you" form, a roster password
        t_nav = time.monotonic()
        await page.goto(link)
        await page.fill("#person", AGENT)
        await page.fill("#password", app.passwords[AGENT])
        await page.click("button[type=submit]")
        await page.wait_for_url("**/live/view")

        # the grid is the live mosaic: two refreshes, two different pictures
        await wait_js(page, "Number(document.getElementById('mosaic').getAttribute('data-refreshes') || 0) >= 1")
        first_mosaic_s = time.monotonic() - t_nav
        first = await mosaic_digest(page)
        await wait_js(page, "Number(document.getElementById('mosaic').getAttribute('data-refreshes') || 0) >= 2")
        assert await mosaic_digest(page) != first
        buttons = await page.eval_on_selector_all("#grid .cam", "els => els.map(e => e.dataset.camera)")
        assert buttons == ["parvis-nord", "fosse", "hall", "parking"]

        # tap the first camera's cell in the mosaic: its live video plays
        await page.tap("#mosaic-hits .hit[data-camera='parvis-nord']")
        await wait_js(page, "document.getElementById('player').hasAttribute('data-first-frame-ms')")
        first_frame_ms = int(await page.get_attribute("#player", "data-first-frame-ms") or -1)
        a = await page.evaluate(VIDEO)
        # The playhead moves: every frame in HD; on a loaded machine Auto may drop to data saving,
        # keyframes only for a camera without a substream, where it moves one GOP (2 s) at a time.
        for _ in range(40):
            await asyncio.sleep(0.1 if _ else 1.0)
            b = await page.evaluate(VIDEO)
            if b["t"] > a["t"] + 0.5:
                break
        attrs = await page.evaluate("() => Object.fromEntries(Array.from(document.getElementById('player').attributes).filter(a => a.name.startsWith('data-') && a.name !== 'data-ws').map(a => [a.name, a.value]))")
        assert b["t"] > a["t"] + 0.5, (a, b, attrs)
        assert b["frames"] > 0 and not b["paused"]
        assert b["end"] - b["t"] < 2.5, f"live lag {b['end'] - b['t']:.2f} s"
        overlay = await page.text_content("#player-overlay")
        assert overlay and "Lucie Perrin" in overlay
        print(f"\nfirst mosaic {first_mosaic_s:.2f} s after navigation; tap -> first frame {first_frame_ms} ms "
              f"({'farm' if farm_or_none else 'synthetic'} cameras)")

        # the camera list and the mosaic's cells are under the full-screen player: not polled
        # (every 5 s otherwise) while it is open, fetched again as soon as it closes
        polls = len(media_polls)
        await asyncio.sleep(5.5)
        assert len(media_polls) == polls
        await page.click("#player-close")
        for _ in range(20):
            if len(media_polls) > polls:
                break
            await asyncio.sleep(0.1)
        assert len(media_polls) == polls + 1

        # a camera with privacy masks: masked stills, never video
        await page.click("#grid .cam[data-camera='parking']")
        await wait_js(page, "document.getElementById('player').hasAttribute('data-first-frame-ms')")
        assert "image masquée, rafraîchie chaque seconde" in (await page.text_content("#player-note") or "")
        assert await page.evaluate("document.getElementById('player-video').hidden")
        await page.click("#player-close")

        # back to a live camera, then the incident ends: the stream stops within 2 s
        await page.click("#grid .cam[data-camera='fosse']")
        await wait_js(page, "document.getElementById('player').getAttribute('data-state') === 'playing'")
        await asyncio.sleep(0.5)
        t_end = time.monotonic()
        await app.end(incident)
        closed_s = await wait_js(page, "document.getElementById('player').getAttribute('data-ws') === 'closed'", 2.0)
        assert await page.get_attribute("#player", "data-close-code") == "4001"
        c = await page.evaluate(VIDEO)
        await asyncio.sleep(0.5)
        d = await page.evaluate(VIDEO)
        assert d["t"] == c["t"], "the video still plays after the end"
        await wait_js(page, "!document.getElementById('ended').hidden", 2.0)
        assert time.monotonic() - t_end < 2.0
        assert "Accès terminé" in (await page.text_content("#ended") or "")
        assert await page.evaluate("document.querySelectorAll('#grid .cam, #mosaic img').length") == 0
        print(f"stream closed {closed_s * 1000:.0f} ms after the end")
        assert errors == []
        await context.close()

        await app.desk.fanout.drain()
        closed = app.records(incident, "stream_closed")
        assert len(app.records(incident, "stream_opened")) == 3 and len(closed) == 3
        assert closed[-1].details["reason"] == "access_ended" and closed[-1].details["camera"] == "fosse"
        assert {r.details["mode"] for r in closed} == {"video", "masked_stills"}
    finally:
        await app.stop()
