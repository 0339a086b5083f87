"""The whole bot in its own process, for bench_live's soak: 20 cameras, one open incident.

    python -m bench.media.live_bot --port P (--urls rtsp://...,rtsp://... [--subs rtsp://...,...] | --synthetic N)

Builds the real app (build_app, default MediaOptions) on the demo's settings with the given
cameras and prints ``{"ready": true}`` once they are online. The line ``alert`` on its stdin
opens an incident as the venue's security chief and gets ``{"link", "person", "password"}``
back; it serves until its stdin closes. Its data directory is a fresh temporary one (SQLite
only), removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.media.memory_report import report  # noqa: E402
from bot.loops import new_event_loop  # noqa: E402
from bot.media.service import MediaOptions  # noqa: E402
from tests.web.support import AGENT, Cam, LiveApp  # noqa: E402

logger = logging.getLogger(__name__)


async def serve(port: int, cams: list[Cam], data_dir: Path, options: MediaOptions) -> None:
    # production media options (not the tests' cheap ones); a recording room keeps captions only
    live = await LiveApp(data_dir, cams, options=options, port=port).start()
    try:
        await live.online(timeout=60)
        print(json.dumps({"ready": True}), flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):  # until the bench closes our stdin
            if line.strip() == "mem":  # where the resident memory goes (memory_report.py)
                print(json.dumps({**report(), "viewers": _viewer_queues()}), flush=True)
            elif line.strip() == "alert":
                _, link = await live.alert()
                print(json.dumps({"link": link, "person": AGENT, "password": live.passwords[AGENT]}), flush=True)
    finally:
        await live.stop()


def _viewer_queues() -> dict[str, object]:
    """The viewers' queues: fragments waiting for their sockets (what the video holds per viewer)."""
    import gc

    from bot.media.relay import Segment, Viewer
    live = gc.get_objects()
    viewers = [o for o in live if isinstance(o, Viewer) and not o.closed]
    segments = [o for o in live if isinstance(o, Segment)]
    return {"open": len(viewers), "queued": [v.backlog for v in viewers],
            "queued_mb": round(sum(v.queue.nbytes for v in viewers) / 2**20, 1),
            "segments_alive": len(segments), "segments_mb": round(sum(s.size for s in segments) / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--urls", default="")
    parser.add_argument("--subs", default="", help="the cameras' substream URLs, in the same order")
    parser.add_argument("--synthetic", type=int, default=0)
    parser.add_argument("--relay-window", type=float, default=MediaOptions().relay_window)
    parser.add_argument("--tracemalloc", type=int, default=0, help="trace Python allocations, N frames deep")
    args = parser.parse_args()
    if args.tracemalloc:
        tracemalloc.start(args.tracemalloc)
    logging.basicConfig(level=logging.WARNING)
    urls: list[str | None] = [u for u in args.urls.split(",") if u] or [None] * args.synthetic
    subs = [u for u in args.subs.split(",") if u]
    cams = [Cam(f"cam{i + 1}", f"Caméra {i + 1}", url, substream_url=subs[i] if i < len(subs) else None)
            for i, url in enumerate(urls)]
    data_dir = Path(tempfile.mkdtemp(prefix="vigie-bench-"))
    try:
        # the loop the bot runs on in production (bot.loops), not asyncio.run's default one
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve(args.port, cams, data_dir, MediaOptions(relay_window=args.relay_window)))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
