"""A whole incident writes no image or video to disk.

Alert → login → mosaic fetches → a live video stream and a masked-stills stream → tiles posted
to a room and replaced → end. Three checks, each covering what the others cannot see:

- ``sys.addaudithook`` refuses (and records) every Python-level open for writing — ``open``,
  ``os.open``, ``tempfile`` — while the app runs. Only the app's two SQLite databases are
  allowed: the registre and the state store (and their -wal/-shm/-journal files), which hold
  text records, never pictures (the third check reads them to make sure). Bytecode caches
  (``.pyc``) are allowed too: the import system writes them, never our code.
- FFmpeg and SQLite open files in C, out of the hook's sight: ``/proc/self/fd`` is sampled
  every 50 ms for regular files opened for writing that are not those databases.
- Afterwards no JPEG (FF D8 FF) or MP4 (ftyp, moof) bytes exist in any file under the data
  directory, under the temp directory (``tempfile.tempdir`` is pointed at a fresh one for the
  run, so anything using tempfile lands there), or in a new file directly under /tmp.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from tests.nodisk_support import writable_files
from tests.web.support import TEST_MEDIA, Cam, LiveApp, cookie, image, until

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_SQLITE = (".sqlite3", ".sqlite3-wal", ".sqlite3-shm", ".sqlite3-journal")
_MAGIC = (b"\xff\xd8\xff", b"ftyp", b"moof")


class DiskGuard:
    """Audit hooks cannot be removed: this one acts only while `active` is set."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = str(data_dir)
        self.active = threading.Event()
        self.violations: list[str] = []
        sys.addaudithook(self.hook)

    def allowed(self, path: object) -> bool:
        p = os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else ""
        return (p.startswith(self.data_dir) and p.endswith(_SQLITE)) or p.endswith(".pyc")

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self.active.is_set():
            return
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and bool(flags & _WRITE_FLAGS))
            if writing and not self.allowed(path):
                self.violations.append(f"open {path!r} mode={mode!r} flags={flags!r}")
                raise PermissionError(f"Vigie must not write {path!r} during an incident")
        elif event in ("tempfile.mkstemp", "tempfile.mkdtemp"):
            self.violations.append(f"{event} {args!r}")
            raise PermissionError(f"{event} during an incident")
        elif event == "sqlite3.connect" and args and not self.allowed(args[0]) and args[0] != ":memory:":
            self.violations.append(f"sqlite3.connect {args[0]!r}")


def media_bytes_in(paths: list[Path]) -> list[str]:
    hits = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        hits.extend(f"{path}: {magic!r}" for magic in _MAGIC if magic in data)
    return hits


async def test_whole_incident_writes_no_picture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir, temp_dir = tmp_path / "data", tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))
    started = time.time()
    system_tmp_before = set(os.listdir("/tmp"))
    guard = DiskGuard(data_dir)
    fds_before = writable_files(guard.allowed)
    seen_fds: set[str] = set()
    stop_sampling = asyncio.Event()

    async def sample() -> None:
        while not stop_sampling.is_set():
            seen_fds.update(writable_files(guard.allowed))
            await asyncio.sleep(0.05)

    guard.active.set()
    with pytest.raises(PermissionError):  # the guard does see and stop writes
        (tmp_path / "probe.jpg").write_bytes(b"\xff\xd8\xff")
    assert len(guard.violations) == 1
    guard.violations.clear()
    sampler = asyncio.create_task(sample())
    try:
        app = LiveApp(data_dir, [Cam("parvis", "Parvis nord"), Cam("hall", "Hall d'entrée"),
                                 Cam("parking", "Parking public", masks=((0.5, 0.0, 0.5, 0.5),))],
                      options=replace(TEST_MEDIA, tile_at_activation=True), tile_interval=5)
        await app.start()
        try:
            await app.online()
            incident, link = await app.alert()
            async with aiohttp.ClientSession() as s:
                ck = await app.login(s, link)
                for _ in range(3):
                    async with s.get(f"{app.base}/live/api/mosaic.jpg", headers=cookie(ck)) as r:
                        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
                        image(await r.read())
                    await asyncio.sleep(0.4)
                ws_base = app.base.replace("http", "ws")
                async with s.ws_connect(f"{ws_base}/live/api/cam/parking/ws", headers=cookie(ck)) as masked:
                    assert (await masked.receive_str(timeout=5)) == "image/jpeg"
                    image(await masked.receive_bytes(timeout=5))
                video = await s.ws_connect(f"{ws_base}/live/api/cam/parvis/ws", headers=cookie(ck))
                await video.receive_str(timeout=5)  # the quality served
                assert (await video.receive_str(timeout=5)).startswith('video/mp4; codecs="avc1.')
                received = 0
                while received < 50:
                    received += len(await video.receive_bytes(timeout=5)) > 0
                # the first tile at activation, then its replacement one interval later
                await until(lambda: [k for k, *_ in app.room.log].count("replace_tile") >= 1, timeout=12,
                            message="a room tile replaced")
                await app.end(incident)
                t0 = time.monotonic()
                while (msg := await video.receive(timeout=2)).type == aiohttp.WSMsgType.BINARY:
                    pass
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001
                assert time.monotonic() - t0 < 2.0
                await video.close()
            await app.desk.fanout.drain()
            assert app.room.live == {k: v for k, v in app.room.live.items() if "Mosaïque" not in v}, "tile left"
            kinds = [k for k, *_ in app.room.log]
            assert kinds.count("tile") == 1 and "remove" in kinds
        finally:
            await app.stop()
    finally:
        guard.active.clear()
        stop_sampling.set()
        await sampler
    assert guard.violations == []
    assert seen_fds - fds_before == set()
    new_tmp = [Path("/tmp", n) for n in set(os.listdir("/tmp")) - system_tmp_before]
    new_tmp = [p for p in new_tmp if p.is_file() and p.stat().st_mtime >= started]
    files = [p for p in [*data_dir.rglob("*"), *temp_dir.rglob("*"), *new_tmp] if p.is_file()]
    assert any(p.name == "registre.sqlite3" for p in files)  # the scan did look at the databases
    assert media_bytes_in(files) == []
