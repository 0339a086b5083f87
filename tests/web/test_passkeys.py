"""Passkeys in Debian's Chromium with a virtual authenticator (CDP WebAuthn domain, user verification on).

One Vigie served as ``localhost`` (a passkey's relying party must be a domain), enrolled through the
real command line while it runs: enrol on the one-time link, sign in with one touch, the password
still works beside it, a revoked passkey and a removed person are refused, a passkey replayed for
another relying party is refused, and an enrolment link serves once and expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Error as PlaywrightError

from bot.__main__ import main
from bot.app import ACCESS, PASSKEYS, STORE
from bot.passkeys import issue_enrolment
from tests.web.conftest import wait_js
from tests.web.support import AGENT, Cam, LiveApp

CIC = "demo-cic"
CAMS = [Cam("hall", "Hall d'entrée")]
AUTHENTICATOR = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                 "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}


def cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(args)) == 0
    return out.getvalue()


def enrol(app: LiveApp, person: str) -> str:
    text = cli("enrol", person, "--data-dir", str(app.data_dir), "--public-url", app.base)
    m = re.search(r"http://localhost:\d+/live/enrol/\S+", text)
    assert m, text
    return m.group(0)


async def phone(browser: Any) -> tuple[Any, Any, Any]:
    """A page with a platform authenticator that verifies its user (a phone's fingerprint)."""
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    auth = await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR})
    return context, page, (cdp, auth["authenticatorId"])


async def register(page: Any, url: str, password: str) -> None:
    await page.goto(url)
    await page.fill("#password", password)
    await page.fill("#label", "téléphone de service")
    await page.click("#enrol button[type=submit]")
    await wait_js(page, "!document.getElementById('enrol-done').hidden", timeout=20)


async def passkey_sign_in(page: Any, link: str) -> str:
    """Tap "Se connecter avec une clé d'accès"; the URL reached, or the error shown."""
    await page.goto(link)
    await wait_js(page, "!document.getElementById('passkey').hidden")
    await page.click("#passkey-button")
    for _ in range(400):
        with contextlib.suppress(PlaywrightError):  # the page navigating to the view
            if await page.evaluate("location.pathname") == "/live/view":
                await page.wait_for_load_state()
                return "view"
            if await page.evaluate("!document.getElementById('passkey-error').hidden"):
                return str(await page.text_content("#passkey-error"))
        await asyncio.sleep(0.05)
    raise AssertionError("neither signed in nor refused")


def details(app: LiveApp, kind: str) -> list[dict[str, Any]]:
    return [dict(r.details) for r in app.registre.records() if r.kind == kind]


