"""No image bytes on disk: a synthetic camera, mosaics and a relay viewer write no file.

Two complementary checks while the pipeline runs:
- a `sys.addaudithook` hook records every Python-level `open` for writing (Pillow, our
  code, any library going through Python's io);
- FFmpeg opens files in C, out of the hook's sight, so /proc/self/fd is sampled for
  regular files opened with a write mode.
Ignored: bytecode caches (`__pycache__/*.pyc`, written by the import system when a module
is first imported) and SQLite journals (`-journal`, `-wal`), which belong to other parts
of the app (the audit log) and never hold image bytes; neither should appear here anyway.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

from bot.media.cameras import Camera, CameraHub
from bot.media.relay import Relay
from bot.media.synthetic import SyntheticSource, encode_loop
from bot.media.tiles import MosaicRenderer, tile_inputs
from tests.nodisk_support import writable_files

from .conftest import wait_until

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_IGNORED_SUFFIXES = (".pyc", "-journal", "-wal", "-shm")


class WriteRecorder:
    """Audit hooks cannot be removed: this one records only while `active` is set."""

    def __init__(self) -> None:
        self.active = threading.Event()
        self.writes: list[str] = []
        sys.addaudithook(self.hook)

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        if event != "open" or not self.active.is_set():
            return
        path, mode, flags = (list(args) + [None, None, None])[:3]
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if writing and not str(path).endswith(_IGNORED_SUFFIXES):
            self.writes.append(f"{path!r} mode={mode!r} flags={flags!r}")


def writable_regular_fds() -> set[str]:
    return writable_files(lambda target: target.endswith(_IGNORED_SUFFIXES))


async def test_synthetic_mosaic_and_relay_write_nothing(tmp_path: Path) -> None:
    recorder = WriteRecorder()
    recorder.active.set()
    (tmp_path / "probe.txt").write_text("the recorder sees writes")  # not an image: checks the hook
    assert len(recorder.writes) == 1
    recorder.writes.clear()
    fds_before = writable_regular_fds()
    seen_fds: set[str] = set()
    try:
        loop = encode_loop("Régie — sans disque", width=320, height=180, seconds=2)
        hub = CameraHub([Camera(f"c{i}", f"Caméra {i}", SyntheticSource(loop)) for i in range(3)])
        hub.start()
        relay = Relay(hub)
        renderer = MosaicRenderer(tile_width=192, tile_height=108)
        try:
            assert await wait_until(lambda: all(s.online for s in hub.statuses()), 5)
            viewer = relay.open_viewer("c0")
            received = 0
            async for chunk in viewer:
                received += len(chunk)
                if received > 50_000:
                    break
            viewer.close()
            for drill in (False, True):
                jpeg = await renderer.render_async(tile_inputs(hub), drill=drill, watermark="Agent Zoé")
                assert jpeg[:2] == b"\xff\xd8"
                seen_fds |= writable_regular_fds()
            await asyncio.sleep(0.2)
            seen_fds |= writable_regular_fds()
        finally:
            await hub.aclose()
    finally:
        recorder.active.clear()
    assert recorder.writes == []
    assert seen_fds - fds_before == set()
