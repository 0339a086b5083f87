"""The whole flow, end to end, on the real demo process: console room, web page, alarm webhook, registre."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.alarms.verify import sign
from tests.config_support import runnable_example

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(base: str, tries: int = 150) -> bool:
    async with aiohttp.ClientSession() as s:
        for _ in range(tries):
            try:
                async with s.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    return False


class Demo:
    def __init__(self, tmp: Path, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.data = tmp / "data"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "-v", "demo", "--port", str(self.port), "--data-dir", str(self.data),
             "--cameras", "4", *extra],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
        )
        self.lines: list[str] = []
        self.base = f"http://127.0.0.1:{self.port}"

    async def read_until(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if (m := rx.search(line)):
                return m
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), deadline - time.monotonic())
            if not line:
                break
            self.lines.append(line)
            if (m := rx.search(line)):
                return m
        raise AssertionError(f"{pattern!r} not seen; output:\n{''.join(self.lines)}")

    def type(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()


@pytest.fixture
async def demo(tmp_path: Path):
    d = Demo(tmp_path)
    try:
        await d.read_until(r"Fin de saisie")
        assert await wait_healthy(d.base), "demo did not answer /healthz"
        yield d
    finally:
        if d.proc.poll() is None:
            d.proc.kill()
        d.proc.wait(10)


async def login(s: aiohttp.ClientSession, link: str, person: str, password: str) -> tuple[int, str | None]:
    async with s.post(link, data={"person": person, "password": password}, allow_redirects=False) as r:
        m = re.search(r"vigie_session=([^;]+)", r.headers.get("Set-Cookie", ""))
        return r.status, (m.group(1) if m else None)


async def test_demo_whole_incident(demo: Demo) -> None:
    passwords = {m.group(1): m.group(2) for m in re.finditer(r"^\s+(demo-[a-z]+)\s.*mot de passe : (\S+)$",
                                                              "".join(demo.lines), re.M)}
    assert set(passwords) == {"demo-chef", "demo-directeur", "demo-cic", "demo-agent", "demo-terrain"}
    health = json.loads(await asyncio.to_thread(lambda: __import__("urllib.request").request.urlopen(f"{demo.base}/healthz/details").read()))
    assert "console" in health["rooms"] and health["incident_state"] == "none" and len(health["cameras"]) == 4

    demo.type("/alert attaque_armee Hall A")
    link = (await demo.read_until(r"(http://127\.0\.0\.1:\d+/live/\S+)")).group(1)
    await demo.read_until(r"→ Accès INC-\d{8}-01 ouvert")
    async with aiohttp.ClientSession() as s:
        async with s.get(link) as r:
            assert r.status == 200 and "Qui êtes-vous" in await r.text()
            assert r.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        status, cookie = await login(s, link, "demo-agent", "wrong-password")
        assert status == 401 and cookie is None
        status, cookie = await login(s, link, "demo-agent", passwords["demo-agent"])
        assert status == 303 and cookie
        async with s.get(f"{demo.base}/live/view", headers={"Cookie": f"vigie_session={cookie}"}) as r:
            assert r.status == 200 and "Lucie Perrin" in await r.text()

        # the alarm system's webhook joins the open incident (no duplicate)
        body = json.dumps({"type": "panic", "zone": "Hall A"}).encode()
        secret = re.search(r"secret : (whsec_\S+)", "".join(demo.lines)).group(1)  # type: ignore[union-attr]
        ts = int(time.time())
        headers = {"webhook-id": "msg_e2e_1", "webhook-timestamp": str(ts),
                   "webhook-signature": sign(secret, "msg_e2e_1", ts, body), "content-type": "application/json"}
        async with s.post(f"{demo.base}/hooks/alarm/demo-alarme", data=body, headers=headers) as r:
            assert r.status == 202 and (await r.json())["outcome"] == "joined"
        async with s.post(f"{demo.base}/hooks/alarm/demo-alarme", data=body, headers=headers) as r:
            assert r.status == 409  # replayed

        demo.type("/status")
        await demo.read_until(r"accès ouvert jusqu'à")
        await demo.read_until(r"• Brigadier Lucie Perrin \(démo\) \(agent habilité\) — connecté, aucune image")
        demo.type("/extend 30")
        await demo.read_until(r"prolongé jusqu'à")
        demo.type("/end")
        await demo.read_until(r"ACCÈS TERMINÉ")
        await demo.read_until(r"• Brigadier Lucie Perrin \(démo\) \(agent habilité\) — 1 connexion à")
        async with s.get(f"{demo.base}/live/api/state", headers={"Cookie": f"vigie_session={cookie}"}) as r:
            assert r.status == 410
        async with s.get(link) as r:
            assert r.status == 410 and "terminé" in (await r.text())

    assert demo.proc.stdin is not None
    demo.proc.stdin.close()  # end of input ends the demo cleanly
    t0 = time.monotonic()
    rc = await asyncio.to_thread(demo.proc.wait, 15)
    assert rc == 0 and time.monotonic() - t0 < 5
    assert demo.proc.stderr is not None and demo.proc.stdout is not None
    logs = demo.proc.stderr.read()
    out_rest = demo.proc.stdout.read()
    # secrets never reach the logs (stderr, at DEBUG): passwords, link tokens, webhook secret
    for pw in passwords.values():
        assert pw not in logs
    assert link.rsplit("/", 1)[1] not in logs and secret not in logs

    db = demo.data / "registre.sqlite3"
    anchor = re.search(r"Empreinte du registre à la clôture : ([0-9a-f]{16})", "".join(demo.lines) + out_rest)
    assert anchor, "the closure report carries the registre's head hash"
    v = subprocess.run([sys.executable, "-m", "bot", "audit", "verify", "--db", str(db), "--anchor", anchor.group(1)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert v.returncode == 0 and "chaîne intacte" in v.stdout and "empreinte" in v.stdout
    inc_id = re.search(r"(INC-\d{8}-01)", link + "".join(demo.lines)).group(1)  # type: ignore[union-attr]
    e = subprocess.run([sys.executable, "-m", "bot", "audit", "export", "--db", str(db), "--incident", inc_id, "--text"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert e.returncode == 0
    for label in ("Déclenchement", "Accès ouvert", "Lien émis", "Échec de connexion", "Connexion réussie", "Fin"):
        assert label in e.stdout, e.stdout
    j = subprocess.run([sys.executable, "-m", "bot", "audit", "export", "--db", str(db), "--incident", inc_id],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert json.loads(j.stdout)["incident"] == inc_id


async def test_run_stops_on_sigterm_within_5s(tmp_path: Path) -> None:
    port = free_port()
    cfg, env = runnable_example(tmp_path, port)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--config", str(cfg)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if not await wait_healthy(f"http://127.0.0.1:{port}"):
            raise AssertionError(proc.stderr.read() if proc.stderr else "no start")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, 10)
        assert rc == 0 and time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
