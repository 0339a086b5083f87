"""Live pictures: one camera as a stream of JPEGs, for browsers that can play no video at all.

The last resort of the page (no Media Source Extensions, no native HLS): the camera's access
units are decoded as they come (every frame: a P-frame needs the ones before it), and
every ``every`` seconds the newest picture is scaled down, stamped with the viewer's name
and the time (``stamp``), and encoded. The substream is used when the camera has one (a
320x180 decode is ~0.3 ms), else the main stream. Nothing is kept but the decoder's state:
no picture outlives the next one, nothing touches the disk.

A viewer too slow to take the pictures simply gets fewer (the next one is taken when the
previous one was sent); a decode that falls behind drops to the next keyframe
(``DropToKeyframeQueue``), never holding more than a GOP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

import av
from PIL import Image

from .cameras import Camera
from .units import AccessUnit

logger = logging.getLogger(__name__)

EVERY_S = 0.25        # 4 pictures a second: motion is readable, ~40 kB each at 640 px
MAX_WIDTH = 640


class FrameDecoder:
    """Decodes every access unit of one camera with one long-lived decoder (worker thread)."""

    def __init__(self, max_width: int = MAX_WIDTH) -> None:
        self._max_width = max_width
        self._ctx: av.VideoCodecContext | None = None
        self._extradata: bytes | None = None

    def _context(self, au: AccessUnit) -> av.VideoCodecContext:
        if self._ctx is None or au.params.extradata != self._extradata:
            ctx = av.CodecContext.create("h264", "r")
            assert isinstance(ctx, av.VideoCodecContext)  # noqa: S101 - narrows the type for mypy
            ctx.extradata = au.params.extradata or None
            ctx.thread_count = 1
            ctx.options = {"flags2": "+fast"}
            self._ctx, self._extradata = ctx, au.params.extradata
        return self._ctx

    def decode(self, units: list[AccessUnit]) -> Image.Image | None:
        """Decode these units in order; the last picture, scaled to at most ``max_width``."""
        frame = None
        for au in units:
            ctx = self._context(au)
            try:
                for decoded in ctx.decode(av.Packet(au.data)):
                    frame = decoded
            except av.error.InvalidDataError:
                logger.debug("undecodable access unit skipped")
        if frame is None:
            return None
        width = min(self._max_width, frame.width)
        height = max(2, round(frame.height * width / frame.width) // 2 * 2)
        return frame.to_image(width=width, height=height)


async def live_jpegs(camera: Camera, stamp: Callable[[Image.Image], bytes],
                     every: float = EVERY_S) -> AsyncIterator[bytes]:
    """JPEGs of the camera's newest picture, one every ``every`` seconds while it sends video."""
    sub = camera.subscribe(max_items=300, max_bytes=16 * 1024 * 1024)
    decoder = FrameDecoder()
    try:
        while not sub.queue.closed:
            started = time.monotonic()
            batch: list[AccessUnit] = []
            first = await sub.queue.get()  # wait for video: a silent camera sends nothing
            if first is None:
                return
            batch.append(first)
            while len(sub.queue):
                au = await sub.queue.get()
                if au is not None:
                    batch.append(au)
            image = await asyncio.to_thread(decoder.decode, batch)
            if image is not None:
                yield await asyncio.to_thread(stamp, image)
            await asyncio.sleep(max(0.01, every - (time.monotonic() - started)))
    finally:
        sub.close()
