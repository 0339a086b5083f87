"""Mosaic cells: what a mosaic needs from each camera, and each camera's decoded picture.

Per camera, a cell shows the latest keyframe of its substream when it has one (a
320x180 IDR decodes in ~1 ms), else of its main stream
(~20 ms for a CABAC 1080p IDR at 4 Mbit/s, the dominant cost). A keyframe is decoded by a
fresh decoder (an IDR needs nothing else), scaled once by swscale (1-2 ms for 1080p, where
Pillow's resize of the full frame costs ~25 ms) and kept as that camera's current picture:

- a keyframe is decoded at most once, whatever the number of mosaics drawn from it and of
  threads asking at the same time (the second asker waits for the first one's result);
- a mosaic decodes only the cells whose keyframe changed since the picture it holds;
- with a decode budget (the page mosaic's), the changed cells whose pictures are the oldest
  are decoded first, as many as the budget's CPU allows (each camera's last decode cost
  predicts its next one); the others keep their picture, a keyframe older, until a later
  mosaic. Main-stream 1080p IDRs cost 12-30 ms each, so without substreams a budget of
  200 ms refreshes 7-16 of 20 cells per mosaic instead of costing 0.25-0.6 s every time;
  substream cells (~1 ms) all fit. A cell with no picture yet is always decoded;
- the changed cells are decoded in parallel in the renderer's decoder threads (PyAV
  releases the GIL), each with a timeout: a cell whose decode hangs keeps its previous
  picture, or is drawn as unavailable, and never holds the mosaic back.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import av
from PIL import Image

from .cameras import Camera
from .units import AccessUnit

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Mask:
    """A rectangle to hide, in coordinates relative to the camera picture (0..1)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        if not (0 <= self.x0 < self.x1 <= 1 and 0 <= self.y0 < self.y1 <= 1):
            raise ValueError(f"invalid mask {self}")


@dataclass(frozen=True, slots=True)
class TileInput:
    camera_id: str
    label: str
    keyframe: AccessUnit | None
    online: bool
    masks: tuple[Mask, ...] = ()


@dataclass(frozen=True, slots=True)
class _Decoded:
    picture: Image.Image | None
    cpu_ms: float


@dataclass(slots=True)
class RenderStats:
    decoded: int = 0
    cached: int = 0
    deferred: int = 0  # changed cells left to a later mosaic by the decode budget
    offline: int = 0
    decode_cpu_ms: float = 0.0
    compose_cpu_ms: float = 0.0
    jpeg_bytes: int = 0
    failures: list[str] = field(default_factory=list)


def tile_inputs(
    cameras: Iterable[Camera],
    masks: Mapping[str, Sequence[Mask]] | None = None,
    substreams: Mapping[str, Camera] | None = None,
) -> list[TileInput]:
    """Snapshot what the mosaic needs from live cameras (cheap, any thread).

    A camera's substream is used when it is online with a keyframe; otherwise (no
    substream, or the substream down while the main stream is up) its main stream.
    """
    masks = masks or {}
    substreams = substreams or {}
    inputs = []
    for cam in cameras:
        source = cam
        sub = substreams.get(cam.camera_id)
        if sub is not None and sub.keyframe() is not None and sub.status().online:
            source = sub
        inputs.append(TileInput(cam.camera_id, cam.name, source.keyframe(), source.status().online,
                                tuple(masks.get(cam.camera_id, ()))))
    return inputs


def decode_keyframe(au: AccessUnit) -> av.VideoFrame:
    """Decode one IDR access unit with a fresh decoder (blocking, releases the GIL)."""
    ctx = av.CodecContext.create("h264", "r")
    assert isinstance(ctx, av.VideoCodecContext)  # noqa: S101 - narrows the type for mypy
    ctx.extradata = au.params.extradata or None
    # one thread: frame threading would only delay the single frame we want, and the
    # renderer already decodes several cameras in parallel
    ctx.thread_count = 1
    # only the IDR matters: anything else that would slip in is skipped, not decoded
    ctx.skip_frame = "NONKEY"
    # deblocking is invisible once scaled down 5x, and skipping it saves ~8% of the decode;
    # flags2=fast allows the decoder's non bit-exact shortcuts (invisible at tile size)
    ctx.options = {"skip_loop_filter": "all", "flags2": "+fast"}
    frames = ctx.decode(av.Packet(au.data)) + ctx.decode(None)
    if not frames:
        raise ValueError("keyframe produced no picture")
    return frames[-1]


