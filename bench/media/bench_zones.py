"""What zones and phone-legible labels cost: the page mosaic and the rooms' tile, against the
4-column page mosaic Vigie drew before (the baseline, measured in the same run).

Twenty synthetic cameras (320x180 keyframes, decoded once and cached, as on a live page): the
median CPU of one composition with the viewer's watermark and the JPEG, its size (what a phone
downloads every refresh), and the ratio to the baseline. Run:
``.venv/bin/python -m bench.media.bench_zones``.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from typing import Any

from bot.media.synthetic import encode_loop
from bot.media.tiles import MosaicRenderer, TileInput
from bot.media.units import AccessUnit

ROUNDS = 15
NOW = datetime(2026, 12, 1, 19, 4)


def _tiles(count: int = 20) -> list[TileInput]:
    loop = encode_loop("Banc d'essai", width=320, height=180, seconds=1)
    data, key = loop.packets[0]
    assert key  # noqa: S101 - the loop starts on a keyframe
    return [TileInput(f"c{i}", f"Sorties de secours {i}", AccessUnit(data, 0, True, loop.params, seq=i + 1,
                                                                      received=time.monotonic()), True)
            for i in range(count)]


def _measure(r: MosaicRenderer, tiles: list[TileInput], **kw: Any) -> tuple[float, int, tuple[int, int]]:
    r.render_image(tiles, now=NOW, **kw)  # decode once: later rounds reuse the cached pictures
    cpu, size, dims = [], 0, (0, 0)
    for _ in range(ROUNDS):
        started = time.thread_time()
        image = r.render_image(tiles, now=NOW, **kw)
        size = len(r.stamp(image, "Brigadier Lucie Perrin", NOW))
        cpu.append((time.thread_time() - started) * 1000)
        dims = image.size
    return statistics.median(cpu), size, dims


def main() -> None:
    tiles = _tiles()
    r = MosaicRenderer(tile_width=320, tile_height=180, jpeg_quality=70)
    cases = [
        ("page, 4 columns (baseline)", {"columns": 4}),
        ("page, 2 columns, zone marked", {"columns": 2, "marked": 5}),
        ("room tile, plain", {}),
        ("room tile, 5 zone cameras 2x", {"featured": 5}),
    ]
    base_ms, base_size, _ = _measure(r, tiles, columns=4)
    print(f"{'mosaic (20 cameras)':32s} {'pixels':>10s} {'CPU ms':>7s} {'x base':>7s} {'kB':>5s} {'x base':>7s}")
    for name, kw in cases:
        ms, size, (w, h) = _measure(r, tiles, **kw)
        print(f"{name:32s} {w:>4d}x{h:<5d} {ms:7.1f} {ms / base_ms:7.2f} {size / 1024:5.0f} {size / base_size:7.2f}")
    scale = 382 / (2 * r.tile_width)  # the mosaic shown 382 CSS px wide on a 390 px phone
    print(f"label height on a 390 px phone: {r.label_px * scale:.1f} CSS px (was {max(11, 180 // 14) * 382 / 1280:.1f})")


if __name__ == "__main__":
    main()
