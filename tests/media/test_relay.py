"""Relay: fMP4 init and fragments parse, new viewers start at once, slow viewers stay bounded."""

from __future__ import annotations

import asyncio
import io
import struct
import threading
import time
from collections.abc import AsyncIterator

import av
import pytest

from bot.media.cameras import Camera, CameraHub
from bot.media.fmp4 import FragmentWriter, init_segment
from bot.media.h264 import Sample, length_prefixed
from bot.media.hls import decode_time
from bot.media.relay import Batch, Inbox, Relay, ws_header
from bot.media.synthetic import EncodedLoop, SyntheticSource
from bot.media.units import AccessUnit

from .conftest import first, wait_until


def boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        out.append((kind, data[pos + 8 : pos + size]))
        pos += size
    assert pos == len(data)
    return out


def unframe(parts: list[bytes | memoryview]) -> bytes:
    """The payload of one binary WebSocket frame, as the relay hands a fragment to a link (its
    buffers, to be written in order)."""
    message = b"".join(parts)
    for head in (2, 4, 10):
        if ws_header(len(message) - head) == message[:head]:
            return message[head:]
    raise AssertionError("not one binary WebSocket frame")


def is_key_fragment(frag: bytes) -> bool:
    trun = frag.index(b"trun")
    flags = struct.unpack(">I", frag[trun + 24 : trun + 28])[0]  # first sample's flags
    return flags == 0x02000000


def units(loop: EncodedLoop, count: int) -> list[AccessUnit]:
    params = loop.params
    return [
        AccessUnit(
            loop.packets[i % len(loop.packets)][0],
            i * 3600,
            loop.packets[i % len(loop.packets)][1],
            params,
            i + 1,
            0.0,
        )
        for i in range(count)
    ]


def test_init_segment_is_ftyp_then_moov(small_loop: EncodedLoop) -> None:
    top = boxes(init_segment(small_loop.params))
    assert [k for k, _ in top] == [b"ftyp", b"moov"]
    moov = boxes(top[1][1])
    assert [k for k, _ in moov] == [b"mvhd", b"trak", b"mvex"]


def test_fragments_are_moof_mdat_and_ffmpeg_reads_them(small_loop: EncodedLoop) -> None:
    writer = FragmentWriter()
    stream = []
    for au in units(small_loop, 75):
        init, frag = writer.write(au)
        assert [k for k, _ in boxes(frag)] == [b"moof", b"mdat"]
        assert is_key_fragment(frag) == au.keyframe
        stream.append(frag)
    data = init + b"".join(stream)
    with av.open(io.BytesIO(data), "r", format="mp4") as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (320, 180)
        packets = [p for p in container.demux(video) if p.size]
        assert [p.is_keyframe for p in packets] == [i % 50 == 0 for i in range(75)]
        assert [p.dts for p in packets] == [i * 3600 for i in range(75)]
    with av.open(io.BytesIO(data), "r", format="mp4") as container:
        assert sum(1 for _ in container.decode(video=0)) == 75


def test_a_viewer_may_start_on_a_later_keyframe(small_loop: EncodedLoop) -> None:
    writer = FragmentWriter()
    written = [writer.write(au) for au in units(small_loop, 120)]
    data = written[0][0] + b"".join(frag for _, frag in written[50:])
    with av.open(io.BytesIO(data), "r", format="mp4") as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 70 and frames[0].pts == 50 * 3600


@pytest.fixture
async def relay(small_loop: EncodedLoop) -> AsyncIterator[Relay]:
    """The relay of one running camera that already holds 20 access units of its GOP."""
    hub = CameraHub([Camera("c1", "Hall", SyntheticSource(small_loop))])
    hub.start()
    try:
        assert await wait_until(lambda: len(hub["c1"].gop()) >= 20, 5)
        yield Relay(hub)
    finally:
        await hub.aclose()


async def test_new_viewer_gets_init_and_gop_immediately(relay: Relay) -> None:
    viewer = relay.open_viewer("c1")
    gop = len(viewer.queue)
    assert gop >= 20  # queued before the first await: no wait for the next keyframe
    it = viewer.__aiter__()
    init = await first(it, 0.1)
    assert init[4:8] == b"ftyp" and b"moov" in init
    assert viewer.mime and viewer.mime.startswith('video/mp4; codecs="avc1.')
    fragments = [await first(it, 0.1) for _ in range(gop)]
    assert all(f[4:8] == b"moof" for f in fragments)
    await first(it, 1)  # then live
    # a second viewer shares the same source and the same fragments
    second = relay.open_viewer("c1")
    assert len(second.queue) >= 1 and relay.viewer_count() == 2
    viewer.close()
    second.close()
    assert relay.viewer_count() == 0


