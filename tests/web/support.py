"""A real Vigie (build_app on the demo's settings) served on a free port, for the media tests.

Cameras are given per test: an RTSP URL (the farm, a closed port), or none for a synthetic
camera; some may carry masks, be private or lie outside the convention's scope. A recording
room stands in for the chat rooms: it keeps the link and the tiles posted by the desk.
"""

from __future__ import annotations

import asyncio
import io
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher
from PIL import Image
from pydantic import SecretStr

from bot.app import DESK, REGISTRE, build_app
from bot.audit import Registre
from bot.demo import build_demo
from bot.desk import Desk
from bot.media.service import MediaOptions, MediaService
from bot.settings import CameraCfg, OnvifPassword, PtzCfg, Settings
from bot.web.media import MEDIA
from tests.harness import RecordingRoom

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ROOM = "salle-pc"
CHIEF = "demo-chef"
AGENT = "demo-agent"
# cheap synthetic cameras for tests: 320x180 loops encode in ~0.05 s
TEST_MEDIA = MediaOptions(synthetic_size=(320, 180), synthetic_seconds=2.0, page_refresh_ms=1000,
                          stop_timeout=2.0, rtsp_open_timeout=3.0, rtsp_read_timeout=3.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(what: Callable[[], object], timeout: float = 10.0, step: float = 0.05, message: str = "") -> float:
    """Wait for `what` to be true; returns the seconds it took."""
    t0 = time.monotonic()
    while not what():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {message or what}")
        await asyncio.sleep(step)
    return time.monotonic() - t0


@dataclass
class Cam:
    id: str
    name: str
    url: str | None = None
    masks: tuple[tuple[float, float, float, float], ...] = ()
    private: bool = False
    in_scope: bool = True
    substream_url: str | None = None
    ptz: PtzCfg | None = None
    onvif_password: str = ""


def settings_for(port: int, cams: list[Cam], tile_interval: int = 30, host: str = "127.0.0.1",
                 without: tuple[str, ...] = (), convention: dict[str, Any] | None = None) -> tuple[Settings, dict[str, str]]:
    """The demo's settings with these cameras; served as ``host`` (``localhost`` for passkeys), the
    roster without the people ``without``, these convention.toml keys overridden."""
    demo = build_demo(port, 1, date.today(), hasher=FAST_HASHER)
    s = demo.settings
    roster = s.roster.model_copy(update={"person": tuple(p for p in s.roster.person if p.id not in without)})
    cameras = tuple(CameraCfg(id=c.id, name=c.name, url=c.url, masks=c.masks, private=c.private,
                              substream_url=c.substream_url, ptz=c.ptz) for c in cams)
    scope = s.convention.scope.model_copy(update={"cameras": tuple(c.id for c in cams if c.in_scope)})
    onvif = tuple(OnvifPassword(camera=c.id, password=SecretStr(c.onvif_password)) for c in cams if c.onvif_password)
    service = s.vigie.service.model_copy(update={"tile_interval_seconds": tile_interval,
                                                  "public_url": f"http://{host}:{port}"})
    return s.model_copy(update={
        "roster": roster,
        "cameras": s.cameras.model_copy(update={"camera": cameras}),
        "convention": s.convention.model_copy(update={"scope": scope, **(convention or {})}),
        "secrets": s.secrets.model_copy(update={"onvif": onvif}),
        "vigie": s.vigie.model_copy(update={"service": service}),
    }), demo.passwords


@dataclass
class LiveApp:
    data_dir: Path
    cams: list[Cam]
    options: MediaOptions = TEST_MEDIA
    tile_interval: int = 30
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"  # the public URL's host: "localhost" where passkeys are used
    without: tuple[str, ...] = ()  # roster people left out
    venue: Callable[[Settings], Settings] | None = None  # zones, plan positions
    ssl: ssl.SSLContext | None = None  # serve HTTPS (the viewer cookie is Secure: WebKit keeps it only there)
    convention: dict[str, Any] = field(default_factory=dict)  # convention.toml keys to override

    def __post_init__(self) -> None:
        self.settings, self.passwords = settings_for(self.port, self.cams, self.tile_interval, self.host,
                                                     self.without, self.convention)
        if self.venue is not None:
            self.settings = self.venue(self.settings)
        self.room = RecordingRoom(ROOM)
        self.app = build_app(self.settings, self.data_dir, extra_rooms=(self.room,), media=self.options)
        self.runner = web.AppRunner(self.app, shutdown_timeout=2.0, access_log=None)
        self.base = f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"
        self._stopped = False

    @property
    def desk(self) -> Desk:
        return self.app[DESK]

    @property
    def media(self) -> MediaService:
        return self.app[MEDIA]

    @property
    def registre(self) -> Registre:
        return self.app[REGISTRE]

    async def start(self) -> LiveApp:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.ssl).start()
        return self

    async def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            await self.runner.cleanup()

    async def online(self, ids: list[str] | None = None, timeout: float = 15.0) -> float:
        want = set(ids) if ids is not None else {c.id for c in self.cams if c.in_scope and not c.private}
        return await until(lambda: want <= {s.camera_id for s in self.media.statuses() if s.online}, timeout,
                           message=f"cameras {sorted(want)} online")

    async def alert(self, drill: bool = False) -> tuple[str, str]:
        """Open an incident as the venue's security chief; returns (incident id, link)."""
        person = self.desk.conv.person(CHIEF)
        await self.desk.alert(person, ROOM, "attaque_armee", "Hall A", drill=drill)
        await self.desk.fanout.drain()
        # the newest link: an earlier incident's is dead
        link = next(m.group(0) for t in reversed(self.room.texts())
                    if (m := re.search(r"http://(?:127\.0\.0\.1|localhost):\d+/live/\S+", t)))
        inc = next(i for i in self.desk.open_incidents() if i.drill == drill)
        return inc.id, link.rstrip(".,)")

    async def end(self, incident_id: str) -> None:
        await self.desk.end(self.desk.conv.person(CHIEF), ROOM, incident_id)

    async def login(self, session: aiohttp.ClientSession, link: str, person: str = AGENT) -> str:
        async with session.post(link, data={"person": person, "password": self.passwords[person]},
                                allow_redirects=False) as r:
            assert r.status == 303, await r.text()
            m = re.search(r"vigie_session=([^;]+)", r.headers.get("Set-Cookie", ""))
            assert m
            return m.group(1)

    async def video(self, session: aiohttp.ClientSession, session_cookie: str,
                    camera: str) -> aiohttp.ClientWebSocketResponse:
        """The page's video socket for ``camera``, as the viewer holding ``session_cookie``."""
        return await session.ws_connect(f"{self.base.replace('http', 'ws')}/live/api/cam/{camera}/ws",
                                        headers=cookie(session_cookie))

    def kinds(self, incident: str) -> list[str]:
        return [r.kind for r in self.registre.records(incident)]

    def records(self, incident: str, kind: str) -> list[Any]:
        return [r for r in self.registre.records(incident) if r.kind == kind]


def cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"vigie_session={value}"}


def image(jpeg: bytes) -> Image.Image:
    assert jpeg[:3] == b"\xff\xd8\xff"
    return Image.open(io.BytesIO(jpeg)).convert("RGB")


def cells(img: Image.Image, layout: dict[str, Any]) -> list[Image.Image]:
    """The mosaic's camera cells, in layout order, from /live/api/media's description."""
    m = layout["mosaic"]
    top = round(m["top"] * img.height)
    w, h = img.width / m["columns"], (img.height - top) / m["rows"]
    out = []
    for i, _ in enumerate(layout["cameras"]):
        x, y = (i % m["columns"]) * w, top + (i // m["columns"]) * h
        out.append(img.crop((round(x), round(y), round(x + w), round(y + h))))
    return out


def looks_offline(cell: Image.Image) -> bool:
    """The HORS LIGNE placeholder: mostly flat grey (56, 56, 56) with red letters."""
    small = cell.resize((64, 36))
    pixels = [small.getpixel((x, y)) for y in range(small.height) for x in range(small.width)]
    grey = sum(1 for p in pixels if all(abs(c - 56) < 12 for c in p))
    red = sum(1 for p in pixels if p[0] > 150 and p[1] < 120 and p[2] < 120)
    return grey > 0.5 * len(pixels) and red > 3
