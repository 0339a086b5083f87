"""The room tile puts the alarm's zone first and twice as large: the packing, and the drawing."""

from __future__ import annotations

import io
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bot.media.synthetic import EncodedLoop
from bot.media.tiles import MosaicRenderer, TileInput, grid, pack
from tests.media.test_tiles import tiles

NOW = datetime(2026, 11, 25, 19, 4, 0)


@given(st.integers(1, 24), st.integers(0, 8), st.one_of(st.none(), st.integers(1, 6)))
def test_pack_covers_each_cell_once_and_featured_tiles_are_twice_as_large(count: int, featured: int,
                                                                          columns: int | None) -> None:
    cols, rows, cells = pack(count, featured, columns)
    assert len(cells) == count
    taken: set[tuple[int, int]] = set()
    for index, (cx, cy, span) in enumerate(cells):
        assert span == (2 if index < featured and cols >= 2 else 1)
        spots = {(cx + i, cy + j) for i in range(span) for j in range(span)}
        assert not spots & taken and all(0 <= x < cols and 0 <= y < rows for x, y in spots)
        taken |= spots
    if not featured:  # the plain grid, row by row
        assert (cols, rows) == grid(count, columns)
        assert [(cx, cy) for cx, cy, _ in cells] == [(i % cols, i // cols) for i in range(count)]


def test_room_tile_draws_the_zone_large_with_its_amber_frame(small_loop: EncodedLoop) -> None:
    r = MosaicRenderer(tile_width=160, tile_height=90, header_height=20)
    inputs: list[TileInput] = tiles(small_loop, 6)
    img = Image.open(io.BytesIO(r.render(inputs, now=NOW, featured=2)))
    assert img.size == r.size_for(6, None, 2)
    assert img.size[1] > r.size_for(6)[1]  # larger than the plain mosaic
    amber = img.convert("RGB").getpixel((1, 20 + 90))  # the first (featured) tile's frame, left edge
    assert amber[0] > 200 and 120 < amber[1] < 220 and amber[2] < 90
    plain = img.convert("RGB").getpixel((img.width - 2, img.height - 2))
    assert not (plain[0] > 200 and plain[2] < 90)
