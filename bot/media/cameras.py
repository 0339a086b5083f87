"""Cameras: one reader thread per camera, watchdog with backoff, GOP cache, keyframe tap, fan-out.

A `CameraSource` opens sessions (an RTSP connection, a synthetic replay) that yield access
units. A `Camera` owns one thread that keeps a session open, reconnecting with exponential
backoff, and turns what it yields into `AccessUnit`s on a 90 kHz clock that never goes
backwards across reconnects. It keeps:

- the GOP cache: the access units since the last keyframe (bounded), handed at once to a
  new consumer so video starts without waiting for the next keyframe;
- the keyframe tap: the latest keyframe, which the mosaics decode on demand;
- listeners (called in the reader thread, must be quick) and async subscriptions
  (bounded queues on the event loop, dropped to the next keyframe when slow).

With no listener and no subscriber a camera does nothing per packet beyond bookkeeping:
receiving is the floor cost, and no viewer means no extra work.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

from .h264 import annexb_extradata, parameter_sets, parse_sps
from .keyframes import DropToKeyframeQueue
from .rtsp import CameraSource, SourceSession
from .units import CLOCK_RATE, AccessUnit, CodecParams

logger = logging.getLogger(__name__)

Listener = Callable[[AccessUnit], None]


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera_id: str
    name: str
    online: bool
    connected: bool
    last_packet_age: float | None  # seconds, None if no packet ever
    reconnects: int
    last_error: str | None
    width: int | None
    height: int | None


class Camera:
    """One camera: its reader thread, watchdog, GOP cache, keyframe tap and consumers."""

    def __init__(
        self,
        camera_id: str,
        name: str,
        source: CameraSource,
        *,
        stale_after: float = 3.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        gop_max_units: int = 300,
        gop_max_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.camera_id = camera_id
        self.name = name
        self.source = source
        self.stale_after = stale_after
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._gop_max_units = gop_max_units
        self._gop_max_bytes = gop_max_bytes
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gop: deque[AccessUnit] = deque()
        self._gop_bytes = 0
        self._keyframe: AccessUnit | None = None
        self._listeners: tuple[Listener, ...] = ()
        self._params: CodecParams | None = None
        self._connected = False
        self._last_packet: float | None = None
        self._reconnects = 0
        self._last_error: str | None = None
        self._seq = 0
        self._last_dts: int | None = None
        self._frame_duration = CLOCK_RATE // 25

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"camera {self.camera_id} already started")
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera_id}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the reader to stop without waiting for it."""
        self._stop.set()

    def close(self, timeout: float = 6.0) -> None:
        """Stop the reader; blocks until its thread ends (at most the source's read timeout)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("camera %s: reader thread still running after %.1f s", self.camera_id, timeout)
        with self._lock:
            self._listeners = ()

    async def aclose(self, timeout: float = 6.0) -> None:
        await asyncio.to_thread(self.close, timeout)

    # -- what consumers read -----------------------------------------------------------------

    @property
    def params(self) -> CodecParams | None:
        return self._params

    def status(self) -> CameraStatus:
        with self._lock:
            age = None if self._last_packet is None else time.monotonic() - self._last_packet
            params = self._params
            return CameraStatus(
                camera_id=self.camera_id,
                name=self.name,
                online=self._connected and age is not None and age < self.stale_after,
                connected=self._connected,
                last_packet_age=age,
                reconnects=self._reconnects,
                last_error=self._last_error,
                width=params.width if params else None,
                height=params.height if params else None,
            )

    def keyframe(self) -> AccessUnit | None:
        """The latest keyframe received (it may be old: check `received` or the status)."""
        return self._keyframe

    def gop(self) -> list[AccessUnit]:
        with self._lock:
            return list(self._gop)

    def attach(self, listener: Listener) -> list[AccessUnit]:
        """Add a listener and return the cached GOP, atomically: nothing is missed or doubled.

        The listener is then called in the reader thread for every new access unit; it must
        not block (hand work to a queue or the event loop).
        """
        with self._lock:
            self._listeners = (*self._listeners, listener)
            return list(self._gop)

    def detach(self, listener: Listener) -> None:
        with self._lock:
            # bound methods are new objects on each access: compare by equality
            self._listeners = tuple(item for item in self._listeners if item != listener)

    def subscribe(self, *, max_items: int = 400, max_bytes: int = 16 * 1024 * 1024) -> Subscription:
        """An async iterator of access units: the cached GOP, then live ones (event loop only)."""
        return Subscription(self, asyncio.get_running_loop(), max_items, max_bytes)

    # -- reader thread ---------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_initial
        attempts = 0
        while not self._stop.is_set():
            if attempts:
                with self._lock:
                    self._reconnects += 1
            attempts += 1
            delivered = False
            try:
                delivered = self._session()
            except Exception as exc:
                self._fail(exc)
            finally:
                with self._lock:
                    self._connected = False
            if self._stop.is_set():
                break
            if delivered:
                backoff = self.backoff_initial
            # jitter spreads reconnections when a whole recorder drops its cameras at once
            delay = backoff * random.uniform(0.8, 1.2)  # noqa: S311 - not security related
            logger.info("camera %s: reconnecting in %.1f s", self.camera_id, delay)
            if self._stop.wait(delay):
                break
            backoff = min(backoff * 2, self.backoff_max)
        logger.debug("camera %s: reader stopped", self.camera_id)

    def _fail(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._lock:
            repeated = message == self._last_error
            self._last_error = message
        log = logger.debug if repeated else logger.warning
        log("camera %s (%s): %s", self.camera_id, self.source.describe(), message)

    def _session(self) -> bool:
        """Run one session to its end; True if it delivered at least one access unit."""
        session = self.source.open(self._stop)
        delivered = False
        try:
            params = session.params
            with self._lock:
                self._connected = True
                self._reset_gop()
            logger.info("camera %s: connected to %s", self.camera_id, self.source.describe())
            if params.frame_duration > 0:
                self._frame_duration = params.frame_duration
            for au in self._rebase(session, params):
                self._publish(au)
                delivered = True
        finally:
            session.close()
        return delivered

    def _rebase(self, session: SourceSession, params: CodecParams) -> Iterable[AccessUnit]:
        """Turn session units into AccessUnits: 90 kHz, monotonic, starting on a keyframe."""
        scale = Fraction(session.time_base) * CLOCK_RATE
        offset: int | None = None
        for raw in session:
            if self._stop.is_set():
                return
            if offset is None and not raw.keyframe:
                continue  # nothing before the first keyframe can be decoded
            if raw.keyframe and (not params.extradata or not params.width):
                params = _complete_params(params, raw.data)
            src_dts = raw.dts if raw.dts is not None else raw.pts
            last = self._last_dts
            if src_dts is None:
                dts = (last + self._frame_duration) if last is not None else 0
            else:
                ticks = round(src_dts * scale)
                if offset is None:
                    offset = (last + self._frame_duration - ticks) if last is not None else -ticks
                dts = ticks + offset
                if last is not None and not 0 < dts - last <= 5 * CLOCK_RATE:
                    # timestamp jump (camera clock reset, wrap): keep our timeline continuous
                    offset = last + self._frame_duration - ticks
                    dts = ticks + offset
            if offset is None:
                offset = 0
            if last is not None and 0 < dts - last < CLOCK_RATE:
                self._frame_duration = dts - last
            cts = 0
            if raw.pts is not None and raw.dts is not None and raw.pts != raw.dts:
                cts = round((raw.pts - raw.dts) * scale)
            self._last_dts = dts
            self._seq += 1
            yield AccessUnit(
                data=raw.data,
                pts=dts + cts,
                keyframe=raw.keyframe,
                params=params,
                seq=self._seq,
                received=time.monotonic(),
                dts=dts if cts else None,
            )

    def _publish(self, au: AccessUnit) -> None:
        size = len(au.data)
        with self._lock:
            self._params = au.params
            self._last_packet = au.received
            if au.keyframe:
                self._keyframe = au
                self._reset_gop()
            if self._gop or au.keyframe:
                if len(self._gop) >= self._gop_max_units or self._gop_bytes + size > self._gop_max_bytes:
                    # a GOP too long to cache: new consumers will wait for the next keyframe
                    self._reset_gop()
                else:
                    self._gop.append(au)
                    self._gop_bytes += size
            listeners = self._listeners
        for listener in listeners:
            try:
                listener(au)
            except Exception:
                logger.exception("camera %s: listener %r failed; detaching it", self.camera_id, listener)
                self.detach(listener)

    def _reset_gop(self) -> None:
        self._gop.clear()
        self._gop_bytes = 0


def _complete_params(params: CodecParams, keyframe: bytes) -> CodecParams:
    """Fill in SPS/PPS and size from an in-band keyframe when the SDP did not carry them."""
    sps, pps = parameter_sets(keyframe)
    if not sps or not pps:
        return params
    extradata = params.extradata or annexb_extradata(sps, pps)
    width, height = params.width, params.height
    if not width or not height:
        info = parse_sps(sps[0])
        width, height = info.width, info.height
    return replace(params, extradata=extradata, width=width, height=height)


class Subscription:
    """Access units of one camera for one async consumer: cached GOP first, then live."""

    def __init__(
        self, camera: Camera, loop: asyncio.AbstractEventLoop, max_items: int, max_bytes: int
    ) -> None:
        self._camera = camera
        self._loop = loop
        self.queue: DropToKeyframeQueue[AccessUnit] = DropToKeyframeQueue(
            max_items=max_items,
            max_bytes=max_bytes,
            size=lambda au: len(au.data),
            is_key=lambda au: au.keyframe,
        )
        for au in camera.attach(self._offer):
            self.queue.put(au)

    def _offer(self, au: AccessUnit) -> None:
        # reader thread: hand over to the loop; a closed loop means we are shutting down
        try:
            self._loop.call_soon_threadsafe(self.queue.put, au)
        except RuntimeError:
            self._camera.detach(self._offer)

    def close(self) -> None:
        self._camera.detach(self._offer)
        self.queue.close()

    def __aiter__(self) -> DropToKeyframeQueue[AccessUnit]:
        return self.queue


class CameraHub:
    """The set of cameras of a venue: start them together, close them together."""

    def __init__(self, cameras: Iterable[Camera] = ()) -> None:
        self._cameras: dict[str, Camera] = {}
        for camera in cameras:
            self.add(camera)

    def add(self, camera: Camera) -> None:
        if camera.camera_id in self._cameras:
            raise ValueError(f"duplicate camera id {camera.camera_id!r}")
        self._cameras[camera.camera_id] = camera

    def __getitem__(self, camera_id: str) -> Camera:
        return self._cameras[camera_id]

    def __iter__(self) -> Iterator[Camera]:
        return iter(self._cameras.values())

    def __len__(self) -> int:
        return len(self._cameras)

    def get(self, camera_id: str) -> Camera | None:
        return self._cameras.get(camera_id)

    def start(self) -> None:
        for camera in self._cameras.values():
            camera.start()

    def statuses(self) -> list[CameraStatus]:
        return [camera.status() for camera in self._cameras.values()]

    async def aclose(self, timeout: float = 6.0) -> None:
        for camera in self._cameras.values():
            camera.request_stop()  # signal all first so they wind down in parallel
        await asyncio.gather(*(camera.aclose(timeout) for camera in self._cameras.values()))
