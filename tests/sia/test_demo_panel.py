"""The demo process prints a panel account; a hold-up sent to it opens access in the console room."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.sia.sender import Link, Panel
from tests.e2e.test_demo import ROOT, free_port


async def _read_until(proc: subprocess.Popen[str], lines: list[str], pattern: str, timeout: float = 30) -> re.Match[str]:
    rx = re.compile(pattern)
    for line in lines:
        if m := rx.search(line):
            return m
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), deadline - time.monotonic())
        if not line:
            break
        lines.append(line)
        if m := rx.search(line):
            return m
    raise AssertionError(f"{pattern!r} not seen; output:\n{''.join(lines)}")


async def test_demo_panel_hold_up_opens_access(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "-v", "demo", "--port", str(free_port()), "--data-dir", str(tmp_path / "data"),
         "--cameras", "2"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )
    lines: list[str] = []
    try:
        m = await _read_until(proc, lines, r"Centrale d'alarme DC-09 : 127\.0\.0\.1:(\d+) TCP.*compte (\w+), clé AES (\w+)")
        port, account, key = int(m.group(1)), m.group(2), m.group(3)
        await _read_until(proc, lines, r"Fin de saisie")
        assert f"python -m bot sia-send --port {port} --account {account} --key {key} hold-up" in "".join(lines)
        for _ in range(100):  # the banner is printed before the receiver starts listening
            try:
                link = await Link.open("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the demo panel receiver never listened")
        reply = await link.send(Panel(account, key=key).cid(1, 122, zone=3, at=datetime.now(UTC))[1], key)
        await link.close()
        assert reply.kind == "ACK" and reply.encrypted
        await _read_until(proc, lines, r"ACCÈS VIDÉO OUVERT — attaque armée")
        await _read_until(proc, lines, r"alarme « hold_up » de Centrale intrusion / agression \(démo\), zone 003, partition 01")
        assert proc.stdin is not None
        proc.stdin.close()
        assert await asyncio.to_thread(proc.wait, 15) == 0
        assert proc.stderr is not None
        assert key not in proc.stderr.read()  # the panel key is never logged (stderr, at DEBUG)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
