"""The live page's media routes: the mosaic, the cameras' layout, and one camera live.

- ``GET /live/api/media``: the mosaic's layout and the cameras in scope (name, online, masked);
- ``GET /live/api/mosaic.jpg``: the live mosaic with the viewer's name and the time burnt in;
- ``GET /live/api/cam/{camera}/ws[?quality=hd|saver]``: a WebSocket carrying one camera: a
  JSON text message saying the quality served, a text message with the MIME type, then
  binary messages (the fMP4 init segment, then one fragment per frame; a new text message
  precedes a new init segment). The quality follows the viewer's link (``video.py``).
  With ``&mode=pictures`` (browsers with neither MSE nor native HLS): live JPEGs instead,
  and ``…/hls/…`` serves the same video as native HLS (``fallback.py``).

Every request checks the viewer's session again; the open streams' sessions are checked
again every ``session_check`` seconds, all in one pass (``check_sessions``: a session that
died elsewhere, such as ``passkeys_cli revoke`` from another process), and every stream of an
incident is also closed at once by the access revocation listener, so streams end within 2 s
of the incident's end or the session's death (close code 4001).

A camera with privacy masks never sends video: the relay remuxes the camera's H.264 without
transcoding, so the masked area would reach the browser. Its "live" view is the masked
picture of its latest keyframe, as a JPEG every ``still_every`` seconds, over the same
WebSocket (MIME ``image/jpeg``), with the same session checks and audit.

Every stream is audited: ``stream_opened`` and ``stream_closed`` (camera, person, duration, and
the stream's id that pairs the two, for the closure report's timeline), and ``Watching`` knows
what each viewer has open now (streams, the mosaic's last picture) for ``/statut``.
Cameras outside the convention's scope do not exist here: 404, like any unknown camera.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aiohttp import WSCloseCode, web
from apscheduler.schedulers.base import BaseScheduler

from ..access import Access, ViewerSession
from ..kinds import Kind, Recorder
from ..locales import Msg, t
from ..media.pictures import Pictures
from ..media.room_tiles import RoomTiles, TileDesk
from ..media.service import MediaService
from ..policy.convention import Convention
from ..policy.incident import Incident
from ..settings import Settings
from ..viewing import OpenStream, Watching, new_stream_id
from .fallback import add_fallback_routes, send_live_pictures
from .live import COOKIE, PAGE_LANG
from .video import Quality, VideoChoice, VideoFeed, read_choices

logger = logging.getLogger(__name__)

ACCESS_ENDED = 4001  # WebSocket close code the page reads as "accès terminé"
_NO_STORE = {"Cache-Control": "no-store"}


@dataclass(eq=False)
class LiveStream:
    """One open camera stream of one viewer."""

    incident: str
    camera: str
    person: str
    mode: str
    choice: VideoChoice = field(default_factory=lambda: VideoChoice(Quality.HD))
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str = ""
    control_attempts: int = 0  # messages that tried to steer the camera over the video socket
    stream_id: str = field(default_factory=new_stream_id)  # pairs its two registre records
    cookie: str = field(default="", repr=False)  # the viewer's session, checked again while it lasts

    def end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.reason = reason
            self.ended.set()


class MediaRoutes:
    def __init__(self, access: Access, media: MediaService, pictures: Pictures, audit: Recorder,
                 public_url: str, watching: Watching | None = None) -> None:
        self._access = access
        self._media = media
        self._pictures = pictures
        self._audit = audit
        self._origins = {urlsplit(public_url).netloc.lower()}
        self._streams: dict[str, set[LiveStream]] = {}
        self._handlers: set[asyncio.Task[Any]] = set()
        self._checker: asyncio.Task[None] | None = None  # checks every open stream's session, while any is open
        self.watching = watching or Watching()  # who watches what now, for /statut

    # --- sessions ---

    def _viewer(self, request: web.Request) -> tuple[ViewerSession, Incident] | web.Response:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return web.json_response({"active": False, "message": t(PAGE_LANG, Msg.PAGE_SIGN_IN)}, status=401)
        found = self._access.viewer(cookie)
        if found is None:
            return web.json_response({"active": False, "message": t(PAGE_LANG, Msg.PAGE_ENDED)}, status=410)
        return found

    def viewer(self, request: web.Request) -> tuple[ViewerSession, Incident] | web.Response:
        """The request's viewer session, or the answer refusing it (for the fallback's routes)."""
        return self._viewer(request)

    def _same_origin(self, request: web.Request) -> bool:
        """A WebSocket is not bound by CORS: refuse a page of another site (defence in depth
        beside the SameSite=Strict cookie). The proxy may rewrite Host, so the public URL counts."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True  # not a browser
        host = urlsplit(origin).netloc.lower()
        return host == request.host.lower() or host in self._origins

    # --- routes ---

    async def layout(self, request: web.Request) -> web.StreamResponse:
        found = self._viewer(request)
        if isinstance(found, web.Response):
            return found
        zones = self._access.convention.zones
        layout = self._pictures.layout(zones.cameras(found[1].focus))
        online = {s.camera_id: s.online for s in self._media.statuses()}
        return web.json_response({
            "mosaic": {"url": "/live/api/mosaic.jpg", "columns": layout.columns, "rows": layout.rows,
                       "top": round(layout.top, 5), "refresh_ms": self._media.options.page_refresh_ms,
                       "label_px": self._pictures.renderer.label_px},
            "focus": {"zone": found[1].focus.zone, "label": zones.label(found[1].focus)},
            "cameras": [{"id": cid, "name": self._media.names[cid], "online": online.get(cid, False),
                         "masked": self._media.masked(cid), "in_zone": i < layout.zone,
                         "substream": self._media.substream(cid) is not None} for i, cid in enumerate(layout.cameras)],
        }, headers=_NO_STORE)

    async def mosaic(self, request: web.Request) -> web.StreamResponse:
        found = self._viewer(request)
        if isinstance(found, web.Response):
            return found
        session, incident = found
        try:
            first = self._access.convention.zones.cameras(incident.focus)
            jpeg = await self._pictures.page_mosaic(incident.drill, session.person.name, first)
        except TimeoutError:
            logger.warning("page mosaic took longer than %.0f s", self._media.options.render_timeout)
            return web.json_response({"message": t(PAGE_LANG, Msg.PAGE_MOSAIC_UNAVAILABLE)}, status=503)
        if self._access.viewer(request.cookies.get(COOKIE)) is None:  # ended while it was drawn
            return web.json_response({"active": False, "message": t(PAGE_LANG, Msg.PAGE_ENDED)}, status=410)
        self.watching.mosaic_seen(incident.id, session.person.id, self._access.now())
        # the zone drawn first: a page whose cell map is older asks for the new layout at once
        layout = self._pictures.layout(first)
        zone = ",".join(layout.cameras[: layout.zone])
        return web.Response(body=jpeg, content_type="image/jpeg", headers={**_NO_STORE, "X-Vigie-Zone": zone})

    async def camera(self, request: web.Request) -> web.StreamResponse:
        found = self._viewer(request)
        if isinstance(found, web.Response):
            return found
        session, incident = found
        camera_id = request.match_info["camera"]
        if camera_id not in self._media.names:
            return web.json_response({"message": t(PAGE_LANG, Msg.PAGE_UNKNOWN_CAMERA)}, status=404)
        if not self._same_origin(request):
            return web.json_response({"message": t(PAGE_LANG, Msg.PAGE_ORIGIN_REFUSED)}, status=403)
        try:
            quality = Quality(request.query.get("quality", Quality.HD.value))
        except ValueError:
            return web.json_response({"message": t(PAGE_LANG, Msg.PAGE_BAD_QUALITY)}, status=400)
        ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=4096, compress=False, timeout=1.0)
        await ws.prepare(request)
        mode = "masked_stills" if self._media.masked(camera_id) else (
            "pictures" if request.query.get("mode") == "pictures" else "video")
        stream = LiveStream(incident.id, camera_id, session.person.id, mode, VideoChoice(quality),
                            cookie=request.cookies[COOKIE])
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._serve(ws, stream, session, incident, request.transport)
        finally:
            if task is not None:
                self._handlers.discard(task)
        return ws

    # --- one stream ---

    async def _serve(self, ws: web.WebSocketResponse, stream: LiveStream, session: ViewerSession,
                     incident: Incident, transport: asyncio.BaseTransport | None) -> None:
        self._streams.setdefault(stream.incident, set()).add(stream)
        if self._checker is None or self._checker.done():
            self._checker = asyncio.create_task(self._check_while_open(), name="streams:sessions")
        opened = time.monotonic()
        details = {"camera": stream.camera, "person": stream.person, "mode": stream.mode,
                   "stream": stream.stream_id, "client": session.client}
        at = self._access.now()
        self._audit.append(Kind.STREAM_OPENED, incident=incident.id, actor=stream.person, details=details,
                           drill=incident.drill, at=at)
        self.watching.opened(OpenStream(stream.stream_id, incident.id, stream.person, stream.camera, at))
        logger.info("stream opened: %s watches %s (%s)", stream.person, stream.camera, stream.mode)
        media = self._media
        feed = (self._stills(ws, stream.camera, incident.drill, session.person.name) if stream.mode == "masked_stills"
                else send_live_pictures(ws, media, self._pictures, stream.camera, session.person.name)
                if stream.mode == "pictures"
                else VideoFeed(ws, stream.camera, media.relay, media.sub_relay, stream.choice, transport).run())
        jobs: dict[str, Coroutine[Any, Any, None]] = {
            "camera_ended": feed,
            "client_closed": read_choices(ws, stream.choice, lambda: self._control_attempt(stream, incident)),
            "ended": self._until_ended(stream),
        }
        tasks = {asyncio.create_task(coro, name=f"stream:{stream.camera}:{name}"): name
                 for name, coro in jobs.items()}
        reason = "error"
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            first = next(iter(done))
            reason = stream.reason or tasks[first]
            failure = None if first.cancelled() else first.exception()
            if isinstance(failure, ConnectionError):
                reason = "client_closed"  # the page went away while a chunk was being sent
            elif failure is not None:
                reason = "error"
                logger.warning("stream %s of %s failed: %r", stream.camera, stream.person, failure)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._forget(stream)
            self.watching.closed(stream.stream_id)
            code = ACCESS_ENDED if reason in ("access_ended", "session_ended") else (
                WSCloseCode.GOING_AWAY if reason == "shutdown" else (
                    WSCloseCode.INTERNAL_ERROR if reason == "error" else WSCloseCode.OK))
            with contextlib.suppress(Exception):  # the peer may be gone already
                await ws.close(code=code, message=reason.encode())
            duration = round(time.monotonic() - opened, 1)
            self._audit.append(Kind.STREAM_CLOSED, incident=incident.id, actor=stream.person,
                               details={**details, "duration_s": duration, "reason": reason,
                                        **({"control_attempts": stream.control_attempts}
                                           if stream.control_attempts else {})},
                               drill=incident.drill, at=self._access.now())
            logger.info("stream closed: %s, %s after %.1f s (%s)", stream.person, stream.camera, duration, reason)

    def _control_attempt(self, stream: LiveStream, incident: Incident) -> None:
        """Steering over the video socket is refused and recorded, once per stream (a page that
        insists cannot grow the registre), the count with the stream's close."""
        stream.control_attempts += 1
        if stream.control_attempts == 1:
            self._audit.append(Kind.REFUSAL, incident=incident.id, actor=stream.person, drill=incident.drill,
                               details={"reason": "camera_control_refused", "camera": stream.camera,
                                        "via": "websocket"})

    async def _stills(self, ws: web.WebSocketResponse, camera_id: str, drill: bool, viewer: str) -> None:
        await ws.send_str("image/jpeg")
        every = self._media.options.still_every
        while True:
            started = time.monotonic()
            try:
                await ws.send_bytes(await self._pictures.still(camera_id, drill, viewer))
            except TimeoutError:
                logger.warning("masked still of %s took too long", camera_id)
            await asyncio.sleep(max(0.05, every - (time.monotonic() - started)))

    # --- sessions of the open streams ---

    async def _check_while_open(self) -> None:
        while self._streams:
            await asyncio.sleep(self._media.options.session_check)
            try:
                self.check_sessions()
            except Exception:  # a session that cannot be checked is not kept open
                logger.exception("the open streams' sessions could not be checked: streams closed")
                for stream in self._open():
                    stream.end("error")

    def check_sessions(self) -> None:
        """End every open stream whose session is gone or now belongs to another incident: one
        pass for all streams (a task and a timer per stream cost more than the checks)."""
        streams = self._open()
        found = self._access.viewers({s.cookie for s in streams})
        for stream in streams:
            viewer = found.get(stream.cookie)
            if viewer is None or viewer[1].id != stream.incident:
                stream.end("session_ended")

    def _open(self) -> list[LiveStream]:
        return [stream for streams in self._streams.values() for stream in streams]

    @staticmethod
    async def _until_ended(stream: LiveStream) -> None:
        await stream.ended.wait()

    # --- ending streams ---

    def _forget(self, stream: LiveStream) -> None:
        streams = self._streams.get(stream.incident)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self._streams[stream.incident]

    def open_streams(self, incident_id: str | None = None) -> int:
        if incident_id is not None:
            return len(self._streams.get(incident_id, ()))
        return sum(len(s) for s in self._streams.values())

    def on_revoked(self, incident_id: str) -> None:
        """Access revocation listener: every stream of the incident ends now."""
        self.watching.forget(incident_id)
        for stream in list(self._streams.get(incident_id, ())):
            stream.end("access_ended")

    async def on_shutdown(self, _: web.Application) -> None:
        for streams in list(self._streams.values()):
            for stream in list(streams):
                stream.end("shutdown")
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=2.0)
        if self._checker is not None:
            self._checker.cancel()
            await asyncio.gather(self._checker, return_exceptions=True)


