"""The page mosaic's CPU per refresh on live RTSP cameras: main streams only, and with substreams.

Used by bench_live (one table, one run). Three renderers draw from the same cameras at the
page's refresh (every 2 s), each with its own pictures:

- main streams, no decode budget: what every refresh cost before (the baseline);
- main streams with the page's decode budget (``MediaOptions.mosaic_decode_budget_ms``);
- substreams (320x180), as the page draws them when the cameras have one.

The CPU of one refresh is the decoder threads' CPU for the keyframes it decoded plus the
composing thread's (tiles, header, the viewer's watermark and the JPEG), measured with
per-thread clocks, so the readers running beside it are left out.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import datetime

from bot.media.cameras import Camera, CameraHub
from bot.media.ingest import IngestLoop
from bot.media.rtsp_client import LoopRtspSource
from bot.media.service import MediaOptions
from bot.media.tiles import MosaicRenderer, tile_inputs


def _renderer(o: MediaOptions) -> MosaicRenderer:
    return MosaicRenderer(tile_width=o.tile_size[0], tile_height=o.tile_size[1], jpeg_quality=70)


def _refresh(renderer: MosaicRenderer, hub: CameraHub, subs: CameraHub | None, budget: float | None,
             columns: int) -> float:
    tiles = tile_inputs(hub, None, {c.camera_id: c for c in subs} if subs is not None else None)
    started = time.thread_time()
    image = renderer.render_image(tiles, columns=columns, decode_budget_ms=budget)
    renderer.stamp(image, "Lt. Camille Durand", datetime.now())
    stats = renderer.last_stats
    return stats.decode_cpu_ms + (time.thread_time() - started) * 1000


async def mosaic_cpu(urls: list[str], sub_urls: list[str], refreshes: int = 15) -> dict[str, list[float]]:
    """CPU ms of each refresh, per variant, the first (cold) refresh left out."""
    o = MediaOptions()
    ingest = IngestLoop()  # the bot's reader, as in MediaService
    hub = CameraHub(Camera(f"c{i}", f"Caméra {i + 1}", LoopRtspSource(u), ingest=ingest) for i, u in enumerate(urls))
    subs = CameraHub(Camera(f"c{i}", f"Caméra {i + 1}", LoopRtspSource(u), ingest=ingest)
                     for i, u in enumerate(sub_urls))
    hub.start()
    subs.start()
    variants = {
        "main streams, every changed cell (before)": (_renderer(o), None, None),
        "main streams, decode budget": (_renderer(o), None, o.mosaic_decode_budget_ms),
        "substreams": (_renderer(o), subs, o.mosaic_decode_budget_ms),
    }
    out: dict[str, list[float]] = {name: [] for name in variants}
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(c.keyframe() for c in (*hub, *subs)):
            await asyncio.sleep(0.2)
        for n in range(refreshes + 1):
            for name, (renderer, sub_hub, budget) in variants.items():
                cost = await asyncio.to_thread(_refresh, renderer, hub, sub_hub, budget, o.page_columns)
                if n:
                    out[name].append(cost)
            await asyncio.sleep(o.page_refresh_ms / 1000)
    finally:
        for renderer, _, _ in variants.values():
            renderer.close()
        await asyncio.gather(hub.aclose(), subs.aclose())
        ingest.stop()
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    p95 = sorted(values)[int(0.95 * (len(values) - 1))]
    return f"{statistics.median(values):.0f} / {p95:.0f} ms"
