"""Passkey routes of the live page: enrolment (``/live/enrol/{token}``) and sign-in on a live link.

The page's script (``static/passkey.js``) speaks JSON to these routes and WebAuthn to the phone;
every check is in ``bot.passkeys``. Same headers and cross-site guard as the rest of ``/live``
(registered on the same application). JSON bodies are small and bounded.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

from aiohttp import web

from ..access import LinkForbidden, LinkGone, LoginRefused
from ..locales import Msg, t
from ..passkeys import EnrolGone, Passkeys, refused_text
from .live import PAGE_LANG, LivePage, Raw, client_of, render

logger = logging.getLogger(__name__)

MAX_JSON_BYTES = 16 * 1024  # an attestation with "none" is about 1 KiB


async def _read_json(request: web.Request) -> dict[str, Any] | None:
    """The JSON object of the body, or None (wrong type, too large, not an object)."""
    if request.content_type != "application/json":
        return None
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        return None
    body = b""
    async for chunk in request.content.iter_chunked(4096):
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            return None
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


async def _with(request: web.Request, name: str, kind: type) -> dict[str, Any] | None:
    """The JSON body if it has field ``name`` of type ``kind``, else None."""
    body = await _read_json(request)
    return body if body is not None and isinstance(body.get(name), kind) else None


def _error(status: int, text: str, **headers: str) -> web.Response:
    return web.json_response({"error": text}, status=status, headers=headers or None)


def _refused(exc: LoginRefused, text: str) -> web.Response:
    """401, or 429 with when to retry while the person or the client is locked."""
    if exc.locked:
        return _error(429, text, **{"Retry-After": str(exc.retry_after_s)})
    return _error(401, text)


def _link_error(exc: LinkForbidden | LinkGone) -> web.Response:
    if isinstance(exc, LinkForbidden):
        return _error(403, t(PAGE_LANG, Msg.PAGE_FORBIDDEN))
    return _error(410, t(PAGE_LANG, Msg.PAGE_GONE))


_GONE = (Msg.ENROL_GONE_TITLE, Msg.ENROL_GONE)


class PasskeyRoutes:
    def __init__(self, page: LivePage, passkeys: Passkeys) -> None:
        self._page = page
        self._passkeys = passkeys

    # --- enrolment ---

    async def enrol_page(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        try:
            person = self._passkeys.enrolment(token, client_of(request)[1])
        except EnrolGone:
            return self._page.message(410, *(t(PAGE_LANG, m) for m in _GONE))
        content = render(self._page.template("enrol"), name=person.name, person=person.id,
                         venue=self._passkeys.convention.venue, action=f"/live/enrol/{token}")
        return self._page.html_page(200, t(PAGE_LANG, Msg.ENROL_TITLE), Raw(content), "enrol", None)

    async def enrol_options(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        address, client = client_of(request)
        body = await _with(request, "password", str)
        if body is None:
            return _error(400, t(PAGE_LANG, Msg.PAGE_BAD_FORM))
        await self._passkeys.ready()
        try:
            options = await self._passkeys.registration_options(token, body["password"], client, address)
        except EnrolGone:
            return _error(410, t(PAGE_LANG, Msg.ENROL_GONE))
        except LoginRefused as exc:
            return _refused(exc, exc.text(PAGE_LANG))  # a mistyped password: said as the sign-in page says it
        return web.json_response(options)

    async def enrol_register(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        _, client = client_of(request)
        body = await _with(request, "credential", dict)
        if body is None:
            return _error(400, t(PAGE_LANG, Msg.PAGE_BAD_FORM))
        await self._passkeys.ready()
        try:
            person = self._passkeys.enrolment(token, client)
            key = self._passkeys.register(token, body["credential"], body.get("label"), client)
        except EnrolGone:
            return _error(410, t(PAGE_LANG, Msg.ENROL_GONE))
        except ValueError as exc:
            return _error(400, t(PAGE_LANG, Msg.ENROL_REJECTED, error=str(exc)[:120]))
        except sqlite3.Error:
            logger.exception("passkey not stored")
            return _error(503, t(PAGE_LANG, Msg.ENROL_REJECTED, error="stockage indisponible"))
        return web.json_response({"ok": True, "message": t(PAGE_LANG, Msg.ENROL_DONE, label=key.label,
                                                           name=person.name)})

    # --- sign-in on a live link ---

    async def sign_in_options(self, request: web.Request) -> web.StreamResponse:
        await self._passkeys.ready()
        try:
            return web.json_response(
                self._passkeys.authentication_options(request.match_info["token"], client_of(request)[1]))
        except (LinkForbidden, LinkGone) as exc:
            return _link_error(exc)

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        address, client = client_of(request)
        body = await _with(request, "credential", dict)
        if body is None:
            return _error(400, t(PAGE_LANG, Msg.PASSKEY_BAD_REQUEST))
        await self._passkeys.ready()
        try:
            cookie, session = self._passkeys.sign_in(token, body["credential"], client, address)
        except (LinkForbidden, LinkGone) as exc:
            return _link_error(exc)
        except LoginRefused as exc:
            return _refused(exc, refused_text(exc, PAGE_LANG))
        response = web.json_response({"location": "/live/view"})
        self._page.set_cookie(response, cookie, session)
        return response


def add_passkey_routes(app: web.Application, page: LivePage, passkeys: Passkeys) -> None:
    routes = PasskeyRoutes(page, passkeys)
    app.router.add_get("/live/enrol/{token}", routes.enrol_page)
    app.router.add_post("/live/enrol/{token}/options", routes.enrol_options)
    app.router.add_post("/live/enrol/{token}/register", routes.enrol_register)
    app.router.add_post("/live/{token}/passkey/options", routes.sign_in_options)
    app.router.add_post("/live/{token}/passkey", routes.sign_in)
