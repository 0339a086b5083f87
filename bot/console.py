"""The console room: the demo's chat room on stdin/stdout, typed into by one roster member.

It implements the same Room protocol as Telegram and Matrix, so the demo and the end-to-end
tests exercise the real desk. Tiles are never printed as bytes: only their size and a hash.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol, TextIO

from aiohttp import web

from . import commands
from .desk_port import DeskPort
from .locales import Msg, t
from .policy.convention import Person
from .rooms import Outgoing

logger = logging.getLogger(__name__)


class Sink(Protocol):
    """Where a console writes: stdout, or an attached console's socket."""

    def write(self, text: str, /) -> object: ...

    def flush(self) -> object: ...


class ConsoleRoom:
    def __init__(self, out: Sink, lang: str = "fr", room_id: str = "console") -> None:
        self._out = out
        self._lang = lang
        self._room_id = room_id
        self._refs = itertools.count(1)

    @property
    def room_id(self) -> str:
        return self._room_id

    @property
    def lang(self) -> str:
        return self._lang

    def print(self, text: str) -> None:
        self._out.write(text.rstrip("\n") + "\n")
        self._out.flush()

    def _ref(self) -> str:
        return f"c{next(self._refs)}"

    async def send_text(self, msg: Outgoing) -> str:
        ref = self._ref()
        self.print(f"[Vigie #{ref}] {msg.text}")
        return ref

    async def edit_text(self, ref: str, msg: Outgoing) -> None:
        self.print(t(self._lang, Msg.CONSOLE_EDITED, ref=ref, text=msg.text))

    async def ask_confirmation(self, incident_id: str, msg: Outgoing) -> str:
        ref = self._ref()
        self.print(f"[Vigie #{ref}] {msg.text}")
        return ref

    async def send_tile(self, jpeg: bytes, caption: str) -> str:
        ref = self._ref()
        self.print(t(self._lang, Msg.CONSOLE_TILE, ref=ref, caption=caption, **_size(jpeg)))
        return ref

    async def replace_tile(self, ref: str, jpeg: bytes, caption: str) -> str:
        self.print(t(self._lang, Msg.CONSOLE_TILE_REPLACED, ref=ref, caption=caption, **_size(jpeg)))
        return ref

    async def remove(self, ref: str) -> None:
        self.print(t(self._lang, Msg.CONSOLE_REMOVED, ref=ref))


def _size(jpeg: bytes) -> dict[str, object]:
    """A tile is shown by its size and a short digest: the console never prints image bytes."""
    return {"kib": len(jpeg) // 1024, "digest": hashlib.sha256(jpeg).hexdigest()[:16]}


class ConsoleInput:
    """Reads commands typed on stdin as ``person`` and answers in the console room.

    stdin is read by a daemon thread: a blocking readline cannot be cancelled, and a daemon
    thread never holds up the process's exit. Lines reach the loop through a queue consumed by
    one owned task.
    """

    def __init__(self, desk: DeskPort, room: ConsoleRoom, person: Person, stdin: TextIO,
                 on_eof: Callable[[], None]) -> None:
        self._desk = desk
        self._room = room
        self._person = person
        self._stdin = stdin
        self._on_eof = on_eof
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()

        def reader() -> None:
            try:
                for line in self._stdin:
                    loop.call_soon_threadsafe(self._queue.put_nowait, line)
            except (OSError, ValueError) as exc:
                logger.info("console input closed: %s", exc)
            finally:
                try:
                    loop.call_soon_threadsafe(self._queue.put_nowait, None)
                except RuntimeError:
                    pass  # loop already closed: the demo is stopping anyway

        threading.Thread(target=reader, name="console-stdin", daemon=True).start()
        self._task = asyncio.create_task(self._consume(), name="console-input")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _consume(self) -> None:
        while True:
            line = await self._queue.get()
            if line is None:
                await self._desk.drain_rooms()
                self._on_eof()
                return
            await answer(self._desk, self._room, self._person, line)


async def answer(desk: DeskPort, room: ConsoleRoom, person: Person, line: str) -> None:
    """One typed line: a command is run as ``person`` in ``room`` and its reply printed there."""
    cmd = commands.parse(line)
    if cmd is None:
        if line.strip():
            room.print(t(room.lang, Msg.TYPE_HELP))
        return
    try:
        reply = await commands.run(desk, cmd, person, room.room_id, room.lang)
    except Exception:
        logger.exception("console command failed")
        reply = t(room.lang, Msg.INTERNAL_ERROR)
    room.print(f"→ {reply}")


@dataclass(frozen=True)
class ConsoleOptions:
    """The console room: who types, where it reads and writes, what end of input does."""

    person: str
    stdin: TextIO
    stdout: TextIO
    on_eof: Callable[[], None]


class ConsoleTransport:
    """The console as a transport: one room, and a reader that starts once the desk is restored."""

    def __init__(self, options: ConsoleOptions, person: Person, lang: str) -> None:
        self._options = options
        self._person = person
        self.room = ConsoleRoom(options.stdout, lang)

    @property
    def chat_rooms(self) -> tuple[ConsoleRoom]:
        return (self.room,)

    def attach(self, app: web.Application, desk: DeskPort) -> None:
        o = self._options
        reader = ConsoleInput(desk, self.room, self._person, o.stdin, o.on_eof)

        async def console_ctx(_: web.Application) -> AsyncIterator[None]:
            reader.start()
            yield
            await reader.stop()

        app.cleanup_ctx.append(console_ctx)
