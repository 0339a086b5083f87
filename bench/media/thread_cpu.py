"""Where a process's CPU goes, thread by thread: the event loop (the main thread) against the others.

    python -m bench.media.thread_cpu PID [--every 2] [--bins 50,68]

Run beside ``bench_live --phases soak`` on its bot (``pgrep -f bench.media.live_bot``). Every
``--every`` seconds it reads /proc/PID/task/*/stat (user and system time) and status (context
switches), and the number of the process's sockets (the viewers' WebSockets and the page's
polls): the samples are grouped by that number (``--bins``: upper bounds of the socket counts
taken as 0 and 10 viewers, the rest as 20), and each group's CPU is printed for the main
thread (the event loop: relay fan-out, WebSocket writes, HTTP) and for the other threads
(the ingest thread reading every RTSP camera, which hands the frames of watched cameras to
the loop; the synthetic cameras' threads; executors). The slope
between groups is the per-viewer cost of each side. Ends with the process; Ctrl-C prints
what it has.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path

Sample = tuple[float, dict[str, tuple[float, float, int]], int]  # time, tid → (user s, sys s, switches), sockets


def sample(pid: int) -> Sample | None:
    tick = os.sysconf("SC_CLK_TCK")
    threads: dict[str, tuple[float, float, int]] = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                status = Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines()
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that just ended
            switches = sum(int(line.split()[1]) for line in status if line.startswith(("voluntary_", "nonvoluntary_")))
            threads[tid] = (int(fields[11]) / tick, int(fields[12]) / tick, switches)
        sockets = sum(1 for fd in os.listdir(f"/proc/{pid}/fd")
                      if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    return time.monotonic(), threads, sockets


def report(pid: int, samples: list[Sample], bins: tuple[int, int]) -> None:
    groups: dict[int, dict[str, list[tuple[float, float, float]]]] = defaultdict(lambda: defaultdict(list))
    for (t0, before, _), (t1, after, sockets) in zip(samples, samples[1:], strict=False):
        level = 0 if sockets <= bins[0] else 10 if sockets <= bins[1] else 20
        sums = {"main": [0.0, 0.0, 0.0], "others": [0.0, 0.0, 0.0]}
        for tid, (user, system, switches) in after.items():
            if tid in before:
                side = sums["main" if tid == str(pid) else "others"]
                side[0] += (user - before[tid][0]) / (t1 - t0) * 100
                side[1] += (system - before[tid][1]) / (t1 - t0) * 100
                side[2] += (switches - before[tid][2]) / (t1 - t0)
        for side, (user, system, switches) in sums.items():
            groups[level][side].append((user, system, switches))
    for level in sorted(groups):
        line = f"~{level:2d} viewers, {len(groups[level]['main']):3d} samples"
        for side, rows in groups[level].items():
            n = len(rows)
            line += (f" | {side}: user {sum(r[0] for r in rows) / n:5.2f} % sys {sum(r[1] for r in rows) / n:5.2f} %"
                     f" switches {sum(r[2] for r in rows) / n:6.0f}/s")
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("pid", type=int)
    parser.add_argument("--every", type=float, default=2.0)
    parser.add_argument("--bins", default="50,68", help="socket counts read as up to 0 and up to 10 viewers")
    args = parser.parse_args()
    low, high = (int(b) for b in args.bins.split(","))
    samples: list[Sample] = []
    try:
        while (s := sample(args.pid)) is not None:
            samples.append(s)
            time.sleep(args.every)
    except KeyboardInterrupt:
        pass
    report(args.pid, samples, (low, high))


if __name__ == "__main__":
    main()
