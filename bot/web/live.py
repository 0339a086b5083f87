"""The live page: ``/live/{token}`` (who are you?), ``/live/view``, ``/live/api/state`` and its files.

Thin on purpose: parse the request, ask ``Access``, render. Every ``/live`` answer, errors and
404s included, carries the security headers (CSP, no-store, nosniff, no referrer, no framing), and every other answer of the service the
basic ones (``nosniff``, ``no-store``, a ``Server`` without versions); they are added in
``on_response_prepare`` so that no code path can forget them. A state-changing request from
another site (``Origin`` or ``Sec-Fetch-Site``) is refused before any handler runs. HTML comes
from templates in ``bot/static`` filled with ``string.Template``; every dynamic value is escaped
unless it is an already-rendered fragment.
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..access import Access, LinkForbidden, LinkGone, LoginRefused, ViewerSession
from ..locales import DEFAULT, Msg, t
from ..logs import Bounded
from ..policy.incident import Incident

logger = logging.getLogger(__name__)

COOKIE = "vigie_session"
COOKIE_PATH = "/live"
MAX_FORM_BYTES = 4096
_PROXIES = frozenset({"127.0.0.1", "::1"})

SECURITY_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        "media-src 'self' blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "X-Frame-Options": "DENY",
}

# Every answer of the service, /hooks and plain 404s included.
BASE_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Server": "Vigie",
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Signed by a machine (Standard Webhooks, Telegram's secret token), never sent by a browser with
# ambient credentials: these answer for themselves.
MACHINE_PREFIXES = ("/hooks/",)

STATIC_TYPES: Mapping[str, str] = {
    "app.js": "application/javascript",
    "passkey.js": "application/javascript",
    "player.js": "application/javascript",
    "fallback.js": "application/javascript",
    "app.css": "text/css",
    "ptz.js": "application/javascript",
    "ptz.css": "text/css",
}
TEMPLATES = ("page", "login", "view", "camera", "message", "enrol", "focus", "focus-form")

PageInfo = Callable[[Incident], Mapping[str, Any]]

# The templates in static/ are written in French: the page speaks the service's first language.
PAGE_LANG = DEFAULT
_FORBIDDEN = (t(PAGE_LANG, Msg.PAGE_FORBIDDEN_TITLE), t(PAGE_LANG, Msg.PAGE_FORBIDDEN))
_GONE = (t(PAGE_LANG, Msg.PAGE_GONE_TITLE), t(PAGE_LANG, Msg.PAGE_GONE))
_NO_SESSION = (t(PAGE_LANG, Msg.PAGE_NO_SESSION_TITLE), t(PAGE_LANG, Msg.PAGE_NO_SESSION))
_BAD_FORM = t(PAGE_LANG, Msg.PAGE_BAD_FORM)
_CROSS_SITE = (t(PAGE_LANG, Msg.PAGE_CROSS_SITE_TITLE), t(PAGE_LANG, Msg.PAGE_CROSS_SITE))
MAX_IDENTITY = 64


class Raw(str):
    """An HTML fragment already escaped by this module; inserted as is."""


def render(template: Template, **values: str) -> str:
    return template.substitute(
        {k: v if isinstance(v, Raw) else html.escape(v, quote=True) for k, v in values.items()}
    )


def client_of(request: web.Request) -> tuple[str, str]:
    """(address, description) of the caller; X-Forwarded-For is believed only from our own proxy."""
    address = request.remote or "unknown"
    if address in _PROXIES:
        # The proxy appends the address it saw: the rightmost entry is the only one it vouches for.
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        try:
            address = str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass
    agent = hashlib.sha256(request.headers.get("User-Agent", "").encode("utf-8", "replace")).hexdigest()
    return address, f"{address} ua:{agent[:8]}"


def _remaining(session: ViewerSession, now: datetime) -> int:
    return max(0, int((session.expires - now).total_seconds()))


def _countdown(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


async def _secure_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    if request.path == "/live" or request.path.startswith("/live/"):
        own = response.headers.get("Content-Security-Policy")  # stricter, set by its handler (the plan)
        response.headers.update(SECURITY_HEADERS)
        if own:
            response.headers["Content-Security-Policy"] = own
    else:
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.update(BASE_HEADERS)


def same_site(request: web.BaseRequest, public_origins: frozenset[str]) -> bool:
    """False for a browser request made by a page of another site.

    ``Sec-Fetch-Site`` when the browser sends it (all current ones do); else ``Origin``, which
    must be the public URL's or the host the request was sent to. Neither: not a browser (curl,
    a monitoring probe), nothing to forge with.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return bool(parts.netloc) and (
        f"{parts.scheme}://{parts.netloc}".lower() in public_origins or parts.netloc.lower() == request.host.lower()
    )


