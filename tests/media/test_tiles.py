"""Mosaics: size and grid, HORS LIGNE, EXERCICE, privacy masks, watermark, tile cache."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import SimpleNamespace

import pytest
from PIL import Image, ImageDraw, ImageStat

from bot.media import cells as cells_module
from bot.media import tiles as tiles_module
from bot.media.synthetic import EncodedLoop
from bot.media.tiles import Mask, MosaicRenderer, TileInput, decode_keyframe, grid, tile_inputs
from bot.media.units import AccessUnit

NOW = datetime(2025, 7, 14, 22, 30, 5)


def keyframe(loop: EncodedLoop, seq: int = 1, age: float = 0.0) -> AccessUnit:
    data, key = loop.packets[0]
    assert key
    return AccessUnit(data, 0, True, loop.params, seq=seq, received=time.monotonic() - age)


def tiles(loop: EncodedLoop, count: int, **overrides: object) -> list[TileInput]:
    out = [TileInput(f"c{i}", f"Caméra {i} — entrée", keyframe(loop, i + 1), True) for i in range(count)]
    for index, tile in overrides.items():
        out[int(index.removeprefix("t"))] = tile  # type: ignore[assignment]
    return out


def pixels(img: Image.Image) -> list[tuple[int, ...]]:
    raw = img.convert("RGB").tobytes()
    return [tuple(raw[i : i + 3]) for i in range(0, len(raw), 3)]


def region(img: Image.Image, box: tuple[int, int, int, int]) -> ImageStat.Stat:
    return ImageStat.Stat(img.crop(box))


@pytest.mark.parametrize(
    ("count", "cols", "rows"), [(1, 1, 1), (2, 2, 1), (4, 2, 2), (9, 3, 3), (12, 4, 3), (20, 5, 4)]
)
def test_grid(count: int, cols: int, rows: int) -> None:
    assert grid(count) == (cols, rows)


def test_mosaic_size_and_jpeg(small_loop: EncodedLoop) -> None:
    renderer = MosaicRenderer(tile_width=192, tile_height=108)
    data = renderer.render(tiles(small_loop, 20), now=NOW)
    img = Image.open(io.BytesIO(data))
    assert img.format == "JPEG"
    assert img.size == (5 * 192, 4 * 108 + renderer.header_height)
    # only the cameras passed in are drawn: 3 cameras, a 2x2 grid
    assert renderer.render_image(tiles(small_loop, 3), now=NOW).size == (
        2 * 192,
        2 * 108 + renderer.header_height,
    )


def test_offline_and_stale_cameras_show_hors_ligne(small_loop: EncodedLoop) -> None:
    renderer = MosaicRenderer(tile_width=192, tile_height=108, stale_after=5)
    hh = renderer.header_height
    offline = TileInput("c1", "Parvis", keyframe(small_loop, 2), online=False)
    stale = TileInput("c2", "Quai", keyframe(small_loop, 3, age=60), online=True)
    never = TileInput("c3", "Toit", None, online=True)
    img = renderer.render_image([tiles(small_loop, 1)[0], offline, stale, never], now=NOW)
    assert renderer.last_stats.offline == 3 and renderer.last_stats.decoded == 1
    live_tile = region(img, (10, hh + 10, 180, hh + 80))
    for x, y in ((192, hh), (0, hh + 108), (192, hh + 108)):
        placeholder = region(img, (x + 4, y + 4, x + 60, y + 30))  # a corner: plain placeholder grey
        assert placeholder.mean == pytest.approx([56, 56, 56], abs=1)
        text = img.crop((x + 20, y + 40, x + 172, y + 60))
        assert any(r > 200 and g < 120 for r, g, _ in pixels(text))  # red HORS LIGNE letters
    assert live_tile.stddev[0] > 5  # a real picture, not a flat placeholder


def test_drill_banner(small_loop: EncodedLoop) -> None:
    renderer = MosaicRenderer(tile_width=192, tile_height=108)
    normal = renderer.render_image(tiles(small_loop, 4), now=NOW)
    drill = renderer.render_image(tiles(small_loop, 4), now=NOW, drill=True)
    hh = renderer.header_height
    corner = (2, 2, 40, 6)
    assert region(normal, corner).mean == pytest.approx([28, 32, 40], abs=1)
    assert region(drill, corner).mean == pytest.approx([255, 196, 0], abs=1)  # yellow EXERCICE band
    middle = drill.crop((drill.width // 2 - 40, 0, drill.width // 2 + 40, hh))
    assert any(sum(p) < 100 for p in pixels(middle))  # black EXERCICE letters
    assert (
        normal.crop((0, hh, normal.width, normal.height)).tobytes()
        == drill.crop((0, hh, drill.width, drill.height)).tobytes()
    )


def test_privacy_mask_is_solid(small_loop: EncodedLoop) -> None:
    renderer = MosaicRenderer(tile_width=192, tile_height=108, mask_colour=(10, 200, 30))
    masked = TileInput("c0", "Loges", keyframe(small_loop, 1), True, (Mask(0.25, 0.1, 0.75, 0.6),))
    img = renderer.render_image([masked], now=NOW)
    hh = renderer.header_height
    box = (48, hh + 11, 144, hh + 64)  # inside 0.25..0.75 x 0.1..0.6 of a 192x108 picture
    colours = set(pixels(img.crop(box)))
    assert colours == {(10, 200, 30)}
    # also after JPEG, the region's interior stays the mask colour
    jpeg = Image.open(io.BytesIO(renderer.render([masked], now=NOW)))
    inner = region(jpeg, (box[0] + 6, box[1] + 6, box[2] - 6, box[3] - 6))
    assert inner.mean == pytest.approx([10, 200, 30], abs=6) and max(inner.stddev) < 4


def test_masks_refuse_nonsense() -> None:
    with pytest.raises(ValueError):
        Mask(0.5, 0.5, 0.4, 0.9)


def test_watermark_marks_the_picture(small_loop: EncodedLoop) -> None:
    renderer = MosaicRenderer(tile_width=192, tile_height=108)
    plain = renderer.render_image(tiles(small_loop, 4), now=NOW)
    marked = renderer.render_image(tiles(small_loop, 4), now=NOW, watermark="Brigadier Hélène Dupré")
    diff = sum(a != b for a, b in zip(pixels(plain), pixels(marked), strict=True))
    assert 0.01 < diff / (plain.width * plain.height) < 0.5  # visible, yet faint and sparse


@pytest.mark.parametrize("strip", [1, 7, 16, 10_000])
def test_watermark_strips_paint_what_the_whole_stamp_would(strip: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # the watermark is pasted as strips cropped to their ink (a quarter of the area): the
    # picture must be exactly the one pasting the whole rotated stamp gives, overlaps included
    renderer = MosaicRenderer(tile_width=320, tile_height=180)
    base = Image.effect_noise((640, 1000), 60).convert("RGB")
    text = "Lt. Camille Durand — 14/07/2025 22:30:05"
    font = renderer._mark_font
    w, h = int(font.getlength(text)) + 8, int(getattr(font, "size", 12) * 1.5)
    stamp = Image.new("L", (w, h), 0)
    ImageDraw.Draw(stamp).text((4, h // 2), text, font=font, fill=60, anchor="lm")
    stamp = stamp.rotate(28, expand=True, resample=Image.Resampling.BILINEAR)
    white = Image.new("RGB", stamp.size, (255, 255, 255))
    expected = base.copy()
    step_x, step_y = stamp.width + w // 4, max(stamp.height // 2, h * 4)
    for row, y in enumerate(range(-stamp.height // 2, expected.height, step_y)):
        for x in range(-stamp.width // 2 - (row % 2) * step_x // 2, expected.width, step_x):
            expected.paste(white, (x, y), stamp)
    monkeypatch.setattr(tiles_module, "_MARK_STRIP", strip)
    marked = base.copy()
    renderer._draw_watermark(marked, text)
    assert marked.tobytes() == expected.tobytes() != base.tobytes()


def test_keyframes_are_decoded_once_per_gop(small_loop: EncodedLoop) -> None:
    renderer = MosaicRenderer(tile_width=192, tile_height=108)
    batch = tiles(small_loop, 6)
    renderer.render(batch, now=NOW)
    assert renderer.last_stats.decoded == 6
    renderer.render(batch, now=NOW)
    assert renderer.last_stats.decoded == 0 and renderer.last_stats.cached == 6


def test_decode_keyframe(small_loop: EncodedLoop) -> None:
    frame = decode_keyframe(keyframe(small_loop))
    assert (frame.width, frame.height) == (320, 180)


def test_undecodable_keyframe_is_a_placeholder(small_loop: EncodedLoop) -> None:
    bad = AccessUnit(
        b"\x00\x00\x00\x01\x65garbage", 0, True, small_loop.params, seq=99, received=time.monotonic()
    )
    renderer = MosaicRenderer(tile_width=192, tile_height=108)
    renderer.render_image([TileInput("c9", "Cassée", bad, True)], now=NOW)
    assert renderer.last_stats.decoded == 0


async def test_render_async(small_loop: EncodedLoop) -> None:
    data = await MosaicRenderer().render_async(
        tiles(small_loop, 2), timeout=10, drill=True, title="Stade — exercice"
    )
    assert data[:2] == b"\xff\xd8"


def test_concurrent_mosaics_decode_each_keyframe_once(small_loop: EncodedLoop) -> None:
    renderer = MosaicRenderer(tile_width=192, tile_height=108)
    batch = tiles(small_loop, 8)
    with ThreadPoolExecutor(max_workers=6) as pool:
        images = list(pool.map(lambda _: renderer.render_image(batch, now=NOW), range(12)))
    assert len(images) == 12
    assert renderer.decodes == 8
    # a new keyframe for one camera: only that cell is decoded again
    batch[3] = TileInput("c3", "Caméra 3", keyframe(small_loop, 100), True)
    renderer.render_image(batch, now=NOW)
    assert renderer.decodes == 9 and renderer.last_stats.decoded == 1 and renderer.last_stats.cached == 7


def test_a_hung_decode_keeps_the_previous_picture(small_loop: EncodedLoop,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = MosaicRenderer(tile_width=192, tile_height=108, decode_timeout=0.2)
    batch = tiles(small_loop, 2)
    first = renderer.render_image(batch, now=NOW)
    release = threading.Event()
    real = cells_module.decode_keyframe

    def hung(au: AccessUnit) -> object:
        release.wait(30)
        return real(au)

    monkeypatch.setattr(cells_module, "decode_keyframe", hung)
    batch[0] = TileInput("c0", "Caméra 0", keyframe(small_loop, 50), True)
    try:
        again = renderer.render_image(batch, now=NOW)
        assert renderer.last_stats.failures == ["c0"]
        # the cell kept its last picture instead of turning into HORS LIGNE
        assert pixels(again.crop((0, 60, 192, 100))) == pixels(first.crop((0, 60, 192, 100)))
    finally:
        release.set()
        renderer.close()


def test_mosaic_uses_the_substream_when_it_is_up(small_loop: EncodedLoop) -> None:
    class Cam:
        def __init__(self, camera_id: str, au: AccessUnit | None, online: bool) -> None:
            self.camera_id, self.name, self._au, self._online = camera_id, camera_id, au, online

        def keyframe(self) -> AccessUnit | None:
            return self._au

        def status(self) -> SimpleNamespace:
            return SimpleNamespace(online=self._online)

    main = [Cam("a", keyframe(small_loop, 1), True), Cam("b", keyframe(small_loop, 2), True)]
    sub_a = keyframe(small_loop, 7)
    subs = {"a": Cam("a", sub_a, True), "b": Cam("b", keyframe(small_loop, 8), False)}
    got = tile_inputs(main, None, subs)  # type: ignore[arg-type]
    assert got[0].keyframe is sub_a and got[0].online
    assert got[1].keyframe is main[1]._au  # substream down: the main stream draws the cell


def test_decode_budget_refreshes_the_oldest_pictures_first(small_loop: EncodedLoop) -> None:
    renderer = MosaicRenderer(tile_width=192, tile_height=108)
    batch = tiles(small_loop, 6)
    renderer.render_image(batch, now=NOW, decode_budget_ms=0)  # no picture yet: all decoded anyway
    assert renderer.last_stats.decoded == 6
    renderer.cells._cost_ms = dict.fromkeys((t.camera_id for t in batch), 10.0)
    fresh = [TileInput(t.camera_id, t.label, keyframe(small_loop, 100 + i), True) for i, t in enumerate(batch)]
    renderer.render_image(fresh, now=NOW, decode_budget_ms=25)
    stats = renderer.last_stats
    assert (stats.decoded, stats.deferred) == (2, 4)
    # the next mosaic refreshes those left over, oldest pictures first
    renderer.render_image(fresh, now=NOW, decode_budget_ms=25)
    assert (renderer.last_stats.decoded, renderer.last_stats.deferred) == (2, 2)
    renderer.render_image(fresh, now=NOW)  # no budget (room tiles): every changed cell
    assert renderer.last_stats.decoded == 2 and renderer.decodes == 12