async def test_enrol_sign_in_fallback_revoke_other_site(tmp_path: Path, browser: Any) -> None:
    app = await LiveApp(tmp_path / "data", CAMS, host="localhost").start()
    try:
        context, page, (cdp, auth_id) = await phone(browser)
        url = enrol(app, AGENT)
        await register(page, url, app.passwords[AGENT])
        assert [d["person"] for d in details(app, "passkey_enrolled")] == [AGENT]
        assert url.rsplit("/", 1)[1] not in str([r.details for r in app.registre.records()])  # the token never
        # single use: the same link again is gone
        async with aiohttp.ClientSession() as http, http.get(url) as r:
            assert r.status == 410

        incident, link = await app.alert()
        link = link.replace("127.0.0.1", "localhost")
        assert await passkey_sign_in(page, link) == "view"
        ok = [r for r in app.records(incident, "login_ok")]
        assert ok[-1].details["method"] == "passkey" and ok[-1].actor == AGENT
        await wait_js(page, "Number(document.getElementById('mosaic').getAttribute('data-refreshes') || 0) >= 1",
                      timeout=20)

        # the password still works, on a device without a passkey
        other = await browser.new_context(locale="fr-FR")
        p2 = await other.new_page()
        await p2.goto(link)
        await p2.fill("#person", AGENT)
        await p2.fill("#password", app.passwords[AGENT])
        await p2.click("form.login-form button[type=submit]")
        await p2.wait_for_url("**/live/view")
        await other.close()

        # the same passkey replayed for another relying party (a look-alike site): refused
        creds = (await cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id}))["credentials"]
        assert len(creds) == 1 and creds[0]["rpId"] == "localhost"
        await context.clear_cookies()
        cred_id = creds[0]["credentialId"]
        await cdp.send("WebAuthn.removeCredential", {"authenticatorId": auth_id, "credentialId": cred_id})
        await cdp.send("WebAuthn.addCredential", {"authenticatorId": auth_id, "credential": {
            **creds[0], "rpId": "autre.localhost"}})
        await page.goto(link.replace("localhost", "autre.localhost"))
        answer = await page.evaluate("""async () => {
            const p = window.VigiePasskey, action = location.pathname;
            const o = await p.post(action + '/passkey/options', {});
            const opts = p.requestOptions(o); opts.rpId = 'autre.localhost';
            const cred = await navigator.credentials.get({publicKey: opts});
            try { await p.post(action + '/passkey', {credential: p.credentialJSON(cred)}); return 'signed in'; }
            catch (e) { return e.message; }
        }""")
        assert answer.startswith("Clé d'accès refusée"), answer
        app.app[ACCESS].tally.flush(everything=True)
        assert any("passkey:passkey_invalid" in d["reasons"] for d in details(app, "refusals"))
        await cdp.send("WebAuthn.removeCredential", {"authenticatorId": auth_id, "credentialId": cred_id})
        await cdp.send("WebAuthn.addCredential", {"authenticatorId": auth_id, "credential": creds[0]})

        # the phone is lost: revoked from the command line, refused at once
        assert len(app.app[STORE].sessions_of(incident)) == 2  # the passkey's and the password's
        said = cli("passkeys", "revoke", AGENT, "--data-dir", str(app.data_dir))
        assert "1 clé(s) d'accès de demo-agent révoquée(s)" in said and "2 session(s) ouverte(s) fermée(s)" in said
        assert app.app[STORE].sessions_of(incident) == []  # a session the lost phone held ends with its passkey
        assert "RÉVOQUÉE" in cli("passkeys", "list", "--data-dir", str(app.data_dir))
        await context.clear_cookies()
        assert (await passkey_sign_in(page, link)).startswith("Clé d'accès refusée")
        failed = [r.details for r in app.records(incident, "login_failed")]
        assert failed[-1]["reason"] == "revoked" and failed[-1]["method"] == "passkey"
        await context.close()
    finally:
        await app.stop()


async def test_removed_person_refused_and_links_expire(tmp_path: Path, browser: Any) -> None:
    first = await LiveApp(tmp_path / "data", CAMS, host="localhost").start()
    try:
        context, page, _ = await phone(browser)
        await register(page, enrol(first, CIC), first.passwords[CIC])
        # an enrolment link older than its life: gone, and nothing is enrolled with it
        keys = first.app[PASSKEYS]._keys
        stale = issue_enrolment(keys, first.registre, AGENT, first.base, datetime.now(UTC) - timedelta(minutes=20),
                                timedelta(minutes=15), "test")
        async with aiohttp.ClientSession() as http, http.get(stale) as r:
            assert r.status == 410
    finally:
        await first.stop()
    # demo-cic leaves the roster; Vigie restarts on the same data directory
    app = await LiveApp(tmp_path / "data", CAMS, host="localhost", port=first.port, without=(CIC,)).start()
    try:
        assert [d["person"] for d in details(app, "passkey_disabled")] == [CIC]
        _, link = await app.alert()
        assert (await passkey_sign_in(page, link.replace("127.0.0.1", "localhost"))).startswith("Clé d'accès refusée")
        failed = [r.details for r in app.registre.records() if r.kind == "login_failed"]
        assert failed[-1]["reason"] == "person_removed" and failed[-1]["person"] == CIC
        await context.close()
    finally:
        await app.stop()


async def test_forged_passkeys_are_counted_not_recorded_and_lock_the_client(tmp_path: Path) -> None:
    app = await LiveApp(tmp_path / "data", CAMS, host="localhost").start()
    try:
        incident, link = await app.alert()
        before = len(app.registre.records())
        statuses = []
        async with aiohttp.ClientSession() as http:
            for i in range(8):
                async with http.post(f"{link}/passkey/options", json={}) as r:
                    assert r.status == 200 and (await r.json())["userVerification"] == "required"
                forged = {"id": f"forged-{i}", "rawId": f"forged-{i}", "type": "public-key", "response": {
                    "clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"}}
                async with http.post(f"{link}/passkey", json={"credential": forged}) as r:
                    statuses.append(r.status)
            async with http.post(f"{link}/passkey", data="not json") as r:
                assert r.status == 400
        assert statuses == [401] * 4 + [429] * 4  # the 5th failure locks this client out of unknown passkeys
        app.app[ACCESS].tally.flush(everything=True)
        added = app.registre.records()[before:]
        assert [r.kind for r in added] == ["refusals"]
        assert added[0].details["count"] == 8 and added[0].incident == incident
    finally:
        await app.stop()
