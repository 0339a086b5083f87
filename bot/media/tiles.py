"""Mosaics from keyframes: decode each camera's latest keyframe once, compose with Pillow.

Only the cameras passed in are drawn. Each cell's picture comes from `cells.CellPictures`:
a camera's latest keyframe (of its substream when it has one) decoded once, scaled to the
tile and held until the camera sends a new one.

Composing 20 cached tiles, labels, banner, watermark and the JPEG takes a few ms.

Privacy masks are painted solid on the composed image right after each camera's picture
is pasted, before labels and before any byte is encoded: nothing unmasked leaves here.
A camera without signal (offline, or its keyframe too old) is drawn as `HORS LIGNE`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import time
from collections.abc import Sequence
from datetime import datetime

from PIL import Image, ImageDraw

from ..locales import DEFAULT, Msg, t
from .cells import CellPictures, Mask, RenderStats, TileInput, decode_keyframe, tile_inputs
from .fonts import Font, load_font

__all__ = ["Mask", "MosaicRenderer", "RenderStats", "TileInput", "decode_keyframe", "grid", "pack", "tile_inputs"]

logger = logging.getLogger(__name__)

OFFLINE_TEXT = "HORS LIGNE"
# A picture is seen by everyone, whatever their room's language: it speaks the service's first one.
DRILL_TEXT = t(DEFAULT, Msg.IMAGE_DRILL)
_BG = (16, 16, 16)
_HEADER = (28, 32, 40)
_DRILL = (255, 196, 0)
_PLACEHOLDER = (56, 56, 56)
_OFFLINE_FG = (235, 70, 60)
_ZONE = (255, 176, 32)  # the alarm's zone: label band and frame
_WHITE = (255, 255, 255)
_MARK_STRIP = 16  # rows per strip of the watermark, cropped to its ink (``_draw_watermark``)


def grid(count: int, columns: int | None = None) -> tuple[int, int]:
    """(columns, rows) for `count` tiles: 20 -> 5x4, 9 -> 3x3, 2 -> 2x1; `columns` caps the width."""
    if count <= 0:
        return 1, 1
    cols = math.ceil(math.sqrt(count))
    if columns:
        cols = max(1, min(columns, count))
    return cols, math.ceil(count / cols)


def pack(count: int, featured: int = 0, columns: int | None = None) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(columns, rows, cells) of a mosaic whose first ``featured`` tiles are twice as large.

    Each cell is (column, row, span): a featured tile covers span x span grid cells. Tiles go
    in order, each at the first free place reading row by row, so the small ones fill the gaps
    beside the large ones. Without featured tiles this is ``grid``'s row-major layout."""
    cols, _ = grid(count, columns)
    if featured and cols == 1:
        cols = 2  # a featured tile needs two columns
    featured = min(featured, count) if cols >= 2 else 0
    taken: set[tuple[int, int]] = set()
    cells: list[tuple[int, int, int]] = []
    for index in range(count):
        span = 2 if index < featured else 1
        pos = 0
        while True:
            cx, cy = pos % cols, pos // cols
            spots = {(cx + i, cy + j) for i in range(span) for j in range(span)}
            if cx + span <= cols and not spots & taken:
                break
            pos += 1
        taken |= spots
        cells.append((cx, cy, span))
    rows = max((cy + span for _, cy, span in cells), default=1)
    return cols, rows, cells


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
        header_height: int | None = None,
        decoders: int | None = None,
        decode_timeout: float = 3.0,
        label_size: int | None = None,
    ) -> None:
        self.tile_width = tile_width
        self.tile_height = tile_height
        self.jpeg_quality = jpeg_quality
        self.stale_after = stale_after
        self.mask_colour = mask_colour
        self.header_height = header_height or max(28, tile_height // 5)
        # 1/8 of a tile: 12+ CSS px tall on a 390 px phone showing the page's two columns
        self.label_px = label_size or max(11, tile_height // 8)  # the cameras' names, in image pixels
        self._label_font = load_font(self.label_px, True, font_path)
        self._header_font = load_font(max(14, self.header_height * 11 // 20), True, font_path)
        self._offline_font = load_font(max(14, tile_height // 8), True, font_path)
        self._mark_font = load_font(max(12, tile_height // 11), True, font_path)
        self.cells = CellPictures(tile_width, tile_height, stale_after=stale_after, decoders=decoders,
                                  decode_timeout=decode_timeout)
        self.last_stats = RenderStats()

    # -- public ------------------------------------------------------------------------------

    def size_for(self, count: int, columns: int | None = None, featured: int = 0) -> tuple[int, int]:
        cols, rows, _ = pack(count, featured, columns)
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
        featured: int = 0,
    ) -> bytes:
        """The mosaic as JPEG bytes (blocking, CPU bound)."""
        image = self.render_image(tiles, now=now, drill=drill, watermark=watermark, title=title, columns=columns,
                                  featured=featured)
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
        decode_budget_ms: float | None = None,
        featured: int = 0,
        marked: int = 0,
    ) -> Image.Image:
        """The mosaic as a Pillow image (masks already painted).

        `decode_budget_ms` caps the predicted CPU of the keyframes decoded for this mosaic. The
        first `featured` tiles are drawn twice as large (``pack``); the first `marked` ones get
        the zone's frame (the alarm's zone)."""
        stats = RenderStats()
        now = now or datetime.now().astimezone()
        pictures = self.cells.pictures(tiles, stats, decode_budget_ms)
        started = time.thread_time()
        _, _, cells = pack(len(tiles), featured, columns)
        width, height = self.size_for(len(tiles), columns, featured)
        canvas = Image.new("RGB", (width, height), _BG)
        draw = ImageDraw.Draw(canvas)
        for index, (tile, picture, (cx, cy, span)) in enumerate(zip(tiles, pictures, cells, strict=True)):
            x, y = cx * self.tile_width, self.header_height + cy * self.tile_height
            if span > 1 and picture is not None:
                picture = picture.resize((picture.width * span, picture.height * span), Image.Resampling.BILINEAR)
            self._draw_tile(canvas, draw, x, y, tile, picture, span, index < max(marked, featured))
        self._draw_header(draw, width, now, drill, title, len(tiles))
        if watermark:
            self._draw_watermark(canvas, f"{watermark} — {now:%d/%m/%Y %H:%M:%S}")
        stats.compose_cpu_ms = (time.thread_time() - started) * 1000
        self.last_stats = stats
        return canvas

    # -- pictures ----------------------------------------------------------------------------

    @property
    def decodes(self) -> int:
        """Keyframes decoded since the start (tests and the bench read it)."""
        return self.cells.decodes

    def clear(self) -> None:
        """Forget every camera's picture (nothing of a venue stays in memory after a stop)."""
        self.cells.clear()

    def close(self) -> None:
        """Stop the decoder threads; a decode under way finishes in the background."""
        self.cells.close()

    # -- drawing -----------------------------------------------------------------------------

    def _draw_tile(
        self,
        canvas: Image.Image,
        draw: ImageDraw.ImageDraw,
        x: int,
        y: int,
        tile: TileInput,
        picture: Image.Image | None,
        span: int = 1,
        in_zone: bool = False,
    ) -> None:
        tw, th = self.tile_width * span, self.tile_height * span
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
        draw.rectangle([x, y + th - band, x + tw - 1, y + th - 1], fill=_ZONE if in_zone else (0, 0, 0))
        label = _ellipsize(tile.label, self._label_font, tw - 10)
        draw.text(
            (x + 5, y + th - band // 2), label, font=self._label_font,
            fill=(0, 0, 0) if in_zone else (255, 255, 255), anchor="lm",
        )
        # a dark frame keeps neighbouring pictures apart; the alarm's zone gets an amber one
        draw.rectangle([x, y, x + tw - 1, y + th - 1], outline=_ZONE if in_zone else _BG, width=3 if in_zone else 1)

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
        """The viewer's name and the time, diagonally, repeated over the whole picture.

        Drawn for every viewer at every refresh (``stamp``). The rotated text is a thin diagonal
        band in a mostly empty box, so it is cut into horizontal strips cropped to their ink and
        only those are pasted: the same pixels as pasting the whole box, in about a quarter of
        the area (7.3 → 4.4-5.0 ms on a 20-camera page mosaic, 640x1836)."""
        font = self._mark_font
        w = int(font.getlength(text)) + 8
        h = int(getattr(font, "size", 12) * 1.5)
        stamp = Image.new("L", (w, h), 0)
        ImageDraw.Draw(stamp).text((4, h // 2), text, font=font, fill=60, anchor="lm")
        stamp = stamp.rotate(28, expand=True, resample=Image.Resampling.BILINEAR)
        pieces = []
        for top in range(0, stamp.height, _MARK_STRIP):
            strip = stamp.crop((0, top, stamp.width, min(stamp.height, top + _MARK_STRIP)))
            box = strip.getbbox()
            if box is not None:
                pieces.append((box[0], top + box[1], strip.crop(box)))
        step_x, step_y = stamp.width + w // 4, max(stamp.height // 2, h * 4)
        for row, y in enumerate(range(-stamp.height // 2, canvas.height, step_y)):
            shift = (row % 2) * step_x // 2
            for x in range(-stamp.width // 2 - shift, canvas.width, step_x):
                for dx, dy, piece in pieces:
                    canvas.paste(_WHITE, (x + dx, y + dy), piece)


def _ellipsize(text: str, font: Font, room: int) -> str:
    if font.getlength(text) <= room:
        return text
    while text and font.getlength(text + "…") > room:
        text = text[:-1]
    return text + "…"
