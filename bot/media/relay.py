"""Live video without transcoding: one camera's H.264 access units fanned out as fMP4 to viewers.

Per camera, one `CameraRelay` attaches to the camera only while it has viewers (no viewer, no
work). The reader's thread (the ingest thread for every RTSP camera) finds each access unit's
NAL units (the one scan of the frame) and hands both to the event loop (``Inbox``), which takes
them every 20 ms, writes each into a fragment once for all viewers (a few struct packs, no PyAV;
already framed as the page's WebSocket message), writes it straight to the link of a viewer with
nothing ahead of it (``Viewer.offer``) and queues it for the others in the viewer's bounded
queue, which its task drains. A new viewer gets the init segment and the camera's cached GOP at
once (written into fragments for it from the camera's own cache: the relay keeps no second copy,
~1 MB per camera watched at 4 Mbit/s), then live fragments; a viewer too slow for its link is
dropped to the next keyframe, and a viewer set to `keyframes_only` gets nothing else (a picture
per GOP, what a link that cannot carry even the substream still holds). A slow viewer only ever
fills its own queue: the others are never held back. Closing a viewer ends its iterator
immediately.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from .cameras import Camera, CameraHub
from .fmp4 import FragmentWriter, Parts, mime_for
from .h264 import Sample, sample_of
from .keyframes import DropToKeyframeQueue
from .units import AccessUnit

logger = logging.getLogger(__name__)

# How often the event loop takes the watched cameras' frames (``Inbox``; why 20 ms: there)
RELAY_WINDOW = 0.02


_WS_SHORT = struct.Struct("!BB")
_WS_MEDIUM = struct.Struct("!BBH")
_WS_LONG = struct.Struct("!BBQ")


def ws_header(size: int) -> bytes:
    """The header of a WebSocket message of ``size`` bytes from the server: one unfragmented,
    unmasked binary frame (RFC 6455, 5.2), what aiohttp's ``send_bytes`` writes uncompressed."""
    if size < 126:
        return _WS_SHORT.pack(0x82, size)
    if size < 1 << 16:
        return _WS_MEDIUM.pack(0x82, 126, size)
    return _WS_LONG.pack(0x82, 127, size)


def _ws_header_size(message: int) -> int:
    """The header's length in a framed message of ``message`` bytes (the three sizes never overlap)."""
    return 2 if message - 2 < 126 else 4 if message - 4 < 1 << 16 else 10


class Segment:
    """One fragment (moof+mdat) and the init segment it must follow.

    Written once for all viewers, already framed as the WebSocket message the page receives, as
    the buffers to write in order (``parts``: the WebSocket header and the fragment's box headers
    in one buffer, then the frame's NAL units and their lengths, views into the frame, not
    copied; ``size``: the message's length). A link that takes it at once writes them as they
    are (``writelines``: one ``writev`` on uvloop), no copy per viewer nor per frame: joining
    them into one buffer (20 kB of a frame the reader thread read on the other core, in memory
    fresh from the allocator) took nearly as much of the event loop's time as the send itself
    (py-spy on the farm, 20 viewers on their own cameras: 2,016 samples against 2,633). A plain
    slotted class, not a frozen dataclass: one is made per frame of every watched camera, and
    the frozen ``__init__`` (an ``object.__setattr__`` per field) was another 5 % of the loop's
    samples."""

    __slots__ = ("init", "keyframe", "parts", "seq", "size")

    def __init__(self, parts: Parts, size: int, init: bytes, keyframe: bool, seq: int) -> None:
        self.parts = parts
        self.size = size
        self.init = init
        self.keyframe = keyframe
        self.seq = seq  # the access unit's, per camera

    def fragment(self) -> Parts:
        """The fragment alone, without the WebSocket header, as buffers."""
        return [memoryview(self.parts[0])[_ws_header_size(self.size):], *self.parts[1:]]

    @property
    def data(self) -> bytes:
        """The fragment alone, in one buffer."""
        return b"".join(self.fragment())


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
            size=lambda seg: seg.size,
            is_key=lambda seg: seg.keyframe,
        )
        self.mime: str | None = None
        self.keyframes_only = False
        # The consumer's way straight to its link, for a fragment that would otherwise wake it only
        # to be written at once: takes the framed message's buffers (``Segment.parts``), says
        # whether it went (``VideoFeed`` offers one).
        self.direct: Callable[[Parts], bool] | None = None
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
                and self.queue.idle and self.direct(seg.parts)):
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
                        yield Batch(None, _joined(segs[start:i]), waiting)
                    start = i
                    self._new_init(seg.init)
                    yield Batch(seg.init, b"", waiting)
            yield Batch(None, _joined(segs[start:]), waiting)
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


