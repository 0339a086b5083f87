"""kill -9 at random points of an incident's end, then a restart: the end always finishes.

Each run is a real process (``closing_child``) on its own data directory, killed with SIGKILL
a random few milliseconds after ``/fin`` arrives; a second process starts on the same data. If
the desk had answered ``/fin`` before the kill, the incident must be ended after the restart;
either way, an ended incident has exactly one end record, one closure report, no link message
left in any room and its report posted in every room.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.audit import Registre
from bot.store import Store

ROOT = Path(__file__).resolve().parents[2]
RUNS = 24
OPEN = ("ACCÈS VIDÉO OUVERT", "VIDEO ACCESS OPEN")
ENDED = ("ACCÈS TERMINÉ", "ACCESS ENDED")


def child(data: Path, phase: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.core.closing_child", str(data), phase], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def run_once(data: Path, rng: random.Random) -> tuple[str, bool, int]:
    """One kill and one restart; (the child's last word, the incident is ended, report copies)."""
    data.mkdir()
    proc = child(data, "end")
    assert proc.stdout is not None
    seen: list[str] = []
    while (line := proc.stdout.readline().strip()) != "ENDING":
        assert line, "the child stopped before /fin"
    time.sleep(rng.uniform(0, 0.08))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    seen = out.split()
    resumed = child(data, "resume")
    out, _ = resumed.communicate(timeout=60)
    assert "RESUMED" in out, "the restarted desk did not finish"

    store = Store(data / "state.sqlite3")
    registre = Registre(data / "registre.sqlite3")
    try:
        incidents = store.recent()
        assert len(incidents) == 1
        inc = incidents[0]
        kinds = [r.kind for r in registre.records(inc.id)]
        assert registre.verify().ok
        ended = inc.state.value != "active"
    finally:
        store.close()
        registre.close()
    rooms = [json.loads((data / f"room-{name}.json").read_text()) for name in ("console", "matrix")]
    live = [list(r["live"].values()) for r in rooms]
    if "REPLIED" in seen:
        assert ended, "a /fin the desk had answered was lost"
    if ended:
        assert kinds.count("end") == 1 and kinds.count("closure_report") == 1, kinds
        for texts in live:
            assert not any(o in t for t in texts for o in OPEN), "a link message was left posted"
            assert any(e in t for t in texts for e in ENDED), "no closure report in a room"
    else:
        assert "end" not in kinds and all(any(o in t for t in texts for o in OPEN) for texts in live)
    reports = max(sum(1 for k, _, t in r["log"] if k == "send" and any(e in t for e in ENDED)) for r in rooms)
    return (seen or ["ENDING"])[-1], ended, reports


def test_kill_9_during_the_end_then_restart_finishes_the_end(tmp_path: Path) -> None:
    rng = random.Random(20261201)  # noqa: S311 - timing jitter, not security
    results = [run_once(tmp_path / f"run{i}", rng) for i in range(RUNS)]
    stages = {s: sum(1 for r, _, _ in results if r == s) for s in ("ENDING", "REPLIED", "DONE")}
    print(f"{RUNS} kills, by the child's last word: {stages}; ended after restart: "
          f"{sum(1 for _, e, _ in results if e)}; closure reports per room at most {max(n for _, _, n in results)}")
    assert stages["DONE"] < RUNS, "the kills should land inside the closing steps, not after them"
