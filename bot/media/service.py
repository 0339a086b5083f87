"""The media service: the venue's cameras in the convention's scope, built from settings.

Only cameras in the convention's scope (and never a private one) are ever opened: a camera
outside the scope has no reader, no picture, no relay, so no code path can show it. A camera
with a URL is read over RTSP (rtsp:// on the shared ingest loop, any other URL FFmpeg reads
through PyAV); one without is a synthetic camera (the demo), whose loop is
encoded lazily in a helper thread at lowered CPU priority, a few at a time, so that the
bot answers and the first cameras come online while the others are still encoding.

A camera with a ``substream_url`` gets a second reader on that low-resolution stream
(``subs``): the mosaics, the room tiles and the data-saving video (``sub_relay``) come from
it, the main stream only feeds full-quality video. Synthetic cameras publish a substream
too (a small loop), so the demo exercises the same paths.

The service also owns what the rest of the bot reads about cameras: their health for
``/healthz`` and the line of ``/status``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..locales import Msg, t
from ..settings import CameraCfg
from .cameras import Camera, CameraHub, CameraStatus
from .ingest import IngestLoop
from .relay import RELAY_WINDOW, Relay
from .rtsp import CameraSource, LoopCameraSource, RtspSource
from .rtsp_client import LoopRtspSource
from .synthetic import EncodedLoop, SyntheticOffline, SyntheticSource, encode_loop
from .tiles import Mask

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MediaOptions:
    """Knobs of the media service; the defaults are what production and the demo use."""

    # Synthetic (demo) cameras: 960x540 2 s loops cost ~0.35 s of CPU each to encode, so 20
    # are online in ~6 s on 2 cores (1280x720: ~10 s) and look sharp on a phone.
    synthetic_size: tuple[int, int] = (960, 540)
    synthetic_seconds: float = 2.0
    # A keyframe every second: the mosaic (drawn from keyframes) shows the loop moving twice
    # per loop instead of one frozen picture.
    synthetic_gop_frames: int = 25
    # The synthetic cameras' substream: what a real camera's second stream looks like
    # (None: synthetic cameras have none, as an RTSP camera without substream_url).
    synthetic_substream: tuple[int, int] | None = (320, 180)
    synthetic_substream_kbps: int = 250
    # Mosaic tiles: 320x180 keeps the page mosaic near 100 kB (4G) and the room tile readable.
    tile_size: tuple[int, int] = (320, 180)
    page_columns: int = 2  # a portrait phone shows 2 columns (labels 12+ CSS px); rooms get the square-ish grid
    # The mosaic only changes with keyframes (every 1-2 s); ~130 kB each 2 s is ~0.5 Mbit/s on 4G.
    page_refresh_ms: int = 2000
    mosaic_max_age: float = 1.0  # the shared page mosaic is re-composed at most this often
    # CPU of keyframe decoding per page mosaic: main-stream cells beyond it keep their picture
    # until a later mosaic (substream cells cost ~1 ms each and always fit)
    mosaic_decode_budget_ms: float = 200.0
    still_size: tuple[int, int] = (960, 540)
    still_every: float = 1.0
    render_timeout: float = 10.0
    # While a camera is watched, the event loop takes its frames this often: a trade of the
    # loop's wake-ups against each frame's wait, measured in relay.Inbox's docstring
    relay_window: float = RELAY_WINDOW
    session_check: float = 0.5  # the open streams' sessions are checked again this often, in one pass
    # The rooms get a first picture as soon as access opens, not one interval later.
    tile_at_activation: bool = True
    # "loop": rtsp:// cameras are read by one event loop in the ingest thread (rtsp_client);
    # "pyav": one PyAV demux thread per stream, as before (kept for comparison in bench/)
    rtsp_reader: Literal["loop", "pyav"] = "loop"
    rtsp_open_timeout: float = 5.0
    rtsp_read_timeout: float = 5.0
    stop_timeout: float = 2.0


def masks_of(cam: CameraCfg) -> tuple[Mask, ...]:
    """Settings' [x, y, width, height] fractions as corner masks, clamped to the picture."""
    return tuple(Mask(x, y, min(1.0, x + w), min(1.0, y + h)) for x, y, w, h in cam.masks)


def in_scope(cameras: Iterable[CameraCfg], scope: frozenset[str]) -> list[CameraCfg]:
    """The cameras the convention lets the police see, in the settings' order."""
    return [c for c in cameras if c.id in scope and not c.private]


