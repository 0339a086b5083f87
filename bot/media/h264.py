"""Small H.264 bitstream helpers: NAL splitting, Annex-B/avcC conversion, SPS fields.

Only what the relay and the readers need; no decoding happens here.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
_START = b"\x00\x00\x01"
_START_RE = re.compile(re.escape(_START))
_LENGTH = struct.Struct(">I")
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def iter_nals(data: bytes) -> Iterator[bytes]:
    """Yield the NAL units of an Annex-B buffer, without start codes.

    Found by ``bytes.split`` in C: this runs for every frame of every watched camera, where a
    scan in Python took most of a fragment's cost."""
    for part in data.split(_START)[1:]:  # what comes before the first start code is no NAL
        # a NAL never ends in a zero byte: zeros here belong to a 4-byte start code or padding
        nal = part.rstrip(b"\x00") if part[-1:] == b"\x00" else part
        if nal:
            yield nal


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


Sample = list[bytes | memoryview]  # an access unit's NAL units as [length, NAL, length, NAL…]


def length_prefixed(data: bytes) -> Sample:
    """The NAL units of an Annex-B buffer as [4-byte length, NAL, length, NAL…], the form MP4
    samples use, to be joined by the caller (once, with the fragment's header); drops AUDs.

    The NALs are views into ``data``, not copies, and the start codes are found by ``re``
    (its literal search): this runs for every frame of every watched camera (in its reader
    thread, see ``relay.Inbox``),
    and ``bytes.split`` (a copy of the frame, and a slower scan) was the largest part of writing
    a fragment (1.6x slower on the farm's frames; 250 µs for a 370 kB keyframe)."""
    view = memoryview(data)
    out: list[bytes | memoryview] = []
    starts = [m.end() for m in _START_RE.finditer(data)]
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        # a NAL never ends in a zero byte (see iter_nals): one or two here belong to a 4-byte start
        # code; a longer run is padding (trailing_zero_8bits, any length), stripped in C
        for _ in range(2):
            if end > start and data[end - 1] == 0:
                end -= 1
        if end > start and data[end - 1] == 0:
            end = start + len(data[start:end].rstrip(b"\x00"))
        if end > start and data[start] & 0x1F != NAL_AUD:
            out += (_LENGTH.pack(end - start), view[start:end])
    return out


def sample_of(data: bytes, nals: tuple[int, ...] | None) -> Sample:
    """``length_prefixed(data)`` without the scan when the reader knew the NAL units' bounds
    (``nals``: start, end, start, end… as the RTP depacketizer gives them)."""
    if nals is None:
        return length_prefixed(data)
    view, pack = memoryview(data), _LENGTH.pack
    out: list[bytes | memoryview] = []
    for i in range(0, len(nals), 2):
        start, end = nals[i], nals[i + 1]
        out += (pack(end - start), view[start:end])
    return out


def lengths_to_annexb(data: bytes, length_size: int = 4) -> bytes:
    out = []
    pos = 0
    while pos + length_size <= len(data):
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        out.append(b"\x00\x00\x00\x01" + data[pos : pos + size])
        pos += size
    return b"".join(out)


def parameter_sets(data: bytes) -> tuple[list[bytes], list[bytes]]:
    """The SPS and PPS NAL units found in an Annex-B buffer."""
    sps: list[bytes] = []
    pps: list[bytes] = []
    for nal in iter_nals(data):
        t = nal_type(nal)
        if t == NAL_SPS and nal not in sps:
            sps.append(nal)
        elif t == NAL_PPS and nal not in pps:
            pps.append(nal)
    return sps, pps


def annexb_extradata(sps: list[bytes], pps: list[bytes]) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + n for n in (*sps, *pps))


def avcc_to_annexb(avcc: bytes) -> tuple[bytes, int]:
    """avcC (ISO 14496-15) extradata to Annex-B, with its NAL length size."""
    if len(avcc) < 7 or avcc[0] != 1:
        raise ValueError("not an avcC record")
    length_size = (avcc[4] & 0x03) + 1
    pos = 5
    nals: list[bytes] = []
    for mask in (0x1F, 0xFF):  # SPS count is 5 bits, PPS count 8 bits
        count = avcc[pos] & mask
        pos += 1
        for _ in range(count):
            size = int.from_bytes(avcc[pos : pos + 2], "big")
            nals.append(avcc[pos + 2 : pos + 2 + size])
            pos += 2 + size
    return b"".join(b"\x00\x00\x00\x01" + n for n in nals), length_size


