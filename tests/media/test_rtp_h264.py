"""RTP back into access units (bot/media/rtp_h264.py), pure: any packet size, loss, wrap, junk.

The packets come from tests/media/rtp_packets.py (written from RFC 6184); the farm's
GStreamer payloader is the independent peer in test_rtsp_client.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.media.h264 import iter_nals, length_prefixed, sample_of
from bot.media.rtp_h264 import H264Depacketizer, RtpUnit
from bot.media.synthetic import EncodedLoop

from .rtp_packets import packets


def expected_nals(au: bytes) -> list[bytes]:
    nals = list(iter_nals(au))
    small = [n for n in nals if n[0] & 0x1F in (7, 8)]
    return small + [n for n in nals if n not in small] if len(small) >= 2 else nals


AUD = b"\x00\x00\x00\x01\x09\xf0"  # an access unit delimiter, as some cameras start each unit


def stream(loop: EncodedLoop, mtu: int, ts0: int = 0, seq0: int = 0, aud: bool = False,
           **kw: object) -> list[list[bytes]]:
    out, seq = [], seq0
    for k, (au, _key) in enumerate(loop.packets):
        pk = packets(AUD + au if aud else au, ts0 + k * 3600, seq, mtu=mtu, **kw)  # type: ignore[arg-type]
        seq += len(pk)
        out.append(pk)
    return out


def feed_all(d: H264Depacketizer, groups: list[list[bytes]]) -> list[RtpUnit]:
    return [u for group in groups for p in group if (u := d.feed(p)) is not None]


@settings(max_examples=25, deadline=None)
@given(mtu=st.integers(min_value=40, max_value=1500), stap=st.booleans(), marker=st.booleans(),
       padding=st.sampled_from([0, 1, 4]), ext=st.sampled_from([b"", b"\x01\x02\x03\x04"]), aud=st.booleans())
def test_every_unit_comes_back_whole(small_loop: EncodedLoop, mtu: int, stap: bool, marker: bool,
                                     padding: int, ext: bytes, aud: bool) -> None:
    d = H264Depacketizer(96)
    units = feed_all(d, stream(small_loop, mtu, stap=stap, marker=marker, padding=padding, extension=ext, aud=aud))
    # without marker bits a unit ends when the next one starts: the last one is still open
    sent = small_loop.packets if marker else small_loop.packets[:-1]
    assert [[n for n in iter_nals(u.data) if n[0] & 0x1F != 9] for u in units] == [expected_nals(au) for au, _ in sent]
    assert all((AUD in u.data) == aud for u in units)
    # the NAL bounds the packets gave make the same MP4 sample as a scan of the unit, AUD left out
    assert [b"".join(sample_of(u.data, u.nals)) for u in units] == [b"".join(length_prefixed(u.data)) for u in units]
    assert [u.keyframe for u in units] == [key for _, key in sent]
    assert [u.timestamp for u in units] == [k * 3600 for k in range(len(sent))]
    assert all(u.data.startswith(b"\x00\x00\x00\x01") for u in units)
    assert d.lost == d.dropped == 0


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_a_lost_packet_drops_its_unit_and_the_rest_until_a_keyframe(small_loop: EncodedLoop, data: st.DataObject) -> None:
    groups = stream(small_loop, 300)
    flat = [(k, p) for k, g in enumerate(groups) for p in g]
    # a packet after the lost one reveals the gap (the very last one lost leaves its unit open)
    lost_at = data.draw(st.integers(min_value=1, max_value=len(flat) - 2))
    d = H264Depacketizer(96)
    units = [u for i, (_, p) in enumerate(flat) if i != lost_at and (u := d.feed(p)) is not None]
    hit = flat[lost_at][0]
    keys = [k for k, (_, key) in enumerate(small_loop.packets) if key]
    resume = next((k for k in keys if k > hit), len(groups))
    survivors = [k for k in range(len(groups)) if k < hit or k >= resume]
    assert [u.timestamp for u in units] == [k * 3600 for k in survivors]
    assert d.lost == 1 and d.dropped == resume - hit


def test_timestamps_unwrap_past_32_bits(small_loop: EncodedLoop) -> None:
    d = H264Depacketizer(96)
    units = feed_all(d, stream(small_loop, 1400, ts0=2**32 - 5 * 3600, seq0=65530))
    steps = {b.timestamp - a.timestamp for a, b in zip(units, units[1:], strict=False)}
    assert steps == {3600} and units[-1].timestamp > 2**32


def test_other_payload_types_are_ignored_and_junk_is_refused(small_loop: EncodedLoop) -> None:
    d = H264Depacketizer(96)
    au, _ = small_loop.packets[0]
    assert all(d.feed(p) is None for p in packets(au, 0, 0, pt=97))
    with pytest.raises(ValueError, match="not an RTP packet"):
        d.feed(b"GET / HTTP/1.1\r\n")
    with pytest.raises(ValueError, match="not an RTP packet"):
        d.feed(b"\x80\x60")
    assert [u.keyframe for p in packets(au, 0, 1) if (u := d.feed(p))] == [True]
