"""Access under attack, over real HTTP against the whole app (build_app on loopback).

A hostile link holder tries to lock officers out, flood the registre, learn what is going on
from /healthz, sign someone in from another site, and fish tokens out of the logs. The service
must keep officers in, the registre small, and say nothing.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.app import ACCESS, DESK, REGISTRE, build_app
from bot.commands import parse, run
from bot.logs import RedactTokens
from bot.policy.convention import Org, Role
from bot.settings import PersonCfg, Settings
from tests.harness import RecordingRoom
from tests.web.support import CHIEF, FAST_HASHER, ROOM, TEST_MEDIA, Cam, free_port, settings_for

OFFICERS = [f"agent-{i:02d}" for i in range(10)]
OPERATOR = "op-nonviewer"  # on the roster, may not view
ATTACKER = "198.51.100.66"
NAT = "203.0.113.1"


def with_people(settings: Settings, passwords: dict[str, str]) -> Settings:
    """The demo's settings plus ten police viewers and one venue operator (not a viewer)."""
    extra = []
    for i, pid in enumerate([*OFFICERS, OPERATOR]):
        passwords[pid] = f"mot-de-passe-{pid}"
        viewer = pid != OPERATOR
        extra.append(PersonCfg(
            id=pid, name=f"Agent {i}", org=Org.POLICE if viewer else Org.VENUE,
            role=Role.VIEWER if viewer else Role.OPERATOR, habilitation=f"HAB-{i}" if viewer else None,
            rio=f"{1000000 + i}", password_hash=FAST_HASHER.hash(passwords[pid]),
        ))
    roster = settings.roster.model_copy(update={"person": (*settings.roster.person, *extra)})
    return settings.model_copy(update={"roster": roster})


