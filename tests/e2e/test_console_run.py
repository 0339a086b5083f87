"""``run --config DIR --console PERSON``: the console as a real room of the configured service.

The example config with no chat room at all: the console is the only room, typed into as a
roster person; the link it shows opens, ``/fin`` closes it, end of input leaves the service up.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from bot.audit import Registre
from bot.kinds import Kind
from tests.config_support import runnable_example
from tests.e2e.test_demo import ROOT, Demo, free_port, wait_healthy


class Run(Demo):
    """``python -m bot run --console PERSON`` on a copy of the example config (logs in a file)."""

    def __init__(self, tmp: Path, person: str, *extra: str,
                 prepare: Callable[[Path], None] = lambda _: None) -> None:
        self.port = free_port()
        cfg, env = runnable_example(tmp, self.port)
        prepare(cfg)
        self.cfg, self.env = cfg, env
        self.data = tmp / "data"
        self.log = tmp / "stderr.log"
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--config", str(cfg), "--console", person, *extra],
                cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        self.lines: list[str] = []
        self.base = f"http://127.0.0.1:{self.port}"

    async def started(self) -> None:
        await self.read_until(r"tapez /aide")
        assert await wait_healthy(self.base), self.log.read_text()

    def close_input(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def runs():
    started: list[Run] = []
    yield started
    for r in started:
        r.stop()


async def status_then_end(console: Demo, s: aiohttp.ClientSession, link: str) -> None:
    """``/statut`` shows access open; ``/fin`` ends it and the link is gone (410)."""
    console.type("/statut")
    await console.read_until(r"accès ouvert jusqu'à")
    console.type("/fin")
    await console.read_until(r"ACCÈS TERMINÉ")
    async with s.get(link) as r:
        assert r.status == 410


async def healthz(base: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/healthz") as r:
        return r.status


async def test_console_alert_link_and_end_with_no_chat_room(tmp_path: Path, runs: list[Run]) -> None:
    run = Run(tmp_path, "mlefevre")
    runs.append(run)
    await run.started()
    run.type("/alerte attaque_armee Hall A")
    link = (await run.read_until(r"(http://127\.0\.0\.1:\d+/live/\S+)")).group(1)
    async with aiohttp.ClientSession() as s:
        async with s.get(link) as r:
            assert r.status == 200 and "Qui êtes-vous" in await r.text()
        await status_then_end(run, s, link)
    # the console's traffic is the registre's like any room's: its link was recorded as posted there
    registre = Registre(run.data / "registre.sqlite3")
    try:
        kinds = registre.kind_counts()
    finally:
        registre.close()
    assert kinds.get(Kind.LINK_POSTED, 0) >= 1 and kinds.get(Kind.END, 0) == 1


async def test_end_of_input_keeps_the_service(tmp_path: Path, runs: list[Run]) -> None:
    run = Run(tmp_path, "mlefevre")
    runs.append(run)
    await run.started()
    run.close_input()
    deadline = time.monotonic() + 20
    while "Fin de saisie" not in run.log.read_text() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert "Fin de saisie" in run.log.read_text()
    assert run.proc.poll() is None and await healthz(run.base) == 200
    run.proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(run.proc.wait, 15) == 0


async def test_console_exit_stops_on_end_of_input(tmp_path: Path, runs: list[Run]) -> None:
    run = Run(tmp_path, "cic-moreau", "--console-exit")
    runs.append(run)
    await run.started()
    run.close_input()
    assert await asyncio.to_thread(run.proc.wait, 15) == 0


@pytest.mark.parametrize(("person", "reason"), [("nobody", "n'est pas sur la liste"),
                                                 ("sbonnet", "ne permet aucune commande")])
def test_console_person_refused(tmp_path: Path, person: str, reason: str) -> None:
    cfg, env = runnable_example(tmp_path, free_port())
    p = subprocess.run([sys.executable, "-m", "bot", "run", "--config", str(cfg), "--console", person],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0] and person in lines[0], p.stderr
    assert not (tmp_path / "data").exists()  # refused before anything is opened
