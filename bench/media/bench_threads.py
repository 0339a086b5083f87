"""The CPU per viewer, thread by thread, from paired levels in one bot.

    python -m bench.media.bench_threads [--viewers 20] [--cameras 20] [--pairs 4] [--seconds 30]

One bot (``bench.media.live_bot``) on the GStreamer farm, an incident open; ``--viewers``
WebSocket viewers (viewer i on camera i mod ``--cameras``: 20 is one camera each, 1 is the
fan-out alone) are added and removed in turn, ``--pairs`` times (the order alternates so a
trend of the machine's load cancels). Each level is measured over ``--seconds`` after 5 s to
settle, by each thread's time on a CPU (``/proc/PID/task/*/schedstat``, exact, where the
ticks of ``stat`` are sampled): the event loop (the main thread: relay fan-out, WebSocket
writes, HTTP) against the other threads (the ingest thread, executors). Printed: each pair's
difference per viewer for each side and in total, and the medians.

Where ``bench_live`` says how much a viewer costs, this says where: it is how the relay's
design was chosen (``relay.Inbox``: written and sent from the reader thread, the cost moved
to that thread instead of going away). Nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.media.bench_live import Viewers, at_levels, live_bot, sign_in  # noqa: E402
from bench.media.bench_media import bench_farm  # noqa: E402
from bot.media.service import MediaOptions  # noqa: E402


def on_cpu(pid: int) -> tuple[float, float]:
    """Seconds on a CPU so far: (the main thread, all the others)."""
    main = others = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that just ended
        if int(tid) == pid:
            main += ns
        else:
            others += ns
    return main / 1e9, others / 1e9


async def measure(urls: list[str], subs: list[str], viewers: int, cameras: int, pairs: int, seconds: float,
                  window: float) -> None:
    args = ["--urls", ",".join(urls), "--subs", ",".join(subs), "--relay-window", str(window)]
    async with live_bot(args) as (proc, base):
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(b"alert\n")
        proc.stdin.flush()
        info = json.loads(await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30))
        async with aiohttp.ClientSession() as s:
            group = Viewers(s, base, await sign_in(s, info, viewers), cameras)

            async def level() -> tuple[float, float]:
                (m0, o0), w0, sent = on_cpu(proc.pid), time.monotonic(), group.counts[0]
                await asyncio.sleep(seconds)
                (m1, o1), dt = on_cpu(proc.pid), time.monotonic() - w0
                print(f"  {group.count:3d} viewers: event loop {(m1 - m0) / dt * 100:5.2f} %, other threads {(o1 - o0) / dt * 100:5.2f} %, "
                      f"{(group.counts[0] - sent) * 8 / dt / 1e6:4.0f} Mbit/s sent", flush=True)
                return (m1 - m0) / dt * 100, (o1 - o0) / dt * 100

            runs = await at_levels(group, (0, viewers), pairs, level)
    # each pair: the level with viewers less the one without
    pair_costs = [(dict(run)[viewers], dict(run)[0]) for run in runs]
    print(f"\nper viewer ({viewers} viewers on {min(cameras, len(urls))} cameras, relay window "
          f"{window * 1000:g} ms), % of a core, each pair then the median:")
    for name, pick in (("event loop", lambda p: p[0]), ("other threads", lambda p: p[1]),
                       ("total", lambda p: p[0] + p[1])):
        per = [(pick(hi) - pick(lo)) / viewers for hi, lo in pair_costs]
        print(f"  {name:14} {' '.join(f'{p:+.3f}' for p in per)}   median {statistics.median(per):+.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=20)
    parser.add_argument("--cameras", type=int, default=20, help="the viewers spread over this many cameras")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--relay-window", type=float, default=MediaOptions().relay_window)
    args = parser.parse_args()
    farm = bench_farm(20)
    try:
        asyncio.run(measure([farm.url(i + 1) for i in range(20)], [farm.sub_url(i + 1) for i in range(20)],
                            args.viewers, args.cameras, args.pairs, args.seconds, args.relay_window))
    finally:
        farm.stop()


if __name__ == "__main__":
    main()