async def test_batches_are_the_init_alone_then_every_ready_fragment_in_one_message(relay: Relay) -> None:
    viewer = relay.open_viewer("c1")
    gop = len(viewer.queue)
    it = viewer.batches().__aiter__()
    init = await first(it, 0.1)
    assert init.init is not None and init.init[4:8] == b"ftyp" and init.data == b""
    burst = await first(it, 0.1)  # the cached GOP: one wake-up, one message
    kinds = [kind for kind, _ in boxes(burst.data)]
    assert burst.init is None and burst.waiting == gop and kinds == [b"moof", b"mdat"] * gop
    assert is_key_fragment(burst.data) and len(viewer.queue) == 0
    live = await first(it, 1)
    assert live.init is None and 1 <= live.waiting <= 3 and boxes(live.data)[0][0] == b"moof"
    viewer.close()
    with pytest.raises(StopAsyncIteration):
        await first(it, 1)


def decode_times(data: bytes) -> list[int | None]:
    """The tfdt of each fragment of a run of moof+mdat."""
    return [decode_time(body) for kind, body in boxes(data) if kind == b"moof"]


async def test_live_fragments_go_straight_to_a_ready_link_and_queue_in_order_behind_anything_ahead(
        relay: Relay) -> None:
    """A fragment with nothing ahead of it is written straight to the link (no wake-up of the
    consumer); while the link refuses, or the consumer still holds fragments, they queue; the
    wire carries the init, then every frame once, in order, whichever way each one went."""
    viewer = relay.open_viewer("c1")
    wire: list[bytes] = []
    link = {"open": True, "direct": 0, "refused": 0}

    def direct(data: list[bytes | memoryview]) -> bool:
        if not link["open"]:
            link["refused"] += 1
            return False
        link["direct"] += 1
        wire.append(unframe(data))
        return True

    viewer.direct = direct

    async def consume() -> None:
        async for batch in viewer.batches():
            await asyncio.sleep(0.01)  # a write that waits for the socket: fragments come meanwhile
            wire.append(batch.init or batch.data)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.6)
    assert link["direct"] > 0, "live fragments went straight to the link"
    link["open"] = False
    await asyncio.sleep(0.3)
    link["open"] = True
    await asyncio.sleep(0.4)
    viewer.close()
    await asyncio.wait_for(consumer, 1)
    assert link["refused"] > 0 and wire[0][4:8] == b"ftyp"
    times = [t for data in wire[1:] for t in decode_times(data)]
    assert None not in times, "every fragment carries its decode time"
    steps = {b - a for a, b in zip(times, times[1:], strict=False)}
    assert len(times) > 30 and len(steps) == 1 and steps.pop() > 0, "every frame once, in order"


async def test_init_segments_and_keyframes_only_never_take_the_short_way(relay: Relay) -> None:
    viewer = relay.open_viewer("c1")
    calls: list[bytes] = []
    viewer.direct = lambda parts: calls.append(unframe(parts)) is None
    await asyncio.sleep(0.3)
    assert calls == [], "the init and the GOP are not sent yet: everything queues behind them"
    viewer.keyframes_only = True
    batches: list[Batch] = []

    async def consume() -> None:
        async for batch in viewer.batches():
            batches.append(batch)

    consumer = asyncio.create_task(consume())
    assert await wait_until(lambda: sum(b.init is None and is_key_fragment(b.data) for b in batches) >= 2, 5)
    assert batches[0].init is not None and calls == [], "keyframes-only: every keyframe through the task"
    viewer.keyframes_only = False
    assert await wait_until(lambda: len(calls) >= 5, 2)
    assert all(boxes(c)[0][0] == b"moof" for c in calls)
    viewer.close()
    await asyncio.wait_for(consumer, 1)


