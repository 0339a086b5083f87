"""Live video without transcoding: one camera's H.264 access units fanned out as fMP4 to viewers.

Per camera, one `CameraRelay` attaches to the camera only while it has viewers (no viewer,
no work). Access units are written into fragments in the reader thread (a few struct packs,
no PyAV) and handed to the event loop, which writes each one straight to the link of a
viewer with nothing ahead of it (``Viewer.offer``) and queues it for the others in the
viewer's bounded queue, which its task drains. A new viewer
gets the init segment and the camera's cached GOP at once (written into fragments for it from
the camera's own cache: the relay keeps no second copy, ~1 MB per camera watched at 4 Mbit/s),
then live fragments; a viewer too slow for its link is dropped to the
next keyframe, and a viewer set to `keyframes_only` gets nothing else (a picture per GOP,
what a link that cannot carry even the substream still holds). A slow viewer only ever
fills its own queue: the others are never held back. Closing a viewer ends its iterator
immediately.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .cameras import Camera, CameraHub
from .fmp4 import FragmentWriter, mime_for
from .keyframes import DropToKeyframeQueue
from .units import AccessUnit

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Segment:
    """One fragment (moof+mdat) and the init segment it must follow."""

    data: bytes
    init: bytes
    keyframe: bool
    generation: int
    seq: int  # the access unit's, per camera


@dataclass(frozen=True, slots=True)
class Batch:
    """One message for a viewer: an init segment, or fragments joined."""

    init: bytes | None
    data: bytes
    waiting: int  # fragments queued for this viewer when the batch was taken (its link's backlog)


class Viewer:
    """One viewer of one camera. Iterate it for bytes: an init segment first, then fragments.

    A new init segment is yielded again whenever the stream's parameters change.
    """

    def __init__(self, relay: CameraRelay, max_items: int, max_bytes: int) -> None:
        self.relay = relay
        self.camera_id = relay.camera.camera_id
        self.queue: DropToKeyframeQueue[Segment] = DropToKeyframeQueue(
            max_items=max_items,
            max_bytes=max_bytes,
            size=lambda seg: len(seg.data),
            is_key=lambda seg: seg.keyframe,
        )
        self.mime: str | None = None
        self.keyframes_only = False
        # The consumer's way straight to its link, for a fragment that would otherwise wake it only
        # to be written at once: takes the fragment, says whether it went (``VideoFeed`` offers one).
        self.direct: Callable[[bytes], bool] | None = None
        self.sent_init: bytes | None = None  # the init segment the consumer's fragments follow now
        self._busy = False  # the consumer holds fragments taken from the queue and not yet written

    @property
    def backlog(self) -> int:
        """Fragments waiting for this viewer's link (the sign of a link too slow)."""
        return len(self.queue)

    @property
    def overflows(self) -> int:
        return self.queue.overflows

    @property
    def closed(self) -> bool:
        return self.queue.closed

    @property
    def dropped(self) -> int:
        """Fragments this viewer lost because it was too slow."""
        return self.queue.dropped

    def close(self) -> None:
        """End this viewer's stream now (event loop thread)."""
        if not self.queue.closed:
            self.queue.close()
            self.relay._remove(self)

    def _new_init(self, init: bytes) -> None:
        """A new init segment goes out: the stream's MIME type as it is now."""
        self.sent_init = init
        params = self.relay.camera.params
        self.mime = mime_for(params) if params else None

    def offer(self, seg: Segment) -> None:
        """A live fragment for this viewer (event loop). Straight to the link when nothing is ahead
        of it: the queue empty and not skipping, the consumer holding nothing, the same init
        segment, every frame wanted, and the link taking it now. Otherwise it queues, and the
        consumer (woken) sends it in order and judges the link by what waits."""
        if (self.direct is not None and not self._busy and seg.init is self.sent_init and not self.keyframes_only
                and self.queue.idle and self.direct(seg.data)):
            return
        self.queue.put(seg)

    async def batches(self, limit: int = 64) -> AsyncIterator[Batch]:
        """What is ready for this viewer's link, one wake-up and one message for what came
        together: an init segment alone when the stream's parameters change, else the
        fragments waiting, joined (the page's SourceBuffer takes any run of moof+mdat)."""
        while segs := await self.queue.get_batch(limit):
            # until the consumer comes back for more, what it holds is ahead of any new fragment
            self._busy = True
            waiting = len(segs) + len(self.queue)
            start = 0
            for i, seg in enumerate(segs):
                if seg.init is not self.sent_init:
                    if i > start:
                        yield Batch(None, b"".join(s.data for s in segs[start:i]), waiting)
                    start = i
                    self._new_init(seg.init)
                    yield Batch(seg.init, b"", waiting)
            # a lone fragment is not copied: bytes.join returns it as it is
            yield Batch(None, b"".join(s.data for s in segs[start:]), waiting)
            self._busy = False
            # hold nothing while waiting: with live fragments going the short way, the next batch
            # may come only when the link slows, and the cached GOP (~1 MB) would stay until then
            del seg, segs

    async def segments(self) -> AsyncIterator[bytes]:
        async for seg in self.queue:
            if seg.init is not self.sent_init:
                self._new_init(seg.init)
                yield seg.init
            yield seg.data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self.segments()