def cross_site_guard(public_url: str) -> Middleware:
    """Refuse state-changing requests from other sites (login CSRF and the like), with a generic page."""
    parts = urlsplit(public_url)
    origins = frozenset({f"{parts.scheme}://{parts.netloc}".lower()})
    log = Bounded(logger)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (request.method in SAFE_METHODS or request.path.startswith(MACHINE_PREFIXES)
                or same_site(request, origins)):
            return await handler(request)
        log.warning("cross_site", "cross-site %s refused (%s)", request.method, client_of(request)[1])
        heading, text = _CROSS_SITE
        return web.Response(status=403, text=f"{heading}\n{text}\n", content_type="text/plain", charset="utf-8")

    return guard


class BadForm(Exception):  # noqa: N818 - an HTTP outcome, named after it
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def read_form(request: web.Request) -> dict[str, str]:
    """The urlencoded body, at most MAX_FORM_BYTES, first value of each field."""
    if request.content_type != "application/x-www-form-urlencoded":
        raise BadForm(415)
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise BadForm(413)
    body = b""
    async for chunk in request.content.iter_chunked(1024):
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadForm(413)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except ValueError:  # not UTF-8, or too many fields
        raise BadForm(400) from None
    return {k: v[0] for k, v in fields.items()}


class LivePage:
    def __init__(self, access: Access, page_info: PageInfo) -> None:
        self._access = access
        self._page_info = page_info
        folder = resources.files("bot.web") / "static"
        self._tpl = {n: Template((folder / f"{n}.html").read_text("utf-8")) for n in TEMPLATES}
        self._static = {n: (folder / n).read_bytes() for n in STATIC_TYPES}

    def template(self, name: str) -> Template:
        return self._tpl[name]

    # --- routes ---

    def link_refused(self, exc: LinkForbidden | LinkGone) -> web.Response:
        """A forged link: 403; an expired or ended one: 410 (the same words whatever the cause)."""
        return self.message(403, *_FORBIDDEN) if isinstance(exc, LinkForbidden) else self.message(410, *_GONE)

    async def link(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        _, client = client_of(request)
        try:
            incident = self._access.check_link(token, client)
        except (LinkForbidden, LinkGone) as exc:
            return self.link_refused(exc)
        found = self._access.viewer(request.cookies.get(COOKIE))
        if found is not None and found[1].id == incident.id:
            return web.Response(status=303, headers={"Location": "/live/view"})
        return self._login_page(incident, token, 200)

    async def login(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        address, client = client_of(request)
        try:
            incident = self._access.check_link(token, client)
        except (LinkForbidden, LinkGone) as exc:
            return self.link_refused(exc)
        try:
            form = await read_form(request)
        except BadForm as exc:
            return self._login_page(incident, token, exc.status, error=_BAD_FORM)
        person_id = form.get("person", "")[:MAX_IDENTITY]
        try:
            cookie, session = await self._access.login(
                token, person_id, form.get("password", ""), client, address=address
            )
        except (LinkForbidden, LinkGone) as exc:
            return self.link_refused(exc)
        except LoginRefused as exc:
            page = self._login_page(
                incident, token, 429 if exc.locked else 401, error=exc.text(PAGE_LANG), typed=person_id
            )
            if exc.locked:
                page.headers["Retry-After"] = str(exc.retry_after_s)
            return page
        response = web.Response(status=303, headers={"Location": "/live/view"})
        self.set_cookie(response, cookie, session)
        return response

    async def view(self, request: web.Request) -> web.StreamResponse:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return self.message(401, *_NO_SESSION)
        found = self._access.viewer(cookie)
        if found is None:
            # The dead cookie is left alone: a reload keeps saying "access ended", which is the truth.
            return self.message(410, *_GONE)
        session, incident = found
        info = self.info(incident)
        remaining = _remaining(session, self._access.now())
        cameras = (
            "".join(
                render(self._tpl["camera"], id=str(c.get("id", "")), name=str(c.get("name", "")),
                       cls=" in-zone" if c.get("in_zone") else "")
                for c in info["cameras"]
            )
            or f'<p class="empty">{html.escape(t(PAGE_LANG, Msg.PAGE_NO_CAMERA))}</p>'
        )
        content = render(
            self._tpl["view"],
            drill_banner=self.drill_banner(incident),
            category=info["category_label"],
            venue=info["venue"],
            remaining=_countdown(remaining),
            cameras=Raw(cameras),
            viewer=session.person.name,
            focus=Raw(self._focus(info, session)),
        )
        data = Raw(
            render(
                Template(' data-viewer="$v" data-remaining="$r" data-state-url="/live/api/state"'),
                v=session.person.name,
                r=str(remaining),
            )
        )
        response = self.html_page(200, f"Vigie — {info['category_label']}", content, "view", incident, data)
        self.set_cookie(response, cookie, session)
        return response

    async def state(self, request: web.Request) -> web.StreamResponse:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return web.json_response({"active": False, "message": _NO_SESSION[1]}, status=401)
        found = self._access.viewer(cookie)
        if found is None:
            return web.json_response({"active": False, "message": t(PAGE_LANG, Msg.PAGE_ENDED)}, status=410)
        session, incident = found
        info = self.info(incident)
        response = web.json_response(
            {
                "active": True,
                "ends_at": session.expires.isoformat(),
                "remaining_s": _remaining(session, self._access.now()),
                "viewer": {"id": session.person.id, "name": session.person.name},
                "incident": incident.id,
                "category": info["category_label"],
                "venue": info["venue"],
                "drill": incident.drill,
                "cameras": [
                    {"id": str(c.get("id", "")), "name": str(c.get("name", ""))} for c in info["cameras"]
                ],
            }
        )
        self.set_cookie(response, cookie, session)
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in self._static:
            raise web.HTTPNotFound
        return web.Response(body=self._static[name], content_type=STATIC_TYPES[name], charset="utf-8")

    # --- rendering ---

    def info(self, incident: Incident) -> dict[str, Any]:
        info = dict(self._page_info(incident))
        conv = self._access.convention
        category = conv.category(incident.category)
        info.setdefault("category_label", category.label(PAGE_LANG) if category else incident.category)
        info.setdefault("venue", conv.venue)
        info["cameras"] = list(info.get("cameras") or [])
        return info

    def _focus(self, info: Mapping[str, Any], session: ViewerSession) -> str:
        """The zone the page opens on and, for the police, the form that changes it."""
        conv = self._access.convention
        form = ""
        if conv.zones.zones and conv.may_refocus(session.person):
            options = "".join(render(Template('<option value="$v">$v</option>'), v=z.name) for z in conv.zones.zones)
            form = render(self._tpl["focus-form"], options=Raw(options))
        return render(self._tpl["focus"], label=str(info.get("focus") or ""), form=Raw(form))

    def drill_banner(self, incident: Incident) -> Raw:
        if not incident.drill:
            return Raw("")
        return Raw(f'<div class="drill-banner" role="status">{html.escape(t(PAGE_LANG, Msg.PAGE_DRILL))}</div>')

    def _login_page(
        self, incident: Incident, token: str, status: int, *, error: str = "", typed: str = ""
    ) -> web.Response:
        info = self.info(incident)
        content = render(
            self._tpl["login"],
            drill_banner=self.drill_banner(incident),
            category=info["category_label"],
            venue=info["venue"],
            action=f"/live/{token}",
            zone=str(info.get("focus") or ""),
            error=Raw(render(Template('<p class="error" role="alert">$e</p>'), e=error) if error else ""),
            typed=typed,
        )
        return self.html_page(status, t(PAGE_LANG, Msg.PAGE_LOGIN_TITLE), content, "login", incident)

    def message(self, status: int, heading: str, text: str) -> web.Response:
        content = render(self._tpl["message"], heading=heading, text=text)
        return self.html_page(status, f"Vigie — {heading}", content, "message", None)

    def html_page(
        self, status: int, title: str, content: str, kind: str, incident: Incident | None, data: str = ""
    ) -> web.Response:
        body_class = f"{kind} drill" if incident is not None and incident.drill else kind
        page = render(
            self._tpl["page"], title=title, body_class=body_class, body_data=Raw(data), content=Raw(content)
        )
        return web.Response(status=status, text=page, content_type="text/html", charset="utf-8")

    def set_cookie(self, response: web.StreamResponse, cookie: str, session: ViewerSession) -> None:
        # Re-sent on every view and poll: /extend moves the end, so the Max-Age follows it.
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=max(1, _remaining(session, self._access.now())),
            path=COOKIE_PATH,
            secure=True,
            httponly=True,
            samesite="Strict",
        )


def add_routes(app: web.Application, access: Access, page_info: PageInfo, public_url: str = "") -> LivePage:
    """Mount the live page on ``app`` (before it starts), with the headers and the cross-site
    guard for every route of ``app``; returns the handler object."""
    page = LivePage(access, page_info)
    app.middlewares.append(cross_site_guard(public_url or access.public_url))
    # Fixed paths first: "/live/{token}" would otherwise also match "view".
    app.router.add_get("/live/view", page.view)
    app.router.add_get("/live/api/state", page.state)
    app.router.add_get("/live/static/{name}", page.static)
    app.router.add_get("/live/{token}", page.link)
    app.router.add_post("/live/{token}", page.login)
    app.on_response_prepare.append(_secure_headers)
    return page