def _joined(segs: list[Segment]) -> bytes:
    """Fragments in one buffer, without their WebSocket headers."""
    return b"".join([part for seg in segs for part in seg.fragment()])


class Inbox:
    """Access units from the reader threads to the event loop, taken on the loop's own clock.

    A reader thread finds the unit's NAL units (``sample_of``: views into the frame, no copy; from
    the bounds the RTP reader already knows, else by a scan) and appends both to a deque (thread
    safe without a lock of ours, which a reader losing the GIL while holding it would make the loop
    wait for): no fragment written there, no wake-up of the loop. The scan is done there because
    the reader has just read the frame and it is still in its CPU's cache: on the loop, a moment
    later and often on the other core, the same scan cost nearly twice as much (``sre_search``
    samples under perf on the farm, 20 watched cameras: 76 on the loop, 41 in the readers). Waking
    the loop from the reader (``call_soon_threadsafe``: a write to its self-pipe) and writing the
    fragment there put a GIL hand-over between the reader, the loop and 40 other reader threads on
    every frame of every watched camera: measured on the farm, that contention, not the work, was
    most of what a viewer on its own camera cost (~0.3 % of a core each in the reader threads
    alone). Here, while a camera is watched, the loop takes what is pending every ``window`` (20
    ms: 50 wake-ups a second in all, whatever the number of cameras), writes the fragments and
    hands them to the viewers. A frame waits 10 ms on average, against a live lag of 75-95 ms. The
    window is a trade: on this machine (a VM) a wake-up of the loop costs 140 µs of CPU on uvloop,
    177 on asyncio's loop, 76 for a bare ``time.sleep`` (``schedstat``, 500 wake-ups every 20 ms: a
    bare uvloop ticking every 20 ms uses 0.7 % of a core). 30 ms instead of 20 saves a third of
    those wake-ups (~0.24 % of a core, 0.012 per viewer with 20) for 5 ms more of waiting per frame
    on average, but that saving is below what the benchmark resolves: on uvloop, ``bench_live``'s
    per-viewer figure read 0.132 at 30 ms against 0.152 at 20 in one soak (median of 3), and 0.164
    against 0.157 in two full runs (median of 5, repetitions spread over 0.14-0.24), while the
    lag's median read 91 ms at 30 ms and 75 at 20: 20 ms (``RELAY_WINDOW``). What the loop does
    with 20 viewers, each on its own camera (py-spy ``--native``, busy samples): the ``writev`` to
    the sockets 38 % (the kernel's copy and loopback's TCP, both ends), the rest of the relay's
    path 25 %, the page's state polls and the session checks 10 %. The sends stay on the loop:
    written and sent from the reader thread instead (tried on the farm, 20 viewers each on its own
    camera, paired 0/20 levels) the loop's share per viewer fell from 0.175 to 0.024 % of a core
    but the ingest thread's rose from 0.03 to 0.22: the cost follows the sends (~20 µs each in the
    kernel on loopback, and the Python around them), not the loop's wake-ups. Per camera the order
    is kept (one reader thread, one deque). Since the RTSP cameras moved to one ingest thread
    (``ingest.py``), "the readers" are that thread and, in the demo, the synthetic cameras'
    threads; the figures above are from the 40 PyAV threads before it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, window: float = RELAY_WINDOW) -> None:
        self.loop = loop
        self.window = window
        self._pending: deque[tuple[Callable[[AccessUnit, Sample], None], AccessUnit, Sample]] = deque()
        self._users = 0  # relays attached: the loop takes while there is one
        self._timer: asyncio.TimerHandle | None = None

    def post(self, take: Callable[[AccessUnit, Sample], None], au: AccessUnit) -> bool:
        """Reader thread: ``take(au, its NAL units)`` will run on the loop. False once the loop
        is closed (the app is shutting down): nothing would take it."""
        if self.loop.is_closed():
            return False
        self._pending.append((take, au, sample_of(au.data, au.nals)))
        return True

    def join(self) -> None:
        """A relay attached (event loop)."""
        self._users += 1
        if self._timer is None:
            self._timer = self.loop.call_later(self.window, self._drain)

    def leave(self) -> None:
        """A relay detached (event loop)."""
        self._users -= 1
        if not self._users and self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._pending.clear()  # only left-overs of detached relays

    def _drain(self) -> None:
        pending = self._pending
        for _ in range(len(pending)):  # what is there now; what comes meanwhile waits for the next tick
            take, au, sample = pending.popleft()
            take(au, sample)
        self._timer = self.loop.call_later(self.window, self._drain)


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
        self._writer = FragmentWriter(ws_header)  # event loop only
        self._generation = 0
        self._listener: Callable[[AccessUnit], None] | None = None
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
        writer = FragmentWriter(ws_header)
        current = self._writer.init
        for au in gop:
            init, parts, size = writer.write_parts(au)
            # the relay's init object when it is the same: the viewer sends it only once
            viewer.queue.put(Segment(parts, size, current if init == current else init, au.keyframe, au.seq))
        return viewer

    def close_all(self) -> None:
        """End every viewer's stream (incident ended, access revoked)."""
        for viewer in list(self._viewers):
            viewer.close()

    def _attach(self) -> None:
        inbox = self._inbox = self._inbox_of()
        self._generation += 1
        self._attached = True
        self._dispatched = 0
        # what the reader posts is taken for this attachment only: a unit the reader had in hand
        # when the camera was left never reaches a later one
        take = functools.partial(self._take, self._generation)

        def listener(au: AccessUnit) -> None:  # reader thread: nothing but a hand-over (see Inbox)
            if not inbox.post(take, au):  # loop closed: the app is shutting down
                self.camera.detach(listener)

        self._listener = listener
        # the camera's GOP and, from the same instant (under the camera's lock), its live units:
        # the order stays GOP then live, nothing missed or doubled
        snapshot = self.camera.attach(listener)
        inbox.join()
        for au in snapshot:
            take(au, sample_of(au.data, au.nals))

    def _remove(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)
        if not self._viewers and self._attached and self._listener is not None:
            self.camera.detach(self._listener)
            self._attached = False
            if self._inbox is not None:
                self._inbox.leave()

    def _take(self, generation: int, au: AccessUnit, sample: Sample) -> None:
        # event loop: the fragment written once for every viewer
        if not self._attached or generation != self._generation:
            return  # left over from an earlier attachment
        init, parts, size = self._writer.write_parts(au, sample)
        self._dispatch(Segment(parts, size, init, au.keyframe, au.seq))

    def _dispatch(self, seg: Segment) -> None:
        # event loop: the only place the viewers' queues change
        self._dispatched = seg.seq
        for viewer in self._viewers:
            if seg.keyframe or not viewer.keyframes_only:
                viewer.offer(seg)


class Relay:
    """The relays of all cameras of a hub."""

    def __init__(self, hub: CameraHub, *, window: float = RELAY_WINDOW, **options: int) -> None:
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
