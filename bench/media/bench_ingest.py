"""The ingest's cost, three ways in one run: the PyAV floor, the bot's cameras on PyAV, the bot's reader.

    .venv/bin/python -m bench.media.bench_ingest [--cameras 20] [--seconds 20] [--reps 2]

On the GStreamer farm (tests/media/farm.py: 20 cameras at 1080p25 ~4 Mbit/s plus their 320x180
substreams, 40 RTSP streams in all), in one run and one process, the CPU of:

1. the demux floor the bot's figures are compared with (``bench_media.demux_only``): one thread
   per stream, PyAV reading packets and doing nothing with them;
2. the bot's ``Camera``s on PyAV sources (``RtspSource``, one reader thread per stream: what the
   bot ran before the ingest loop), with their timeline, GOP cache and keyframe tap;
3. the same ``Camera``s on the bot's reader (``rtsp_client.LoopRtspSource``): every stream read
   by one event loop in the ingest thread (``ingest.IngestLoop``), RTP put back into access
   units from the packets, no thread per camera.

No viewer: this is the price of having the cameras online. The per-viewer cost, which the
threads' hand-overs made expensive, is measured by ``bench_live``. Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.media.bench_media import bench_farm, cpu, demux_only, phase  # noqa: E402
from bot.media.cameras import Camera, CameraHub  # noqa: E402
from bot.media.ingest import IngestLoop  # noqa: E402
from bot.media.rtsp import RtspSource  # noqa: E402
from bot.media.rtsp_client import LoopRtspSource  # noqa: E402


async def cameras(urls: list[str], seconds: float, loop_reader: bool) -> tuple[float, int]:
    """(% of a core, cameras online) of the bot's cameras reading every stream."""
    ingest = IngestLoop()
    hub = CameraHub(Camera(f"c{i}", f"Caméra {i}", LoopRtspSource(u) if loop_reader else RtspSource(u),
                           ingest=ingest) for i, u in enumerate(urls))
    hub.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(c.keyframe() is None for c in hub):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        c0, w0 = cpu(), time.monotonic()
        await asyncio.sleep(seconds)
        load = (cpu() - c0) / (time.monotonic() - w0) * 100
        return load, sum(s.online for s in hub.statuses())
    finally:
        await hub.aclose()
        ingest.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    farm = bench_farm(args.cameras)
    urls = [farm.url(i + 1) for i in range(args.cameras)] + [farm.sub_url(i + 1) for i in range(args.cameras)]
    rows: list[tuple[str, float, str]] = []
    try:
        for _ in range(args.reps):
            results: dict[str, float] = {}
            phase(results, "floor", urls, args.seconds, demux_only)
            floor = results["floor"]
            rows.append((f"PyAV demux, {len(urls)} threads (the floor)", floor, "1.00 ×"))
            for loop_reader in (False, True):
                load, online = asyncio.run(cameras(urls, args.seconds, loop_reader))
                name = ("the bot's cameras, ingest loop (one thread)" if loop_reader
                        else f"the bot's cameras, PyAV ({len(urls)} threads, before)")
                rows.append((name, load, f"{load / floor:.2f} × ({online}/{len(urls)} online)"))
    finally:
        farm.stop()
    print(f"\n{len(urls)} streams ({args.cameras} cameras 1080p25 ~4 Mbit/s + substreams), {args.seconds:g} s each")
    print(f"{'reader':60} {'CPU (% of a core)':>18}  against the floor (same run)")
    for name, load, ratio in rows:
        print(f"{name:60} {load:>18.1f}  {ratio}")


if __name__ == "__main__":
    main()
