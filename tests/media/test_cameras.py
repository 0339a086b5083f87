"""Camera hub pieces: bounded fan-out queues, GOP cache, keyframe tap, timestamp rebasing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from fractions import Fraction

import pytest

from bot.media.cameras import Camera, CameraHub
from bot.media.keyframes import DropToKeyframeQueue
from bot.media.rtsp import redact_url
from bot.media.synthetic import EncodedLoop, SyntheticSource
from bot.media.units import CodecParams, RawUnit

from .conftest import first, wait_until


def make_queue(max_items: int = 5, max_bytes: int = 1000) -> DropToKeyframeQueue[tuple[int, bool]]:
    return DropToKeyframeQueue(
        max_items=max_items, max_bytes=max_bytes, size=lambda i: 100, is_key=lambda i: i[1]
    )


async def test_queue_drops_to_next_keyframe_when_full() -> None:
    q = make_queue()
    for i in range(5):
        q.put((i, i == 0))
    q.put((5, False))  # overflow: everything goes, and we wait for a keyframe
    assert len(q) == 0 and q.overflows == 1
    q.put((6, False))
    q.put((7, True))
    q.put((8, False))
    assert [await q.get(), await q.get()] == [(7, True), (8, False)]
    assert q.dropped == 7


async def test_queue_stays_bounded_for_a_consumer_that_never_reads() -> None:
    q = make_queue(max_items=50, max_bytes=10**9)
    for i in range(10_000):
        q.put((i, i % 50 == 0))
        assert len(q) <= 50
    assert q.nbytes <= 50 * 100


async def test_queue_close_ends_iteration() -> None:
    q = make_queue()
    q.put((0, True))
    q.close()
    assert [item async for item in q] == []


def test_redact_url() -> None:
    assert redact_url("rtsp://admin:secret@10.0.0.5:554/stream1") == "rtsp://***@10.0.0.5:554/stream1"
    assert redact_url("rtsp://cam/stream") == "rtsp://cam/stream"


async def test_new_subscriber_gets_the_gop_at_once(small_loop: EncodedLoop) -> None:
    camera = Camera("c1", "Hall", SyntheticSource(small_loop))
    camera.start()
    try:
        assert await wait_until(lambda: len(camera.gop()) >= 10, 5)
        gop = camera.gop()
        assert gop[0].keyframe and not any(u.keyframe for u in gop[1:])
        key = camera.keyframe()
        assert key is not None and key.keyframe and key.params.width == 320
        sub = camera.subscribe()
        it = sub.__aiter__()
        got = [await first(it, 0.05) for _ in range(len(gop))]  # no waiting: already queued
        assert [u.seq for u in got] == [u.seq for u in gop]
        nxt = await first(it, 1)
        assert nxt.seq == got[-1].seq + 1  # then live, nothing missed or doubled
        sub.close()
    finally:
        await camera.aclose()


async def test_failing_listener_is_detached_not_fatal(small_loop: EncodedLoop) -> None:
    camera = Camera("c1", "Hall", SyntheticSource(small_loop))
    calls = []

    def bad(_au: object) -> None:
        calls.append(1)
        raise RuntimeError("boom")

    camera.attach(bad)
    camera.start()
    try:
        assert await wait_until(lambda: len(camera.gop()) >= 5, 5)
        assert calls == [1] and camera.status().online
    finally:
        await camera.aclose()


class JumpySource:
    """Sessions whose timestamps start anywhere and jump, like cameras after a reboot."""

    def __init__(self, starts: list[int]) -> None:
        self.starts = starts
        self.opened = 0
        self.params = CodecParams(b"", 320, 180)

    def describe(self) -> str:
        return "jumpy"

    def open(self, stop: threading.Event) -> JumpySession:
        start = self.starts[min(self.opened, len(self.starts) - 1)]
        self.opened += 1
        return JumpySession(self.params, start, stop)


class JumpySession:
    time_base = Fraction(1, 1000)

    def __init__(self, params: CodecParams, start: int, stop: threading.Event) -> None:
        self.params, self.start, self.stop = params, start, stop

    def __iter__(self) -> Iterator[RawUnit]:
        yield RawUnit(b"\x00\x00\x00\x01\x41\x00", self.start, self.start, False)  # before any keyframe
        for i in range(30):
            if self.stop.wait(0.002):
                return
            t = self.start + i * 40 + (100_000 if i == 20 else 0)  # a forward jump mid-session
            yield RawUnit(
                b"\x00\x00\x00\x01\x65\x88" if i % 10 == 0 else b"\x00\x00\x00\x01\x41\x9a", t, t, i % 10 == 0
            )
        raise ConnectionError("dropped")

    def close(self) -> None:
        pass


async def test_timestamps_stay_monotonic_across_reconnects_and_jumps() -> None:
    camera = Camera("c1", "Hall", JumpySource([5_000_000, 0, 123]), backoff_initial=0.01, backoff_max=0.02)
    seen: list[int] = []
    camera.attach(lambda au: seen.append(au.pts))
    camera.start()
    try:
        assert await wait_until(lambda: len(seen) >= 85, 5)
    finally:
        await camera.aclose()
    assert all(0 < b - a <= 3600 for a, b in zip(seen, seen[1:], strict=False))
    assert seen[0] == 0


async def test_hub_closes_all(small_loop: EncodedLoop) -> None:
    hub = CameraHub(Camera(f"c{i}", f"Cam {i}", SyntheticSource(small_loop)) for i in range(3))
    with pytest.raises(ValueError, match="duplicate"):
        hub.add(Camera("c0", "again", SyntheticSource(small_loop)))
    hub.start()
    assert await wait_until(lambda: all(s.online for s in hub.statuses()), 5)
    await hub.aclose()
    assert not any(s.connected for s in hub.statuses())
