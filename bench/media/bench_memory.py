"""Where the bot's memory goes with 20 farm cameras (+ substreams) and 10 viewers.

    .venv/bin/python -m bench.media.bench_memory [--cameras 20] [--viewers 10] [--seconds 90] [--tracemalloc 1]

Runs the bot as its own process (live_bot), opens an incident, connects the viewers (one
camera each, as bench_live's soak) and prints the breakdown of its resident memory
(memory_report.py: smaps by kind of mapping, the largest libraries, threads, and with
``--tracemalloc`` the top Python allocation sites) before any viewer and after ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.media.bench_live import live_bot, sign_in, viewer  # noqa: E402
from bench.media.bench_media import bench_farm  # noqa: E402


async def ask(proc: subprocess.Popen[bytes], line: str) -> dict[str, object]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line.encode() + b"\n")
    proc.stdin.flush()
    return dict(json.loads(await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)))


async def run(urls: list[str], subs: list[str], viewers: int, seconds: float, trace: int) -> None:
    args = ["--urls", ",".join(urls), "--subs", ",".join(subs), "--tracemalloc", str(trace)]
    async with live_bot(args) as (proc, base):
        await asyncio.sleep(20)
        print("no viewer:", json.dumps(await ask(proc, "mem"), indent=1), flush=True)
        info = await ask(proc, "alert")
        stop, counts = asyncio.Event(), [0]
        async with aiohttp.ClientSession() as s:
            cookies = await sign_in(s, info, viewers)
            tasks = [asyncio.create_task(viewer(s, base, ck, f"cam{i % len(urls) + 1}", stop,
                                                counts)) for i, ck in enumerate(cookies)]
            await asyncio.sleep(seconds)
            print(f"{viewers} viewers after {seconds:g} s:", json.dumps(await ask(proc, "mem"), indent=1), flush=True)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--viewers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--tracemalloc", type=int, default=0)
    args = parser.parse_args()
    farm = bench_farm(args.cameras)
    try:
        urls = [farm.url(i + 1) for i in range(args.cameras)]
        subs = [farm.sub_url(i + 1) for i in range(args.cameras)]
        asyncio.run(run(urls, subs, args.viewers, args.seconds, args.tracemalloc))
    finally:
        farm.stop()


if __name__ == "__main__":
    main()
