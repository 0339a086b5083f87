"""A camera's timeline: what sessions yield, as AccessUnits on one 90 kHz clock.

The clock never goes backwards across reconnections or a camera's own clock jumps, and a
session's first unit is a keyframe (nothing before it can be decoded). One ``Timeline`` per
camera keeps what lasts across sessions; each session gets a ``SessionClock``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from fractions import Fraction

from .h264 import annexb_extradata, parameter_sets, parse_sps
from .units import CLOCK_RATE, AccessUnit, CodecParams, RawUnit


class Timeline:
    def __init__(self) -> None:
        self.last_dts: int | None = None
        self.frame_duration = CLOCK_RATE // 25
        self.seq = 0

    def session(self, time_base: Fraction, params: CodecParams) -> SessionClock:
        if params.frame_duration > 0:
            self.frame_duration = params.frame_duration
        return SessionClock(self, time_base, params)


class SessionClock:
    def __init__(self, timeline: Timeline, time_base: Fraction, params: CodecParams) -> None:
        self._t = timeline
        self._scale = Fraction(time_base) * CLOCK_RATE
        self._offset: int | None = None
        self.params = params

    def unit(self, raw: RawUnit) -> AccessUnit | None:
        """The unit on the camera's clock, or None before the session's first keyframe."""
        t, offset = self._t, self._offset
        if offset is None and not raw.keyframe:
            return None
        params = self.params
        if raw.keyframe and (not params.extradata or not params.width):
            params = self.params = _complete_params(params, raw.data)
        src_dts = raw.dts if raw.dts is not None else raw.pts
        last = t.last_dts
        if src_dts is None:
            dts = (last + t.frame_duration) if last is not None else 0
        else:
            ticks = round(src_dts * self._scale)
            if offset is None:
                offset = (last + t.frame_duration - ticks) if last is not None else -ticks
            dts = ticks + offset
            if last is not None and not 0 < dts - last <= 5 * CLOCK_RATE:
                # timestamp jump (camera clock reset, wrap): keep our timeline continuous
                offset = last + t.frame_duration - ticks
                dts = ticks + offset
        self._offset = offset if offset is not None else 0
        if last is not None and 0 < dts - last < CLOCK_RATE:
            t.frame_duration = dts - last
        cts = 0
        if raw.pts is not None and raw.dts is not None and raw.pts != raw.dts:
            cts = round((raw.pts - raw.dts) * self._scale)
        t.last_dts = dts
        t.seq += 1
        return AccessUnit(data=raw.data, pts=dts + cts, keyframe=raw.keyframe, params=params, seq=t.seq,
                          received=time.monotonic(), dts=dts if cts else None, nals=raw.nals)


def _complete_params(params: CodecParams, keyframe: bytes) -> CodecParams:
    """Fill in SPS/PPS and size from an in-band keyframe when the SDP did not carry them."""
    sps, pps = parameter_sets(keyframe)
    if not sps or not pps:
        return params
    extradata = params.extradata or annexb_extradata(sps, pps)
    width, height = params.width, params.height
    if not width or not height:
        info = parse_sps(sps[0])
        width, height = info.width, info.height
    return replace(params, extradata=extradata, width=width, height=height)
