"""Live HLS in memory: the relay's fMP4 fragments grouped into short segments, and their playlist.

For browsers without Media Source Extensions that play HLS natively (iPhone Safari before
17.1, some in-app web views). The same fragments the WebSocket carries (one moof+mdat per
frame, ``fmp4.py``) are concatenated into segments cut at the first keyframe after ``target`` seconds (a camera
with a GOP over ``MAX_SEGMENT_S`` gets cut mid-GOP: the segment is then not independent,
which HLS allows). Only the last ``window``
segments are kept: a live sliding window, no history to download, nothing on disk. A change
of codec parameters (a new init segment) starts a new map after a discontinuity.

Pure bookkeeping: no I/O, no clock; the web layer feeds it and serves what it holds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .units import CLOCK_RATE

TARGET_S = 1.0   # a segment's usual length: cut at the first keyframe past it
# Cut mid-GOP only past this: segments that do not start on a keyframe break Chromium's native
# HLS (measured with 0.5 s segments on a 2 s GOP camera); Safari takes them
MAX_SEGMENT_S = 6.0
WINDOW = 6       # segments listed (and kept) at any time
MAX_SEGMENT_BYTES = 4 * 1024 * 1024  # a segment is cut past this whatever its length (memory bound)
# Players start a few segments behind the live edge: a playlist of one segment is refused by
# Chromium's native HLS ("could not parse"), so the first playlist waits for this many.
MIN_SEGMENTS = 3


def decode_time(fragment: bytes) -> int | None:
    """The tfdt of one of our fragments (moof > traf > tfdt), in 90 kHz ticks."""
    at = fragment.find(b"tfdt", 0, 200)
    if at < 4:
        return None
    version = fragment[at + 4]
    if version == 1:
        return int(struct.unpack_from(">Q", fragment, at + 8)[0])
    return int(struct.unpack_from(">I", fragment, at + 8)[0])


@dataclass
class HlsSegment:
    sequence: int
    map_id: int
    start: int              # decode time of its first frame (90 kHz)
    keyframe: bool          # starts on a keyframe
    discontinuity: bool
    parts: list[bytes] = field(default_factory=list)
    duration: float = 0.0   # set when the segment is complete

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


class HlsWindow:
    """The segments of one live stream: feed it the relay's byte chunks, read playlist and segments."""

    def __init__(self, target: float = TARGET_S, window: int = WINDOW) -> None:
        self.target = target
        self.window = window
        self.maps: dict[int, bytes] = {}
        self.segments: list[HlsSegment] = []   # complete ones, oldest first
        self._current: HlsSegment | None = None
        self._map_id = 0
        self._pending_init: bytes | None = None
        self._sequence = 0
        self._last_time: int | None = None
        self._discontinuities_dropped = 0

    def feed(self, chunk: bytes) -> None:
        """One chunk as a relay viewer yields them: an init segment or a fragment."""
        if chunk[4:8] == b"ftyp":
            if not self.maps or self.maps.get(self._map_id) != chunk:
                self._pending_init = chunk
            return
        start = decode_time(chunk)
        if start is None:
            return
        keyframe = _is_keyframe(chunk)
        current = self._current
        if self._pending_init is not None:
            if current is None and not keyframe:
                return  # a new stream starts on a keyframe
            self._close(start)
            self._map_id += 1
            self.maps = {k: v for k, v in self.maps.items() if any(s.map_id == k for s in self.segments)}
            self.maps[self._map_id] = self._pending_init
            self._pending_init = None
            self._open(start, keyframe, discontinuity=self._sequence > 0)
        elif current is None:
            if not keyframe:
                return
            self._open(start, keyframe, discontinuity=False)
        else:
            elapsed = (start - current.start) / CLOCK_RATE
            full = sum(map(len, current.parts)) + len(chunk) > MAX_SEGMENT_BYTES
            if (keyframe and elapsed >= self.target) or elapsed >= MAX_SEGMENT_S or full or start < current.start:
                self._close(start)
                self._open(start, keyframe, discontinuity=start < current.start)
        assert self._current is not None  # noqa: S101 - opened above
        self._current.parts.append(chunk)
        self._last_time = start

    def _open(self, start: int, keyframe: bool, *, discontinuity: bool) -> None:
        self._sequence += 1
        self._current = HlsSegment(self._sequence, self._map_id, start, keyframe, discontinuity)

    def _close(self, next_start: int) -> None:
        seg = self._current
        self._current = None
        if seg is None or not seg.parts:
            return
        end = next_start if next_start > seg.start else (self._last_time or seg.start) + CLOCK_RATE // 25
        seg.duration = max(0.001, (end - seg.start) / CLOCK_RATE)
        self.segments.append(seg)
        while len(self.segments) > self.window:
            self._discontinuities_dropped += self.segments.pop(0).discontinuity

    def segment(self, sequence: int) -> HlsSegment | None:
        return next((s for s in self.segments if s.sequence == sequence), None)

    def playlist(self, *, init_uri: str = "init-{}.mp4", segment_uri: str = "seg-{}.m4s") -> str | None:
        """The live media playlist, or None until ``MIN_SEGMENTS`` are complete."""
        if len(self.segments) < MIN_SEGMENTS:
            return None
        target = max(1, round(max(s.duration for s in self.segments) + 0.499))
        lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}",
                 f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].sequence}"]
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{self._discontinuities_dropped}")
        map_id = None
        for seg in self.segments:
            if seg.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            if seg.map_id != map_id:
                map_id = seg.map_id
                lines.append(f'#EXT-X-MAP:URI="{init_uri.format(map_id)}"')
            lines.append(f"#EXTINF:{seg.duration:.3f},")
            lines.append(segment_uri.format(seg.sequence))
        return "\n".join(lines) + "\n"

    def clear(self) -> None:
        """Drop every byte held (the stream ended)."""
        self.segments.clear()
        self.maps.clear()
        self._current = None
        self._pending_init = None


def _is_keyframe(fragment: bytes) -> bool:
    """Our trun carries the sample's flags: sample_is_non_sync_sample (0x10000) unset on a keyframe."""
    at = fragment.find(b"trun", 0, 200)
    if at < 4:
        return False
    flags = int.from_bytes(fragment[at + 5:at + 8], "big")
    pos = at + 8 + 4 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
    pos += 4 if flags & 0x100 else 0
    pos += 4 if flags & 0x200 else 0
    if not flags & 0x400:
        return False
    sample_flags = int(struct.unpack_from(">I", fragment, pos)[0])
    return not sample_flags & 0x10000