async def test_slow_viewer_stays_bounded_and_skips_to_a_keyframe(small_loop: EncodedLoop) -> None:
    hub = CameraHub([Camera("c1", "Hall", SyntheticSource(small_loop))])
    hub.start()
    relay = Relay(hub, viewer_max_items=30)
    try:
        slow = relay.open_viewer("c1")
        fast = relay.open_viewer("c1")
        received = 0

        async def drain() -> None:
            nonlocal received
            async for _ in fast:
                received += 1

        reader = asyncio.create_task(drain())
        sizes = []
        for _ in range(40):  # 2 s: more than a GOP while `slow` never reads
            await asyncio.sleep(0.05)
            sizes.append(len(slow.queue))
        assert max(sizes) <= 30 and slow.dropped > 0
        it = slow.__aiter__()
        await first(it, 1)  # init
        assert is_key_fragment(await first(it, 3))  # what a dropped viewer gets next decodes
        fast.close()
        await asyncio.wait_for(reader, 2)
        assert received > 40
        slow.close()
    finally:
        await hub.aclose()


async def test_closing_ends_the_iterator_promptly(small_loop: EncodedLoop) -> None:
    hub = CameraHub([Camera("c1", "Hall", SyntheticSource(small_loop))])
    hub.start()
    relay = Relay(hub)
    try:
        viewers = [relay.open_viewer("c1") for _ in range(3)]
        counts = [0, 0, 0]

        async def watch(i: int) -> None:
            async for _ in viewers[i]:
                counts[i] += 1

        tasks = [asyncio.create_task(watch(i)) for i in range(3)]
        assert await wait_until(lambda: min(counts) > 5, 5)
        started = time.monotonic()
        relay.close_all()
        await asyncio.wait_for(asyncio.gather(*tasks), 2)
        assert time.monotonic() - started < 0.5
        assert relay.viewer_count() == 0
        # the camera no longer feeds a relay that has no viewer
        assert hub["c1"]._listeners == ()
    finally:
        await hub.aclose()


async def test_a_later_viewer_gets_the_cameras_gop_then_live_without_gap_or_double(small_loop: EncodedLoop) -> None:
    """The relay keeps no GOP of its own: a viewer joining a watched camera gets the camera's
    GOP written for it, up to what the others already got, then the live fragments."""
    hub = CameraHub([Camera("c1", "Hall", SyntheticSource(small_loop))])
    hub.start()
    relay = Relay(hub)
    try:
        first_viewer = relay.open_viewer("c1")
        await asyncio.sleep(0.5)
        later = relay.open_viewer("c1")
        seqs, keys = [], []
        for _ in range(40):
            seg = await asyncio.wait_for(later.queue.get(), 2)
            assert seg is not None
            seqs.append(seg.seq)
            keys.append(seg.keyframe)
        assert keys[0], "starts on a keyframe"
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "consecutive: nothing missed or doubled"
        first_viewer.close()
        later.close()
    finally:
        await hub.aclose()


async def test_the_inbox_takes_on_the_loops_clock_and_rests_when_nothing_is_watched(small_loop: EncodedLoop) -> None:
    """A reader thread only hands units over (with their NAL units, found there): nothing
    else runs in its thread, nothing wakes the loop; the loop takes them on its next tick, in
    order, each with its own NAL units. With no camera watched the loop
    does not tick at all, and once it is closed a reader is told to stop posting."""
    loop = asyncio.get_running_loop()
    inbox = Inbox(loop, window=0.02)
    taken: list[tuple[int, bool, bool]] = []
    loop_thread = threading.get_ident()

    def take(au: AccessUnit, sample: Sample) -> None:
        taken.append((au.seq, threading.get_ident() == loop_thread, b"".join(sample) == b"".join(length_prefixed(au.data))))

    aus = units(small_loop, 100)
    inbox.join()
    reader = threading.Thread(target=lambda: [inbox.post(take, au) for au in aus])
    reader.start()
    reader.join()
    assert taken == [], "nothing is taken in the reader's thread"
    assert await wait_until(lambda: len(taken) == len(aus), 1)
    assert taken == [(au.seq, True, True) for au in aus], "every unit once, in order, on the loop, with its NAL units"
    inbox.leave()
    assert inbox.post(take, aus[0]) is True
    await asyncio.sleep(0.1)
    assert len(taken) == len(aus), "no tick while nothing is watched"
    other = asyncio.new_event_loop()
    other.close()
    assert Inbox(other).post(take, aus[0]) is False
