"""The page's camera-control routes without a browser: sessions, bad requests, the video socket, the demo dome."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.settings import PtzCfg
from tests.web.support import CHIEF, ROOM, Cam, LiveApp, cookie, until


async def test_control_needs_a_session_a_known_action_and_never_goes_over_the_video_socket(tmp_path: Path) -> None:
    # a synthetic dome (the demo's), so catastrophe mode runs whole without a network camera
    app = await LiveApp(tmp_path / "data", [Cam("hall", "Hall d'entrée", ptz=PtzCfg(home_preset="origine"))]).start()
    try:
        await app.online()
        incident, link = await app.alert()
        async with aiohttp.ClientSession() as s:
            async with s.get(app.base + "/live/api/ptz") as r:
                assert r.status == 401
            async with s.post(app.base + "/live/api/ptz/hall/take") as r:
                assert r.status == 401
            ck = await app.login(s, link, "demo-cic")
            async with s.get(app.base + "/live/api/ptz", headers=cookie(ck)) as r:
                assert (await r.json())["catastrophe"] is False
            async with s.post(app.base + "/live/api/ptz/hall/explode", headers=cookie(ck)) as r:
                assert r.status == 400
            async with s.post(app.base + "/live/api/ptz/hall/move", headers=cookie(ck), data="[1]") as r:
                assert r.status == 400
            async with s.post(app.base + "/live/api/ptz/hall/move", headers=cookie(ck), data="x" * 5000) as r:
                assert r.status == 400

            ws = await app.video(s, ck, "hall")
            await ws.receive_str(timeout=5)
            for _ in range(5):
                await ws.send_str('{"ptz": "move", "pan": 1}')
            await ws.close()
            await until(lambda: app.records(incident, "stream_closed"), 5)
            refused = [r for r in app.records(incident, "refusal") if r.details.get("via") == "websocket"]
            assert len(refused) == 1 and refused[0].details["reason"] == "camera_control_refused"
            assert app.records(incident, "stream_closed")[0].details["control_attempts"] == 5

            # the demo dome: declared (no confirmation in the demo), taken, moved, sent to a preset, home
            await app.desk.declare_catastrophe(app.desk.conv.person(CHIEF), ROOM)
            for action, body in (("take", {}), ("move", {"pan": 0.5, "tilt": 0, "zoom": 0}), ("stop", {}),
                                 ("preset", {"token": "scene"}), ("home", {})):
                async with s.post(f"{app.base}/live/api/ptz/hall/{action}", headers=cookie(ck), json=body) as r:
                    assert r.status == 200, (action, await r.text())
                    view = await r.json()
                    if action == "preset":  # the demo dome says where it points
                        assert view["cameras"]["hall"]["position"] == [0.0, -0.3, 0.5]
            assert view["cameras"]["hall"]["mine"] and view["cameras"]["hall"]["holder"].startswith("Cdt Julien Moreau")
            assert [p["token"] for p in view["cameras"]["hall"]["presets"]] == ["origine", "scene", "entree"]
            async with s.post(f"{app.base}/live/api/ptz/hall/preset", headers=cookie(ck), json={"token": "nope"}) as r:
                assert r.status == 502 and "nope" in (await r.json())["error"]
    finally:
        await app.stop()
