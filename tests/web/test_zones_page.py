"""The officer's page on a 390x844 phone with zones and a plan: the alarm's zone first and marked,
the plan's markers open a camera, full camera names, legible mosaic labels, the police change the
focus zone from the page, the favicon. Screenshots go to /tmp/shots (never into the repository)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp

from bot.demo_venue import plan
from bot.settings import PlanSpot, Settings, ZoneCfg
from tests.web.conftest import wait_js
from tests.web.support import AGENT, ROOM, Cam, LiveApp, cookie

SHOTS = Path(os.environ.get("VIGIE_SHOTS", "/tmp/shots"))  # noqa: S108 - outside the repository on purpose
CAMS = [Cam("parvis-nord", "Parvis nord"), Cam("fosse", "Fosse"),
        Cam("sorties-est", "Sorties de secours est"), Cam("sorties-ouest", "Sorties de secours ouest"),
        Cam("parking", "Parking public", masks=((0.5, 0.0, 0.5, 0.5),)),
        Cam("hall", "Hall d'entrée"), Cam("billetterie", "Billetterie")]
SPOTS = {"parvis-nord": (0.095, 0.24, 90.0), "fosse": (0.545, 0.4, 90.0), "sorties-est": (0.8, 0.257, 270.0),
         "sorties-ouest": (0.4, 0.814, 0.0), "parking": (0.3, 0.914, 90.0), "hall": (0.215, 0.5, 90.0),
         "billetterie": (0.235, 0.37, 135.0)}
HALL_A = ["hall", "billetterie"]


def venue(s: Settings) -> Settings:
    cams = tuple(c.model_copy(update={"at": PlanSpot(x=SPOTS[c.id][0], y=SPOTS[c.id][1], direction=SPOTS[c.id][2])})
                 for c in s.cameras.camera)
    zones = (ZoneCfg(id="hall-a", name="Hall A", aliases=("hall d'entrée",), cameras=tuple(HALL_A)),
             ZoneCfg(id="coursives", name="Coursives", aliases=("sorties de secours",),
                     cameras=("sorties-est", "sorties-ouest")))
    cameras = s.cameras.model_copy(update={"camera": cams, "zone": zones, "plan": plan()})
    return s.model_copy(update={"cameras": cameras})


TRUNCATED = """() => Array.from(document.querySelectorAll('#grid .cam-name')).filter(
  e => e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight + 1).map(e => e.textContent)"""
LABEL_CSS_PX = """() => { const img = document.getElementById('mosaic-img');
  return img.clientWidth / img.naturalWidth; }"""


async def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / name), full_page=False)


async def test_zone_first_plan_legible_names_and_focus_from_the_page(tmp_path: Path, browser: Any) -> None:
    app = await LiveApp(tmp_path / "data", CAMS, venue=venue).start()
    try:
        await app.online(timeout=20)
        incident, link = await app.alert()  # "/alerte attaque_armee Hall A"
        assert "📍 Zone : Hall A" in next(t for t in app.room.texts() if "/live/" in t)
        context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                            is_mobile=True, has_touch=True, locale="fr-FR")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(link)
        assert await page.text_content(".login-zone") == "Hall A"  # where, before even signing in
        await shot(page, "1-sign-in.png")
        await page.fill("#person", AGENT)
        await page.fill("#password", app.passwords[AGENT])
        await page.click("button[type=submit]")
        await page.wait_for_url("**/live/view")
        await wait_js(page, "Number(document.getElementById('mosaic').getAttribute('data-refreshes') || 0) >= 1")

        # the alarm's zone first, and marked: the list, the mosaic's cells, the zone strip
        order = await page.eval_on_selector_all("#grid .cam", "els => els.map(e => e.dataset.camera)")
        assert order[:2] == HALL_A and sorted(order) == sorted(c.id for c in CAMS)
        marked = await page.eval_on_selector_all("#grid .cam.in-zone", "els => els.map(e => e.dataset.camera)")
        assert marked == HALL_A
        hits = await page.eval_on_selector_all("#mosaic-hits .hit", "els => els.map(e => e.dataset.camera)")
        assert hits[:2] == HALL_A
        assert await page.text_content("#focus-label") == "Hall A"
        await shot(page, "2-zone-first-mosaic.png")

        # legibility: every camera name whole (wrapped, never cut), mosaic labels 12+ CSS px tall
        assert await page.evaluate(TRUNCATED) == []
        names = await page.eval_on_selector_all("#grid .cam-name", "els => els.map(e => e.textContent)")
        assert {"Sorties de secours est", "Sorties de secours ouest"} <= set(names)
        async with aiohttp.ClientSession() as http:
            jar = {c["name"]: c["value"] for c in await context.cookies()}
            async with http.get(f"{app.base}/live/api/media", headers=cookie(jar["vigie_session"])) as r:
                media = await r.json()
            async with http.get(f"{app.base}/live/api/plan", headers=cookie(jar["vigie_session"])) as r:
                assert r.status == 200 and r.content_type == "image/svg+xml"
                assert "sandbox" in r.headers["Content-Security-Policy"] and "script" not in r.headers["Content-Security-Policy"]
            async with http.get(f"{app.base}/live/api/plan") as r:
                assert r.status == 410  # no session, no plan
            async with http.get(f"{app.base}/favicon.ico") as r:
                assert r.status == 200 and r.content_type == "image/x-icon"
        scale = await page.evaluate(LABEL_CSS_PX)
        label_css = media["mosaic"]["label_px"] * scale
        assert label_css >= 12, f"mosaic labels {label_css:.1f} CSS px"
        assert [c["id"] for c in media["cameras"] if c["in_zone"]] == HALL_A

        # the plan: a marker per camera, coloured by state, the zone's outlined; a tap opens the video
        await page.click("#plan-link")
        await wait_js(page, "document.getElementById('plan-img').naturalWidth > 0")
        marks = await page.eval_on_selector_all("#plan-marks .mark", "els => els.map(e => [e.dataset.camera, e.className])")
        assert {m[0] for m in marks} == set(SPOTS)
        classes = dict(marks)
        assert all("in-zone" in classes[c] for c in HALL_A) and "in-zone" not in classes["fosse"]
        assert "masked" in classes["parking"] and all("online" in c for c in classes.values())
        await page.locator("#plan").scroll_into_view_if_needed()
        await shot(page, "3-plan.png")
        await page.tap("#plan-marks .mark[data-camera='billetterie']")
        await wait_js(page, "document.getElementById('player').hasAttribute('data-first-frame-ms')", 15)
        assert await page.text_content("#player-title") == "Billetterie"
        assert await page.evaluate("getComputedStyle(document.getElementById('player-overlay')).display") != "none"
        await shot(page, "4-video.png")
        await page.click("#player-close")

        # a masked still: the overlay steps aside so the still's own caption shows
        await page.click("#grid .cam[data-camera='parking']")
        await wait_js(page, "!document.getElementById('player-still').hidden && document.getElementById('player-still').naturalWidth > 0", 15)
        assert await page.evaluate("getComputedStyle(document.getElementById('player-overlay')).display") == "none"
        await shot(page, "5-masked-still.png")
        await page.click("#player-close")

        # the officer moves the focus to the emergency exits: recorded, the page reopens on them
        await page.select_option("#focus-zone", "Coursives")
        await page.click(".focus-form button[type=submit]")
        await page.wait_for_url("**/live/view")
        order = await page.eval_on_selector_all("#grid .cam", "els => els.map(e => e.dataset.camera)")
        assert order[:2] == ["sorties-est", "sorties-ouest"]
        focus = app.records(incident, "focus")
        assert [(r.actor, r.details["zone"], r.details["room"]) for r in focus] == [(AGENT, "coursives", "page")]

        # the CIC moves it back with /zone in its room: the open page follows without a reload
        await app.desk.refocus(app.desk.conv.person("demo-cic"), ROOM, "hall d'entree")
        await wait_js(page, "document.querySelector('#mosaic-hits .hit').dataset.camera === 'hall'", 15)
        await wait_js(page, "document.querySelector('#grid .cam').dataset.camera === 'hall'", 15)
        assert await page.text_content("#focus-label") == "Hall A"

        await app.end(incident)
        await wait_js(page, "!document.getElementById('ended').hidden", 5)
        assert await page.evaluate("document.querySelectorAll('#plan-marks .mark, #plan img').length") == 0
        await shot(page, "6-ended.png")
        assert errors == []
        await context.close()
    finally:
        await app.stop()
