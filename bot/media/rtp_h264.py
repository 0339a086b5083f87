"""H.264 out of RTP (RFC 3550, RFC 6184): packets back into Annex-B access units.

The payload formats cameras send: single NAL units, STAP-A (several small ones, SPS and PPS
typically) and FU-A (one large NAL unit in pieces). An access unit ends at the packet with
the marker bit, or when the timestamp changes (a camera that never sets the marker). The
boundaries of the NAL units come from the packets, so nothing scans the picture for start
codes: each unit carries them (``nals``), for the fMP4 writer's length-prefixed sample. A
missing packet (a sequence gap) spoils the unit it falls in: that unit is dropped, and the
ones after it until the next keyframe, since they refer to what was lost.
"""

from __future__ import annotations

from dataclasses import dataclass

_START = b"\x00\x00\x00\x01"
_IDR = 5
_AUD = 9


@dataclass(frozen=True, slots=True)
class RtpUnit:
    data: bytes  # Annex-B
    timestamp: int  # RTP clock, unwrapped to 64 bits
    keyframe: bool
    nals: tuple[int, ...]  # (start, end) of each NAL unit in ``data`` but access unit delimiters, flat


class H264Depacketizer:
    """Feed RTP packets in order; complete access units come out."""

    def __init__(self, payload_type: int | None = None) -> None:
        self.payload_type = payload_type
        self._parts: list[bytes] = []
        self._size = 0  # bytes in _parts
        self._bounds: list[int] = []  # (start, end) of the NAL units in _parts, flat; end -1 while open
        self._key = False
        self._broken = False
        self._after_loss = False  # a unit was lost: wait for a keyframe
        self._ts: int | None = None  # 32-bit timestamp of the unit being built
        self._seq: int | None = None
        self._wrap = 0  # unwrapping: multiples of 2**32 added
        self._last_ts32: int | None = None
        self.lost = 0  # packets missing from the sequence (a camera over TCP should have none)
        self.dropped = 0  # units dropped because of a loss

    def feed(self, packet: bytes | memoryview) -> RtpUnit | None:
        """One RTP packet; returns the access unit it completes, if any. Raises ValueError on junk."""
        n = len(packet)
        if n < 12 or packet[0] >> 6 != 2:
            raise ValueError("not an RTP packet")
        if self.payload_type is not None and packet[1] & 0x7F != self.payload_type:
            return None  # another payload (a camera's metadata, say) on the same channel
        seq = (packet[2] << 8) | packet[3]
        ts = int.from_bytes(packet[4:8], "big")
        start = 12 + 4 * (packet[0] & 0x0F)
        if packet[0] & 0x10:  # header extension
            if n < start + 4:
                raise ValueError("truncated RTP extension")
            start += 4 + 4 * ((packet[start + 2] << 8) | packet[start + 3])
        end = n - (packet[n - 1] if packet[0] & 0x20 else 0)  # padding
        if start >= end:
            return None
        if self._seq is not None and seq != (self._seq + 1) & 0xFFFF:
            # the lost packets may end the unit being built or start the next one: both go
            self.lost += (seq - self._seq - 1) & 0xFFFF
            self._broken = self._after_loss = True
        done: RtpUnit | None = None
        if self._ts is not None and ts != self._ts and self._parts:
            done = self._finish()  # a new timestamp: the previous unit is complete (no marker seen)
        self._seq = seq
        self._ts = ts
        self._payload(packet[start:end])
        if packet[1] & 0x80:
            done = self._finish() or done
        return done

    def _payload(self, payload: bytes | memoryview) -> None:
        kind = payload[0] & 0x1F
        if 0 < kind < 24:
            self._nal(bytes(payload))
        elif kind == 28 and len(payload) > 2:  # FU-A
            fu = payload[1]
            if fu & 0x80:
                self._nal(bytes(((payload[0] & 0xE0) | (fu & 0x1F),)))
            elif not self._parts:
                self._broken = True  # the start of this NAL unit is in a packet we did not get
            piece = bytes(payload[2:])
            self._parts.append(piece)
            self._size += len(piece)
        elif kind == 24:  # STAP-A
            j, size_all = 1, len(payload)
            while j + 2 <= size_all:
                size = (payload[j] << 8) | payload[j + 1]
                if size == 0 or j + 2 + size > size_all:
                    break
                self._nal(bytes(payload[j + 2:j + 2 + size]))
                j += 2 + size
        # other types (STAP-B, MTAP, FU-B) are for interleaved mode, which cameras do not use

    def _nal(self, head: bytes) -> None:
        """A NAL unit starts with ``head`` (the whole unit, or an FU-A's first byte)."""
        kind, bounds = head[0] & 0x1F, self._bounds
        self._key |= kind == _IDR
        if bounds and bounds[-1] == -1:
            bounds[-1] = self._size  # the open one ends where this one's start code begins
        self._parts += (_START, head)
        self._size += 4 + len(head)
        if kind != _AUD:  # a delimiter stays in the Annex-B data, not in the MP4 sample
            bounds += (self._size - len(head), -1)

    def _finish(self) -> RtpUnit | None:
        parts, key, ts, bounds, size = self._parts, self._key, self._ts, self._bounds, self._size
        broken = self._broken
        self._parts, self._key, self._broken, self._bounds, self._size = [], False, False, [], 0
        if ts is None or not parts:
            return None
        if broken:
            self._after_loss = True
        elif key:
            self._after_loss = False
        if self._after_loss:
            self.dropped += 1
            return None
        if bounds and bounds[-1] == -1:
            bounds[-1] = size
        return RtpUnit(b"".join(parts), self._unwrap(ts), key, tuple(bounds))

    def _unwrap(self, ts: int) -> int:
        last = self._last_ts32
        if last is not None:
            if ts < last and last - ts > 1 << 31:
                self._wrap += 1 << 32
            elif ts > last and ts - last > 1 << 31:
                self._wrap -= 1 << 32  # a late unit from before the wrap
        self._last_ts32 = ts
        return ts + self._wrap