def add_media_routes(app: web.Application, access: Access, media: MediaService, pictures: Pictures,
                     audit: Recorder, public_url: str, watching: Watching | None = None) -> MediaRoutes:
    routes = MediaRoutes(access, media, pictures, audit, public_url, watching)
    app.router.add_get("/live/api/media", routes.layout)
    app.router.add_get("/live/api/mosaic.jpg", routes.mosaic)
    app.router.add_get("/live/api/cam/{camera}/ws", routes.camera)
    access.add_revocation_listener(routes.on_revoked)
    app.on_shutdown.append(routes.on_shutdown)
    add_fallback_routes(app, access, media, audit, routes.viewer, routes.watching)
    return routes


MEDIA = web.AppKey("media", MediaService)


def install_media(app: web.Application, media: MediaService, settings: Settings, conv: Convention, desk: TileDesk,
                  access: Access,
                  audit: Recorder, scheduler: BaseScheduler, clock: Callable[[], datetime],
                  watching: Watching | None = None) -> None:
    """Add the cameras' routes and room tiles, and tie them to the app's lifecycle."""
    service = settings.vigie.service
    pictures = Pictures(media, clock, ZoneInfo(service.timezone), conv.venue)
    tiles = RoomTiles(desk, pictures, scheduler, clock, service.tile_interval_seconds,
                      at_activation=media.options.tile_at_activation, zones=conv.zones)
    add_media_routes(app, access, media, pictures, audit, service.public_url, watching)

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        media.start()
        tiles.install()
        yield
        await tiles.stop()
        await media.stop()
        pictures.close()

    app.cleanup_ctx.append(lifecycle)
    app[MEDIA] = media