class Inbox:
    """Fragments from the reader threads to the event loop, a few wake-ups a second at most.

    ``call_soon_threadsafe`` for each fragment woke the loop (a write to its self-pipe, a
    context switch, a GIL hand-over taken from 40 reader threads) 25 times a second per camera
    watched, for the few microseconds of handing a fragment to its viewers' queues: with ten
    cameras watched that was most of the CPU a viewer cost. Here a reader thread wakes the
    loop only when nothing is pending, and the loop hands over what is pending (from every
    camera) at most once per ``window``: a fragment that comes within 20 ms of the previous
    hand-over waits for the next one. One camera watched (frames 40 ms apart) waits for
    nothing; ten cameras share ~50 hand-overs a second instead of 250. A fragment waits
    10 ms on average, against a live lag of ~60 ms. Per camera the order is kept (one
    reader thread, one list).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, window: float = 0.02) -> None:
        self.loop = loop
        self.window = window
        self._lock = threading.Lock()
        self._pending: list[tuple[CameraRelay, Segment]] = []
        self._last = 0.0  # loop time of the last hand-over

    def post(self, relay: CameraRelay, seg: Segment) -> None:
        """Reader thread. Raises RuntimeError once the loop is closed."""
        with self._lock:
            self._pending.append((relay, seg))
            if len(self._pending) > 1:
                return  # a hand-over is already on its way
        self.loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        wait = self._last + self.window - self.loop.time()
        if wait <= 0:
            self._drain()
        else:
            self.loop.call_later(wait, self._drain)

    def _drain(self) -> None:
        self._last = self.loop.time()
        with self._lock:
            batch, self._pending = self._pending, []
        for relay, seg in batch:
            relay._dispatch(seg)


class CameraRelay:
    """fMP4 fan-out of one camera to its viewers."""

    def __init__(
        self,
        camera: Camera,
        *,
        inbox: Callable[[], Inbox] | None = None,
        viewer_max_items: int = 150,
        viewer_max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.camera = camera
        self._viewer_max_items = viewer_max_items
        self._viewer_max_bytes = viewer_max_bytes
        self._viewers: set[Viewer] = set()
        self._dispatched = 0  # seq of the last access unit handed to the viewers
        self._writer = FragmentWriter()
        self._write_lock = threading.Lock()
        self._generation = 0
        self._attached = False
        self._inbox: Inbox | None = None
        self._inbox_of = inbox or (lambda: Inbox(asyncio.get_running_loop()))

    @property
    def viewer_count(self) -> int:
        return len(self._viewers)

    @property
    def mime(self) -> str | None:
        params = self.camera.params
        return mime_for(params) if params else None

    def open_viewer(self) -> Viewer:
        """A new viewer, already holding init + cached GOP when the camera has one (event loop)."""
        viewer = Viewer(self, self._viewer_max_items, self._viewer_max_bytes)
        self._viewers.add(viewer)
        if not self._attached:
            self._attach()
            return viewer
        # The camera's GOP up to what the viewers already got; what the reader has written
        # since is on its way through the loop and reaches this viewer like the others.
        gop = [au for au in self.camera.gop() if au.seq <= self._dispatched]
        if not gop:  # nothing decodable to start with: wait for the next keyframe
            viewer.queue.skip_to_key()
        writer = FragmentWriter()
        current = self._writer.init
        for au in gop:
            init, data = writer.write(au)
            # the relay's init object when it is the same: the viewer sends it only once
            viewer.queue.put(Segment(data, current if init == current else init, au.keyframe, self._generation,
                                     au.seq))
        return viewer

    def close_all(self) -> None:
        """End every viewer's stream (incident ended, access revoked)."""
        for viewer in list(self._viewers):
            viewer.close()

    def _attach(self) -> None:
        self._inbox = self._inbox_of()
        self._generation += 1
        self._attached = True
        self._dispatched = 0
        # under the write lock, live units from the reader wait until the snapshot is written:
        # the order stays GOP then live, nothing missed or doubled
        with self._write_lock:
            snapshot = self.camera.attach(self._on_unit)
            segments = [self._write(au) for au in snapshot]
        for seg in segments:
            self._dispatch(seg)

    def _remove(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)
        if not self._viewers and self._attached:
            self.camera.detach(self._on_unit)
            self._attached = False

    def _write(self, au: AccessUnit) -> Segment:
        init, data = self._writer.write(au)
        return Segment(data, init, au.keyframe, self._generation, au.seq)

    def _on_unit(self, au: AccessUnit) -> None:
        # reader thread
        with self._write_lock:
            seg = self._write(au)
        inbox = self._inbox
        if inbox is None:
            return
        try:
            inbox.post(self, seg)
        except RuntimeError:  # loop closed: the app is shutting down
            self.camera.detach(self._on_unit)

    def _dispatch(self, seg: Segment) -> None:
        # event loop: the only place the viewers' queues change
        if not self._attached or seg.generation != self._generation:
            return  # left over from an earlier attachment
        self._dispatched = seg.seq
        for viewer in self._viewers:
            if seg.keyframe or not viewer.keyframes_only:
                viewer.offer(seg)


