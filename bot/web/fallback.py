"""Video for browsers without Media Source Extensions: native HLS, else live pictures.

The page plays a camera with MSE (or ManagedMediaSource) over the WebSocket when it can. A
browser without either but with native HLS (iPhone Safari before 17.1, in-app web views)
gets the same fMP4 fragments as a live HLS stream:

- ``GET /live/api/cam/{camera}/hls/{hd|saver}/index.m3u8``: the live playlist (a sliding
  window of ~1 s segments, ``bot/media/hls.py``); 503 with ``Retry-After`` until the first
  segments are complete;
- ``GET /live/api/cam/{camera}/hls/{hd|saver}/init-{n}.mp4`` and ``…/seg-{n}.m4s``: what it
  lists (relative URIs: browsers' HLS players need a path ending in the file's extension).

A browser with neither gets live pictures: the WebSocket with ``?mode=pictures`` carries
``image/jpeg`` then one JPEG every 0.25 s, the viewer's name and the time burnt in
(``live_pictures.py``), exactly like a masked camera's stills.

The rules of the WebSocket hold. Every request checks the viewer's cookie (401 without,
410 once the session or the incident is over) and the camera (404 outside the scope; a
masked camera never has HLS: 404). Everything is in memory and answered ``no-store``; the
window holds a few seconds, never a history. One HLS stream per (session, camera, quality),
audited like a WebSocket stream (``stream_opened``/``stream_closed``, mode ``hls``); it
ends at the incident's end (revocation listener: its bytes are dropped at once, later
requests get 410), when its session dies, or after ``IDLE_S`` without a request (the page
closed the camera).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from ..access import Access
from ..kinds import Kind, Recorder
from ..locales import Msg, t
from ..media.hls import HlsWindow
from ..media.live_pictures import live_jpegs
from ..media.pictures import Pictures
from ..media.service import MediaService
from ..viewing import OpenStream, Watching, new_stream_id
from .live import COOKIE, PAGE_LANG
from .video import Quality

logger = logging.getLogger(__name__)

SEND_CHUNK = 64 * 1024
IDLE_S = 10.0          # no playlist request for this long: the page has let the camera go
_NO_STORE = {"Cache-Control": "no-store"}
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"

ViewerCheck = Callable[[web.Request], Any]


@dataclass(eq=False)
class HlsStream:
    """One viewer's HLS stream of one camera: a relay viewer feeding a window of segments."""

    key: str
    incident: str
    camera: str
    person: str
    quality: Quality
    client: str = ""
    stream_id: str = field(default_factory=new_stream_id)  # pairs its two registre records
    window: HlsWindow = field(default_factory=HlsWindow)
    last_request: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    reason: str = ""
    opened: float = field(default_factory=time.monotonic)
    sending: set[asyncio.Task[Any]] = field(default_factory=set)  # segments on their way


