"""Camera sources: what a camera reads from (a blocking PyAV session, or one on the ingest loop).

A ``CameraSource`` opens ``SourceSession``s that yield raw units; ``Camera`` (``cameras.py``)
keeps one open in a reader thread. A ``LoopCameraSource`` (``rtsp_client.py``, every rtsp://
camera) is read on the shared ingest loop instead. ``RtspSource`` stays for URLs other than
rtsp:// that FFmpeg reads, and as the floor the benches compare with. Credentials in a camera
URL never reach a log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import av

from .h264 import lengths_to_annexb, normalize_extradata
from .units import CLOCK_RATE, CodecParams, RawUnit

logger = logging.getLogger(__name__)


@runtime_checkable
class SourceSession(Protocol):
    """One connection to a camera. Iterating blocks; it ends on EOF and raises on errors."""

    params: CodecParams
    time_base: Fraction

    def __iter__(self) -> Iterator[RawUnit]: ...

    def close(self) -> None: ...


@runtime_checkable
class CameraSource(Protocol):
    """Where a camera's access units come from. `open` blocks (at most its open timeout)."""

    def describe(self) -> str: ...

    def open(self, stop: threading.Event) -> SourceSession: ...


class LoopSession(Protocol):
    """One connection read on the ingest loop: ``run`` hands every unit to the sink as it
    arrives and returns or raises when the stream ends; ``close`` never blocks."""

    params: CodecParams
    time_base: Fraction

    async def run(self, sink: Callable[[RawUnit], None]) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class LoopCameraSource(Protocol):
    """A source read on the ingest loop (``rtsp_client.LoopRtspSource``)."""

    def describe(self) -> str: ...

    async def connect(self) -> LoopSession: ...


def redact_url(url: str) -> str:
    """The URL without credentials, for logs and status."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class RtspSource:
    """RTSP (or any FFmpeg URL) reader with PyAV: demux only, never decode."""

    def __init__(
        self,
        url: str,
        *,
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
        transport: str = "tcp",
        options: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout
        self.options = {
            "rtsp_transport": transport,
            # The SDP already tells the codec: probing only delays the first frame. Measured
            # on the farm: probesize 32768 waits for 32 kB and fps probing for 20 frames
            # (0.36-0.74 s); 4096 and fpsprobesize 0 open in 0.08 s. No fflags=nobuffer: it
            # discards the packets read while probing, i.e. the camera's first IDR, and the
            # first picture then waits a whole GOP (2.1 s instead of 0.08 s).
            "probesize": "4096",
            "fpsprobesize": "0",
            "analyzeduration": "0",
            # libav's own socket timeout (microseconds) bounds the connection, the RTSP
            # handshake and every read: the longer of the two, since it is one setting.
            # PyAV's timeout=(open, read) is not used: it installs an interrupt callback that
            # takes the GIL each time libav polls its socket (several times a packet). With 40
            # streams that was a GIL hand-over per poll and most of the ingest's CPU (context
            # switches and futex waits in perf), and every other thread waited on it.
            "timeout": str(int(max(open_timeout, read_timeout) * 1_000_000)),
            **(options or {}),
        }

    def describe(self) -> str:
        return redact_url(self.url)

    def open(self, stop: threading.Event) -> RtspSession:
        container = av.open(self.url, options=self.options)
        try:
            if not container.streams.video:
                raise ConnectionError(f"{self.describe()}: no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            if ctx.name != "h264":
                raise ConnectionError(f"{self.describe()}: codec {ctx.name} is not H.264")
            extradata, length_size = normalize_extradata(ctx.extradata)
            rate = stream.average_rate or stream.guessed_rate
            frame_duration = int(CLOCK_RATE / rate) if rate else CLOCK_RATE // 25
            params = CodecParams(extradata, ctx.width or 0, ctx.height or 0, frame_duration=frame_duration)
            time_base = stream.time_base or Fraction(1, CLOCK_RATE)
            return RtspSession(container, stream, params, time_base, length_size, stop)
        except BaseException:
            container.close()
            raise


class RtspSession:
    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        params: CodecParams,
        time_base: Fraction,
        length_size: int | None,
        stop: threading.Event,
    ) -> None:
        self._container = container
        self._stream = stream
        self._length_size = length_size
        self._stop = stop
        self.params = params
        self.time_base = time_base

    def __iter__(self) -> Iterator[RawUnit]:
        for packet in self._container.demux(self._stream):
            if self._stop.is_set():
                return
            if packet.size == 0:  # demuxer flush marker at EOF
                continue
            data = bytes(packet)
            if self._length_size is not None:
                data = lengths_to_annexb(data, self._length_size)
            yield RawUnit(data, packet.pts, packet.dts, packet.is_keyframe)
        raise ConnectionError("stream ended")

    def close(self) -> None:
        self._container.close()
