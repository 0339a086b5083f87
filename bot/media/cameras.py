"""Cameras: a reader per camera, watchdog with backoff, GOP cache, keyframe tap, fan-out.

A source opens sessions that yield access units. An RTSP camera (``LoopCameraSource``) is
read by a task on the shared ingest loop (``ingest.py``: one thread for every camera); a
synthetic replay or another PyAV source (``CameraSource``) by a thread of its own. Either way
the `Camera` keeps a session open, reconnecting with exponential backoff, and turns what it
yields into `AccessUnit`s on a 90 kHz clock that never goes backwards across reconnects
(``timeline.py``). It keeps:

- the GOP cache: the access units since the last keyframe (bounded), handed at once to a
  new consumer so video starts without waiting for the next keyframe;
- the keyframe tap: the latest keyframe, which the mosaics decode on demand;
- listeners (called in the reader's thread, must be quick) and async subscriptions
  (bounded queues on the event loop, dropped to the next keyframe when slow).

With no listener and no subscriber a camera does nothing per packet beyond bookkeeping:
receiving is the floor cost, and no viewer means no extra work.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .ingest import IngestLoop
from .keyframes import DropToKeyframeQueue
from .rtsp import CameraSource, LoopCameraSource
from .timeline import Timeline
from .units import AccessUnit, CodecParams, RawUnit

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
    """One camera: its reader (a task on the ingest loop, or a thread), watchdog, GOP cache,
    keyframe tap and consumers."""

    def __init__(
        self,
        camera_id: str,
        name: str,
        source: CameraSource | LoopCameraSource,
        *,
        ingest: IngestLoop | None = None,
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
        self._ingest = ingest
        self._task: concurrent.futures.Future[None] | None = None
        self._ended = threading.Event()  # the loop task's end (its finally has run)
        self._gop: deque[AccessUnit] = deque()
        self._gop_bytes = 0
        self._keyframe: AccessUnit | None = None
        self._listeners: tuple[Listener, ...] = ()
        self._params: CodecParams | None = None
        self._connected = False
        self._last_packet: float | None = None
        self._reconnects = 0
        self._last_error: str | None = None
        self._timeline = Timeline()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None or self._task is not None:
            raise RuntimeError(f"camera {self.camera_id} already started")
        if isinstance(self.source, LoopCameraSource):
            if self._ingest is None:
                raise RuntimeError(f"camera {self.camera_id}: an event-loop source needs the ingest loop")
            self._task = self._ingest.submit(self._arun())
            return
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.camera_id}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the reader to stop without waiting for it."""
        self._stop.set()

    def close(self, timeout: float = 6.0) -> None:
        """Stop the reader; blocks until it ends (a thread: at most the source's read timeout)."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()  # the task ends at once: a pending read or open is cancelled
            if not self._ended.wait(timeout):
                logger.warning("camera %s: reader task still running after %.1f s", self.camera_id, timeout)
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

        The listener is then called in the reader's thread for every new access unit; it must
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

    # -- reader: a thread (blocking sources) or a task on the ingest loop --------------------

    def _run(self) -> None:
        backoff, first = self.backoff_initial, True
        while not self._stop.is_set():
            delivered = False
            with self._attempt(first):
                delivered = self._session()
            first = False
            if self._stop.is_set():
                break
            delay, backoff = self._retry(delivered, backoff)
            if self._stop.wait(delay):
                break
        logger.debug("camera %s: reader stopped", self.camera_id)

    @contextlib.contextmanager
    def _attempt(self, first: bool) -> Iterator[None]:
        """One connection attempt, thread or task: counted as a reconnection after the first,
        its error recorded (and swallowed: the watchdog retries), the camera shown disconnected
        once it ends."""
        if not first:
            with self._lock:
                self._reconnects += 1
        try:
            yield
        except Exception as exc:
            self._fail(exc)
        finally:
            with self._lock:
                self._connected = False

    def _retry(self, delivered: bool, backoff: float) -> tuple[float, float]:
        """(the wait before the next attempt, the backoff after it)."""
        if delivered:
            backoff = self.backoff_initial
        # jitter spreads reconnections when a whole recorder drops its cameras at once
        delay = backoff * random.uniform(0.8, 1.2)  # noqa: S311 - not security related
        logger.info("camera %s: reconnecting in %.1f s", self.camera_id, delay)
        return delay, min(backoff * 2, self.backoff_max)

    async def _arun(self) -> None:
        """The watchdog of an event-loop source: the same rules as ``_run``, as a task."""
        backoff, first = self.backoff_initial, True
        try:
            while not self._stop.is_set():
                delivered = False
                with self._attempt(first):
                    delivered = await self._asession()
                first = False
                if self._stop.is_set():
                    break
                delay, backoff = self._retry(delivered, backoff)
                await asyncio.sleep(delay)
        finally:
            self._ended.set()
            logger.debug("camera %s: reader stopped", self.camera_id)

    async def _asession(self) -> bool:
        assert isinstance(self.source, LoopCameraSource)  # noqa: S101 - chosen by start()
        session = await self.source.connect()
        delivered = False
        try:
            self._connected_to()
            clock = self._timeline.session(session.time_base, session.params)

            def sink(raw: RawUnit) -> None:
                nonlocal delivered
                au = clock.unit(raw)
                if au is not None and not self._stop.is_set():
                    self._publish(au)
                    delivered = True

            await session.run(sink)
        finally:
            session.close()
        return delivered

    def _connected_to(self) -> None:
        with self._lock:
            self._connected = True
            self._reset_gop()
        logger.info("camera %s: connected to %s", self.camera_id, self.source.describe())

    def _fail(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._lock:
            repeated = message == self._last_error
            self._last_error = message
        log = logger.debug if repeated else logger.warning
        log("camera %s (%s): %s", self.camera_id, self.source.describe(), message)

    def _session(self) -> bool:
        """Run one session to its end; True if it delivered at least one access unit."""
        assert isinstance(self.source, CameraSource)  # noqa: S101 - chosen by start()
        session = self.source.open(self._stop)
        delivered = False
        try:
            self._connected_to()
            clock = self._timeline.session(session.time_base, session.params)
            for raw in session:
                if self._stop.is_set():
                    break
                au = clock.unit(raw)
                if au is not None:
                    self._publish(au)
                    delivered = True
        finally:
            session.close()
        return delivered

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
        # the reader's thread: hand over to the loop; a closed loop means we are shutting down
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