class HlsRoutes:
    def __init__(self, access: Access, media: MediaService, audit: Recorder, viewer: ViewerCheck,
                 watching: Watching) -> None:
        self._access = access
        self._watching = watching  # /statut and the closure report count HLS viewers too
        self._media = media
        self._audit = audit
        self._viewer = viewer
        self._streams: dict[str, HlsStream] = {}

    # --- routes ---

    async def playlist(self, request: web.Request) -> web.StreamResponse:
        stream = await self._stream(request)
        if isinstance(stream, web.StreamResponse):
            return stream
        text = stream.window.playlist()
        if text is None:
            return web.Response(status=503, text="", headers={**_NO_STORE, "Retry-After": "1"})
        return web.Response(body=text.encode(), content_type=PLAYLIST_TYPE, headers=_NO_STORE)

    async def part(self, request: web.Request) -> web.StreamResponse:
        stream = await self._stream(request, create=False)
        if isinstance(stream, web.StreamResponse):
            return stream
        name = request.match_info["name"]
        kind, _, rest = name.partition("-")
        number, _, ext = rest.partition(".")
        data: bytes | None = None
        if number.isdigit() and kind == "init" and ext == "mp4":
            data = stream.window.maps.get(int(number))
        elif number.isdigit() and kind == "seg" and ext == "m4s":
            seg = stream.window.segment(int(number))
            data = seg.data if seg is not None else None
        if data is None:
            return web.Response(status=404, text="", headers=_NO_STORE)
        return await self._send(request, stream, data, "video/mp4" if kind == "init" else "video/iso.segment")

    @staticmethod
    async def _send(request: web.Request, stream: HlsStream, data: bytes, content_type: str) -> web.StreamResponse:
        """In pieces, so that the end of access cuts a segment still on its way (the handler is
        cancelled: the connection closes mid-body, the player gets nothing more)."""
        response = web.StreamResponse(headers=_NO_STORE)
        response.content_type = content_type
        response.content_length = len(data)
        await response.prepare(request)
        task = asyncio.current_task()
        if task is not None:
            stream.sending.add(task)
        try:
            for at in range(0, len(data), SEND_CHUNK):
                await response.write(data[at:at + SEND_CHUNK])
        finally:
            if task is not None:
                stream.sending.discard(task)
        await response.write_eof()
        return response

    async def _stream(self, request: web.Request, *, create: bool = True) -> HlsStream | web.StreamResponse:
        found = self._viewer(request)
        if isinstance(found, web.StreamResponse):
            return found
        session, incident = found
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            # the SameSite cookie already keeps other sites out; a <video> of theirs is refused all the same
            return web.json_response({"message": t(PAGE_LANG, Msg.PAGE_ORIGIN_REFUSED)}, status=403)
        camera_id = request.match_info["camera"]
        if camera_id not in self._media.names or self._media.masked(camera_id):
            return web.json_response({"message": t(PAGE_LANG, Msg.PAGE_UNKNOWN_CAMERA)}, status=404)
        try:
            quality = Quality(request.match_info["quality"])
        except ValueError:
            return web.json_response({"message": t(PAGE_LANG, Msg.PAGE_BAD_QUALITY)}, status=400)
        cookie = hashlib.sha256(request.cookies[COOKIE].encode()).hexdigest()
        key = f"{cookie}:{camera_id}:{quality.value}"
        stream = self._streams.get(key)
        if stream is None:
            if not create:
                return web.Response(status=404, text="", headers=_NO_STORE)
            stream = HlsStream(key, incident.id, camera_id, session.person.id, quality, session.client)
            self._start(stream, request.cookies[COOKIE], incident.drill)
        stream.last_request = time.monotonic()
        return stream

    # --- one stream ---

    def _start(self, stream: HlsStream, cookie: str, drill: bool) -> None:
        self._streams[stream.key] = stream
        at = self._access.now()
        self._audit.append(Kind.STREAM_OPENED, incident=stream.incident, actor=stream.person,
                           details=self._details(stream), drill=drill, at=at)
        self._watching.opened(OpenStream(stream.stream_id, stream.incident, stream.person, stream.camera, at))
        logger.info("stream opened: %s watches %s (hls)", stream.person, stream.camera)
        stream.task = asyncio.create_task(self._run(stream, cookie, drill), name=f"hls:{stream.camera}")

    def _details(self, stream: HlsStream) -> dict[str, Any]:
        return {"camera": stream.camera, "person": stream.person, "mode": "hls", "stream": stream.stream_id,
                "client": stream.client}

    async def _run(self, stream: HlsStream, cookie: str, drill: bool) -> None:
        media = self._media
        on_sub = stream.quality is Quality.SAVER and media.sub_relay.has(stream.camera)
        viewer = (media.sub_relay if on_sub else media.relay).open_viewer(stream.camera)
        feeding = asyncio.create_task(self._feed(stream, viewer))
        try:
            while not feeding.done():
                await asyncio.wait({feeding}, timeout=media.options.session_check)
                found = self._access.viewer(cookie)
                if found is None or found[1].id != stream.incident:
                    stream.reason = stream.reason or "session_ended"
                elif time.monotonic() - stream.last_request > IDLE_S:
                    stream.reason = stream.reason or "client_closed"
                if stream.reason:
                    break
        except asyncio.CancelledError:
            stream.reason = stream.reason or "shutdown"
            raise
        finally:
            viewer.close()
            feeding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeding
            self._close(stream, drill)

    @staticmethod
    async def _feed(stream: HlsStream, viewer: Any) -> None:
        async for chunk in viewer:
            stream.window.feed(chunk)

    def _close(self, stream: HlsStream, drill: bool) -> None:
        stream.window.clear()
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
        duration = round(time.monotonic() - stream.opened, 1)
        reason = stream.reason or "camera_ended"
        self._watching.closed(stream.stream_id)
        self._audit.append(Kind.STREAM_CLOSED, incident=stream.incident, actor=stream.person,
                           details={**self._details(stream), "duration_s": duration, "reason": reason},
                           drill=drill, at=self._access.now())
        logger.info("stream closed: %s, %s after %.1f s (%s)", stream.person, stream.camera, duration, reason)

    # --- ending streams ---

    def open_streams(self) -> int:
        return len(self._streams)

    def on_revoked(self, incident_id: str) -> None:
        """Access revocation listener: the incident's HLS streams drop their bytes now."""
        for stream in list(self._streams.values()):
            if stream.incident == incident_id:
                stream.reason = "access_ended"
                stream.window.clear()
                del self._streams[stream.key]
                for task in [*stream.sending, *([stream.task] if stream.task else [])]:
                    task.cancel()

    async def on_shutdown(self, _: web.Application) -> None:
        tasks = [s.task for s in self._streams.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)


async def send_live_pictures(ws: web.WebSocketResponse, media: MediaService, pictures: Pictures,
                             camera_id: str, viewer: str) -> None:
    """The live-pictures feed of one WebSocket: its MIME type, then stamped JPEGs until the end."""
    await ws.send_str("image/jpeg")
    camera = media.substream(camera_id) or media.hub[camera_id]
    renderer = pictures.still_renderer

    def stamp(image: Image.Image) -> bytes:
        return renderer.stamp(image, viewer, pictures.now())

    async for jpeg in live_jpegs(camera, stamp):
        await ws.send_bytes(jpeg)


def add_fallback_routes(app: web.Application, access: Access, media: MediaService, audit: Recorder,
                        viewer: ViewerCheck, watching: Watching) -> HlsRoutes:
    routes = HlsRoutes(access, media, audit, viewer, watching)
    app.router.add_get("/live/api/cam/{camera}/hls/{quality}/index.m3u8", routes.playlist)
    app.router.add_get("/live/api/cam/{camera}/hls/{quality}/{name}", routes.part)
    access.add_revocation_listener(routes.on_revoked)
    app.on_shutdown.append(routes.on_shutdown)
    return routes
