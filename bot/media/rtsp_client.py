"""Camera reader on an event loop: RTSP over TCP with interleaved RTP, no thread per camera.

``LoopRtspSource`` opens a session (OPTIONS, DESCRIBE with Basic or Digest authentication,
SETUP of the H.264 track on the RTSP connection, PLAY), then every RTP packet that arrives is
put back into access units (``rtp_h264``) and handed to the camera's sink at once, in the
thread of the loop that reads (``ingest.IngestLoop``: one thread for all cameras).

Why not PyAV here: with one demux thread per stream, 40 streams cost 17-26 % of a core and
each viewer ~0.3 % more, most of it the threads waking each other for the GIL. One loop
reading all of them costs a quarter of that (``bench/media/bench_ingest.py``).

Faults end the session with an exception, which the camera's watchdog turns into a
reconnection: the open timeout bounds the connection and the handshake, the read timeout
bounds the silence between RTP packets (a hung camera whose server still sends RTCP reports
is seen as hung), and the server's session timeout is kept alive with GET_PARAMETER (or
OPTIONS when the server does not list it). Credentials are sent only as authentication
headers, never in a request line, and never reach a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from fractions import Fraction
from typing import Any, cast

from .rtp_h264 import H264Depacketizer
from .rtsp import redact_url
from .rtsp_wire import (
    Credentials,
    Reply,
    RtspError,
    VideoTrack,
    request,
    session_id,
    split_reply,
    target,
    video_track,
)
from .units import CLOCK_RATE, CodecParams, RawUnit

logger = logging.getLogger(__name__)

Sink = Callable[[RawUnit], None]
_MAX_HEADERS = 64 * 1024  # an RTSP message whose headers do not end within this is junk
_PENDING = 300  # units kept between PLAY and the camera taking them (a GOP at most)


class _Wire(asyncio.Protocol):
    """The connection: RTSP replies to futures, interleaved RTP on channel 0 to the depacketizer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.replies: asyncio.Queue[Reply] = asyncio.Queue()
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.depacketizer: H264Depacketizer | None = None
        self.sink: Sink | None = None
        self.pending: list[RawUnit] = []
        self.rtp_seen = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a TCP connection's (uvloop's transports do not subclass asyncio's: no isinstance here)
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc or ConnectionError("the camera closed the connection"))

    def _end(self, exc: BaseException) -> None:
        if not self.ended.done():
            self.ended.set_exception(exc)
            self.ended.exception()  # retrieved: whoever awaits it sees it, nobody else logs it
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        i, n = 0, len(buf)
        try:
            while i < n:
                if buf[i] == 0x24:  # '$': an interleaved frame
                    if n - i < 4:
                        break
                    size = (buf[i + 2] << 8) | buf[i + 3]
                    if n - i < 4 + size:
                        break
                    if buf[i + 1] == 0 and self.depacketizer is not None:
                        with memoryview(buf) as view:
                            self._rtp(view[i + 4:i + 4 + size])
                    i += 4 + size  # channel 1 is RTCP: the server's reports, nothing we need
                    continue
                found = split_reply(buf[i:i + _MAX_HEADERS + 65536]) if buf.startswith(b"RTSP/", i) else None
                if found is not None:
                    self.replies.put_nowait(found[0])
                    i += found[1]
                    continue
                line_end = buf.find(b"\r\n", i, i + 512)
                if line_end >= 0 and not buf.startswith(b"RTSP/", i) and not buf.endswith(b" RTSP/1.0", i, line_end):
                    # neither a reply, nor a request from the server, nor a packet
                    raise RtspError(f"not an RTSP reply: {bytes(buf[i:line_end])[:60]!r}")
                end = buf.find(b"\r\n\r\n", i)
                if buf.startswith(b"RTSP/", i) or end < 0:
                    if n - i > _MAX_HEADERS:
                        raise RtspError("junk on the RTSP connection")
                    break  # a reply (or a server's request) not complete yet
                i = end + 4  # a request from the server (ANNOUNCE, a keep-alive): nothing to do
        except (RtspError, ValueError) as exc:
            self._end(exc if isinstance(exc, RtspError) else RtspError(str(exc)))
            return
        finally:
            del buf[:i]

    def _rtp(self, packet: memoryview) -> None:
        assert self.depacketizer is not None  # noqa: S101 - checked by the caller
        self.rtp_seen = True
        unit = self.depacketizer.feed(packet)
        if unit is None:
            return
        raw = RawUnit(unit.data, unit.timestamp, None, unit.keyframe, unit.nals)
        if self.sink is not None:
            self.sink(raw)
        elif len(self.pending) < _PENDING:
            self.pending.append(raw)


