"""Media benchmark: CPU of the pipeline on 20 synthetic 1080p25 cameras, beside its baselines.

    .venv/bin/python -m bench.media.bench_media [--cameras 20] [--seconds 5] [--source farm|synthetic]

Cameras come from the GStreamer RTSP farm (tests/media/farm.py) when Debian's packages are
there, else from synthetic sources in process. CPU is this process's user+system time
(all threads; the farm is another process) per second of wall time, in % of one core.
Printed figures sit beside their baseline as a ratio; nothing here asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.loops import new_event_loop  # noqa: E402
from bot.media.cameras import Camera, CameraHub  # noqa: E402
from bot.media.fmp4 import FragmentWriter  # noqa: E402
from bot.media.ingest import IngestLoop  # noqa: E402
from bot.media.relay import Relay  # noqa: E402
from bot.media.rtsp_client import LoopRtspSource  # noqa: E402
from bot.media.synthetic import EncodedLoop, SyntheticSource, encode_loop  # noqa: E402
from bot.media.tiles import MosaicRenderer, decode_keyframe, tile_inputs  # noqa: E402
from tests.media.conftest import FarmHandle, farm_available, start_farm  # noqa: E402

logger = logging.getLogger(__name__)
# libav's socket timeout, as the bot's RtspSource (no PyAV timeout: its callback takes the GIL per poll)
OPEN = {"rtsp_transport": "tcp", "probesize": "4096", "fpsprobesize": "0", "analyzeduration": "0",
        "timeout": "5000000"}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def measure(results: dict[str, float], name: str) -> Iterator[None]:
    c0, w0 = cpu(), time.monotonic()
    yield
    results[name] = (cpu() - c0) / (time.monotonic() - w0) * 100


def bench_farm(cameras: int) -> FarmHandle:
    """The farm the side-by-side benchmarks share: ``cameras`` mounts of the 1080p25 loop (~4 Mbit/s,
    GOP 2 s), each with its 320x180 substream (``farm.sub_url(i)``)."""
    loop = encode_loop("Banc d'essai 1080p", width=1920, height=1080, seconds=2, detail=True)
    sub = encode_loop("Banc d'essai 1080p", width=320, height=180, seconds=2, bitrate=250_000)
    return start_farm(loop, mounts=cameras, sub=sub)


def run_threads(urls: list[str], seconds: float, work: Callable[[str, float], None]) -> None:
    threads = [threading.Thread(target=work, args=(url, seconds), daemon=True) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 10)


def demux_only(url: str, seconds: float) -> None:
    with av.open(url, options=OPEN) as container:
        end = time.monotonic() + seconds
        for _ in container.demux(video=0):
            if time.monotonic() > end:
                return


def decode(url: str, seconds: float, skip_nonkey: bool = False) -> None:
    with av.open(url, options=OPEN) as container:
        stream = container.streams.video[0]
        if skip_nonkey:
            stream.codec_context.skip_frame = "NONKEY"
        end = time.monotonic() + seconds
        for packet in container.demux(stream):
            stream.codec_context.decode(packet)
            if time.monotonic() > end:
                return


def phase(
    results: dict[str, float], name: str, urls: list[str], seconds: float, work: Callable[[str, float], None]
) -> None:
    # one warm-up second (connection, first keyframe) is left out of the measure
    warm = threading.Thread(target=run_threads, args=(urls, seconds + 1, work), daemon=True)
    warm.start()
    time.sleep(1)
    with measure(results, name):
        warm.join()


async def pipeline(
    results: dict[str, float], hub: CameraHub, seconds: float, viewers_per_camera: int
) -> None:
    relay = Relay(hub)
    hub.start()
    await asyncio.sleep(2)
    counts = [0]

    async def drain(camera_id: str) -> None:
        async for _ in relay.open_viewer(camera_id):
            counts[0] += 1

    tasks = [asyncio.create_task(drain(cam.camera_id)) for cam in hub for _ in range(viewers_per_camera)]
    await asyncio.sleep(1)
    with measure(results, f"pipeline, {viewers_per_camera} viewers/camera"):
        await asyncio.sleep(seconds)
    relay.close_all()
    await asyncio.gather(*tasks)
    if viewers_per_camera:
        # one snapshot rendered twice, timed on the rendering thread only (readers keep running)
        tiles = tile_inputs(hub)
        renderer = MosaicRenderer()
        t0 = time.thread_time()
        renderer.render(tiles)
        results["mosaic, cold (decode 20 keyframes) ms"] = (time.thread_time() - t0) * 1000
        t0 = time.thread_time()
        renderer.render(tiles, watermark="Lt. Camille Durand", drill=True)
        results["mosaic, warm (cached tiles) ms"] = (time.thread_time() - t0) * 1000
        results["tiles every 30 s, % of a core"] = results["mosaic, cold (decode 20 keyframes) ms"] / 300
    await hub.aclose()


def scaling(results: dict[str, float], loop: EncodedLoop) -> None:
    from bot.media.units import AccessUnit

    frame = decode_keyframe(AccessUnit(loop.packets[0][0], 0, True, loop.params, 1, 0.0))
    c0 = cpu()
    for _ in range(20):
        frame.to_image(width=384, height=216, interpolation="AREA")
    results["swscale 1080p->384x216 ms"] = (cpu() - c0) * 1000 / 20
    c0 = cpu()
    for _ in range(5):
        frame.to_image().resize((384, 216))
    results["Pillow resize 1080p->384x216 ms"] = (cpu() - c0) * 1000 / 5


def muxers(results: dict[str, float], loop: EncodedLoop, count: int = 2000) -> None:
    from bot.media.units import AccessUnit

    aus = [
        AccessUnit(d, i * 3600, k, loop.params, i + 1, 0.0)
        for i, (d, k) in enumerate(loop.packets * (count // len(loop.packets)))
    ]
    writer = FragmentWriter()
    c0 = cpu()
    for au in aus:
        writer.write(au)
    results["fMP4 fragment, ours, us/frame"] = (cpu() - c0) * 1e6 / len(aus)

    class Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            return len(b)  # type: ignore[arg-type]

    out = av.open(
        Sink(), "w", format="mp4", options={"movflags": "frag_every_frame+empty_moov+default_base_moof"}
    )
    stream = out.add_stream("h264")
    stream.width, stream.height, stream.time_base = loop.width, loop.height, Fraction(1, 90000)
    stream.codec_context.extradata = loop.extradata
    c0 = cpu()
    for au in aus:
        packet = av.Packet(au.data)
        packet.pts = packet.dts = au.pts
        packet.time_base = Fraction(1, 90000)
        packet.stream = stream
        packet.is_keyframe = au.keyframe
        out.mux_one(packet)
    results["fMP4 fragment, PyAV mp4 muxer, us/frame"] = (cpu() - c0) * 1e6 / len(aus)
    out.close()


def report(results: dict[str, float], cameras: int) -> None:
    floor = results.get("demux only (floor)")
    full = results.get("full decode, per stream")
    print(f"\n{'measure':48} {'value':>10}  ratio")
    for name, value in results.items():
        ratio = ""
        if floor and name.startswith("pipeline"):
            ratio = f"{value / floor:.2f} x demux floor"
        elif floor and name.startswith("keyframes only"):
            ratio = f"{value / floor:.2f} x demux floor"
        elif full and name == "full decode, per stream":
            ratio = f"x{cameras} = {value * cameras:.0f} % (projected)"
        elif name.startswith("Pillow"):
            ratio = f"{value / results['swscale 1080p->384x216 ms']:.1f} x swscale"
        elif name.startswith("fMP4 fragment, PyAV"):
            ratio = f"{value / results['fMP4 fragment, ours, us/frame']:.2f} x ours"
        unit = "" if name.endswith(("ms", "us/frame", "% of a core")) else " %"
        print(f"{name:48} {value:>10.2f}{unit}  {ratio}")
    if floor:
        per_viewer = (
            results.get("pipeline, 10 viewers/camera", 0) - results.get("pipeline, 0 viewers/camera", 0)
        ) / (cameras * 10)
        print(f"{'each viewer stream adds (% of a core)':48} {per_viewer:>10.3f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--source", choices=("farm", "synthetic"), default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, float] = {}
    c0 = cpu()
    loop = encode_loop("Banc d'essai 1080p", width=1920, height=1080, seconds=2, detail=True)
    print(f"encoded 1080p loop: {loop.bitrate / 1e6:.1f} Mbit/s, {cpu() - c0:.2f} s CPU")
    source = args.source or ("farm" if farm_available() is None else "synthetic")
    scaling(results, loop)
    muxers(results, loop)
    n = args.cameras
    if source == "farm":
        farm = start_farm(loop, mounts=n)
        try:
            urls = [farm.url(i + 1) for i in range(n)]
            phase(results, "demux only (floor)", urls, args.seconds, demux_only)
            phase(
                results,
                "keyframes only (skip_frame=NONKEY)",
                urls,
                args.seconds,
                lambda u, s: decode(u, s, True),
            )
            # full decode of 20 streams would saturate both cores: measure 2, report per stream
            phase(results, "full decode, 2 streams", urls[:2], args.seconds, decode)
            results["full decode, per stream"] = results.pop("full decode, 2 streams") / 2
            for viewers in (0, 10):
                ingest = IngestLoop()  # the bot's reader, as in MediaService
                hub = CameraHub(Camera(f"c{i}", f"Caméra {i}", LoopRtspSource(u), ingest=ingest)
                                for i, u in enumerate(urls))
                with asyncio.Runner(loop_factory=new_event_loop) as runner:  # the bot's loop (uvloop)
                    runner.run(pipeline(results, hub, args.seconds, viewers))
                ingest.stop()
        finally:
            farm.stop()
    else:
        print("farm unavailable: synthetic sources (no network floor to compare with)")
        for viewers in (0, 10):
            hub = CameraHub(Camera(f"c{i}", f"Caméra {i}", SyntheticSource(loop)) for i in range(n))
            with asyncio.Runner(loop_factory=new_event_loop) as runner:
                runner.run(pipeline(results, hub, args.seconds, viewers))
    print(f"source: {source}, {n} cameras, 1080p25")
    report(results, n)


if __name__ == "__main__":
    main()
