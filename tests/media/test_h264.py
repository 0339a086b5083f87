"""H.264 helpers: NAL splitting, avcC conversion, SPS fields and the MSE codec string."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.media.h264 import (
    avcc_to_annexb,
    codec_string,
    iter_nals,
    length_prefixed,
    lengths_to_annexb,
    mime_type,
    nal_type,
    parameter_sets,
    parse_sps,
)
from bot.media.synthetic import EncodedLoop


def test_nals_of_a_keyframe(small_loop: EncodedLoop) -> None:
    data, key = small_loop.packets[0]
    assert key
    types = [nal_type(n) for n in iter_nals(data)]
    assert types[:2] == [7, 8] and 5 in types
    sps, pps = parameter_sets(data)
    assert len(sps) == 1 and len(pps) == 1


def test_length_prefix_round_trip(small_loop: EncodedLoop) -> None:
    data, _ = small_loop.packets[0]
    assert list(iter_nals(lengths_to_annexb(b"".join(length_prefixed(data))))) == list(iter_nals(data))


def test_three_and_four_byte_start_codes() -> None:
    buf = b"\x00\x00\x00\x01\x67\x42\x00\x1f\x00\x00\x01\x68\xce\x3c\x80\x00\x00\x01\x65\x88"
    assert list(iter_nals(buf)) == [b"\x67\x42\x00\x1f", b"\x68\xce\x3c\x80", b"\x65\x88"]


def test_avcc_to_annexb() -> None:
    sps, pps = b"\x67\x64\x00\x28\xac", b"\x68\xee\x3c\xb0"
    avcc = bytes([1, 0x64, 0, 0x28, 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps + b"\x01"
    avcc += len(pps).to_bytes(2, "big") + pps
    annexb, size = avcc_to_annexb(avcc)
    assert size == 4
    assert list(iter_nals(annexb)) == [sps, pps]


@pytest.mark.parametrize(
    ("profile", "width", "height"), [("main", 640, 360), ("high", 1920, 1080), ("baseline", 320, 180)]
)
def test_sps_fields_match_the_encoder(profile: str, width: int, height: int) -> None:
    ctx = av.CodecContext.create("libx264", "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height, ctx.pix_fmt, ctx.time_base = width, height, "yuv420p", Fraction(1, 25)
    ctx.options = {"preset": "veryfast", "profile": profile}
    frame = av.VideoFrame(width, height, "yuv420p")
    frame.pts = 0
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    sps, _ = parameter_sets(bytes(packets[0]))
    info = parse_sps(sps[0])
    assert (info.width, info.height) == (width, height)  # 1080 needs the cropping fields
    assert info.profile_idc == {"baseline": 66, "main": 77, "high": 100}[profile]
    assert codec_string(sps[0]) == f"avc1.{sps[0][1]:02x}{sps[0][2]:02x}{sps[0][3]:02x}"


def test_mime_type(small_loop: EncodedLoop) -> None:
    # main profile (4d), constraint flags, level: what MediaSource.isTypeSupported expects
    assert mime_type(small_loop.extradata).startswith('video/mp4; codecs="avc1.4d')


def test_length_prefixed_splits_as_iter_nals_does() -> None:
    """Length-prefixed NALs, 3- and 4-byte start codes, the AUD dropped."""
    data = b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x67\x42\x00\x00\x00\x01\x68\xce\x00\x00\x01\x65\x88\x84\x00"
    parts = length_prefixed(data)
    nals = parts[1::2]
    assert nals == [b"\x67\x42", b"\x68\xce", b"\x65\x88\x84"]
    assert [int.from_bytes(p, "big") for p in parts[::2]] == [len(n) for n in nals]


# Annex-B-like buffers: runs of start codes, zeros and payload bytes, in any order
_pieces = st.lists(st.sampled_from([b"\x00\x00\x01", b"\x00\x00\x00\x01", b"\x00", b"\x09\xf0", b"\x65\x88", b"\x01"])
                   | st.binary(max_size=6), max_size=20)


@given(_pieces)
def test_length_prefixed_is_iter_nals_with_lengths_whatever_the_buffer(pieces: list[bytes]) -> None:
    """The fast path (views, ``re``) says exactly what the plain split says, AUDs dropped."""
    data = b"".join(pieces)
    parts = length_prefixed(data)
    expected = [nal for nal in iter_nals(data) if nal_type(nal) != 9]
    assert [bytes(p) for p in parts[1::2]] == expected
    assert [int.from_bytes(p, "big") for p in parts[::2]] == [len(n) for n in expected]


def test_a_long_run_of_zero_padding_is_stripped_at_once() -> None:
    """Annex B allows any number of trailing zero bytes after a NAL: stripped, not walked."""
    data = b"\x00\x00\x00\x01\x65\x88\x84" + bytes(1_000_000) + b"\x00\x00\x01\x41\x9a" + bytes(3)
    parts = length_prefixed(data)
    assert [bytes(p) for p in parts[1::2]] == [b"\x65\x88\x84", b"\x41\x9a"]
