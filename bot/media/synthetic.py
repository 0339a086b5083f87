"""Synthetic cameras: a short H.264 loop encoded once in memory, replayed in real time.

Each camera's loop shows its own name, a moving square and a sweeping clock hand, drawn
with Pillow (PyAV's FFmpeg has no drawtext) and encoded with libx264: GOP = 2 s, no
B-frames, SPS/PPS repeated on every IDR, like the cameras we expect. The loop length is a
whole number of GOPs so the replay always wraps onto an IDR. Replaying costs what
receiving a real camera costs: packets are handed out as they are, never re-encoded.

Measured on the 2-core reference machine (veryfast, 4 s loop, CPU per camera):
1280x720 0.95 s (~0.4 Mbit/s: a mostly still scene), 640x360 0.25 s, 1920x1080 2.0 s,
2.6 s with the `detail` texture that brings 1080p to a realistic 4 Mbit/s. Encoding runs
in each camera's own thread at its first connection and releases the GIL: 20 demo
cameras at 720p come online over ~10 s while the bot already serves (use 640x360 or a
2 s loop for a faster start).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
from PIL import Image, ImageDraw

from .fonts import load_font
from .h264 import annexb_extradata, parameter_sets
from .units import CLOCK_RATE, CodecParams, RawUnit

logger = logging.getLogger(__name__)

DEMO_SIZE = (1280, 720)
BENCH_SIZE = (1920, 1080)


@dataclass(frozen=True, slots=True)
class EncodedLoop:
    """An encoded loop: Annex-B access units in decode order, the first one an IDR."""

    label: str
    width: int
    height: int
    fps: int
    extradata: bytes
    packets: tuple[tuple[bytes, bool], ...]  # (access unit, keyframe)

    @property
    def params(self) -> CodecParams:
        return CodecParams(self.extradata, self.width, self.height, frame_duration=CLOCK_RATE // self.fps)

    @property
    def bitrate(self) -> float:
        """Bits per second of the loop."""
        return sum(len(d) for d, _ in self.packets) * 8 * self.fps / max(1, len(self.packets))


def _background(width: int, height: int, detail: bool) -> Image.Image:
    if detail:
        # noise is what real scenes cost an encoder; scrolling it keeps every frame busy
        noise = Image.effect_noise((width * 2, height), 60).convert("RGB")
        ramp = Image.linear_gradient("L").resize((width * 2, height)).convert("RGB")
        return Image.blend(noise, ramp, 0.5)
    img = Image.linear_gradient("L").rotate(90).resize((width, height))
    bg = Image.merge(
        "RGB",
        (
            img.point(lambda v: 25 + v // 6),
            img.point(lambda v: 35 + v // 5),
            img.point(lambda v: 60 + v // 4),
        ),
    )
    draw = ImageDraw.Draw(bg)
    step = max(8, width // 16)
    for x in range(0, width, step):
        draw.line([(x, 0), (x, height)], fill=(70, 85, 110), width=1)
    for y in range(0, height, step):
        draw.line([(0, y), (width, y)], fill=(70, 85, 110), width=1)
    return bg


def _frames(label: str, width: int, height: int, count: int, detail: bool) -> Iterator[Image.Image]:
    big = load_font(max(10, height // 14))
    small = load_font(max(8, height // 28))
    base = _background(width, height, detail)
    band = height // 9
    side = height // 6
    cx, cy, r = width - height // 5, height // 2, height // 8
    for i in range(count):
        img = base.crop((i * 4 % width, 0, i * 4 % width + width, height)) if detail else base.copy()
        draw = ImageDraw.Draw(img)
        draw.rectangle([0, 0, width, band], fill=(0, 0, 0))
        draw.text((band // 3, band // 6), label, font=big, fill=(255, 255, 255))
        draw.text((band // 3, height - band // 2 - 4), "CAMÉRA SYNTHÉTIQUE", font=small, fill=(255, 220, 0))
        # a triangle wave makes the motion seamless across the loop's wrap
        phase = i / count
        x = int((1 - abs(2 * phase - 1)) * (width - 3 * side - r * 2))
        draw.rectangle([x, height // 2, x + side, height // 2 + side], fill=(230, 90, 30))
        angle = 2 * math.pi * phase - math.pi / 2
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(255, 255, 255), width=max(1, r // 12))
        draw.line(
            [(cx, cy), (cx + r * math.cos(angle), cy + r * math.sin(angle))],
            fill=(255, 255, 255),
            width=max(1, r // 10),
        )
        yield img


def encode_loop(
    label: str,
    *,
    width: int = DEMO_SIZE[0],
    height: int = DEMO_SIZE[1],
    fps: int = 25,
    seconds: float = 4.0,
    gop: int | None = None,
    bitrate: int | None = None,
    detail: bool = False,
    preset: str = "veryfast",
    cancel: threading.Event | None = None,
) -> EncodedLoop:
    """Encode a loop for one camera (blocking, CPU bound: call it from a thread).

    Setting `cancel` makes it raise `EncodeCancelled` at the next frame: a stopping app does
    not wait for a whole encode.
    """
    gop = gop or 2 * fps
    count = max(gop, round(seconds * fps / gop) * gop)
    bitrate = bitrate or (4_000_000 if width * height >= 1920 * 1080 else 2_000_000)
    kbps = bitrate // 1000
    started = time.process_time()
    ctx = av.CodecContext.create("libx264", "w")
    assert isinstance(ctx, av.VideoCodecContext)  # noqa: S101 - narrows the type for mypy
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, fps)
    ctx.framerate = Fraction(fps, 1)
    ctx.gop_size = gop
    ctx.max_b_frames = 0
    ctx.bit_rate = bitrate
    ctx.options = {
        "preset": preset,
        "profile": "main",
        "x264-params": (
            f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:repeat-headers=1:sliced-threads=0"
            f":vbv-maxrate={kbps}:vbv-bufsize={kbps}"
        ),
    }
    packets: list[tuple[bytes, bool]] = []
    for i, img in enumerate(_frames(label, width, height, count, detail)):
        if cancel is not None and cancel.is_set():
            raise EncodeCancelled(label)
        frame = av.VideoFrame.from_image(img)
        frame.pts = i
        packets.extend((bytes(p), p.is_keyframe) for p in ctx.encode(frame))
    packets.extend((bytes(p), p.is_keyframe) for p in ctx.encode(None))
    if not packets or not packets[0][1]:
        raise RuntimeError("encoder did not start with a keyframe")
    sps, pps = parameter_sets(packets[0][0])
    loop = EncodedLoop(label, width, height, fps, annexb_extradata(sps, pps), tuple(packets))
    logger.info(
        "encoded synthetic loop %r %dx%d: %d frames, %.0f kbit/s, %.2f s CPU",
        label,
        width,
        height,
        len(packets),
        loop.bitrate / 1000,
        time.process_time() - started,
    )
    return loop


class EncodeCancelled(RuntimeError):
    """An encode stopped half-way because its owner is shutting down."""


class SyntheticOffline(ConnectionError):
    """Raised while a synthetic camera is switched off (tests, demo of HORS LIGNE)."""


class SyntheticSource:
    """A CameraSource replaying an encoded loop in real time with fresh timestamps.

    `loop` may be a callable so that encoding happens lazily in the camera's thread.
    """

    def __init__(self, loop: EncodedLoop | Callable[[], EncodedLoop], *, name: str = "synthetic") -> None:
        self._loop_or_factory = loop
        self._loop: EncodedLoop | None = loop if isinstance(loop, EncodedLoop) else None
        self._lock = threading.Lock()
        self._online = True
        self._generation = 0
        self.name = name

    def describe(self) -> str:
        return f"synthetic:{self.name}"

    def set_online(self, online: bool) -> None:
        """Switch the camera off (open fails, current session ends) or back on."""
        with self._lock:
            self._online = online
            self._generation += 1

    def loop(self) -> EncodedLoop:
        with self._lock:
            if self._loop is None:
                factory = self._loop_or_factory
                assert callable(factory)  # noqa: S101 - narrowed by the constructor
                self._loop = factory()
            return self._loop

    def open(self, stop: threading.Event) -> SyntheticSession:
        with self._lock:
            if not self._online:
                raise SyntheticOffline(f"{self.describe()} is switched off")
            generation = self._generation
        return SyntheticSession(self, self.loop(), stop, generation)

    def _still_on(self, generation: int) -> bool:
        with self._lock:
            return self._online and self._generation == generation


class SyntheticSession:
    """One 'connection' to a synthetic camera: packets paced at the loop's frame rate."""

    def __init__(
        self, source: SyntheticSource, loop: EncodedLoop, stop: threading.Event, generation: int
    ) -> None:
        self._source = source
        self._loop = loop
        self._stop = stop
        self._generation = generation
        self.params = loop.params
        self.time_base = Fraction(1, loop.fps)

    def __iter__(self) -> Iterator[RawUnit]:
        """Yield the loop's access units forever, in real time, pts counting frames."""
        packets = self._loop.packets
        period = 1.0 / self._loop.fps
        start = time.monotonic()
        index = 0
        while not self._stop.is_set():
            if not self._source._still_on(self._generation):
                raise SyntheticOffline(f"{self._source.describe()} went offline")
            delay = start + index * period - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            if delay < -1.0:
                # the process stalled; skip ahead rather than burst a backlog
                start = time.monotonic() - index * period
            data, key = packets[index % len(packets)]
            yield RawUnit(data, index, index, key)
            index += 1

    def close(self) -> None:
        """Nothing to release: the loop stays cached in its source."""
