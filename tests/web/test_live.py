"""The live page over real HTTP (aiohttp's test server): link, login, view, state, headers, fuzzing."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from aiohttp import ClientResponse, CookieJar, FormData, web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from bot.access import Access
from bot.audit import Registre
from bot.policy import incident as sm
from bot.policy.incident import Incident
from bot.store import Store
from bot.web.live import COOKIE, SECURITY_HEADERS, add_routes
from tests.core.test_access import (
    FAST,
    KEY_NEW,
    PASSWORD,
    T0,
    Clock,
    Sleeps,
    make_convention,
    make_incident,
    roster,
)

EVIL = '<script>alert("x")</script> & Cie'
CAMERAS = [{"id": "parvis-nord", "name": "Parvis nord"}, {"id": "hall-entree", "name": "Hall d'entrée <1>"}]


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    access: Access
    clock: Clock
    incidents: dict[str, Incident]
    registre: Registre

    def link_path(self, incident_id: str = "INC-1") -> str:
        url = self.access.issue_link(self.incidents[incident_id])
        return URL(url).path

    def end(self, incident_id: str = "INC-1") -> None:
        inc = self.incidents[incident_id]
        self.incidents[incident_id] = sm.close(inc, self.clock(), sm.State.ENDED, "ended", "cic-moreau")


def page_info(incident: Incident) -> dict[str, Any]:
    return {
        "category_label": "attaque armée",
        "venue": "Zénith de Saint-Étienne",
        "drill": incident.drill,
        "cameras": CAMERAS,
        "ends_at": incident.ends_at.isoformat() if incident.ends_at else None,
    }


def build(tmp: Path, clock: Clock) -> tuple[web.Application, Access, dict[str, Incident], Registre, Store]:
    conv = make_convention(roster(FAST, evil_name=EVIL))
    incidents = {"INC-1": make_incident("INC-1", T0), "DRL-1": make_incident("DRL-1", T0, drill=True)}
    registre = Registre(tmp / "registre.sqlite3")
    store = Store(tmp / "state.sqlite3")
    access = Access(
        conv, [KEY_NEW], registre, store, clock, incidents.get, "https://vigie.example.fr", hasher=FAST,
        sleep=Sleeps(),
    )
    app = web.Application()
    add_routes(app, access, page_info)
    return app, access, incidents, registre, store


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    clock = Clock(T0)
    app, access, incidents, registre, store = build(tmp_path, clock)
    server = TestServer(app)
    await server.start_server()
    # The session cookie is Secure: let the jar treat the plain-http test server as a secure origin.
    jar = CookieJar(unsafe=True, treat_as_secure_origin=str(server.make_url("/")))
    client: TestClient[web.Request, web.Application] = TestClient(server, cookie_jar=jar)
    await client.start_server()
    yield Site(client, access, clock, incidents, registre)
    await client.close()
    store.close()
    registre.close()


def assert_secure(resp: ClientResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, name


async def post_login(site: Site, path: str, person: str, password: str, **kw: Any) -> ClientResponse:
    return await site.client.post(
        path, data={"person": person, "password": password}, allow_redirects=False, **kw
    )


async def test_whole_path(site: Site) -> None:
    path = site.link_path()
    resp = await site.client.get(path)
    text = await resp.text()
    assert resp.status == 200
    assert_secure(resp)
    assert '<html lang="fr">' in text and "Qui êtes-vous ?" in text
    assert 'name="viewport"' in text
    assert f'action="{path}"' in text and 'method="post"' in text
    # Who are you? is typed: the page publishes nobody's name, id or rank.
    assert '<input id="person" name="person" type="text" value=""' in text and "<select" not in text
    for person in roster(FAST):
        assert person.id not in text and person.name not in text
    assert "<script>" not in text.replace('<script src="/live/static/app.js" defer></script>', "")
    assert "style=" not in text

    resp = await post_login(site, path, "cic-moreau", "faux")
    text = await resp.text()
    assert resp.status == 401
    assert_secure(resp)
    assert "Identité ou mot de passe incorrect." in text and "Encore 4 essai(s)" in text
    assert 'name="person" type="text" value="cic-moreau"' in text  # what they typed, kept
    assert "set-cookie" not in resp.headers
    failed = [r for r in site.registre.records() if r.kind == "login_failed"]
    assert len(failed) == 1 and failed[0].details["reason"] == "wrong_password"
    assert failed[0].details["client"].startswith("127.0.0.1 ua:")

    resp = await post_login(site, path, "cic-moreau", PASSWORD)
    assert resp.status == 303 and resp.headers["Location"] == "/live/view"
    assert_secure(resp)
    raw = resp.headers["Set-Cookie"]
    cookie = SimpleCookie(raw)[COOKIE]
    assert cookie["path"] == "/live" and cookie["samesite"] == "Strict"
    assert cookie["httponly"] and cookie["secure"]
    assert int(cookie["max-age"]) == 3600
    flags = {p.strip().split("=")[0].lower() for p in raw.split(";")[1:]}
    assert flags == {"httponly", "secure", "samesite", "path", "max-age"}

    # Opening the link again with a live session goes straight to the view.
    resp = await site.client.get(path, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/live/view"

    resp = await site.client.get("/live/view")
    text = await resp.text()
    assert resp.status == 200
    assert_secure(resp)
    assert "Cdt Julien Moreau" in text and 'class="watermark"' in text
    assert "attaque armée" in text and "Zénith de Saint-Étienne" in text
    assert 'data-camera="parvis-nord"' in text and "Parvis nord" in text
    assert "Hall d&#x27;entrée &lt;1&gt;" in text
    assert "EXERCICE" not in text
    assert 'data-remaining="3600"' in text and ">1:00:00<" in text

    site.clock.advance(minutes=10)
    resp = await site.client.get("/live/api/state")
    state = await resp.json()
    assert resp.status == 200
    assert_secure(resp)
    assert state == {
        "active": True,
        "ends_at": (T0 + timedelta(minutes=60)).isoformat(),
        "remaining_s": 3000,
        "viewer": {"id": "cic-moreau", "name": "Cdt Julien Moreau"},
        "incident": "INC-1",
        "category": "attaque armée",
        "venue": "Zénith de Saint-Étienne",
        "drill": False,
        "cameras": CAMERAS,
    }
    # The cookie's lifetime follows the incident's end.
    assert SimpleCookie(resp.headers["Set-Cookie"])[COOKIE]["max-age"] == "3000"

    site.end()
    for url in ("/live/view", "/live/api/state"):
        resp = await site.client.get(url)
        assert resp.status == 410, url
        assert_secure(resp)
    resp = await site.client.get("/live/view")
    assert "L&#x27;accès est terminé" in await resp.text()
    resp = await site.client.get("/live/api/state")
    assert await resp.json() == {"active": False, "message": "L'accès est terminé."}
    resp = await site.client.get(path)
    assert resp.status == 410 and "L&#x27;accès est terminé" in await resp.text()


async def test_extension_moves_the_countdown(site: Site) -> None:
    await post_login(site, site.link_path(), "mlefevre", PASSWORD)
    site.incidents["INC-1"] = replace(site.incidents["INC-1"], ends_at=T0 + timedelta(minutes=90))
    state = await (await site.client.get("/live/api/state")).json()
    assert state["remaining_s"] == 90 * 60


async def test_drill_is_marked(site: Site) -> None:
    path = site.link_path("DRL-1")
    text = await (await site.client.get(path)).text()
    assert "EXERCICE" in text and 'class="login drill"' in text
    await post_login(site, path, "cic-roux", PASSWORD)
    resp = await site.client.get("/live/view")
    assert "EXERCICE" in await resp.text()
    assert (await (await site.client.get("/live/api/state")).json())["drill"] is True


async def test_forged_and_expired_links(site: Site) -> None:
    path = site.link_path()
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    resp = await site.client.get(forged)
    text = await resp.text()
    assert resp.status == 403 and "Lien invalide" in text
    assert "signature" not in text.lower()
    assert_secure(resp)
    resp = await post_login(site, forged, "cic-moreau", PASSWORD)
    assert resp.status == 403 and "set-cookie" not in resp.headers
    site.clock.advance(minutes=16)
    resp = await site.client.get(path)
    assert resp.status == 410 and "L&#x27;accès est terminé" in await resp.text()
    assert_secure(resp)
    resp = await post_login(site, path, "cic-moreau", PASSWORD)
    assert resp.status == 410
    # Forged links: the log only. Expired ones (ours): one grouped record for this client and minute.
    site.access.tally.flush(everything=True)
    [grouped] = [r for r in site.registre.records() if r.kind.startswith("refusal")]
    assert grouped.kind == "refusals" and grouped.details["reasons"] == {"live_link:link_expired": 2}


async def test_no_session(site: Site) -> None:
    resp = await site.client.get("/live/view")
    text = await resp.text()
    assert resp.status == 401 and "ouvrez le lien publié dans le salon" in text
    assert_secure(resp)
    resp = await site.client.get("/live/api/state")
    assert resp.status == 401 and (await resp.json())["active"] is False
    resp = await site.client.get("/live/view", headers={"Cookie": f"{COOKIE}=forged-value"})
    assert resp.status == 410 and "set-cookie" not in resp.headers


async def test_revocation_kills_the_session(site: Site) -> None:
    await post_login(site, site.link_path(), "cic-moreau", PASSWORD)
    assert (await site.client.get("/live/api/state")).status == 200
    site.access.revoke_incident("INC-1")
    assert (await site.client.get("/live/api/state")).status == 410


async def test_lockout_answers_429(site: Site) -> None:
    path = site.link_path()
    for _ in range(4):
        assert (await post_login(site, path, "cic-moreau", "faux")).status == 401
    resp = await post_login(site, path, "cic-moreau", "faux")
    assert resp.status == 429 and "bloquée" in await resp.text()
    resp = await post_login(site, path, "cic-moreau", PASSWORD)
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
    assert "set-cookie" not in resp.headers
    # Behind the reverse proxy (we are 127.0.0.1), the forwarded address is the client.
    resp = await post_login(
        site, path, "cic-roux", PASSWORD, headers={"X-Forwarded-For": "10.1.2.3, 198.51.100.4"}
    )
    assert resp.status == 303
    assert (
        [r for r in site.registre.records() if r.kind == "login_ok"][-1]
        .details["client"]
        .startswith("198.51.100.4 ")
    )


async def test_form_limits(site: Site) -> None:
    path = site.link_path()
    big = await site.client.post(
        path,
        data="person=cic-moreau&password=" + "x" * 5000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert big.status == 413 and "Qui êtes-vous ?" in await big.text()
    assert_secure(big)
    form = FormData()
    form.add_field("person", "cic-moreau")
    form.add_field("f", b"bytes", filename="f.bin")
    multipart = await site.client.post(path, data=form)
    assert multipart.status == 415
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    bad = await site.client.post(path, data=b"person=\xff\xfe", headers=headers)
    assert bad.status == 400
    many = await site.client.post(path, data="&".join(f"f{i}=1" for i in range(50)), headers=headers)
    assert many.status == 400
    # Percent-escapes that are not UTF-8 are only an unknown person.
    odd = await site.client.post(path, data=b"person=%ff%fe&password=x", headers=headers)
    assert odd.status == 401


async def test_html_escaping(site: Site) -> None:
    path = site.link_path()
    text = await (await post_login(site, path, EVIL, "x")).text()  # the typed identity is shown again
    assert EVIL not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Cie" in text
    await post_login(site, path, "evil", PASSWORD)
    text = await (await site.client.get("/live/view")).text()
    assert "<script>alert" not in text
    assert 'data-viewer="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Cie"' in text
    state = await (await site.client.get("/live/api/state")).json()
    assert state["viewer"]["name"] == EVIL  # JSON is data, not markup


async def test_static_files_and_headers_everywhere(site: Site) -> None:
    js = await site.client.get("/live/static/app.js")
    assert js.status == 200 and js.content_type == "application/javascript"
    assert "/live/api/state" in await js.text()
    css = await site.client.get("/live/static/app.css")
    assert css.status == 200 and css.content_type == "text/css"
    for url in ("/live/static/view.html", "/live/static/..%2F..%2Faccess.py", "/live/nope/nope", "/live/"):
        resp = await site.client.get(url)
        assert resp.status == 404, url
        assert_secure(resp)
    resp = await site.client.put(site.link_path())
    assert resp.status == 405
    assert_secure(resp)
    # Only /live is touched: other routes of the lead's app keep their own headers.
    other = await site.client.get("/health")
    assert "Content-Security-Policy" not in other.headers


async def test_no_inline_script_or_style(site: Site) -> None:
    path = site.link_path()
    await post_login(site, path, "cic-moreau", PASSWORD)
    for text in (
        await (await site.client.get(path)).text(),
        await (await site.client.get("/live/view")).text(),
    ):
        assert not re.search(r"<script(?![^>]*\bsrc=)", text)
        assert "<style" not in text and "style=" not in text
        assert not re.search(r"\son[a-z]+=", text)  # no inline event handlers


# --- fuzzing: never a 5xx, always the headers ---


@dataclass
class SyncSite:
    runner: asyncio.Runner
    client: TestClient[web.Request, web.Application]
    path: str

    def call(self, method: str, url: str | URL, **kw: Any) -> tuple[int, dict[str, str]]:
        async def go() -> tuple[int, dict[str, str]]:
            resp = await self.client.request(method, url, allow_redirects=False, **kw)
            await resp.read()
            return resp.status, dict(resp.headers)

        return self.runner.run(go())


@pytest.fixture(scope="module")
def sync_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncSite]:
    # Hypothesis drives plain functions: give them one long-lived loop and server of their own.
    runner = asyncio.Runner()
    app, access, incidents, registre, store = build(tmp_path_factory.mktemp("fuzz"), Clock(T0))

    async def start() -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
        await client.start_server()
        return client

    client = runner.run(start())
    path = URL(access.issue_link(incidents["INC-1"])).path
    yield SyncSite(runner, client, path)
    runner.run(client.close())
    runner.close()
    store.close()
    registre.close()


def check(status: int, headers: dict[str, str]) -> None:
    assert status < 500
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(token=st.one_of(st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_.\-]{10,200}", fullmatch=True)))
def test_fuzz_token(sync_site: SyncSite, token: str) -> None:
    url = URL("/live/" + quote(token, safe=""), encoded=True)
    check(*sync_site.call("GET", url))
    check(*sync_site.call("POST", url, data={"person": "cic-moreau", "password": "x"}))


@FUZZ
@given(person=st.text(max_size=100), password=st.text(max_size=300), extra=st.text(max_size=20))
def test_fuzz_login_form(sync_site: SyncSite, person: str, password: str, extra: str) -> None:
    body = urlencode([("person", person), ("password", password), (extra, extra)])
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers = sync_site.call("POST", sync_site.path, data=body, headers=form)
    check(status, headers)
    assert status in (303, 400, 401, 413, 429)


@FUZZ
@given(
    body=st.binary(max_size=5000),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "text/plain", ""]),
)
def test_fuzz_raw_body(sync_site: SyncSite, body: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    check(*sync_site.call("POST", sync_site.path, data=body, headers=headers))


@FUZZ
@given(
    cookie=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=';,"\\'), max_size=200
    )
)
def test_fuzz_cookie(sync_site: SyncSite, cookie: str) -> None:
    for url in ("/live/view", "/live/api/state"):
        check(*sync_site.call("GET", url, headers={"Cookie": f"{COOKIE}={cookie}"}))
