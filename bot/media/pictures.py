"""The pictures Vigie hands out: the page's mosaic, masked single-camera stills, room tiles.

All of it is composed off the event loop, with a timeout, and stays in memory.

The page mosaic is shared: it is composed at most once per ``mosaic_max_age`` (per drill flag,
since a drill's mosaic carries the EXERCICE banner) and each viewer's request only adds that
viewer's name and the time on a copy and encodes the JPEG. Ten viewers polling every
1.5 s thus cost one composition a second plus ten watermarks, not ten mosaics. Keyframes
are decoded only when a camera sent a new one (the renderer holds each camera's picture per
keyframe), from the camera's substream when it has one. A masked camera's still comes from
its main stream: it is that camera's only view, so it gets the full resolution.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, TypeVar

from PIL import Image

from ..policy.zones import cameras_first
from .service import MediaService
from .tiles import MosaicRenderer, TileInput, grid, tile_inputs

logger = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True)
class Layout:
    """Where each camera sits in the page mosaic, for the page to map a tap to a camera."""

    columns: int
    rows: int
    top: float  # the header's height as a fraction of the image height
    cameras: tuple[str, ...]
    zone: int = 0  # the first ``zone`` cameras are the alarm's zone's


@dataclass(frozen=True)
class RoomTile:
    jpeg: bytes
    online: int
    total: int
    at: datetime


class Pictures:
    def __init__(self, media: MediaService, clock: Callable[[], datetime], tz: tzinfo, title: str) -> None:
        o = media.options
        self._media = media
        self._clock = clock
        self._tz = tz
        self._title = title
        self._timeout = o.render_timeout
        self._max_age = o.mosaic_max_age
        self._columns = o.page_columns
        self._budget_ms = o.mosaic_decode_budget_ms
        self.renderer = MosaicRenderer(tile_width=o.tile_size[0], tile_height=o.tile_size[1], jpeg_quality=70)
        self.still_renderer = MosaicRenderer(tile_width=o.still_size[0], tile_height=o.still_size[1],
                                             header_height=max(28, o.still_size[1] // 12),
                                             label_size=max(11, o.still_size[1] // 14))
        # one shared composition per drill flag and zone (its cameras come first)
        self._base: dict[tuple[bool, tuple[str, ...]], tuple[float, Image.Image]] = {}
        self._locks: dict[tuple[bool, tuple[str, ...]], asyncio.Lock] = {}
        self.compositions = 0  # shared page mosaics composed (tests and the bench read it)

    def now(self) -> datetime:
        return self._clock().astimezone(self._tz)

    def tiles(self, camera_ids: list[str] | None = None, *, substreams: bool = True) -> list[TileInput]:
        cams = {c.camera_id: c for c in self._media.hub}
        order = list(cams) if camera_ids is None else [c for c in camera_ids if c in cams]
        subs = {c.camera_id: c for c in self._media.subs} if substreams else None
        return tile_inputs([cams[c] for c in order], self._media.masks, subs)

    def _order(self, first: tuple[str, ...]) -> tuple[list[str], int]:
        """The cameras, the zone's first, and how many of them are the zone's."""
        order = cameras_first(list(self._media.camera_ids), first)
        return order, len(set(first) & set(order))

    def layout(self, first: tuple[str, ...] = ()) -> Layout:
        ids, zone = self._order(first)
        cols, rows = grid(len(ids), self._columns)
        _, height = self.renderer.size_for(len(ids), self._columns)
        return Layout(cols, rows, self.renderer.header_height / height, tuple(ids), zone)

    async def _off_loop(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        # The worker thread cannot be interrupted: on timeout it finishes in the background.
        return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), self._timeout)

    async def _shared(self, drill: bool, first: tuple[str, ...]) -> Image.Image:
        key = (drill, first)
        async with self._locks.setdefault(key, asyncio.Lock()):  # one composition at a time; the others reuse it
            cached = self._base.get(key)
            if cached is not None and time.monotonic() - cached[0] < self._max_age:
                return cached[1]
            order, zone = self._order(first)
            image = await self._off_loop(self.renderer.render_image, self.tiles(order), now=self.now(), drill=drill,
                                         title=self._title, columns=self._columns,
                                         decode_budget_ms=self._budget_ms, marked=zone)
            # the focus changed: the old zone's composition is stale for good
            for stale in [k for k in self._base if k[0] == drill and k != key]:
                del self._base[stale]
            self._base[key] = (time.monotonic(), image)
            self.compositions += 1
            return image

    async def page_mosaic(self, drill: bool, viewer: str, first: tuple[str, ...] = ()) -> bytes:
        """The live mosaic for one viewer: shared composition (the zone's cameras first), their name
        and the time burnt in."""
        base = await self._shared(drill, first)
        data = await self._off_loop(self.renderer.stamp, base, viewer, self.now())
        return data

    async def still(self, camera_id: str, drill: bool, viewer: str) -> bytes:
        """One camera's latest keyframe, privacy masks painted, the viewer's name burnt in."""
        data = await self._off_loop(self.still_renderer.render, self.tiles([camera_id], substreams=False),
                                    now=self.now(),
                                    drill=drill, watermark=viewer, title=self._media.names.get(camera_id))
        return data

    async def room_tile(self, drill: bool, first: tuple[str, ...] = ()) -> RoomTile:
        """The mosaic posted in the rooms: no viewer watermark (a room is not a person); the
        zone's cameras first and twice as large."""
        order, zone = self._order(first)
        tiles = self.tiles(order)
        at = self.now()
        data = await self._off_loop(self.renderer.render, tiles, now=at, drill=drill, title=self._title,
                                    featured=zone)
        online = sum(1 for t in tiles if t.online and t.keyframe is not None)
        return RoomTile(data, online, len(tiles), at)

    def forget(self) -> None:
        """Drop the shared compositions (nothing of a venue stays in memory after a stop)."""
        self._base.clear()
        self.renderer.clear()
        self.still_renderer.clear()

    def close(self) -> None:
        """Stop the renderers' decoder threads (app shutdown)."""
        self.forget()
        self.renderer.close()
        self.still_renderer.close()
