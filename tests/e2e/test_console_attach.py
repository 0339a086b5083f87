"""Consoles attached to a running service over its local socket (``vigie console``): the rooms of
last resort when Telegram and Matrix are down."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.audit import Registre
from bot.kinds import Kind
from tests.config_support import set_password
from tests.e2e.test_console_run import Run, status_then_end
from tests.e2e.test_demo import ROOT, Demo

PASSWORDS = {"mlefevre": "chef-de-securite-" + "2026", "cic-moreau": "officier-cic-" + "2026"}


class Client(Demo):
    """``python -m bot console --config DIR --as PERSON --password-stdin``."""

    def __init__(self, service: Run, person: str, password: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "console", "--config", str(service.cfg), "--as", person, "--password-stdin"],
            cwd=ROOT, env=service.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, bufsize=1)
        self.lines: list[str] = []
        self.type(password)


def passwords(cfg: Path) -> None:
    for person, password in PASSWORDS.items():
        set_password(cfg, person, password)


@pytest.fixture
async def service(tmp_path: Path):
    run = Run(tmp_path, "mlefevre", prepare=passwords)
    try:
        await run.started()
        yield run
    finally:
        run.stop()


def records(run: Run, kind: Kind) -> list[dict[str, object]]:
    registre = Registre(run.data / "registre.sqlite3")
    try:
        return [r.details for r in registre.records() if r.kind == kind]
    finally:
        registre.close()


async def test_wrong_password_refused_and_recorded(service: Run) -> None:
    client = Client(service, "mlefevre", "not-the-password")
    rc = await asyncio.to_thread(client.proc.wait, 30)
    assert client.proc.stderr is not None
    err = client.proc.stderr.read()
    assert rc == 2 and "refusée" in err and "not-the-password" not in err
    assert [d["reason"] for d in records(service, Kind.CONSOLE_REFUSED)] == ["wrong_password"]
    assert b"not-the-password" not in (service.data / "registre.sqlite3").read_bytes()
    stranger = Client(service, "sbonnet", "whatever-it-is")  # on the roster, but no command is open to her
    assert await asyncio.to_thread(stranger.proc.wait, 30) == 2
    assert [d["reason"] for d in records(service, Kind.CONSOLE_REFUSED)] == ["wrong_password", "no_command_role"]


async def test_two_consoles_share_the_incident_and_one_detaches(service: Run) -> None:
    chief = Client(service, "mlefevre", PASSWORDS["mlefevre"])
    cic = Client(service, "cic-moreau", PASSWORDS["cic-moreau"])
    others: list[Client] = []
    try:
        await chief.read_until(r"attachée comme salon console:mlefevre:\d")
        cic_room = (await cic.read_until(r"attachée comme salon (console:cic-moreau:\d)")).group(1)
        chief.type("/alerte attaque_armee Hall A")
        link = (await chief.read_until(r"(http://127\.0\.0\.1:\d+/live/\S+)")).group(1)
        assert (await cic.read_until(r"(http://127\.0\.0\.1:\d+/live/\S+)")).group(1) == link
        assert (await service.read_until(r"(http://127\.0\.0\.1:\d+/live/\S+)")).group(1) == link
        late = Client(service, "cic-moreau", PASSWORDS["cic-moreau"])  # attaching during the incident
        others.append(late)
        await late.read_until(r"http://127\.0\.0\.1:\d+/live/\S+")
        cic.type("/statut")  # each console is a room of its own, next to the service's own console
        for room in (r"console:mlefevre:\d", r"console:cic-moreau:\d", r"console"):
            await cic.read_until(rf"Salon {room}: ok")
        assert cic.proc.stdin is not None
        cic.proc.stdin.close()  # the police console detaches
        assert await asyncio.to_thread(cic.proc.wait, 15) == 0
        async with aiohttp.ClientSession() as s:
            async with s.get(link) as r:
                assert r.status == 200  # the incident is undisturbed
            await status_then_end(chief, s, link)
        attached = [d["room"] for d in records(service, Kind.CONSOLE_ATTACHED)]
        assert len(attached) == 3 and [d["room"] for d in records(service, Kind.CONSOLE_DETACHED)] == [cic_room]
    finally:
        for c in (chief, cic, *others):
            if c.proc.poll() is None:
                c.proc.kill()
            c.proc.wait(10)