def _fit(src_w: int, src_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(box_w / src_w, box_h / src_h)
    return max(2, round(src_w * scale) // 2 * 2), max(2, round(src_h * scale) // 2 * 2)


class CellPictures:
    """Each camera's current picture at tile size, decoded once per keyframe. Thread safe."""

    def __init__(self, tile_width: int, tile_height: int, *, stale_after: float = 10.0,
                 decoders: int | None = None, decode_timeout: float = 3.0) -> None:
        self.tile_width = tile_width
        self.tile_height = tile_height
        self.stale_after = stale_after
        # per camera: the keyframe its current picture comes from, and that picture (None
        # when that keyframe could not be decoded: it is not tried again)
        self._held: dict[str, tuple[tuple[int, float], Image.Image | None]] = {}
        self._inflight: dict[tuple[str, int, float], Future[_Decoded]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=decoders or min(4, os.cpu_count() or 2),
                                        thread_name_prefix="mosaic-decode")
        self.decode_timeout = decode_timeout
        self._cost_ms: dict[str, float] = {}  # per camera: recent CPU of one decode, for the budget
        self.decodes = 0  # keyframes decoded since the start (tests and the bench read it)

    def clear(self) -> None:
        """Forget every camera's picture (nothing of a venue stays in memory after a stop)."""
        with self._lock:
            self._held.clear()
            self._cost_ms.clear()

    def close(self) -> None:
        """Stop the decoder threads; a decode under way finishes in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.clear()

    def pictures(self, tiles: Sequence[TileInput], stats: RenderStats,
                  budget_ms: float | None) -> list[Image.Image | None]:
        """Each tile's picture: held ones as they are, changed ones decoded in parallel."""
        later = self._over_budget(tiles, budget_ms) if budget_ms is not None else set()
        stats.deferred = len(later)
        mine: set[int] = set()  # the decodes this mosaic started (others wait for another's)
        wanted = [self._previous(tile.camera_id) if tile.camera_id in later else self._request(tile, stats, mine)
                  for tile in tiles]
        deadline = time.monotonic() + self.decode_timeout
        pictures: list[Image.Image | None] = []
        for tile, want in zip(tiles, wanted, strict=True):
            if not isinstance(want, Future):
                pictures.append(want)
                continue
            try:
                decoded = want.result(timeout=max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                logger.warning("camera %s: keyframe decode still running after %.1f s",
                               tile.camera_id, self.decode_timeout)
                stats.failures.append(tile.camera_id)
                pictures.append(self._previous(tile.camera_id))
                continue
            if id(want) in mine:
                stats.decode_cpu_ms += decoded.cpu_ms
                stats.decoded += decoded.picture is not None
            else:
                stats.cached += 1
            if decoded.picture is None:
                stats.failures.append(tile.camera_id)
            pictures.append(decoded.picture)
        return pictures

    def _request(self, tile: TileInput, stats: RenderStats,
                 mine: set[int]) -> Image.Image | Future[_Decoded] | None:
        au = tile.keyframe
        if not tile.online or au is None or time.monotonic() - au.received > self.stale_after:
            stats.offline += 1
            return None
        mark = (au.seq, au.received)  # seq alone is per source: a substream counts its own
        with self._lock:
            held = self._held.get(tile.camera_id)
            if held is not None and held[0] == mark:
                stats.cached += 1
                return held[1]
            key = (tile.camera_id, *mark)
            future = self._inflight.get(key)
            if future is None:
                # one decode per keyframe: a concurrent mosaic waits for this one's result
                future = self._pool.submit(self._decode, tile.camera_id, au)
                self._inflight[key] = future
                mine.add(id(future))
            return future

    def _over_budget(self, tiles: Sequence[TileInput], budget_ms: float) -> set[str]:
        """The changed cells to leave to a later mosaic: the freshest pictures wait first."""
        spent = 0.0
        changed: list[tuple[float, str]] = []
        now = time.monotonic()
        with self._lock:
            for tile in tiles:
                au = tile.keyframe
                if not tile.online or au is None or now - au.received > self.stale_after:
                    continue
                held = self._held.get(tile.camera_id)
                if held is None:
                    spent += self._cost_ms.get(tile.camera_id, 0.0)  # no picture yet: always decoded
                elif held[0] != (au.seq, au.received) and held[1] is not None:
                    changed.append((held[0][1], tile.camera_id))
            costs = dict(self._cost_ms)
        later: set[str] = set()
        for _, camera_id in sorted(changed):  # oldest picture first
            cost = costs.get(camera_id, 0.0)
            if spent + cost <= budget_ms:
                spent += cost
            else:
                later.add(camera_id)
        return later

    def _previous(self, camera_id: str) -> Image.Image | None:
        with self._lock:
            held = self._held.get(camera_id)
        return held[1] if held is not None else None

    def _decode(self, camera_id: str, au: AccessUnit) -> _Decoded:
        """Decoder thread: decode, scale, hold the picture; never raises."""
        started = time.thread_time()
        picture: Image.Image | None = None
        try:
            frame = decode_keyframe(au)
            w, h = _fit(frame.width, frame.height, self.tile_width, self.tile_height)
            picture = frame.to_image(width=w, height=h, interpolation="AREA")
        except (av.FFmpegError, ValueError) as exc:
            logger.warning("camera %s: keyframe could not be decoded: %s", camera_id, exc)
        cpu_ms = (time.thread_time() - started) * 1000
        mark = (au.seq, au.received)
        with self._lock:
            self.decodes += 1
            last = self._cost_ms.get(camera_id)
            self._cost_ms[camera_id] = cpu_ms if last is None else 0.7 * last + 0.3 * cpu_ms
            held = self._held.get(camera_id)
            # a slow decode finishing after a newer one must not replace it
            if held is None or held[0][1] <= mark[1]:
                self._held[camera_id] = (mark, picture)
            self._inflight.pop((camera_id, *mark), None)
        return _Decoded(picture, cpu_ms)
