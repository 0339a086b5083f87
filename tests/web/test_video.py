"""The adaptive video feed: the page's choice, and a viewer whose link backs up moved down
(substream, then keyframes only) without ever holding another viewer back."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from unittest.mock import Mock

import pytest
from aiohttp import WSMsgType
from aiohttp._websocket.writer import WebSocketWriter

from bot.media.cameras import Camera, CameraHub
from bot.media.fmp4 import fragment, fragment_parts
from bot.media.relay import Relay, Segment, ws_header
from bot.media.synthetic import EncodedLoop, SyntheticSource, encode_loop
from bot.web.video import BACKLOG_DOWN, Quality, VideoChoice, VideoFeed
from tests.media.conftest import wait_until


class GatedSocket:
    """A WebSocket whose link the test opens and closes: sends wait while it is closed."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.texts: list[str] = []
        self.chunks = 0

    async def send_str(self, text: str) -> None:
        await self.open.wait()
        self.texts.append(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.open.wait()
        self.chunks += 1

    def controls(self) -> list[dict[str, object]]:
        return [json.loads(t) for t in self.texts if t.startswith("{")]


@pytest.fixture(scope="module")
def loops() -> tuple[EncodedLoop, EncodedLoop]:
    return (encode_loop("Principal", width=320, height=180, seconds=2),
            encode_loop("Sous-flux", width=160, height=90, seconds=2, bitrate=100_000))


@pytest.fixture
async def relays(loops: tuple[EncodedLoop, EncodedLoop]) -> AsyncIterator[tuple[Relay, Relay]]:
    main = CameraHub([Camera("c1", "Caméra 1", SyntheticSource(loops[0]))])
    sub = CameraHub([Camera("c1", "Caméra 1", SyntheticSource(loops[1]))])
    main.start()
    sub.start()
    try:
        assert await wait_until(lambda: main["c1"].keyframe() is not None and sub["c1"].keyframe() is not None, 10)
        yield Relay(main), Relay(sub)
    finally:
        await asyncio.gather(main.aclose(2), sub.aclose(2))


async def test_a_backed_up_viewer_goes_to_the_substream_then_keyframes_only(relays: tuple[Relay, Relay]) -> None:
    main, sub = relays
    slow, fine = GatedSocket(), GatedSocket()
    feeds = [VideoFeed(ws, "c1", main, sub, VideoChoice(Quality.HD)) for ws in (slow, fine)]
    tasks = [asyncio.create_task(feed.run()) for feed in feeds]
    try:
        assert await wait_until(lambda: slow.chunks > 2 and fine.chunks > 2, 10)
        slow.open.clear()  # the slow viewer's link stops carrying anything
        viewer = feeds[0].choice.viewer
        assert viewer is not None
        assert await wait_until(lambda: viewer.backlog >= BACKLOG_DOWN, 10)
        before = fine.chunks
        assert await wait_until(lambda: fine.chunks > before + 10, 10)  # the other viewer is not held back
        slow.open.set()
        assert await wait_until(lambda: feeds[0].choice.quality is Quality.SAVER, 10)
        assert await wait_until(lambda: any(c["quality"] == "saver" for c in slow.controls()), 10)
        assert {"quality": "saver", "keyframes_only": False, "reason": "link"} in slow.controls()
        assert main.camera_relay("c1").viewer_count == 1 and sub.camera_relay("c1").viewer_count == 1
        # still too slow on the substream: keyframes only
        slow.open.clear()
        on_sub = feeds[0].choice.viewer
        assert on_sub is not None and on_sub is not viewer
        ok = await wait_until(lambda: on_sub.backlog >= BACKLOG_DOWN, 10)
        assert ok, (on_sub.backlog, on_sub.closed, on_sub.keyframes_only, slow.controls(), feeds[0].choice)
        slow.open.set()
        assert await wait_until(lambda: {"quality": "saver", "keyframes_only": True, "reason": "link"}
                                in slow.controls(), 10)
        # the link keeps up again: every frame of the substream (never back to HD unasked)
        assert await wait_until(lambda: slow.controls()[-1]["keyframes_only"] is False, 30)
        assert feeds[0].choice.quality is Quality.SAVER
        assert feeds[1].choice.quality is Quality.HD and feeds[1].downgrades == 0
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_page_switches_quality(relays: tuple[Relay, Relay]) -> None:
    main, sub = relays
    ws = GatedSocket()
    choice = VideoChoice(Quality.SAVER)
    task = asyncio.create_task(VideoFeed(ws, "c1", main, sub, choice).run())
    try:
        assert await wait_until(lambda: ws.chunks > 2, 10)
        assert ws.controls() == [{"quality": "saver", "keyframes_only": False, "reason": "page"}]
        assert ws.texts[1].startswith("video/mp4")
        choice.switch(Quality.HD, "page")
        assert await wait_until(lambda: len(ws.controls()) == 2, 10)
        assert ws.controls()[1]["quality"] == "hd"
        assert await wait_until(lambda: main.camera_relay("c1").viewer_count == 1, 5)
        assert sub.camera_relay("c1").viewer_count == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_data_saving_without_substream_is_keyframes_only(relays: tuple[Relay, Relay]) -> None:
    main, _ = relays
    ws = GatedSocket()
    task = asyncio.create_task(VideoFeed(ws, "c1", main, Relay(CameraHub()), VideoChoice(Quality.SAVER)).run())
    try:
        assert await wait_until(lambda: ws.chunks > 3, 10)
        assert ws.controls() == [{"quality": "saver", "keyframes_only": True, "reason": "page"}]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("size", [125, 126, 16_384, 65_535, 65_536, 300_000])
async def test_a_fragment_written_straight_is_the_frame_aiohttp_would_write(size: int) -> None:
    """The relay's short way writes the frame itself (each fragment's buffers after its
    WebSocket header, in one call): byte for byte what aiohttp's own writer sends for
    ``send_bytes`` (no mask, no compression), whatever the length's encoding; and the fragment
    is found again behind the header whatever its length."""
    empty = len(fragment(1, 0, 3600, [b"\0\0\0\1", b"", b"\0\0\0\2", b""], True))
    nal = bytes(range(256)) * size  # a NAL unit making a fragment of ``size`` bytes, as two views
    sample: list[bytes | memoryview] = [b"\0\0\0\1", memoryview(nal)[:(size - empty) // 2],
                                        b"\0\0\0\2", memoryview(nal)[(size - empty) // 2:size - empty]]
    data = fragment(1, 0, 3600, list(sample), True)
    assert len(data) == size
    written: list[bytes] = []
    transport = Mock(is_closing=lambda: False, write=lambda data: written.append(bytes(data)))
    await WebSocketWriter(Mock(_paused=False), transport, use_mask=False).send_frame(data, WSMsgType.BINARY)
    parts, length = fragment_parts(1, 0, 3600, list(sample), True, prefix=ws_header)
    assert b"".join(parts) == b"".join(written) and length == len(b"".join(written))
    assert all(part is view for part, view in zip(parts[1:], sample, strict=True)), "the frame is not copied"
    seg = Segment(parts, length, b"", True, 1)
    assert seg.data == data
