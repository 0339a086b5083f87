"""Ending with the registre locked: how long the event loop stalls, and how soon access is refused.

    .venv/bin/python -m bench.bench_delivery [--runs 20]

Each run opens an incident on a harness desk, then ends it, once with the registre free and once
while another connection holds ``BEGIN EXCLUSIVE`` on it (released 1 s later). A ticker task
measures the event loop's lag every 5 ms throughout. Printed: the loop's worst lag during the
end (free vs locked, and the ratio; with the lock it includes the first closing attempt and the
refused link's own audit, 200 ms each at most), the time from /fin to access revoked (links,
sessions, streams), and the time until the end is recorded once the lock is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from bot import commands
from bot.access import LinkGone
from tests.harness import Harness


async def ticker(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.005)
        lags.append((loop.time() - t - 0.005) * 1000)


async def one(tmp: Path, locked: bool) -> tuple[float, float, float]:
    h = await Harness(tmp).start()
    other = sqlite3.connect(tmp / "registre.sqlite3", isolation_level=None)
    try:
        cmd = commands.parse("/alerte attaque_armee")
        end = commands.parse("/fin")
        assert cmd is not None and end is not None
        await commands.run(h.desk, cmd, h.person("chef"), "console", "fr")
        await h.fanout.drain()
        token = next(t for t in h.rooms[0].texts() if "/live/" in t).split("/live/")[1].split()[0]
        lags: list[float] = []
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(lags, stop))
        await asyncio.sleep(0.01)  # the ticker is asleep: what /fin blocks shows as its lag
        if locked:
            other.execute("BEGIN EXCLUSIVE")
        revoked: list[float] = []
        h.access.add_revocation_listener(lambda _: revoked.append(time.perf_counter()))
        t0 = time.perf_counter()
        await commands.run(h.desk, end, h.person("cic"), "console", "fr")
        refused = (revoked[0] - t0) * 1000
        try:
            h.access.check_link(token)
            raise AssertionError("link still valid after /fin")
        except LinkGone:
            pass
        if locked:
            await asyncio.sleep(1.0)
            other.execute("ROLLBACK")
        await h.desk.closer.wait()
        recorded = (time.perf_counter() - t0) * 1000 - (1000 if locked else 0)
        await asyncio.sleep(0.02)
        stop.set()
        await tick
        return max(lags, default=0.0), refused, recorded
    finally:
        other.close()
        await h.stop()


async def main(runs: int) -> None:
    results: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as d:
        for i in range(runs):
            for locked in (False, True):
                path = Path(d) / f"{i}-{locked}"
                path.mkdir()
                results[locked].append(await one(path, locked))
    for locked, rows in results.items():
        lag, refused, recorded = (statistics.median(r[k] for r in rows) for k in range(3))
        worst = max(r[0] for r in rows)
        print(f"registre {'locked' if locked else 'free  '}: loop lag median-of-max {lag:7.1f} ms (worst {worst:6.1f}), "
              f"/fin → access revoked {refused:6.2f} ms, end recorded {recorded:7.1f} ms after the lock's release"
              if locked else
              f"registre free  : loop lag median-of-max {lag:7.1f} ms (worst {worst:6.1f}), "
              f"/fin → access revoked {refused:6.2f} ms, end recorded {recorded:7.1f} ms after /fin")
    free = statistics.median(r[0] for r in results[False])
    locked_lag = statistics.median(r[0] for r in results[True])
    print(f"loop lag locked / free: {locked_lag / max(free, 0.01):.1f}x (bounded by the 200 ms busy timeout per write; was 5 s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