@dataclass
class Vigie:
    """The whole service on a loopback port; ``restart()`` keeps its settings and data directory."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    health_token: str = ""

    def __post_init__(self) -> None:
        settings, self.passwords = settings_for(self.port, [Cam("parvis", "Parvis")])
        self.settings = with_people(settings, self.passwords)
        if self.health_token:
            secrets = self.settings.secrets.model_copy(update={"health_token": SecretStr(self.health_token)})
            self.settings = self.settings.model_copy(update={"secrets": secrets})
        self.base = f"http://127.0.0.1:{self.port}"
        self.runner: web.AppRunner | None = None

    async def start(self) -> Vigie:
        self.room = RecordingRoom(ROOM)
        self.app = build_app(self.settings, self.data_dir, extra_rooms=(self.room,), media=TEST_MEDIA)
        self.runner = web.AppRunner(self.app, shutdown_timeout=2.0, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def alert(self) -> str:
        desk = self.app[DESK]
        await desk.alert(desk.conv.person(CHIEF), ROOM, "attaque_armee", "Hall A")
        await desk.fanout.drain()
        return next(m.group(0) for t in self.room.texts() if (m := re.search(r"http://127\.0\.0\.1:\d+/live/\S+", t)))

    async def command(self, person: str, line: str) -> str:
        cmd = parse(line)
        assert cmd is not None
        desk = self.app[DESK]
        return await run(desk, cmd, desk.conv.person(person), ROOM, "fr")

    def kinds(self) -> list[str]:
        return [r.kind for r in self.app[REGISTRE].records()]


async def sign_in(s: aiohttp.ClientSession, link: str, who: str, password: str, client: str,
                  **headers: str) -> tuple[int, str, str]:
    """(status, page, cookie) of one sign-in from ``client`` (the proxy's X-Forwarded-For)."""
    async with s.post(link, data={"person": who, "password": password}, allow_redirects=False,
                      headers={"X-Forwarded-For": client, "User-Agent": f"ua-{who}", **headers}) as r:
        return r.status, await r.text(), r.headers.get("Set-Cookie", "")


@pytest.fixture
async def vigie(tmp_path: Path) -> AsyncIterator[Vigie]:
    v = await Vigie(tmp_path / "data").start()
    try:
        yield v
    finally:
        await v.stop()


# --- lockout: protect officers, not attackers ---


async def test_an_attacker_cannot_lock_an_officer_out(vigie: Vigie) -> None:
    link = await vigie.alert()
    officer, right = "agent-00", vigie.passwords["agent-00"]
    async with aiohttp.ClientSession() as s:
        statuses = [(await sign_in(s, link, officer, f"guess-{i}", ATTACKER))[0] for i in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        status, page, _ = await sign_in(s, link, officer, right, ATTACKER)  # even the right one, from there
        assert status == 429 and "bloquée" in page
        # The officer, from their own phone: slowed down (1 s), signed in.
        status, _, cookie = await sign_in(s, link, officer, right, "192.0.2.10")
        assert status == 303 and "vigie_session=" in cookie
    await vigie.app[DESK].fanout.drain()
    [notice] = [t for t in vigie.room.texts() if "Mot de passe de Agent 0" in t]
    assert "/debloquer agent-00" in notice and "peut toujours se connecter" in notice
    kinds = vigie.kinds()
    assert kinds.count("password_guessing") == 1 and kinds.count("login_locked") == 1


async def test_ten_officers_behind_one_address_are_not_blocked_by_one_colleagues_typos(vigie: Vigie) -> None:
    link = await vigie.alert()
    async with aiohttp.ClientSession() as s:
        for i in range(6):
            assert (await sign_in(s, link, "agent-00", f"typo-{i}", NAT))[0] in (401, 429)
        for officer in OFFICERS[1:]:
            status, _, cookie = await sign_in(s, link, officer, vigie.passwords[officer], NAT)
            assert status == 303 and cookie, officer
        assert (await sign_in(s, link, "agent-00", vigie.passwords["agent-00"], NAT))[0] == 429
        # Those who may end access may lift the lock; a viewer may not.
        refused = await vigie.command("demo-agent", "/debloquer agent-00")
        assert refused.startswith("Refusé")
        answer = await vigie.command(CHIEF, "/debloquer AGENT-00")
        assert "débloquée (1 adresse(s)" in answer
        assert (await sign_in(s, link, "agent-00", vigie.passwords["agent-00"], NAT))[0] == 303
    [unlocked] = [r for r in vigie.app[REGISTRE].records() if r.kind == "login_unlocked"]
    assert (unlocked.actor, unlocked.details) == (CHIEF, {"person": "agent-00", "locks": 1})


async def test_lockouts_survive_a_restart(vigie: Vigie) -> None:
    link = await vigie.alert()
    async with aiohttp.ClientSession() as s:
        for i in range(5):
            await sign_in(s, link, "agent-01", f"guess-{i}", ATTACKER)
    await vigie.restart()
    async with aiohttp.ClientSession() as s:
        assert (await sign_in(s, link, "agent-01", vigie.passwords["agent-01"], ATTACKER))[0] == 429
        assert (await sign_in(s, link, "agent-01", vigie.passwords["agent-01"], "192.0.2.11"))[0] == 303


async def test_refusals_say_nothing_about_the_roster(vigie: Vigie) -> None:
    link = await vigie.alert()
    errors = {}
    async with aiohttp.ClientSession() as s:
        page = await (await s.get(link)).text()
        for person in vigie.settings.roster.person:  # nobody's id or name is published
            assert person.id not in page and person.name not in page
        for who, password in (("nobody-at-all", "x"), (OPERATOR, vigie.passwords[OPERATOR]), ("agent-02", "x")):
            status, page, _ = await sign_in(s, link, who, password, f"192.0.2.{len(errors) + 50}")
            m = re.search(r'<p class="error" role="alert">([^<]*)</p>', page)
            assert status == 401 and m
            errors[who] = m.group(1)
        # The RIO, typed in any case, is an identity too.
        assert (await sign_in(s, link, "1000003", vigie.passwords["agent-03"], "192.0.2.60"))[0] == 303
    assert len(set(errors.values())) == 1, errors


# --- flood: the registre stays small, the service answers ---


async def _flood(vigie: Vigie, n: int) -> tuple[list[int], list[float]]:
    """n forged links and n unknown-source webhooks, 32 at a time, while /healthz is polled."""
    forged = "/live/" + "A" * 40 + ".Zz0.forgedsignature0123456789"
    statuses: list[int] = []
    health: list[float] = []
    done = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(vigie.base, connector=connector) as s:

        async def worker(k: int) -> None:
            for i in range(k, 2 * n, 32):
                if i % 2:
                    async with s.post(f"/hooks/alarm/src-{i}", data=b"{}") as r:
                        statuses.append(r.status)
                else:
                    async with s.get(forged) as r:
                        statuses.append(r.status)

        async def poll() -> None:
            loop = asyncio.get_running_loop()
            while not done.is_set():
                t = loop.time()
                async with s.get("/healthz") as r:
                    assert r.status == 200 and await r.json() == {"status": "ok"}
                health.append(loop.time() - t)
                await asyncio.sleep(0.05)

        poller = asyncio.create_task(poll())
        await asyncio.gather(*(worker(k) for k in range(32)))
        done.set()
        await poller
    return statuses, health


async def test_ten_thousand_forged_requests_add_a_handful_of_records(vigie: Vigie,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    before = len(vigie.app[REGISTRE].records())
    statuses, health = await _flood(vigie, 10_000)
    assert sorted(set(statuses)) == [403, 404] and len(statuses) == 20_000
    assert health  # /healthz answered all along (its p95 is in bench/bench_access.py)
    vigie.app[ACCESS].tally.flush(everything=True)
    added = vigie.app[REGISTRE].records()[before:]
    # Forged links: the log only. Unknown sources: one record per client and minute.
    assert {r.kind for r in added} == {"refusals"} and len(added) <= 3
    assert sum(r.details["count"] for r in added) == 10_000
    assert vigie.app[REGISTRE].verify().ok
    refused_lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused_lines) <= 4 * 10 + 4  # at most 10 a minute per kind, and the counts of the rest


# --- /healthz ---


async def test_healthz_says_ok_and_nothing_else(vigie: Vigie) -> None:
    await vigie.alert()
    async with aiohttp.ClientSession(vigie.base) as s:
        async with s.get("/healthz") as r:
            assert r.status == 200 and await r.json() == {"status": "ok"}
        async with s.get("/healthz/details") as r:  # direct, from this machine
            details = await r.json()
            assert r.status == 200 and details["incident_state"] == "active" and "parvis" in details["cameras"]
        async with s.get("/healthz/details", headers={"X-Forwarded-For": "198.51.100.1"}) as r:
            assert r.status == 403 and "incident" not in await r.text()  # relayed by the proxy: the world


async def test_healthz_fails_when_a_room_cannot_be_reached(vigie: Vigie) -> None:
    vigie.room.fail = 10_000
    desk = vigie.app[DESK]
    await desk.alert(desk.conv.person(CHIEF), ROOM, "attaque_armee", "Hall A")
    async with aiohttp.ClientSession(vigie.base) as s:

        async def failing() -> bool:
            async with s.get("/healthz") as r:
                return r.status == 503 and await r.json() == {"status": "failing"}

        for _ in range(200):
            if await failing():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("/healthz never said failing")
    vigie.room.fail = 0


async def test_healthz_details_behind_a_token(tmp_path: Path) -> None:
    v = await Vigie(tmp_path / "data", health_token="t" * 32).start()
    try:
        async with aiohttp.ClientSession(v.base) as s:
            async with s.get("/healthz/details") as r:
                assert r.status == 403
            async with s.get("/healthz/details", headers={"Authorization": "Bearer " + "u" * 32}) as r:
                assert r.status == 403
            async with s.get("/healthz/details", headers={"Authorization": "Bearer " + "t" * 32}) as r:
                assert r.status == 200 and "rooms" in await r.json()
    finally:
        await v.stop()


# --- cross-site, headers ---


async def test_cross_site_sign_in_is_refused(vigie: Vigie) -> None:
    link = await vigie.alert()
    pw = vigie.passwords["agent-04"]
    async with aiohttp.ClientSession() as s:
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                        {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"}):
            status, page, cookie = await sign_in(s, link, "agent-04", pw, "192.0.2.20", **headers)
            assert status == 403 and not cookie and "ne vient pas de la page de Vigie" in page, headers
        assert "login_ok" not in vigie.kinds()
        for headers in ({"Origin": vigie.base}, {"Sec-Fetch-Site": "same-origin", "Origin": vigie.base}):
            status, _, cookie = await sign_in(s, link, "agent-04", pw, "192.0.2.20", **headers)
            assert status == 303 and cookie


async def test_every_answer_carries_the_headers(vigie: Vigie) -> None:
    link = await vigie.alert()
    async with aiohttp.ClientSession(vigie.base) as s:
        for method, url in (("GET", "/nope"), ("GET", "/healthz"), ("POST", "/hooks/alarm/nowhere"),
                            ("POST", "/hooks/alarm/demo-alarme"), ("GET", link), ("GET", "/live/static/app.js")):
            async with s.request(method, url, data=b"{}" if method == "POST" else None) as r:
                assert r.headers["X-Content-Type-Options"] == "nosniff", url
                assert r.headers["Cache-Control"] == "no-store", url
                assert r.headers["Server"] == "Vigie", url


async def test_a_token_never_reaches_the_logs_even_through_aiohttps_parser(vigie: Vigie) -> None:
    link = await vigie.alert()
    token = link.rsplit("/", 1)[1]
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", vigie.port)
        writer.write(f"GET /live/{token}?q={'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        answer = (await reader.read(4096)).decode(errors="replace")
        writer.close()
        async with aiohttp.ClientSession() as s, s.get(link) as r:  # and an ordinary request
            assert r.status == 200
    finally:
        root.removeHandler(handler)
    assert answer.startswith("HTTP/1.") and " 400 " in answer.split("\r\n")[0]
    assert re.search(r"^Server: Vigie\r$", answer, re.MULTILINE)  # no version, even here
    logged = out.getvalue()
    assert "LineTooLong" in logged and "/live/…" in logged
    assert token not in logged and token[:12] not in logged


async def test_the_data_directory_is_private(vigie: Vigie) -> None:
    link = await vigie.alert()
    async with aiohttp.ClientSession() as s:
        await sign_in(s, link, "agent-05", "x", "192.0.2.30")
    mode = stat.S_IMODE(vigie.data_dir.stat().st_mode)
    assert mode == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in vigie.data_dir.iterdir() if p.is_file()}
    assert {"registre.sqlite3", "registre.sqlite3-wal", "state.sqlite3", "state.sqlite3-wal"} <= set(files)
    assert all(m == 0o600 for n, m in files.items() if ".sqlite3" in n), files


def test_old_data_is_made_private(tmp_path: Path) -> None:
    from bot.app import private_data_dir

    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    for name in ("registre.sqlite3", "registre.sqlite3-wal", "state.sqlite3-shm"):
        (data / name).write_bytes(b"")
        (data / name).chmod(0o644)
    private_data_dir(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    modes: dict[str, Any] = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
    assert set(modes.values()) == {0o600} and "state.sqlite3" in modes
