"""Fixtures for the media tests: small synthetic loops and the GStreamer RTSP camera farm."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bot.media.synthetic import EncodedLoop, encode_loop

logger = logging.getLogger(__name__)

FARM = Path(__file__).with_name("farm.py")
SYSTEM_PYTHON = "/usr/bin/python3"
FARM_PACKAGES = (
    "python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp "
    "gstreamer1.0-plugins-base gstreamer1.0-plugins-good"
)
_PROBE = (
    "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    "assert Gst.ElementFactory.find('appsrc') and Gst.ElementFactory.find('rtph264pay')"
)


@pytest.fixture(scope="session")
def small_loop() -> EncodedLoop:
    return encode_loop("Entrée Hall Nord", width=320, height=180, seconds=2)


@pytest.fixture(scope="session")
def farm_loop() -> EncodedLoop:
    return encode_loop("Ferme RTSP", width=640, height=360, seconds=2)


async def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


async def first(aiter_: object, timeout: float) -> object:
    return await asyncio.wait_for(aiter_.__anext__(), timeout)  # type: ignore[attr-defined]


Awaiter = Callable[..., Awaitable[object]]


class FarmHandle:
    """A running farm: URLs of its mounts and its control channel."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, mounts: int) -> None:
        self.proc = proc
        self.port = port
        self.mounts = mounts
        self._lock = threading.Lock()

    def url(self, index: int) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam{index}"

    def sub_url(self, index: int) -> str:
        """The camera's low-resolution substream (served when the farm got a second clip)."""
        return f"rtsp://127.0.0.1:{self.port}/sub{index}"

    def command(self, line: str) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline().decode().strip()
        if reply != f"OK {line}":
            raise RuntimeError(f"farm answered {reply!r} to {line!r}")

    def stop(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.write(b"quit\n")
                self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)


def farm_available() -> str | None:
    """None when the farm can run, else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run([SYSTEM_PYTHON, "-c", _PROBE], capture_output=True, timeout=30)
    if probe.returncode:
        return f"GStreamer RTSP server missing (apt-get install {FARM_PACKAGES})"
    return None


def start_farm(loop: EncodedLoop, mounts: int, sub: EncodedLoop | None = None,
               auth: dict[str, str] | None = None) -> FarmHandle:
    """The farm serving `loop` at /camK and, given `sub`, that substream at /subK; with `auth`
    ({"method": "digest" or "basic", "user", "password"}) every mount needs the credentials."""
    proc = subprocess.Popen(
        [SYSTEM_PYTHON, str(FARM)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr
    )
    assert proc.stdin is not None and proc.stdout is not None
    clips = [loop] if sub is None else [loop, sub]
    header: dict[str, object] = {"mounts": mounts, "fps": loop.fps, "clips": len(clips)}
    if auth is not None:
        header["auth"] = auth
    proc.stdin.write((json.dumps(header) + "\n").encode())
    for clip in clips:
        for data, key in clip.packets:
            proc.stdin.write(struct.pack(">IB", len(data), key) + data)
        proc.stdin.write(struct.pack(">IB", 0, 0))
    proc.stdin.flush()
    line = proc.stdout.readline().decode()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"farm did not start: {line!r}")
    return FarmHandle(proc, int(line.split()[1]), mounts)


@pytest.fixture(scope="session")
def farm_sub_loop() -> EncodedLoop:
    return encode_loop("Ferme RTSP", width=320, height=180, seconds=2, bitrate=250_000)


@pytest.fixture(scope="session")
def farm(farm_loop: EncodedLoop, farm_sub_loop: EncodedLoop) -> Iterator[FarmHandle]:
    reason = farm_available()
    if reason:
        # CI installs the packages: there a missing farm is a failure, not a silent skip
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)
    handle = start_farm(farm_loop, mounts=4, sub=farm_sub_loop)
    try:
        yield handle
    finally:
        handle.stop()
