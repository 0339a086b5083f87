"""The ingest loop's RTSP reader (bot/media/rtsp_client.py) against real and scripted servers.

- The farm (GStreamer's RTSP server and RTP payloader, the independent peer) behind Digest
  and Basic authentication: the right credentials play, wrong or missing ones give a clear
  error, retried under the watchdog's backoff; the password is in no log and no status.
- A scripted server for what the farm cannot be asked to do: a short session timeout (the
  keep-alive must come in time, with the session), a request from the server and RTCP
  between the packets, the TEARDOWN at the end, junk instead of RTSP.
- The media service on RTSP cameras: one ingest thread for every stream, no thread per
  camera, and it ends with the service.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.media.cameras import Camera, CameraHub
from bot.media.h264 import parameter_sets
from bot.media.ingest import IngestLoop
from bot.media.rtsp_client import LoopRtspSource
from bot.media.service import MediaOptions, build_media
from bot.media.synthetic import EncodedLoop
from bot.settings import CameraCfg

from .conftest import FarmHandle, farm_available, start_farm, wait_until
from .rtp_packets import packets

PASSWORD = "Gr@nde-Salle-2026"  # noqa: S105 - a test camera's


@pytest.fixture
def ingest() -> Iterator[IngestLoop]:
    loop = IngestLoop()
    yield loop
    loop.stop()


def camera(url: str, ingest: IngestLoop, name: str = "c1", read_timeout: float = 1.5) -> Camera:
    return Camera(name, f"Caméra {name}", LoopRtspSource(url, open_timeout=2.0, read_timeout=read_timeout),
                  ingest=ingest, backoff_initial=0.2, backoff_max=1.0, stale_after=1.0)


@pytest.fixture(scope="module", params=["digest", "basic"])
def secured_farm(request: pytest.FixtureRequest, farm_loop: EncodedLoop) -> Iterator[FarmHandle]:
    reason = farm_available()
    if reason:
        pytest.skip(reason)  # the shared farm fixture fails CI when the packages are missing
    handle = start_farm(farm_loop, mounts=1, auth={"method": request.param, "user": "agent", "password": PASSWORD})
    try:
        yield handle
    finally:
        handle.stop()


def with_credentials(url: str, user: str, password: str) -> str:
    return url.replace("rtsp://", f"rtsp://{user}:{password}@")


async def test_a_camera_behind_authentication(secured_farm: FarmHandle, ingest: IngestLoop,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    good = camera(with_credentials(secured_farm.url(1), "agent", PASSWORD), ingest, "good")
    wrong = camera(with_credentials(secured_farm.url(1), "agent", "not-" + PASSWORD), ingest, "wrong")
    anonymous = camera(secured_farm.url(1), ingest, "anonymous")
    hub = CameraHub([good, wrong, anonymous])
    hub.start()
    try:
        assert await wait_until(lambda: good.status().online and good.keyframe() is not None, 8)
        assert await wait_until(lambda: wrong.status().reconnects >= 1 and anonymous.status().reconnects >= 1, 8)
        assert wrong.status().last_error == "RtspError: authentication refused"
        assert anonymous.status().last_error == "RtspError: the camera needs credentials"
        assert not wrong.status().online and not anonymous.status().online
        key = good.keyframe()
        assert key is not None and (key.params.width, key.params.height) == (640, 360)
    finally:
        await hub.aclose()
    assert PASSWORD not in caplog.text and "***@127.0.0.1" in caplog.text


class ScriptedCamera:
    """A small RTSP server playing a loop over TCP, recording what it is asked."""

    def __init__(self, loop: EncodedLoop, session_timeout: int = 4, junk: bytes | None = None) -> None:
        self.loop = loop
        self.session_timeout = session_timeout
        self.junk = junk
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> ScriptedCamera:
        self.server = await asyncio.start_server(self.client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/live"

    def sdp(self) -> bytes:
        sps, pps = parameter_sets(self.loop.extradata)
        sprop = base64.b64encode(sps[0]).decode() + "," + base64.b64encode(pps[0]).decode()
        return ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=Scripted\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
                f"a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;sprop-parameter-sets={sprop}\r\n"
                "a=control:track1\r\n").encode()

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        player: asyncio.Task[None] | None = None
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                self.requests.append(head)
                if self.junk is not None:
                    writer.write(self.junk)
                    await writer.drain()
                    continue
                method = head.split(" ", 1)[0]
                cseq = next(line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.startswith("CSeq"))
                extra, body = "", b""
                if method == "OPTIONS":
                    extra = "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n"
                elif method == "DESCRIBE":
                    body = self.sdp()
                    extra = f"Content-Base: {self.url}/\r\nContent-Type: application/sdp\r\n"
                elif method == "SETUP":
                    extra = (f"Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n"
                             f"Session: 4242;timeout={self.session_timeout}\r\n")
                writer.write((f"RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {len(body)}\r\n\r\n").encode()
                             + body)
                if method == "PLAY" and player is None:
                    player = asyncio.create_task(self.play(writer))
                if method == "TEARDOWN":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if player is not None:
                player.cancel()
            writer.close()

    async def play(self, writer: asyncio.StreamWriter) -> None:
        seq, frame = 0, 0
        while True:
            au, _key = self.loop.packets[frame % len(self.loop.packets)]
            for p in packets(au, frame * 3600, seq):
                writer.write(b"$\x00" + len(p).to_bytes(2, "big") + p)
                seq += 1
            if frame % 25 == 3:  # an RTCP report and a request from the server between the packets
                writer.write(b"$\x01\x00\x08" + bytes(8))
                writer.write(b"ANNOUNCE rtsp://client/ RTSP/1.0\r\nCSeq: 9\r\n\r\n")
            frame += 1
            await asyncio.sleep(0.04)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def scripted(small_loop: EncodedLoop) -> AsyncIterator[ScriptedCamera]:
    cam = await ScriptedCamera(small_loop).start()
    yield cam
    await cam.close()


async def test_keep_alive_within_the_session_timeout_and_teardown(scripted: ScriptedCamera, ingest: IngestLoop) -> None:
    cam = camera(with_credentials(scripted.url, "agent", PASSWORD), ingest)
    cam.start()
    try:
        assert await wait_until(lambda: cam.status().online, 5)
        seqs = {cam.keyframe() and cam.keyframe().seq}  # type: ignore[union-attr]
        # session timeout 4 s: a keep-alive every 2 s, with the session; the stream goes on
        assert await wait_until(lambda: sum(r.startswith("GET_PARAMETER") for r in scripted.requests) >= 2, 6)
        assert all("Session: 4242" in r for r in scripted.requests if r.startswith("GET_PARAMETER"))
        assert cam.status().online and cam.status().reconnects == 0 and cam.status().last_error is None
        seqs.add(cam.keyframe().seq)  # type: ignore[union-attr]
        assert len(seqs) == 2  # new keyframes kept coming, past the ANNOUNCE and the RTCP
    finally:
        await cam.aclose()
    assert await wait_until(lambda: any(r.startswith("TEARDOWN") for r in scripted.requests), 2)
    assert not any(PASSWORD in r.split("\r\n", 1)[0] for r in scripted.requests)


async def test_junk_is_an_error_and_the_camera_keeps_trying(small_loop: EncodedLoop, ingest: IngestLoop) -> None:
    junk = await ScriptedCamera(small_loop, junk=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").start()
    try:
        cam = camera(junk.url, ingest)
        cam.start()
        try:
            assert await wait_until(lambda: cam.status().reconnects >= 2, 5)
            assert (cam.status().last_error or "").startswith("RtspError: not an RTSP reply")
            assert not cam.status().online
        finally:
            await cam.aclose()
    finally:
        await junk.close()


async def test_one_ingest_thread_for_every_rtsp_stream(farm: FarmHandle) -> None:
    cams = [CameraCfg(id=f"c{i}", name=f"Caméra {i}", url=farm.url(i), substream_url=farm.sub_url(i))
            for i in range(1, 5)]
    before = {t.ident for t in threading.enumerate()}
    media = build_media(cams, frozenset(c.id for c in cams), MediaOptions(rtsp_open_timeout=2.0))
    media.start()
    try:
        assert await wait_until(lambda: all(c.keyframe() is not None for c in [*media.hub, *media.subs]), 10)
        new = [t.name for t in threading.enumerate() if t.ident not in before]
        assert new == ["ingest"], new  # 8 streams, one thread
    finally:
        await media.stop()
    assert await wait_until(lambda: not any(t.name == "ingest" for t in threading.enumerate()), 3)