def _lower_priority() -> None:
    """Make the calling thread (Linux: one task) yield the CPU to the event loop and readers."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed: encoding still works
        logger.debug("could not lower the encoder's priority: %s", exc)


class SyntheticEncoders:
    """Encodes synthetic loops lazily, a few at a time, at low priority, cancellable on stop."""

    def __init__(self, size: tuple[int, int], seconds: float, gop: int, parallel: int) -> None:
        self._size = size
        self._seconds = seconds
        self._gop = gop
        self._slots = threading.Semaphore(max(1, parallel))
        self.stopping = threading.Event()

    def factory(self, label: str, size: tuple[int, int] | None = None,
                kbps: int | None = None) -> Callable[[], EncodedLoop]:
        def encode() -> EncodedLoop:
            # Runs in the camera's reader thread at its first connection; the encode itself
            # runs in a helper thread so that only it, not the reader, has a lowered priority.
            with self._slots:
                if self.stopping.is_set():
                    raise SyntheticOffline("stopping")
                result: list[EncodedLoop] = []
                failure: list[BaseException] = []

                def work() -> None:
                    _lower_priority()
                    try:
                        width, height = size or self._size
                        result.append(encode_loop(label, width=width, height=height, seconds=self._seconds,
                                                  gop=self._gop, cancel=self.stopping,
                                                  bitrate=kbps * 1000 if kbps else None))
                    except BaseException as exc:  # handed to the reader, which logs and retries
                        failure.append(exc)

                worker = threading.Thread(target=work, name=f"encode-{label[:20]}", daemon=True)
                worker.start()
                worker.join()
                if failure:
                    raise failure[0]
                return result[0]

        return encode


class MediaService:
    """The cameras in scope: hub, relay, masks, names, health; started and stopped by the app."""

    def __init__(self, cameras: list[CameraCfg], options: MediaOptions) -> None:
        self.options = options
        self.encoders = SyntheticEncoders(options.synthetic_size, options.synthetic_seconds,
                                          options.synthetic_gop_frames, os.cpu_count() or 2)
        self.ingest = IngestLoop()
        self.hub = CameraHub(Camera(c.id, c.name, self._source(c), ingest=self.ingest) for c in cameras)
        self.subs = CameraHub(Camera(c.id, c.name, source, ingest=self.ingest) for c in cameras
                              if (source := self._substream(c)) is not None)
        self.relay = Relay(self.hub, window=options.relay_window)
        self.sub_relay = Relay(self.subs, window=options.relay_window)
        self.masks: dict[str, tuple[Mask, ...]] = {c.id: masks_of(c) for c in cameras if c.masks}
        self.names: dict[str, str] = {c.id: c.name for c in cameras}
        self._started = False

    def _rtsp(self, url: str) -> CameraSource | LoopCameraSource:
        o = self.options
        if o.rtsp_reader == "loop" and url.lower().startswith("rtsp://"):
            return LoopRtspSource(url, open_timeout=o.rtsp_open_timeout, read_timeout=o.rtsp_read_timeout)
        return RtspSource(url, open_timeout=o.rtsp_open_timeout, read_timeout=o.rtsp_read_timeout)

    def _source(self, cam: CameraCfg) -> CameraSource | LoopCameraSource:
        if cam.url:
            return self._rtsp(cam.url)
        return SyntheticSource(self.encoders.factory(cam.name), name=cam.id)

    def _substream(self, cam: CameraCfg) -> CameraSource | LoopCameraSource | None:
        o = self.options
        if cam.substream_url:
            return self._rtsp(cam.substream_url)
        if cam.url is None and o.synthetic_substream is not None:
            factory = self.encoders.factory(cam.name, o.synthetic_substream, o.synthetic_substream_kbps)
            return SyntheticSource(factory, name=f"{cam.id}-sub")
        return None

    # --- what the others read ---

    @property
    def camera_ids(self) -> list[str]:
        return list(self.names)

    def substream(self, camera_id: str) -> Camera | None:
        return self.subs.get(camera_id)

    def masked(self, camera_id: str) -> bool:
        return camera_id in self.masks

    def statuses(self) -> list[CameraStatus]:
        return self.hub.statuses()

    def health(self) -> dict[str, dict[str, Any]]:
        """Per camera in scope: name, online, seconds since its last packet, reconnections."""
        return {
            s.camera_id: {
                "name": s.name,
                "online": s.online,
                "last_packet_age": None if s.last_packet_age is None else round(s.last_packet_age, 2),
                "reconnects": s.reconnects,
            }
            for s in self.statuses()
        }

    def status_lines(self, lang: str) -> list[str]:
        """The cameras' line of /status: how many are online and which are not."""
        statuses = self.statuses()
        if not statuses:
            return [t(lang, Msg.CAMERAS_NONE)]
        offline = [s.name for s in statuses if not s.online]
        line = t(lang, Msg.CAMERAS_ONLINE, online=len(statuses) - len(offline), total=len(statuses))
        if offline:
            line += t(lang, Msg.CAMERAS_OFFLINE, names=", ".join(offline))
        return [line]

    # --- lifecycle ---

    def start(self) -> None:
        if not self._started:
            self._started = True
            self.hub.start()
            self.subs.start()
            logger.info("media: %d camera(s) in scope started", len(self.hub))

    async def stop(self) -> None:
        """End every stream and stop the readers; a reader stuck in a blocking open is left to
        its timeout (a daemon thread: it cannot hold the process)."""
        self.encoders.stopping.set()
        self.relay.close_all()
        self.sub_relay.close_all()
        if self._started:
            await asyncio.gather(self.hub.aclose(self.options.stop_timeout),
                                 self.subs.aclose(self.options.stop_timeout))
        await asyncio.to_thread(self.ingest.stop, self.options.stop_timeout)


def build_media(cameras: Iterable[CameraCfg], scope: frozenset[str],
                options: MediaOptions | None = None) -> MediaService:
    every = list(cameras)
    chosen = in_scope(every, scope)
    left_out = sorted({c.id for c in every} - {c.id for c in chosen})
    if left_out:
        logger.info("media: cameras outside the scope or private, never opened: %s", ", ".join(left_out))
    return MediaService(chosen, options or MediaOptions())
