"""Camera control latency: a page's command through Vigie to a real ONVIF PTZ device (ipycam).

Run:  .venv/bin/python -m bench.bench_ptz [--commands 200]

A real Vigie (build_app, as the web tests build it) with one PTZ camera pointing at ipycam's ONVIF
service on loopback; a catastrophe is declared and confirmed, a CIC officer signs in and takes
the camera. Timed: ``--commands`` page requests alternating a move and a stop (what a finger on
the pad sends), and presets, each from the POST to its answer (the ONVIF call included). Baseline
in the same run: the same ONVIF call made straight with onvif-zeep-async, without Vigie. Printed:
p50 / p95 of both and their ratio (Vigie's decisions, registre and HTTP over the bare ONVIF call).
Needs the dev extra (ipycam).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from bot.ptz.onvif_camera import OnvifPtz
from bot.settings import CatastropheCfg, PtzCfg
from tests.onvif_support import PASSWORD, USER, onvif_device
from tests.web.support import CHIEF, ROOM, Cam, LiveApp, cookie

ROUNDS = 200


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def timed(n: int, call: object) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await call(i)  # type: ignore[operator]
        out.append(1000 * (time.perf_counter() - t0))
    return out


async def main(commands: int) -> None:
    with onvif_device() as device, tempfile.TemporaryDirectory() as tmp:
        direct = OnvifPtz(device.url, USER, PASSWORD, timeout=10)
        await direct.stop()  # the WSDLs are read once per process: not part of either figure
        bare = await timed(commands, lambda i: direct.move(0.3, 0, 0) if i % 2 == 0 else direct.stop())
        await direct.close()
        ptz = PtzCfg(onvif=device.url, username=USER, timeout_seconds=10)
        app = await LiveApp(Path(tmp) / "data", [Cam("hall", "Hall d'entrée", ptz=ptz, onvif_password=PASSWORD)],
                            convention={"catastrophe": CatastropheCfg()}).start()
        try:
            await app.online(["hall"], timeout=30)
            _, link = await app.alert()
            conv = app.desk.conv
            await app.desk.declare_catastrophe(conv.person(CHIEF), ROOM)
            await app.desk.declare_catastrophe(conv.person("demo-cic"), ROOM)
            async with aiohttp.ClientSession() as s:
                ck = cookie(await app.login(s, link, "demo-cic"))

                async def post(action: str, body: dict[str, object]) -> None:
                    async with s.post(f"{app.base}/live/api/ptz/hall/{action}", headers=ck, json=body) as r:
                        assert r.status == 200, await r.text()
                        await r.read()

                await post("take", {})
                await post("stop", {})
                page = await timed(commands, lambda i: post("move", {"pan": 0.3, "tilt": 0, "zoom": 0}) if i % 2 == 0
                                   else post("stop", {}))
                presets = await timed(max(10, commands // 10), lambda i: post("preset", {"token": "scene"}))
        finally:
            await app.stop()
    print(f"\nONVIF camera control, {commands} move/stop commands (ipycam on loopback)")
    print(f"  bare onvif-zeep-async call   p50 {pct(bare, 50):6.1f} ms   p95 {pct(bare, 95):6.1f} ms")
    print(f"  page → Vigie → camera        p50 {pct(page, 50):6.1f} ms   p95 {pct(page, 95):6.1f} ms"
          f"   ratio p50 {pct(page, 50) / pct(bare, 50):.2f}")
    print(f"  preset from the page         p50 {pct(presets, 50):6.1f} ms   p95 {pct(presets, 95):6.1f} ms")
    print("  target: a move reaches the camera well inside the page's 250 ms tick")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=ROUNDS)
    asyncio.run(main(parser.parse_args().commands))
