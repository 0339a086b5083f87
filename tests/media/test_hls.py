"""The in-memory HLS window: segments cut at keyframes, a bounded sliding window, a new map
after new codec parameters, and a playlist that lists exactly what it holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.media.fmp4 import fragment
from bot.media.hls import MAX_SEGMENT_S, MIN_SEGMENTS, HlsWindow, decode_time
from bot.media.units import CLOCK_RATE

FRAME = CLOCK_RATE // 25


def frames(count: int, gop: int, start: int = 0, size: int = 100) -> list[bytes]:
    return [fragment(i + 1, start + i * FRAME, FRAME, bytes(size), i % gop == 0) for i in range(count)]


def test_segments_start_on_keyframes_and_the_window_slides() -> None:
    window = HlsWindow(target=1.0, window=4)
    window.feed(b"\x00\x00\x00\x10ftypiso5" + bytes(4))
    for chunk in frames(25 * 10, gop=25):
        window.feed(chunk)
    assert [s.sequence for s in window.segments] == [6, 7, 8, 9]
    assert all(s.keyframe and abs(s.duration - 1.0) < 1e-6 for s in window.segments)
    assert decode_time(window.segments[0].parts[0]) == 5 * CLOCK_RATE
    text = window.playlist()
    assert text is not None
    assert "#EXT-X-MEDIA-SEQUENCE:6" in text and text.count("#EXTINF:1.000,") == 4
    assert text.count('#EXT-X-MAP:URI="init-1.mp4"') == 1 and "seg-9.m4s" in text and "seg-5.m4s" not in text
    window.clear()
    assert window.playlist() is None and not window.maps


def test_a_very_long_gop_is_cut_mid_gop_and_a_new_init_is_a_discontinuity() -> None:
    window = HlsWindow(target=1.0, window=10)
    window.feed(b"\x00\x00\x00\x10ftypiso5" + b"AAAA")
    for chunk in frames(25 * 13, gop=25 * 20):
        window.feed(chunk)
    assert [s.keyframe for s in window.segments] == [True, False]
    assert all(abs(s.duration - MAX_SEGMENT_S) < 1e-6 for s in window.segments)
    window.feed(b"\x00\x00\x00\x10ftypiso5" + b"BBBB")
    for chunk in frames(25 * 4, gop=25, start=20 * CLOCK_RATE):
        window.feed(chunk)
    text = window.playlist()
    assert text is not None and text.count("#EXT-X-DISCONTINUITY\n") == 1
    assert '#EXT-X-MAP:URI="init-2.mp4"' in text and set(window.maps) == {1, 2}


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=400))
def test_the_window_is_bounded_and_lists_only_what_it_holds(gop: int, count: int) -> None:
    window = HlsWindow(target=1.0, window=3)
    window.feed(b"\x00\x00\x00\x10ftypiso5" + bytes(4))
    for chunk in frames(count, gop=gop):
        window.feed(chunk)
    assert len(window.segments) <= 3
    text = window.playlist()
    if len(window.segments) < MIN_SEGMENTS:
        assert text is None
        return
    assert text is not None
    listed = [int(line[4:-4]) for line in text.splitlines() if line.startswith("seg-")]
    assert listed == [s.sequence for s in window.segments]
    assert all(window.segment(n) is not None for n in listed)