class Relay:
    """The relays of all cameras of a hub."""

    def __init__(self, hub: CameraHub, *, window: float = 0.02, **options: int) -> None:
        self._hub = hub
        self._window = window
        self._options = options
        self._relays: dict[str, CameraRelay] = {}
        self._inbox: Inbox | None = None

    def inbox(self) -> Inbox:
        """The inbox shared by this hub's relays, on the running loop (event loop)."""
        loop = asyncio.get_running_loop()
        if self._inbox is None or self._inbox.loop is not loop:
            self._inbox = Inbox(loop, self._window)
        return self._inbox

    def camera_relay(self, camera_id: str) -> CameraRelay:
        relay = self._relays.get(camera_id)
        if relay is None:
            relay = CameraRelay(self._hub[camera_id], inbox=self.inbox, **self._options)
            self._relays[camera_id] = relay
        return relay

    def open_viewer(self, camera_id: str) -> Viewer:
        """Raises KeyError for an unknown camera."""
        return self.camera_relay(camera_id).open_viewer()

    def has(self, camera_id: str) -> bool:
        return self._hub.get(camera_id) is not None

    def viewer_count(self) -> int:
        return sum(relay.viewer_count for relay in self._relays.values())

    def close_all(self) -> None:
        """End every open stream at once; iterators finish on their next step."""
        for relay in self._relays.values():
            relay.close_all()
