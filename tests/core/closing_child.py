"""A desk in its own process, for kill -9 tests: ``python -m tests.core.closing_child DATA_DIR end|resume``.

``end`` opens an incident, waits for its link in both rooms, prints ``ENDING``, applies ``/fin``
and prints ``REPLIED`` once the desk answered (the parent kills it somewhere in between or
after). ``resume`` starts on the same data, lets the closing job and the outbox finish, and
prints ``RESUMED``. The rooms keep their messages in JSON files beside the data (text only),
and every room operation takes a few milliseconds so that a kill lands between the steps.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot import commands
from bot.rooms import Outgoing
from tests.harness import Harness, RecordingRoom

STEP = 0.004


class FileRoom(RecordingRoom):
    """A recording room whose messages survive the process, like a real chat room's."""

    def __init__(self, room_id: str, path: Path, lang: str = "fr") -> None:
        super().__init__(room_id, lang)
        self.path = path
        if path.exists():
            saved = json.loads(path.read_text())
            self.n, self.live, self.log = saved["n"], saved["live"], [tuple(x) for x in saved["log"]]

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"n": self.n, "live": self.live, "log": self.log}))
        os.replace(tmp, self.path)

    async def send_text(self, msg: Outgoing) -> str:
        await asyncio.sleep(STEP)
        ref = await super().send_text(msg)
        self._save()
        return ref

    async def edit_text(self, ref: str, msg: Outgoing) -> None:
        await asyncio.sleep(STEP)
        await super().edit_text(ref, msg)
        self._save()

    async def remove(self, ref: str) -> None:
        await asyncio.sleep(STEP)
        if ref in self.live:  # like the transports: a message already gone is not an error
            await super().remove(ref)
        self._save()


def slow_disk(h: Harness) -> None:
    """Every write takes a few milliseconds, so that a kill lands between the closing steps."""
    def slowed(write: Callable[..., Any]) -> Callable[..., Any]:
        def slow(*args: Any, **kw: Any) -> Any:
            time.sleep(STEP)
            return write(*args, **kw)
        return slow

    for obj, name in ((h.registre, "append"), (h.store, "save"), (h.store, "delete_sessions"),
                      (h.journal, "open_closing"), (h.journal, "add"), (h.journal, "delete")):
        setattr(obj, name, slowed(getattr(obj, name)))


def rooms(data: Path) -> list[RecordingRoom]:
    return [FileRoom("console", data / "room-console.json"), FileRoom("matrix:!r", data / "room-matrix.json", "en")]


async def main(data: Path, phase: str) -> None:
    h = await Harness(data, rooms=rooms(data)).start()
    if phase == "end":
        cmd = commands.parse("/alerte attaque_armee")
        assert cmd is not None
        await commands.run(h.desk, cmd, h.person("chef"), "console", "fr")
        await h.fanout.drain()
        slow_disk(h)
        print("ENDING", flush=True)
        end = commands.parse("/fin")
        assert end is not None
        await commands.run(h.desk, end, h.person("cic"), "console", "fr")
        print("REPLIED", flush=True)
        await h.desk.closer.wait()
        await h.fanout.drain()
        print("DONE", flush=True)
        await asyncio.sleep(3600)  # the parent kills it
    await h.desk.closer.wait()
    await h.fanout.drain()
    await h.stop()
    print("RESUMED", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
