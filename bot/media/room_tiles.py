"""Mosaic tiles in the rooms: while an incident grants access, its rooms get a fresh mosaic.

One APScheduler job (the desk's scheduler) ticks every few seconds; an incident is due when
its last tile is ``interval`` old, to the nearest tick. A new incident gets its first tile one
interval after the job first sees it, or at once with ``at_activation``. The mosaic is
rendered once per drill flag and zone (the incident's zone's cameras first and twice as large)
and handed to ``desk.post_tile``; each room's outbox sends it or replaces the previous one,
and the desk removes it when access ends.

The incident is read again after the (off-loop) rendering and the tile is handed over in the
same synchronous step: an incident ended meanwhile never gets a tile posted after its end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from apscheduler.schedulers.base import BaseScheduler

from ..locales import Msg, t
from ..policy.incident import Incident
from ..policy.zones import NO_ZONES, ZoneMap
from .pictures import Pictures, RoomTile

logger = logging.getLogger(__name__)

JOB_ID = "media:room-tiles"


class TileDesk(Protocol):
    def open_incidents(self) -> list[Incident]: ...

    def incident(self, incident_id: str) -> Incident | None: ...

    def post_tile(self, incident_id: str, jpeg: bytes, caption: Callable[[str], str]) -> None: ...


def caption(tile: RoomTile, drill: bool) -> Callable[[str], str]:
    def render(lang: str) -> str:
        prefix = t(lang, Msg.DRILL_PREFIX) if drill else ""
        return t(lang, Msg.MOSAIC_CAPTION, drill=prefix, at=tile.at, online=tile.online, total=tile.total)

    return render


class RoomTiles:
    def __init__(self, desk: TileDesk, pictures: Pictures, scheduler: BaseScheduler,
                 clock: Callable[[], datetime], interval: float, *, at_activation: bool = False,
                 zones: ZoneMap = NO_ZONES) -> None:
        self._desk = desk
        self._pictures = pictures
        self._scheduler = scheduler
        self._clock = clock
        self.interval = interval
        self.tick = min(2.0, interval)
        self._at_activation = at_activation
        self._zones = zones
        self._last: dict[str, float] = {}
        self._running: asyncio.Task[None] | None = None
        self.posted = 0

    def install(self) -> None:
        self._scheduler.add_job(self.run, "interval", seconds=self.tick, id=JOB_ID, replace_existing=True,
                                coalesce=True, max_instances=1, misfire_grace_time=None)

    async def stop(self) -> None:
        job = self._scheduler.get_job(JOB_ID)
        if job is not None:
            job.remove()
        task = self._running
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run(self) -> None:
        # APScheduler starts this as a task it does not keep: remember it so stop() can cancel it.
        self._running = asyncio.current_task()
        try:
            await self._run()
        except asyncio.CancelledError:
            # only stop() cancels this task: end quietly rather than have APScheduler log an error
            logger.debug("room tiles: round cancelled by the stop")
        except Exception:  # the next tick tries again; a broken renderer must not end the job
            logger.exception("room tiles: this round failed")
        finally:
            self._running = None

    def _due(self, inc: Incident, now: float) -> bool:
        last = self._last.get(inc.id)
        if last is None:
            if self._at_activation:
                return True
            # first seen: its first tile comes one interval later
            self._last[inc.id] = now
            return False
        # Rounds to the nearest tick: the scheduler's ticks (uvloop's timers run on a
        # millisecond clock) can start a round a little before a full interval has passed on
        # time.monotonic, and a strict test would then put the tile off by a whole tick.
        return now - last >= self.interval - self.tick / 2

    async def _run(self) -> None:
        now = time.monotonic()
        active = [i for i in self._desk.open_incidents() if i.grants_access(self._clock())]
        live = {i.id for i in active}
        for gone in set(self._last) - live:
            del self._last[gone]
        due = [i for i in active if self._due(i, now)]
        # one rendering per drill flag and zone: the zone's cameras come first, twice as large
        for drill, first in sorted({(i.drill, self._zones.cameras(i.focus)) for i in due}):
            tile = await self._pictures.room_tile(drill, first)
            for inc in (i for i in due if i.drill == drill and self._zones.cameras(i.focus) == first):
                current = self._desk.incident(inc.id)
                if current is None or not current.grants_access(self._clock()):
                    continue  # ended while the tile was rendered
                self._desk.post_tile(inc.id, tile.jpeg, caption(tile, drill))
                self._last[inc.id] = now  # the round's start: the rendering's time does not shift the next
                self.posted += 1
                logger.info("room tiles: %s, %d kB, %d/%d cameras online", inc.id, len(tile.jpeg) // 1024,
                            tile.online, tile.total)
