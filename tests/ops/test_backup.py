"""``vigie audit backup``: a verified, recorded online copy, taken during an alarm storm."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp

from bot.app import REGISTRE
from bot.audit import Registre
from bot.kinds import Kind
from bot.ops.backup import backup
from bot.store import Store
from tests.ops.support import Service

ROOT = Path(__file__).resolve().parents[2]


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


async def test_backup_during_an_alarm_storm_verifies_and_loses_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "backups" / "b1"
    async with Service(tmp_path / "data", cameras=1) as svc:
        registre = svc.app[REGISTRE]
        statuses: list[int] = []
        storm_half = asyncio.Event()

        async def worker(s: aiohttp.ClientSession, ids: range) -> None:
            for i in ids:
                statuses.append(await svc.webhook(s, f"storm_{i}"))
                if len(statuses) == 100:
                    storm_half.set()

        async with aiohttp.ClientSession() as s:
            storm = asyncio.gather(*(worker(s, range(k, 400, 8)) for k in range(8)))
            await storm_half.wait()
            before_count, before_head = registre.head()  # everything acknowledged so far
            result = await asyncio.to_thread(backup, svc.data_dir, dest, "backup:test")
            during = len(statuses)
            await storm
        assert statuses.count(202) == 400 and during < 400, (during, set(statuses))  # the storm went on around it
        live = registre.records()

    assert before_count >= 100 and result.count >= before_count
    with Registre(dest / "registre.sqlite3", readonly=True) as copy:
        assert copy.verify().ok
        copied = copy.records()
    assert copied[before_count - 1].hash == before_head  # nothing written before the copy began is lost
    assert [r.hash for r in copied] == [r.hash for r in live[: len(copied)]]
    assert result.head == copied[-1].hash[:16]
    recorded = [r for r in live if r.kind == Kind.BACKUP]
    assert len(recorded) == 1 and recorded[0].details == {"dest": str(dest), "records": len(copied),
                                                           "head": result.head}
    assert mode(dest) == 0o700
    assert sorted(os.listdir(dest)) == ["registre.sqlite3", "state.sqlite3"]  # self-contained, no -wal
    assert all(mode(dest / n) == 0o600 for n in os.listdir(dest))
    state = Store(dest / "state.sqlite3")
    try:
        assert state.open_incidents()  # the state copy is a working database
    finally:
        state.close()


def test_backup_command_refuses_to_overwrite_and_reports(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with Registre(data / "registre.sqlite3") as r:
        r.append(Kind.TRIGGER, incident="INC-20261125-01", actor="x")
    Store(data / "state.sqlite3").close()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot", "audit", "backup", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})

    ok = run(str(tmp_path / "b"), "--data-dir", str(data))
    assert ok.returncode == 0 and "1 enregistrements, chaîne intacte" in ok.stdout, ok.stderr
    again = run(str(tmp_path / "b"), "--data-dir", str(data))
    assert again.returncode == 2 and "existe déjà" in again.stderr
    missing = run(str(tmp_path / "c"), "--data-dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "no such database" in missing.stderr
    with Registre(data / "registre.sqlite3", readonly=True) as r:
        assert r.verify().ok and [rec.kind for rec in r.records()] == [Kind.TRIGGER, Kind.BACKUP]