class LoopRtspSession:
    """One playing RTSP session. ``run`` feeds the sink until the stream fails or ends."""

    def __init__(self, wire: _Wire, source: LoopRtspSource, track: VideoTrack, session: str,
                 keepalive: float, keepalive_method: str, auth: Credentials | None) -> None:
        self._wire = wire
        self._source = source
        self._track = track
        self._session = session
        self._keepalive = keepalive
        self._method = keepalive_method
        self._auth = auth
        self.time_base = Fraction(1, track.clock_rate)
        fps = track.fps if track.fps and 1 <= track.fps <= 120 else 25.0
        self.params = CodecParams(track.extradata, track.width, track.height, frame_duration=round(CLOCK_RATE / fps))
        self._cseq = 100

    async def run(self, sink: Sink) -> None:
        wire, loop = self._wire, asyncio.get_running_loop()
        for raw in wire.pending:
            sink(raw)
        wire.pending.clear()
        wire.sink = sink
        read_timeout = self._source.read_timeout
        last_rtp, next_keepalive = loop.time(), loop.time() + self._keepalive
        tick = min(0.5, read_timeout / 4)
        while True:
            # one wake-up per tick per camera: the read timeout and the keep-alive, no timer per packet
            done, _ = await asyncio.wait([wire.ended], timeout=tick)
            if done:
                wire.ended.result()  # raises what ended the session
            now = loop.time()
            if wire.rtp_seen:
                wire.rtp_seen, last_rtp = False, now
            elif now - last_rtp > read_timeout:
                raise TimeoutError(f"no video for {read_timeout:g} s")
            if now >= next_keepalive:
                next_keepalive = now + self._keepalive
                self._send(self._method, self._source.target.url)
            while not wire.replies.empty():
                reply = wire.replies.get_nowait()  # keep-alive answers: only a refusal matters
                if reply.status in (454, 401):
                    raise RtspError(f"the camera ended the session ({reply.status} {reply.reason})")

    def _send(self, method: str, url: str) -> None:
        self._cseq += 1
        headers = {"Session": self._session}
        if self._auth is not None and (value := self._auth.header(method, url)):
            headers["Authorization"] = value
        if self._wire.transport is not None and not self._wire.transport.is_closing():
            self._wire.transport.write(request(method, url, self._cseq, headers))

    def close(self) -> None:
        transport = self._wire.transport
        if transport is not None and not transport.is_closing():
            self._send("TEARDOWN", self._source.target.url)  # the camera frees its session now
            transport.close()
        self._wire.sink = None


class LoopRtspSource:
    """An RTSP camera read on an event loop (see the module's docstring)."""

    def __init__(self, url: str, *, open_timeout: float = 5.0, read_timeout: float = 5.0) -> None:
        self.url = url
        self.target = target(url)
        self.open_timeout = open_timeout
        self.read_timeout = read_timeout

    def describe(self) -> str:
        return redact_url(self.url)

    async def connect(self) -> LoopRtspSession:
        """A playing session, within the open timeout; raises on refusal, timeout, junk."""
        t = self.target
        try:
            _, wire = await asyncio.wait_for(
                asyncio.get_running_loop().create_connection(_Wire, t.host, t.port), self.open_timeout)
        except TimeoutError:
            raise TimeoutError(f"no connection within {self.open_timeout:g} s") from None
        try:
            async with asyncio.timeout(self.open_timeout):
                return await self._handshake(wire)
        except BaseException as exc:
            if wire.transport is not None:
                wire.transport.abort()
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"no answer within {self.open_timeout:g} s") from None
            raise


    async def _handshake(self, wire: _Wire) -> LoopRtspSession:
        t = self.target
        auth = Credentials(t.username, t.password or "") if t.username is not None else None
        cseq = 0

        async def ask(method: str, url: str, headers: dict[str, str]) -> Reply:
            nonlocal cseq
            for _ in range(2):  # the second time with the credentials the 401 asked for
                cseq += 1
                sent = dict(headers)
                if auth is not None and (value := auth.header(method, url)):
                    sent["Authorization"] = value
                assert wire.transport is not None  # noqa: S101 - set by create_connection
                wire.transport.write(request(method, url, cseq, sent))
                reply = await _reply(wire)
                if reply.status == 401 and auth is not None and not auth.scheme and auth.accept(reply.challenges):
                    continue
                if reply.status == 401:
                    raise RtspError("authentication refused" if auth is not None else "the camera needs credentials")
                if reply.status >= 300:
                    raise RtspError(f"{method}: {reply.status} {reply.reason}")
                return reply
            raise RtspError("authentication refused")

        options = await ask("OPTIONS", t.url, {})
        public = (options.header("public") or "").upper()
        described = await ask("DESCRIBE", t.url, {"Accept": "application/sdp"})
        base = described.header("content-base") or described.header("content-location") or t.url
        track = video_track(described.body, base)
        wire.depacketizer = H264Depacketizer(track.payload_type)
        setup = await ask("SETUP", track.control, {"Transport": "RTP/AVP/TCP;unicast;interleaved=0-1"})
        transport = setup.header("transport") or ""
        if "interleaved=0" not in transport.replace(" ", ""):
            raise RtspError("the camera refused RTP over the RTSP connection")
        ident, timeout = session_id(setup.header("session") or "")
        if not ident:
            raise RtspError("SETUP without a session")
        await ask("PLAY", _play_url(base, t.url), {"Session": ident, "Range": "npt=0.000-"})
        keepalive = max(2.0, timeout / 2)
        method = "GET_PARAMETER" if "GET_PARAMETER" in public else "OPTIONS"
        session = LoopRtspSession(wire, self, track, ident, keepalive, method, auth)
        session._cseq = cseq  # noqa: SLF001 - the handshake's numbering goes on
        return session


def _play_url(base: str, url: str) -> str:
    # aggregate control: PLAY the presentation (the Content-Base), as VLC and FFmpeg do
    return base.rstrip("/") if base else url


async def _reply(wire: _Wire) -> Reply:
    getter: asyncio.Future[Reply] = asyncio.ensure_future(wire.replies.get())
    try:
        waiters: list[asyncio.Future[Any]] = [getter, wire.ended]
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        wire.ended.result()
        raise RtspError("connection ended")
    finally:
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
