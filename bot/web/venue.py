"""The venue on the live page: its plan, its zones, the focus zone, and the favicon.

- ``GET /live/api/venue``: the plan's URL and the cameras' places on it, the zones, and
  whether this viewer may change the focus zone;
- ``GET /live/api/plan``: the plan image, to signed-in viewers only (it shows where the
  cameras are). Read once at start-up and served from memory. An SVG is served as
  ``image/svg+xml`` with its own CSP, ``default-src 'none'; style-src 'unsafe-inline'; sandbox``:
  shown in an ``<img>`` a browser never runs its scripts, and opened on its own it runs none
  either (no script source, sandboxed), so a plan file is inert whatever it contains;
- ``POST /live/api/focus`` (form field ``zone``): a police viewer changes the focus zone, as
  with ``/zone`` in a room (the desk decides and records it); back to the page;
- ``GET /favicon.ico``: a small icon drawn at start-up (browsers ask for it on every first visit).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image, ImageDraw

from ..access import Access, ViewerSession
from ..locales import Msg, reason_text, t
from ..policy.convention import Person
from ..policy.incident import Incident
from ..policy.reasons import Refused
from ..settings import PLAN_TYPES, PlanSpot, Settings
from .live import COOKIE, PAGE_LANG, BadForm, read_form

logger = logging.getLogger(__name__)

PLAN_URL = "/live/api/plan"
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
Refocus = Callable[[Person, str, str, str], Awaitable[object]]  # person, room, where, incident


@dataclass(frozen=True)
class Plan:
    image: bytes = field(repr=False)
    content_type: str
    spots: Mapping[str, PlanSpot]


def load_plan(settings: Settings) -> Plan | None:
    """The plan image and the cameras placed on it; None without one (or unreadable: logged)."""
    cfg = settings.cameras.plan
    if cfg is None:
        return None
    path = cfg.image if cfg.image.is_absolute() else settings.config_dir / cfg.image
    try:
        data = path.read_bytes()
    except OSError as exc:
        logger.error("plan image %s cannot be read (%s): the page shows no plan", path, exc.strerror)
        return None
    spots = {c.id: c.at for c in settings.cameras.camera if c.at is not None and not c.private}
    return Plan(data, PLAN_TYPES[path.suffix.lower()], spots)


def favicon() -> bytes:
    """A 32x32 icon (a white eye on the page's blue), drawn in memory."""
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle([0, 0, 31, 31], radius=7, fill=(47, 129, 247, 255))
    draw.ellipse([5, 10, 26, 21], fill=(255, 255, 255, 255))
    draw.ellipse([12, 11, 19, 20], fill=(13, 17, 23, 255))
    out = io.BytesIO()
    img.save(out, format="ICO", sizes=[(32, 32)])
    return out.getvalue()


class VenueRoutes:
    def __init__(self, access: Access, plan: Plan | None, refocus: Refocus | None) -> None:
        self._access = access
        self._plan = plan
        self._refocus = refocus
        self._icon = favicon()

    def _viewer(self, request: web.Request) -> tuple[ViewerSession, Incident] | None:
        return self._access.viewer(request.cookies.get(COOKIE))

    @staticmethod
    def _gone() -> web.Response:
        return web.json_response({"active": False, "message": t(PAGE_LANG, Msg.PAGE_ENDED)}, status=410)

    async def venue(self, request: web.Request) -> web.StreamResponse:
        found = self._viewer(request)
        if found is None:
            return self._gone()
        session, incident = found
        conv = self._access.convention
        scope = conv.cameras_in_scope
        plan = self._plan
        return web.json_response({
            "plan": None if plan is None else {
                "url": PLAN_URL,
                "cameras": [{"id": cid, "x": s.x, "y": s.y, "direction": s.direction}
                            for cid, s in plan.spots.items() if cid in scope],
            },
            "zones": [{"id": z.id, "name": z.name} for z in conv.zones.zones],
            "focus": {"zone": incident.focus.zone, "label": conv.zones.label(incident.focus)},
            "may_refocus": self._refocus is not None and conv.may_refocus(session.person),
        })

    async def plan(self, request: web.Request) -> web.StreamResponse:
        if self._viewer(request) is None:
            return self._gone()
        if self._plan is None:
            raise web.HTTPNotFound
        response = web.Response(body=self._plan.image, content_type=self._plan.content_type)
        if self._plan.content_type == PLAN_TYPES[".svg"]:
            response.headers["Content-Security-Policy"] = SVG_CSP  # kept by the page's header hook
        return response

    async def focus(self, request: web.Request) -> web.StreamResponse:
        found = self._viewer(request)
        if found is None:
            return self._gone()
        session, incident = found
        try:
            form = await read_form(request)
        except BadForm as exc:
            return web.Response(status=exc.status, text=t(PAGE_LANG, Msg.PAGE_BAD_FORM))
        if self._refocus is None:
            raise web.HTTPNotFound
        try:
            await self._refocus(session.person, "page", form.get("zone", "")[:120], incident.id)
        except Refused as r:
            return web.Response(status=403, text=reason_text(r.reason, PAGE_LANG))
        return web.Response(status=303, headers={"Location": "/live/view"})

    async def icon(self, _: web.Request) -> web.StreamResponse:
        return web.Response(body=self._icon, content_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})


def add_venue_routes(app: web.Application, access: Access, plan: Plan | None, refocus: Refocus | None) -> VenueRoutes:
    routes = VenueRoutes(access, plan, refocus)
    app.router.add_get("/live/api/venue", routes.venue)
    app.router.add_get(PLAN_URL, routes.plan)
    app.router.add_post("/live/api/focus", routes.focus)
    app.router.add_get("/favicon.ico", routes.icon)
    return routes
