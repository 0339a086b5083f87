"""A plain RTP packetizer for tests (RFC 6184 non-interleaved mode), written from the RFC.

The real peer is GStreamer's rtph264pay in the farm; this one lets the pure tests choose the
packet size, the loss and the odd cases (padding, header extensions, a STAP-A of SPS and PPS).
"""

from __future__ import annotations

import struct

from bot.media.h264 import iter_nals


def packets(au: bytes, ts: int, seq: int, *, mtu: int = 1400, pt: int = 96, stap: bool = True,
            marker: bool = True, padding: int = 0, extension: bytes = b"") -> list[bytes]:
    """The RTP packets of one Annex-B access unit (sequence numbers from `seq`)."""
    nals = list(iter_nals(au))
    payloads: list[bytes] = []
    small = [n for n in nals if n[0] & 0x1F in (7, 8)] if stap else []
    if len(small) >= 2:
        payloads.append(bytes([0x18]) + b"".join(struct.pack(">H", len(n)) + n for n in small))
        nals = [n for n in nals if n not in small]
    for nal in nals:
        if len(nal) <= mtu:
            payloads.append(nal)
            continue
        head, body = nal[0], nal[1:]
        pieces = [body[i:i + mtu - 2] for i in range(0, len(body), mtu - 2)]
        for k, piece in enumerate(pieces):
            fu = (head & 0x1F) | (0x80 if k == 0 else 0) | (0x40 if k == len(pieces) - 1 else 0)
            payloads.append(bytes([(head & 0xE0) | 28, fu]) + piece)
    out = []
    for k, payload in enumerate(payloads):
        last = k == len(payloads) - 1
        first = 0x80 | (0x20 if padding else 0) | (0x10 if extension else 0)
        header = struct.pack(">BBHII", first, pt | (0x80 if marker and last else 0),
                             (seq + k) & 0xFFFF, ts & 0xFFFFFFFF, 0x1234)
        ext = struct.pack(">HH", 0xBEDE, len(extension) // 4) + extension if extension else b""
        pad = bytes(padding - 1) + bytes([padding]) if padding else b""
        out.append(header + ext + payload + pad)
    return out
