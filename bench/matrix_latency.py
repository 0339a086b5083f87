"""/alert → link latency over Matrix, measured from the duty officer's client.

A throwaway Synapse on loopback (tests/matrix/synapse_server.py), the real bot (build_app, real
desk, Matrix room), and a matrix-nio client playing the officer in an end-to-end encrypted room.
Each round: the officer sends ``/alert attaque_armee``; the clock stops when the officer's client
has received and decrypted the bot's link notice; then ``/fin`` closes the incident. Reports
p50/p95 (nearest rank) over the rounds, after a few unmeasured warm-up rounds.

    .venv/bin/python bench/matrix_latency.py [--rounds 50] [--warmup 3]

Needs ``.venv-synapse`` (scripts/synapse/install.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "matrix"))
sys.path.insert(0, str(ROOT))

from synapse_server import Synapse  # noqa: E402
from vigie_bot import (  # noqa: E402
    OFFICER,
    Bot,
    create_room,
    is_notice,
    new_officer,
    officer_ready,
    say,
    settings_for,
    timed_alert,
)

LINK = "ACCÈS VIDÉO OUVERT"
ENDED = "ACCÈS TERMINÉ"


def nearest_rank(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


async def run(rounds: int, warmup: int, workdir: Path) -> list[float]:
    synapse = Synapse(workdir / "synapse")
    await asyncio.to_thread(synapse.start)
    bot: Bot | None = None
    try:
        bot_user = synapse.register("vigie", admin=True)
        officer_user, officer = await new_officer(synapse, workdir / "officer", "OFFICERPHONE")
        try:
            room = await create_room(officer, [bot_user.user_id])
            settings = settings_for(synapse, bot_user, [room], {OFFICER: officer_user.user_id})
            bot = await Bot(settings, workdir / "data").start()
            await officer_ready(officer, room, bot_user.user_id)
            samples: list[float] = []
            for i in range(warmup + rounds):
                t = await timed_alert(officer, room, "/alert attaque_armee", LINK)
                if i >= warmup:
                    samples.append(t.seconds)
                mark = len(officer.events)
                await say(officer, room, "/fin")
                await officer.wait_for(is_notice(room, ENDED), since=mark, timeout=15)
            return samples
        finally:
            if bot is not None:
                await bot.stop()
            await officer.close()
    finally:
        await asyncio.to_thread(synapse.stop)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="vigie-matrix-bench-") as tmp:
        samples = asyncio.run(run(args.rounds, args.warmup, Path(tmp)))
    ms = [s * 1000 for s in samples]
    print(f"/alert sent → link received by the officer's client, {len(ms)} alerts (E2EE room, loopback Synapse)")
    print(f"  p50 {nearest_rank(ms, 50):.1f} ms   p95 {nearest_rank(ms, 95):.1f} ms   "
          f"min {min(ms):.1f}   mean {statistics.fmean(ms):.1f}   max {max(ms):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
