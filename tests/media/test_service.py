"""The media service on its own: scope, masks, health, the /status line, the shared page mosaic
and the room tile job (a fake desk, a paused scheduler: the test drives the job)."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from PIL import Image

from bot.media.pictures import Pictures
from bot.media.room_tiles import JOB_ID, RoomTiles
from bot.media.service import MediaOptions, build_media, masks_of
from bot.media.tiles import Mask
from bot.policy.incident import Incident
from bot.settings import CameraCfg
from tests.core.test_access import make_incident

from .conftest import wait_until

OPTIONS = MediaOptions(synthetic_size=(320, 180), stop_timeout=2.0)
CAMS = [CameraCfg(id="parvis", name="Parvis nord"), CameraCfg(id="quai", name="Quai de livraison"),
        CameraCfg(id="loges", name="Loges", private=True), CameraCfg(id="reserve", name="Réserve"),
        CameraCfg(id="parking", name="Parking", masks=((0.5, 0.0, 0.5, 0.4),))]
SCOPE = frozenset({"parvis", "quai", "loges", "parking"})
NOW = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)


def test_scope_masks_and_status_line() -> None:
    media = build_media(CAMS, SCOPE, OPTIONS)
    assert media.camera_ids == ["parvis", "quai", "parking"]  # private and out of scope: never built
    assert media.masks == {"parking": (Mask(0.5, 0.0, 1.0, 0.4),)} and media.masked("parking")
    assert masks_of(CameraCfg(id="x", name="X", masks=((0.9, 0.9, 0.1 + 1e-10, 0.1),))) == (Mask(0.9, 0.9, 1.0, 1.0),)
    health = media.health()
    assert set(health) == {"parvis", "quai", "parking"}
    assert health["quai"] == {"name": "Quai de livraison", "online": False, "last_packet_age": None, "reconnects": 0}
    assert media.status_lines("fr") == ["Caméras : 0/3 en ligne — hors ligne : Parvis nord, Quai de livraison, Parking"]
    assert media.status_lines("en")[0].startswith("Cameras: 0/3 online — offline: ")
    assert build_media(CAMS, frozenset(), OPTIONS).status_lines("fr") == ["Caméras : aucune dans le périmètre"]


async def test_status_line_follows_the_cameras() -> None:
    media = build_media(CAMS, SCOPE, OPTIONS)
    media.start()
    try:
        assert await wait_until(lambda: all(s.online for s in media.statuses()), 10)
        assert media.status_lines("fr") == ["Caméras : 3/3 en ligne"]
        source = media.hub["quai"].source
        source.set_online(False)  # type: ignore[attr-defined]
        assert await wait_until(lambda: not media.hub["quai"].status().online, 5)
        assert media.status_lines("fr") == ["Caméras : 2/3 en ligne — hors ligne : Quai de livraison"]
    finally:
        await media.stop()


async def test_ten_viewers_share_one_mosaic() -> None:
    media = build_media(CAMS, SCOPE, OPTIONS)
    media.start()
    try:
        assert await wait_until(lambda: all(c.keyframe() is not None for c in media.hub), 10)
        pictures = Pictures(media, lambda: NOW, ZoneInfo("Europe/Paris"), "Zénith")
        names = [f"Agent {i}" for i in range(10)]
        jpegs = await asyncio.gather(*(pictures.page_mosaic(False, n) for n in names))
        assert pictures.compositions == 1  # composed once, watermarked ten times
        assert len(set(jpegs)) == 10 and all(j[:3] == b"\xff\xd8\xff" for j in jpegs)
        await pictures.page_mosaic(True, "Agent 0")  # a drill's mosaic has its own banner
        assert pictures.compositions == 2
        await asyncio.sleep(media.options.mosaic_max_age)
        await pictures.page_mosaic(False, "Agent 0")
        assert pictures.compositions == 3
        layout = pictures.layout()
        assert (layout.columns, layout.rows, layout.cameras) == (2, 2, ("parvis", "quai", "parking"))  # a phone's two columns
        size = Image.open(io.BytesIO(jpegs[0])).size
        assert abs(layout.top * size[1] - pictures.renderer.header_height) < 0.01
    finally:
        await media.stop()


@dataclass
class FakeDesk:
    incidents: dict[str, Incident] = field(default_factory=dict)
    posted: list[tuple[str, int, str]] = field(default_factory=list)
    end_while_rendering: str | None = None

    def open_incidents(self) -> list[Incident]:
        return list(self.incidents.values())

    def incident(self, incident_id: str) -> Incident | None:
        return self.incidents.get(incident_id)

    def post_tile(self, incident_id: str, jpeg: bytes, caption: object) -> None:
        assert callable(caption)
        self.posted.append((incident_id, len(jpeg), caption("fr")))


async def test_room_tiles_job() -> None:
    media = build_media(CAMS, SCOPE, OPTIONS)
    media.start()
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        assert await wait_until(lambda: all(c.keyframe() is not None for c in media.hub), 10)
        pictures = Pictures(media, lambda: NOW, ZoneInfo("Europe/Paris"), "Zénith")
        real, drill = make_incident("INC-1", NOW - timedelta(minutes=1)), make_incident("EX-1", NOW, drill=True)
        desk = FakeDesk({"INC-1": real, "EX-1": drill})
        tiles = RoomTiles(desk, pictures, scheduler, lambda: NOW, 0.3)
        tiles.install()
        assert scheduler.get_job(JOB_ID) is not None
        await tiles.run()
        assert desk.posted == []  # first seen: the first tile comes one interval later
        await asyncio.sleep(0.29)  # a tick that starts a little early still finds the tile due
        await tiles.run()
        assert sorted(c for *_, c in desk.posted) == [
            "EXERCICE — Mosaïque 19:00 — 3/3 caméras en ligne", "Mosaïque 19:00 — 3/3 caméras en ligne"]
        await tiles.run()
        assert len(desk.posted) == 2  # not due again yet

        # an incident that ends while its tile renders gets no tile after its end
        original = pictures.room_tile

        async def slow(drill: bool, first: tuple[str, ...] = ()):  # noqa: ANN202
            tile = await original(drill, first)
            desk.incidents.pop("INC-1", None)
            return tile

        pictures.room_tile = slow  # type: ignore[method-assign]
        await asyncio.sleep(0.3)
        await tiles.run()
        assert [i for i, *_ in desk.posted[2:]] == ["EX-1"]
        pictures.room_tile = original  # type: ignore[method-assign]

        # ended incidents are forgotten; at_activation posts at once
        desk.incidents = {"INC-2": replace(real, id="INC-2")}
        eager = RoomTiles(desk, pictures, scheduler, lambda: NOW, 30, at_activation=True)
        await eager.run()
        assert desk.posted[-1][0] == "INC-2"
        await tiles.stop()
        assert scheduler.get_job(JOB_ID) is None
    finally:
        scheduler.shutdown(wait=False)
        await media.stop()


async def test_synthetic_cameras_publish_a_substream() -> None:
    media = build_media(CAMS[:1], frozenset({"parvis"}), OPTIONS)
    media.start()
    try:
        sub = media.substream("parvis")
        assert sub is not None
        assert await wait_until(lambda: sub.keyframe() is not None, 10)
        assert sub.params is not None and (sub.params.width, sub.params.height) == OPTIONS.synthetic_substream
    finally:
        await media.stop()
