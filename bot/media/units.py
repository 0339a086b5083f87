"""Value types shared by the media pipeline: codec parameters and access units.

Inside Vigie every H.264 payload is Annex-B (start codes), whatever the source gave:
one canonical form keeps the decoder, the GOP cache and the fMP4 writer simple.
Timestamps are in a fixed 90 kHz clock (the RTP video clock), monotonic per camera
across reconnects, so consumers never see time go backwards.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

logger = logging.getLogger(__name__)

CLOCK_RATE = 90_000
TIME_BASE = Fraction(1, CLOCK_RATE)


@dataclass(frozen=True, slots=True)
class CodecParams:
    """What a decoder or muxer needs before the first packet."""

    extradata: bytes  # Annex-B SPS + PPS
    width: int
    height: int
    codec: str = "h264"
    frame_duration: int = CLOCK_RATE // 25  # best guess, in CLOCK_RATE ticks


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One coded picture as it travels from a camera to its consumers."""

    data: bytes  # Annex-B
    pts: int  # CLOCK_RATE ticks, monotonic per camera
    keyframe: bool
    params: CodecParams  # identity changes when the stream changes (reconnect, new SPS)
    seq: int  # per camera, strictly increasing
    received: float  # time.monotonic() when it arrived
    dts: int | None = None  # only set when it differs from pts (B-frames)
    # the NAL units' (start, end) in ``data``, flat, when the reader knew them (RTP): no scan
    nals: tuple[int, ...] | None = None

    @property
    def decode_ts(self) -> int:
        return self.pts if self.dts is None else self.dts


@dataclass(frozen=True, slots=True)
class RawUnit:
    """An access unit as a source session yields it, in the session's own time base."""

    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool
    nals: tuple[int, ...] | None = None  # see AccessUnit