def normalize_extradata(extradata: bytes | None) -> tuple[bytes, int | None]:
    """Return Annex-B extradata and, if the source used avcC, its packets' length size."""
    if not extradata:
        return b"", None
    if extradata[0] == 1:
        return avcc_to_annexb(extradata)
    return extradata, None


@dataclass(frozen=True, slots=True)
class SpsInfo:
    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int = 1
    bit_depth_luma: int = 8
    bit_depth_chroma: int = 8
    width: int = 0
    height: int = 0


def _unescape(nal: bytes) -> bytes:
    # emulation prevention: 00 00 03 xx -> 00 00 xx
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


class _Bits:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bit(self) -> int:
        byte = self._data[self._pos >> 3]
        value = (byte >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-Golomb code")
        value = 1
        for _ in range(zeros):
            value = (value << 1) | self.bit()
        return value - 1

    def se(self) -> int:
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last = nxt = 8
    for _ in range(size):
        if nxt:
            nxt = (last + bits.se() + 256) % 256
        last = nxt or last


def parse_sps(sps: bytes) -> SpsInfo:
    """Profile, level, chroma format, bit depths and cropped picture size of an SPS NAL."""
    if len(sps) < 4 or nal_type(sps) != NAL_SPS:
        raise ValueError("not an SPS NAL unit")
    profile, flags, level = sps[1], sps[2], sps[3]
    bits = _Bits(_unescape(sps[4:]))
    try:
        bits.ue()  # seq_parameter_set_id
        chroma, depth_luma, depth_chroma = 1, 8, 8
        if profile in _HIGH_PROFILES:
            chroma = bits.ue()
            if chroma == 3:
                bits.bit()  # separate_colour_plane_flag
            depth_luma = bits.ue() + 8
            depth_chroma = bits.ue() + 8
            bits.bit()  # qpprime_y_zero_transform_bypass_flag
            if bits.bit():  # seq_scaling_matrix_present_flag
                for i in range(12 if chroma == 3 else 8):
                    if bits.bit():
                        _skip_scaling_list(bits, 16 if i < 6 else 64)
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.bit()
            bits.se()
            bits.se()
            for _ in range(bits.ue()):
                bits.se()
        bits.ue()  # max_num_ref_frames
        bits.bit()  # gaps_in_frame_num_value_allowed_flag
        width_mbs = bits.ue() + 1
        height_units = bits.ue() + 1
        frame_mbs_only = bits.bit()
        if not frame_mbs_only:
            bits.bit()  # mb_adaptive_frame_field_flag
        bits.bit()  # direct_8x8_inference_flag
        crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue()) if bits.bit() else (0, 0, 0, 0)
    except IndexError as exc:
        raise ValueError("truncated SPS") from exc
    sub_w, sub_h = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}.get(chroma, (2, 2))
    unit_x = 1 if chroma == 0 else sub_w
    unit_y = (2 - frame_mbs_only) * (1 if chroma == 0 else sub_h)
    width = width_mbs * 16 - (crop[0] + crop[1]) * unit_x
    height = (2 - frame_mbs_only) * height_units * 16 - (crop[2] + crop[3]) * unit_y
    return SpsInfo(profile, flags, level, chroma, depth_luma, depth_chroma, width, height)


def codec_string(sps: bytes) -> str:
    """RFC 6381 codec string for MSE, e.g. avc1.64001f."""
    return f"avc1.{sps[1]:02x}{sps[2]:02x}{sps[3]:02x}"


def mime_type(extradata: bytes) -> str:
    sps, _ = parameter_sets(extradata)
    if not sps:
        raise ValueError("no SPS in extradata")
    return f'video/mp4; codecs="{codec_string(sps[0])}"'
