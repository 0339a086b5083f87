"""Catastrophe mode in headless Chromium against a real Vigie and a real third-party ONVIF PTZ device.

The flow a CIC officer lives: the camera cannot be steered before the declaration; the venue
declares, the police confirm; on the page the officer takes the dome, turns it with a finger held
on the pad, sends it to a preset, releases it; the catastrophe ends and the dome goes back home.
Refused along the way (and recorded): a viewer whose role may not steer, a second officer without
take-over, anything after the end.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from bot.settings import CatastropheCfg, PtzCfg
from tests.onvif_support import PASSWORD, USER, onvif_device
from tests.web.conftest import wait_js
from tests.web.support import AGENT, CHIEF, ROOM, Cam, LiveApp, until

CIC, FIELD = "demo-cic", "demo-terrain"
PTZ_TAKE = "fetch('/live/api/ptz/hall/take', {method: 'POST', credentials: 'same-origin'}).then(r => r.status)"


async def sign_in(browser: Any, app: LiveApp, link: str, person: str) -> Any:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                        locale="fr-FR")
    page = await context.new_page()
    await page.goto(link)
    await page.fill("#person", person)
    await page.fill("#password", app.passwords[person])
    await page.click("button[type=submit]")
    await page.wait_for_url("**/live/view")
    return page


async def api(app: LiveApp, link: str, person: str, path: str) -> int:
    async with aiohttp.ClientSession() as s:
        cookie = await app.login(s, link, person)
        async with s.post(app.base + path, cookies={"vigie_session": cookie}, json={}) as r:
            return r.status


async def test_declare_confirm_steer_preset_release_end_home(tmp_path: Path, browser: Any) -> None:
    with onvif_device() as device:
        ptz = PtzCfg(onvif=device.url, username=USER, home_preset="home", timeout_seconds=10)
        cams = [Cam("hall", "Hall d'entrée", ptz=ptz, onvif_password=PASSWORD), Cam("fosse", "Fosse")]
        app = await LiveApp(tmp_path / "data", cams, convention={"catastrophe": CatastropheCfg()}).start()
        try:
            await app.online(["hall"], timeout=20)
            incident, link = await app.alert()
            page = await sign_in(browser, app, link, CIC)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.click("#grid .cam[data-camera='hall']")
            assert await page.evaluate(PTZ_TAKE) == 403, "no control before a catastrophe is declared"
            assert await page.is_hidden("#ptz")

            chief, cic = app.desk.conv.person(CHIEF), app.desk.conv.person(CIC)
            pending = (await app.desk.declare_catastrophe(chief, ROOM)).text("fr")
            assert "ne s'ouvrira que si" in pending
            assert await page.evaluate(PTZ_TAKE) == 403, "declared but not confirmed: still closed"
            assert "EN VIGUEUR" in (await app.desk.declare_catastrophe(cic, ROOM)).text("fr")

            await wait_js(page, "!document.getElementById('catastrophe').hidden", 5)
            await wait_js(page, "!document.getElementById('ptz').hidden", 5)
            assert "Personne ne commande" in (await page.text_content("#ptz-holder") or "")
            await page.click("#ptz-take")
            await wait_js(page, "!document.getElementById('ptz-steer').hidden", 5)
            assert "Commandée par Cdt Julien Moreau" in (await page.text_content("#ptz-holder") or "")

            # a finger held on the right of the pad turns the dome right; lifted, it stops
            box = await page.locator("#ptz-pad").bounding_box()
            await page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] / 2)
            await page.mouse.down()
            await until(lambda: device.position()[0] > 0.05, 5, message="the dome turns")
            await asyncio.sleep(0.6)  # a few ticks: still one gesture
            await page.mouse.up()
            await until(lambda: not device.ptz.get_status()["moving"], 5, message="the dome stops")

            await wait_js(page, "document.querySelector(\"#ptz-presets [data-token='scene']\") !== null", 5)
            await page.click("#ptz-presets [data-token='scene']")
            await until(lambda: device.position() == (0.4, -0.2, 0.5), 5, message="the dome at its preset")

            # refused: a viewer whose role may not steer; a second officer without take-over
            assert await api(app, link, AGENT, "/live/api/ptz/hall/take") == 403
            assert await api(app, link, FIELD, "/live/api/ptz/hall/take") == 403
            assert await api(app, link, FIELD, "/live/api/ptz/hall/home") == 403

            await page.click("#ptz-release")
            await wait_js(page, "!document.getElementById('ptz-take').hidden", 5)
            assert "terminée" in (await app.desk.end_catastrophe(chief, ROOM)).text("fr")
            await until(lambda: device.position() == (0.0, 0.0, 0.0), 10, message="the dome back home")
            await wait_js(page, "document.getElementById('catastrophe').hidden", 5)
            assert await page.is_hidden("#ptz")
            assert await page.evaluate(PTZ_TAKE) == 403, "no control after the end"
            assert not errors

            records = app.registre.records(incident)
            moves = [r for r in records if r.kind == "ptz_command" and r.details["command"] == "move"]
            assert len(moves) == 1 and moves[0].details["ticks"] >= 2, "one record per gesture"
            assert any(r.kind == "ptz_command" and r.details.get("preset") == "scene" for r in records)
            home = next(r for r in records if r.kind == "ptz_home")
            assert home.details["returned"] == ["hall"] and "failed" not in home.details
            reasons = [r.details["reason"] for r in records if r.kind == "refusal" and r.details.get("camera") == "hall"]
            assert reasons.count("camera_control_refused") >= 3
            assert {"not_allowed_control", "camera_held", "not_controller"} <= set(reasons)
            await app.desk.fanout.drain()
            told = "\n".join(app.room.texts())
            assert "Hall d'entrée : commandée par Cdt Julien Moreau" in told
            assert "revenues à leur position d'origine : Hall d'entrée" in told
        finally:
            await app.stop()
