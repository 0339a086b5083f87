"""Mosaics from keyframes: decode each camera's latest keyframe on demand, compose with Pillow.

Only the cameras passed in are drawn. Per camera: the latest keyframe is decoded by a
fresh decoder (an IDR needs nothing else), scaled once by swscale (1-2 ms for 1080p,
where Pillow's resize of the full frame costs ~25 ms) and kept in a small cache keyed by
the keyframe, so a mosaic rebuilt within the same GOP decodes nothing. Decoding an
IDR is the dominant cost (~20 ms for a CABAC 1080p keyframe at 4 Mbit/s); composing
20 cached tiles, labels, banner, watermark and the JPEG takes a few ms.

Privacy masks are painted solid on the composed image right after each camera's picture
is pasted, before labels and before any byte is encoded: nothing unmasked leaves here.
A camera without signal (offline, or its keyframe too old) is drawn as `HORS LIGNE`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import av
from PIL import Image, ImageDraw

from ..locales import DEFAULT, Msg, t
from .cameras import Camera
from .fonts import Font, load_font
from .units import AccessUnit

logger = logging.getLogger(__name__)

OFFLINE_TEXT = "HORS LIGNE"
# A picture is seen by everyone, whatever their room's language: it speaks the service's first one.
DRILL_TEXT = t(DEFAULT, Msg.IMAGE_DRILL)
_BG = (16, 16, 16)
_HEADER = (28, 32, 40)
_DRILL = (255, 196, 0)
_PLACEHOLDER = (56, 56, 56)
_OFFLINE_FG = (235, 70, 60)


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


@dataclass(slots=True)
class RenderStats:
    decoded: int = 0
    cached: int = 0
    offline: int = 0
    decode_cpu_ms: float = 0.0
    compose_cpu_ms: float = 0.0
    jpeg_bytes: int = 0
    failures: list[str] = field(default_factory=list)


def tile_inputs(
    cameras: Iterable[Camera], masks: Mapping[str, Sequence[Mask]] | None = None
) -> list[TileInput]:
    """Snapshot what the mosaic needs from live cameras (cheap, any thread)."""
    masks = masks or {}
    return [
        TileInput(
            cam.camera_id, cam.name, cam.keyframe(), cam.status().online, tuple(masks.get(cam.camera_id, ()))
        )
        for cam in cameras
    ]


def grid(count: int, columns: int | None = None) -> tuple[int, int]:
    """(columns, rows) for `count` tiles: 20 -> 5x4, 9 -> 3x3, 2 -> 2x1; `columns` caps the width."""
    if count <= 0:
        return 1, 1
    cols = math.ceil(math.sqrt(count))
    if columns:
        cols = max(1, min(columns, count))
    return cols, math.ceil(count / cols)


def decode_keyframe(au: AccessUnit) -> av.VideoFrame:
    """Decode one IDR access unit with a fresh decoder (blocking, releases the GIL)."""
    ctx = av.CodecContext.create("h264", "r")
    assert isinstance(ctx, av.VideoCodecContext)  # noqa: S101 - narrows the type for mypy
    ctx.extradata = au.params.extradata or None
    # one thread: frame threading would only delay the single frame we want
    ctx.thread_count = 1
    # deblocking is invisible once scaled down 5x, and skipping it saves ~8% of the decode
    ctx.options = {"skip_loop_filter": "all"}
    frames = ctx.decode(av.Packet(au.data)) + ctx.decode(None)
    if not frames:
        raise ValueError("keyframe produced no picture")
    return frames[-1]


def _fit(src_w: int, src_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    scale = min(box_w / src_w, box_h / src_h)
    return max(2, round(src_w * scale) // 2 * 2), max(2, round(src_h * scale) // 2 * 2)


class MosaicRenderer:
    """Builds mosaic JPEGs. Thread safe; call `render` from a thread, or `render_async`."""

    def __init__(
        self,
        *,
        tile_width: int = 384,
        tile_height: int = 216,
        jpeg_quality: int = 75,
        stale_after: float = 10.0,
        mask_colour: tuple[int, int, int] = (0, 0, 0),
        font_path: str | None = None,
        cache_size: int = 48,
        header_height: int | None = None,
    ) -> None:
        self.tile_width = tile_width
        self.tile_height = tile_height
        self.jpeg_quality = jpeg_quality
        self.stale_after = stale_after
        self.mask_colour = mask_colour
        self.header_height = header_height or max(28, tile_height // 5)
        self._label_font = load_font(max(11, tile_height // 14), True, font_path)
        self._header_font = load_font(max(14, self.header_height * 11 // 20), True, font_path)
        self._offline_font = load_font(max(14, tile_height // 8), True, font_path)
        self._mark_font = load_font(max(12, tile_height // 11), True, font_path)
        self._cache: OrderedDict[tuple[str, int], Image.Image] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.last_stats = RenderStats()

    # -- public ------------------------------------------------------------------------------

    def size_for(self, count: int, columns: int | None = None) -> tuple[int, int]:
        cols, rows = grid(count, columns)
        return cols * self.tile_width, rows * self.tile_height + self.header_height

    def render(
        self,
        tiles: Sequence[TileInput],
        *,
        now: datetime | None = None,
        drill: bool = False,
        watermark: str | None = None,
        title: str | None = None,
        columns: int | None = None,
    ) -> bytes:
        """The mosaic as JPEG bytes (blocking, CPU bound)."""
        image = self.render_image(tiles, now=now, drill=drill, watermark=watermark, title=title, columns=columns)
        started = time.thread_time()
        data = self.encode(image)
        self.last_stats.compose_cpu_ms += (time.thread_time() - started) * 1000
        self.last_stats.jpeg_bytes = len(data)
        return data

    def encode(self, image: Image.Image) -> bytes:
        """JPEG bytes of an image, in memory (blocking)."""
        out = io.BytesIO()
        image.save(out, "JPEG", quality=self.jpeg_quality)
        return out.getvalue()

    def stamp(self, image: Image.Image, viewer: str, now: datetime) -> bytes:
        """A copy of a rendered mosaic with a viewer's watermark, as JPEG (blocking).

        Lets a page serve one shared mosaic to many viewers: the mosaic is composed once,
        and each viewer only costs a copy, the watermark and the JPEG encoding.
        """
        marked = image.copy()
        self._draw_watermark(marked, f"{viewer} — {now:%d/%m/%Y %H:%M:%S}")
        return self.encode(marked)

    async def render_async(
        self,
        tiles: Sequence[TileInput],
        *,
        timeout: float = 10.0,
        now: datetime | None = None,
        drill: bool = False,
        watermark: str | None = None,
        title: str | None = None,
        columns: int | None = None,
    ) -> bytes:
        """`render` in a worker thread. On timeout the thread finishes in the background
        (a decode cannot be interrupted) and TimeoutError is raised here."""
        return await asyncio.wait_for(
            asyncio.to_thread(
                self.render, tiles, now=now, drill=drill, watermark=watermark, title=title, columns=columns
            ),
            timeout,
        )

    def render_image(
        self,
        tiles: Sequence[TileInput],
        *,
        now: datetime | None = None,
        drill: bool = False,
        watermark: str | None = None,
        title: str | None = None,
        columns: int | None = None,
    ) -> Image.Image:
        """The mosaic as a Pillow image (masks already painted)."""
        stats = RenderStats()
        now = now or datetime.now().astimezone()
        pictures = [self._picture(tile, stats) for tile in tiles]
        started = time.thread_time()
        cols, _ = grid(len(tiles), columns)
        width, height = self.size_for(len(tiles), columns)
        canvas = Image.new("RGB", (width, height), _BG)
        draw = ImageDraw.Draw(canvas)
        for index, (tile, picture) in enumerate(zip(tiles, pictures, strict=True)):
            x = (index % cols) * self.tile_width
            y = self.header_height + (index // cols) * self.tile_height
            self._draw_tile(canvas, draw, x, y, tile, picture)
        self._draw_header(draw, width, now, drill, title, len(tiles))
        if watermark:
            self._draw_watermark(canvas, f"{watermark} — {now:%d/%m/%Y %H:%M:%S}")
        stats.compose_cpu_ms = (time.thread_time() - started) * 1000
        self.last_stats = stats
        return canvas

    # -- pictures ----------------------------------------------------------------------------

    def _picture(self, tile: TileInput, stats: RenderStats) -> Image.Image | None:
        au = tile.keyframe
        if not tile.online or au is None or time.monotonic() - au.received > self.stale_after:
            stats.offline += 1
            return None
        key = (tile.camera_id, au.seq)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                stats.cached += 1
                return cached
        started = time.thread_time()
        try:
            frame = decode_keyframe(au)
            w, h = _fit(frame.width, frame.height, self.tile_width, self.tile_height)
            picture = frame.to_image(width=w, height=h, interpolation="AREA")
        except (av.FFmpegError, ValueError) as exc:
            logger.warning("camera %s: keyframe could not be decoded: %s", tile.camera_id, exc)
            stats.failures.append(tile.camera_id)
            return None
        finally:
            stats.decode_cpu_ms += (time.thread_time() - started) * 1000
        stats.decoded += 1
        with self._lock:
            self._cache[key] = picture
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return picture

    # -- drawing -----------------------------------------------------------------------------

    def _draw_tile(
        self,
        canvas: Image.Image,
        draw: ImageDraw.ImageDraw,
        x: int,
        y: int,
        tile: TileInput,
        picture: Image.Image | None,
    ) -> None:
        tw, th = self.tile_width, self.tile_height
        if picture is None:
            draw.rectangle([x, y, x + tw - 1, y + th - 1], fill=_PLACEHOLDER)
            draw.text(
                (x + tw // 2, y + th // 2 - th // 16),
                OFFLINE_TEXT,
                font=self._offline_font,
                fill=_OFFLINE_FG,
                anchor="mm",
            )
        else:
            px, py = x + (tw - picture.width) // 2, y + (th - picture.height) // 2
            canvas.paste(picture, (px, py))
            for mask in tile.masks:
                draw.rectangle(
                    [
                        px + math.floor(mask.x0 * picture.width),
                        py + math.floor(mask.y0 * picture.height),
                        px + math.ceil(mask.x1 * picture.width) - 1,
                        py + math.ceil(mask.y1 * picture.height) - 1,
                    ],
                    fill=self.mask_colour,
                )
        band = self._label_font.size + 8 if hasattr(self._label_font, "size") else 20
        draw.rectangle([x, y + th - band, x + tw - 1, y + th - 1], fill=(0, 0, 0))
        label = _ellipsize(tile.label, self._label_font, tw - 10)
        draw.text(
            (x + 5, y + th - band // 2), label, font=self._label_font, fill=(255, 255, 255), anchor="lm"
        )
        # a dark frame keeps neighbouring pictures apart
        draw.rectangle([x, y, x + tw - 1, y + th - 1], outline=_BG, width=1)

    def _draw_header(
        self, draw: ImageDraw.ImageDraw, width: int, now: datetime, drill: bool, title: str | None, count: int
    ) -> None:
        hh = self.header_height
        draw.rectangle([0, 0, width - 1, hh - 1], fill=_DRILL if drill else _HEADER)
        fg = (0, 0, 0) if drill else (255, 255, 255)
        stamp = f"{now:%d/%m/%Y %H:%M:%S}"
        draw.text((width - 8, hh // 2), stamp, font=self._header_font, fill=fg, anchor="rm")
        if drill:
            draw.text((width // 2, hh // 2), DRILL_TEXT, font=self._header_font, fill=fg, anchor="mm")
        left = title or ""
        if not count:
            left = t(DEFAULT, Msg.IMAGE_TITLE_NO_CAMERA, title=left) if left else t(DEFAULT, Msg.IMAGE_NO_CAMERA)
        if left:
            room = width // 2 - 8 - (self._text_width(DRILL_TEXT) // 2 + 8 if drill else 0)
            draw.text(
                (8, hh // 2),
                _ellipsize(left, self._header_font, max(room, 40)),
                font=self._header_font,
                fill=fg,
                anchor="lm",
            )

    def _text_width(self, text: str) -> int:
        return int(self._header_font.getlength(text))

    def _draw_watermark(self, canvas: Image.Image, text: str) -> None:
        font = self._mark_font
        w = int(font.getlength(text)) + 8
        h = int(getattr(font, "size", 12) * 1.5)
        stamp = Image.new("L", (w, h), 0)
        ImageDraw.Draw(stamp).text((4, h // 2), text, font=font, fill=60, anchor="lm")
        stamp = stamp.rotate(28, expand=True, resample=Image.Resampling.BILINEAR)
        white = Image.new("RGB", stamp.size, (255, 255, 255))
        step_x, step_y = stamp.width + w // 4, max(stamp.height // 2, h * 4)
        for row, y in enumerate(range(-stamp.height // 2, canvas.height, step_y)):
            shift = (row % 2) * step_x // 2
            for x in range(-stamp.width // 2 - shift, canvas.width, step_x):
                canvas.paste(white, (x, y), stamp)


def _ellipsize(text: str, font: Font, room: int) -> str:
    if font.getlength(text) <= room:
        return text
    while text and font.getlength(text + "…") > room:
        text = text[:-1]
    return text + "…"
