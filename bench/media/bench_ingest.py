"""The ingest's floor, two ways: PyAV demux threads (what the bot runs) against one asyncio RTSP client.

    .venv/bin/python -m bench.media.bench_ingest [--cameras 20] [--seconds 20] [--reps 2]

On the GStreamer farm (tests/media/farm.py: 20 cameras at 1080p25 ~4 Mbit/s plus their 320x180
substreams, 40 RTSP streams in all), in one run and one process, the CPU of:

1. the demux floor the bot's figures are compared with (``bench_media.demux_only``): one thread
   per stream, PyAV reading packets and doing nothing with them;
2. one event loop reading every stream over RTSP/TCP (RFC 2326, interleaved RTP), frames only;
3. the same, with each RTP packet's H.264 payload (RFC 6184: single NAL, STAP-A, FU-A) put
   back into access units, the bot's unit of work.

Why: under perf, most of the bot's ingest and of a viewer's cost is not the work but the 40
reader threads taking the GIL in turn (context switches: a third of the samples; see
``relay.Inbox``). A reader on the event loop has no threads to hand over to, reads each socket
in large chunks, and gets the NAL units' boundaries from the RTP packets instead of scanning
each frame for start codes. This is a measured *prototype* of that direction, not the bot's
reader: it has no authentication, RTCP, keep-alive, reconnection or timeouts. Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.media.bench_media import bench_farm, cpu, demux_only, phase  # noqa: E402

_START = b"\x00\x00\x00\x01"


class RtspReader(asyncio.Protocol):
    """One stream over RTSP/TCP: DESCRIBE, SETUP (interleaved), PLAY, then RTP packets on channel 0."""

    def __init__(self, depacketize: bool) -> None:
        self.depacketize = depacketize
        self.buf = bytearray()
        self.cseq = 0
        self.reply: asyncio.Future[tuple[str, str]] | None = None
        self.playing = False
        self.packets = 0
        self.units = 0
        self.bytes = 0
        self._parts: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.playing:
            self._interleaved()
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).decode("latin-1")
        length = re.search(r"Content-Length:\s*(\d+)", head, re.IGNORECASE)
        size = int(length.group(1)) if length else 0
        if len(self.buf) < end + 4 + size:
            return
        body = bytes(self.buf[end + 4:end + 4 + size]).decode("latin-1")
        del self.buf[:end + 4 + size]
        if self.reply is not None and not self.reply.done():
            self.reply.set_result((head, body))

    def _interleaved(self) -> None:
        buf, i, n = self.buf, 0, len(self.buf)
        while n - i >= 4:
            if buf[i] != 0x24:  # an RTSP reply between the packets (PLAY's): skip to the next '$'
                nxt = buf.find(b"$", i + 1)
                i = n if nxt < 0 else nxt
                continue
            size = (buf[i + 2] << 8) | buf[i + 3]
            if n - i < 4 + size:
                break
            if buf[i + 1] == 0:  # RTP (1 is RTCP)
                self.packets += 1
                if self.depacketize:
                    packet = memoryview(buf)[i + 4:i + 4 + size]
                    self._rtp(packet)
                    packet.release()
            i += 4 + size
        del buf[:i]

    def _rtp(self, packet: memoryview) -> None:
        payload = packet[12 + 4 * (packet[0] & 0x0F):]
        kind, parts = payload[0] & 0x1F, self._parts
        if kind < 24:  # a single NAL unit
            parts += (_START, bytes(payload))
        elif kind == 28:  # FU-A: a NAL unit in pieces, its header rebuilt from the first
            fu = payload[1]
            if fu & 0x80:
                parts += (_START, bytes([(payload[0] & 0xE0) | (fu & 0x1F)]))
            parts.append(bytes(payload[2:]))
        elif kind == 24:  # STAP-A: several small NAL units (SPS, PPS)
            j = 1
            while j + 2 <= len(payload):
                size = (payload[j] << 8) | payload[j + 1]
                parts += (_START, bytes(payload[j + 2:j + 2 + size]))
                j += 2 + size
        if packet[1] & 0x80:  # the marker bit: the access unit is whole
            self.bytes += len(b"".join(parts))  # the unit the bot would hand on
            parts.clear()
            self.units += 1

    async def request(self, method: str, url: str, headers: str = "") -> tuple[str, str]:
        assert self.transport is not None
        self.cseq += 1
        self.reply = asyncio.get_running_loop().create_future()
        self.transport.write(f"{method} {url} RTSP/1.0\r\nCSeq: {self.cseq}\r\n{headers}\r\n".encode())
        return await asyncio.wait_for(self.reply, 10)


async def open_reader(url: str, depacketize: bool) -> RtspReader:
    found = re.match(r"rtsp://([^:/]+):(\d+)", url)
    assert found is not None, url
    _, reader = await asyncio.get_running_loop().create_connection(
        lambda: RtspReader(depacketize), found.group(1), int(found.group(2)))
    head, sdp = await reader.request("DESCRIBE", url, "Accept: application/sdp\r\n")
    base = re.search(r"Content-Base:\s*(\S+)", head, re.IGNORECASE)
    control = re.search(r"a=control:(\S+)", sdp.split("m=video", 1)[1])
    assert control is not None, sdp
    track = control.group(1)
    if not track.startswith("rtsp:"):
        track = (base.group(1) if base else url + "/").rstrip("/") + "/" + track
    head, _ = await reader.request("SETUP", track, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
    session = re.search(r"Session:\s*([^;\r\n]+)", head, re.IGNORECASE)
    assert session is not None, head
    reader.playing = True  # from PLAY on, the socket carries interleaved packets
    assert reader.transport is not None
    reader.cseq += 1
    reader.transport.write(f"PLAY {url} RTSP/1.0\r\nCSeq: {reader.cseq}\r\nSession: {session.group(1)}\r\n"
                           "Range: npt=0-\r\n\r\n".encode())
    return reader


async def event_loop_reader(urls: list[str], seconds: float, depacketize: bool) -> tuple[float, float, float]:
    """(% of a core, RTP packets/s, access units/s) of one loop reading every stream."""
    readers = await asyncio.gather(*(open_reader(u, depacketize) for u in urls))
    await asyncio.sleep(1)  # the first keyframes
    c0, w0 = cpu(), time.monotonic()
    p0, u0 = sum(r.packets for r in readers), sum(r.units for r in readers)
    await asyncio.sleep(seconds)
    wall = time.monotonic() - w0
    result = ((cpu() - c0) / wall * 100, (sum(r.packets for r in readers) - p0) / wall,
              (sum(r.units for r in readers) - u0) / wall)
    for r in readers:
        if r.transport is not None:
            r.transport.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    farm = bench_farm(args.cameras)
    urls = [farm.url(i + 1) for i in range(args.cameras)] + [farm.sub_url(i + 1) for i in range(args.cameras)]
    rows: list[tuple[str, float, str]] = []
    try:
        for _ in range(args.reps):
            results: dict[str, float] = {}
            phase(results, "floor", urls, args.seconds, demux_only)
            floor = results["floor"]
            rows.append((f"PyAV demux, {len(urls)} threads (the bot's floor)", floor, "1.00 ×"))
            for depacketize in (False, True):
                load, packets, units = asyncio.run(event_loop_reader(urls, args.seconds, depacketize))
                name = "one event loop, RTSP/TCP" + (", into access units" if depacketize else ", packets only")
                rows.append((name, load, f"{load / floor:.2f} × ({packets:.0f} RTP/s, {units:.0f} units/s)"))
    finally:
        farm.stop()
    print(f"\n{len(urls)} streams ({args.cameras} cameras 1080p25 ~4 Mbit/s + substreams), {args.seconds:g} s each")
    print(f"{'reader':60} {'CPU (% of a core)':>18}  against the floor (same run)")
    for name, load, ratio in rows:
        print(f"{name:60} {load:>18.1f}  {ratio}")


if __name__ == "__main__":
    main()
