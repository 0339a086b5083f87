"""The page's camera control: what every viewer sees of catastrophe mode, and the steering requests.

- ``GET /live/api/ptz``: whether a catastrophe is in force, until when, whether this viewer may
  steer, and for each PTZ camera who steers it ("commandée par Cdt Moreau") and, for a viewer who
  may steer, its presets. Every viewer polls it.
- ``POST /live/api/ptz/{camera}/{action}``: ``take``, ``takeover``, ``release``, ``move`` (JSON
  ``{"pan", "tilt", "zoom"}`` speeds in -1..1, sent while a finger is held), ``stop``,
  ``preset`` (``{"token"}``), ``home``. 200 with the new view; 403 with the reason when the
  policy refuses (recorded); 502 when the camera did not do it (recorded); 400 for a bad request.

The viewer's session is checked on every request, like the media routes; the app's cross-site
guard refuses POSTs from other sites before they get here.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from aiohttp import web

from ..access import Access
from ..locales import Msg, reason_text, t
from ..policy.reasons import Refused
from ..ptz_control import PtzError
from .live import COOKIE, PAGE_LANG

logger = logging.getLogger(__name__)

ACTIONS = frozenset({"take", "takeover", "release", "move", "stop", "preset", "home"})
_NO_STORE = {"Cache-Control": "no-store"}
MAX_BODY = 1024


class Control(Protocol):
    """``bot.ptz_control.CameraControl`` as the page uses it."""

    def view(self, person_id: str, incident_id: str) -> dict[str, Any]: ...

    async def take(self, person_id: str, incident_id: str, camera: str, takeover: bool, via: str) -> None: ...

    async def release(self, person_id: str, incident_id: str, camera: str, via: str) -> None: ...

    async def command(self, person_id: str, incident_id: str, camera: str, action: str, args: dict[str, Any],
                      via: str) -> None: ...


class PtzRoutes:
    def __init__(self, access: Access, control: Control) -> None:
        self._access, self._control = access, control

    def _viewer(self, request: web.Request) -> tuple[str, str] | web.Response:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return web.json_response({"error": t(PAGE_LANG, Msg.PAGE_SIGN_IN)}, status=401)
        found = self._access.viewer(cookie)
        if found is None:
            return web.json_response({"error": t(PAGE_LANG, Msg.PAGE_ENDED)}, status=410)
        session, incident = found
        return session.person.id, incident.id

    async def view(self, request: web.Request) -> web.StreamResponse:
        found = self._viewer(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response(self._control.view(*found), headers=_NO_STORE)

    async def act(self, request: web.Request) -> web.StreamResponse:
        found = self._viewer(request)
        if isinstance(found, web.Response):
            return found
        person, incident = found
        camera, action = request.match_info["camera"][:48], request.match_info["action"]
        if action not in ACTIONS:
            return web.json_response({"error": "unknown action"}, status=400)
        args = await _body(request)
        if args is None:
            return web.json_response({"error": "the body must be a small JSON object"}, status=400)
        try:
            if action in ("take", "takeover"):
                await self._control.take(person, incident, camera, action == "takeover", "page")
            elif action == "release":
                await self._control.release(person, incident, camera, "page")
            else:
                await self._control.command(person, incident, camera, action, args, "page")
        except Refused as r:
            return web.json_response({"error": reason_text(r.reason, PAGE_LANG), "reason": r.reason.code,
                                      "view": self._control.view(person, incident)}, status=403)
        except PtzError as exc:
            return web.json_response({"error": str(exc), "view": self._control.view(person, incident)}, status=502)
        return web.json_response(self._control.view(person, incident), headers=_NO_STORE)


async def _body(request: web.Request) -> dict[str, Any] | None:
    if not request.can_read_body:
        return {}
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return None
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def add_ptz_routes(app: web.Application, access: Access, control: Control) -> None:
    routes = PtzRoutes(access, control)
    app.router.add_get("/live/api/ptz", routes.view)
    app.router.add_post("/live/api/ptz/{camera}/{action}", routes.act)
