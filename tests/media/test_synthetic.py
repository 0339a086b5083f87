"""Synthetic cameras: the loop decodes, and replays in real time with increasing timestamps."""

from __future__ import annotations

import time

import av

from bot.media.cameras import Camera
from bot.media.synthetic import EncodedLoop, SyntheticSource, encode_loop

from .conftest import first, wait_until


def test_loop_is_a_whole_number_of_gops_and_decodes(small_loop: EncodedLoop) -> None:
    keys = [i for i, (_, key) in enumerate(small_loop.packets) if key]
    assert keys == [0]  # 2 s at 25 fps, GOP 50
    assert small_loop.params.width == 320 and small_loop.params.height == 180
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = small_loop.extradata
    frames = []
    for data, _ in small_loop.packets:
        frames += decoder.decode(av.Packet(data))
    frames += decoder.decode(None)
    assert len(frames) == len(small_loop.packets)
    assert (frames[0].width, frames[0].height) == (320, 180)


def test_each_camera_shows_its_own_name() -> None:
    a = encode_loop("Caméra A", width=160, height=90, seconds=2)
    b = encode_loop("Caméra B", width=160, height=90, seconds=2)
    assert a.packets[0][0] != b.packets[0][0]


def test_loop_length_rounds_to_gops() -> None:
    loop = encode_loop("x", width=128, height=72, seconds=3.1, fps=25)
    assert len(loop.packets) == 100
    assert [i for i, (_, k) in enumerate(loop.packets) if k] == [0, 50]


async def test_replay_in_real_time_with_increasing_timestamps(small_loop: EncodedLoop) -> None:
    camera = Camera("c1", "Entrée", SyntheticSource(small_loop))
    camera.start()
    try:
        assert await wait_until(lambda: camera.status().online, 5)
        sub = camera.subscribe()
        it = sub.__aiter__()
        units = [await first(it, 2)]
        assert units[0].keyframe  # the cached GOP starts on a keyframe
        # past the cached GOP, units arrive at the frame rate
        while len(units) < 60:  # past the loop's wrap
            units.append(await first(it, 2))
        started = time.monotonic()
        for _ in range(25):
            units.append(await first(it, 2))
        elapsed = time.monotonic() - started
        sub.close()
    finally:
        await camera.aclose()
    pts = [u.pts for u in units]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    assert all(b - a == 3600 for a, b in zip(pts, pts[1:], strict=False))  # 90 kHz / 25 fps
    assert sum(u.keyframe for u in units) >= 2  # wrapped around the loop onto an IDR
    assert 0.5 < elapsed < 2.0  # paced, not bursted (loose: a loaded CI box)


async def test_switched_off_camera_goes_offline_and_comes_back(small_loop: EncodedLoop) -> None:
    source = SyntheticSource(small_loop)
    camera = Camera("c1", "Entrée", source, backoff_initial=0.1, backoff_max=0.5, stale_after=1.0)
    camera.start()
    try:
        assert await wait_until(lambda: camera.status().online, 5)
        source.set_online(False)
        assert await wait_until(lambda: not camera.status().online, 3)
        status = camera.status()
        assert status.last_error and "SyntheticOffline" in status.last_error
        source.set_online(True)
        assert await wait_until(lambda: camera.status().online, 5)
        assert camera.status().reconnects >= 1
    finally:
        await camera.aclose()


async def test_loop_is_encoded_lazily_in_the_camera_thread() -> None:
    source = SyntheticSource(lambda: encode_loop("Quai de livraison", width=160, height=90, seconds=2))
    camera = Camera("c9", "Quai de livraison", source)
    camera.start()
    try:
        assert await wait_until(lambda: camera.status().online, 10)
        assert source.loop().label == "Quai de livraison"
    finally:
        await camera.aclose()
