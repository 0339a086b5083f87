"""Attachable consoles: rooms of last resort on a local Unix socket in the data directory.

When Telegram and Matrix are down, the venue's security desk attaches a terminal to the running
service (``vigie console``). The socket is mode 0600 in the 0700 data directory, and a
connection from another user than the service's is refused by its peer credentials, so only the
service user gets as far as the password. Each console then signs in as a roster person with
their personal password (argon2, as on the viewing page), and becomes a room of its own
(``console:PERSON:N``, listed by ``/statut``) until it detaches. Every attachment, refusal and
detachment is in the registre; the password is never echoed, logged or recorded.

Wire format, one UTF-8 line each way: the client's first line is a JSON object
``{"person": …, "password": …}``; the service answers ``OK <room>`` or ``ERR <reason>``, then the
console's lines (commands in, room messages and replies out).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import struct
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TextIO

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError

from .console import ConsoleRoom, answer
from .desk_port import DeskPort
from .fanout import Fanout
from .kinds import Kind
from .locales import Msg, t
from .policy.convention import Convention, Person

logger = logging.getLogger(__name__)

SOCKET_NAME = "console.sock"
HELLO_LIMIT = 4096  # the sign-in line: a roster id and a password, never more
HELLO_TIMEOUT = 60.0


def peer_uid(writer: asyncio.StreamWriter) -> int | None:
    """The connecting process's user (SO_PEERCRED, Linux); None where the OS cannot say."""
    sock = writer.get_extra_info("socket")
    peercred = getattr(socket, "SO_PEERCRED", None)
    if sock is None or peercred is None:
        return None
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, peercred, struct.calcsize("3i")))
    return int(uid)


class _SocketSink:
    """A console room's output on its connection (the transport buffers; flush has nothing to do)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    def write(self, text: str, /) -> int:
        if not self._writer.is_closing():
            self._writer.write(text.encode())
        return len(text)

    def flush(self) -> None:
        return None


class ConsoleServer:
    """Serves attached consoles: checks the peer, signs the person in, adds and removes their room."""

    def __init__(self, path: Path, desk: DeskPort, fanout: Fanout, conv: Convention, lang: str, *,
                 on_join: Callable[[], None] = lambda: None, uid: int | None = None,
                 hasher: PasswordHasher | None = None) -> None:
        self.path = path
        self._desk = desk
        self._fanout = fanout
        self._conv = conv
        self._lang = lang
        self._on_join = on_join  # a console attaching during an incident gets its link
        self._uid = os.getuid() if uid is None else uid  # the service's user: the only one let in
        self._hasher = hasher or PasswordHasher()
        self._numbers = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        self._sessions: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        if self.path.is_socket():
            self.path.unlink()  # left by a stopped service: the data directory is this service's own
        # Bound inside the 0700 data directory, then narrowed to 0600: nobody else can reach it meanwhile.
        self._server = await asyncio.start_unix_server(self._session, path=str(self.path), limit=HELLO_LIMIT * 4)
        os.chmod(self.path, 0o600)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._sessions):
                task.cancel()
            await asyncio.gather(*self._sessions, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        self.path.unlink(missing_ok=True)

    def _refuse(self, writer: asyncio.StreamWriter, reason: str, **details: Any) -> None:
        self._desk.record(Kind.CONSOLE_REFUSED, actor=details.get("person"), details={"reason": reason, **details})
        writer.write(f"ERR {t(self._lang, Msg.CONSOLE_SOCKET_REFUSED)}\n".encode())

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        try:
            person = await self._sign_in(reader, writer)
            if person is not None:
                await self._serve(person, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            logger.info("console connection lost: %s", exc)
        finally:
            if task is not None:
                self._sessions.discard(task)
            writer.close()

    async def _sign_in(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Person | None:
        uid = peer_uid(writer)
        if uid is not None and uid != self._uid:
            self._refuse(writer, "other_user", uid=uid)
            return None
        try:
            line = await asyncio.wait_for(reader.readline(), HELLO_TIMEOUT)
            hello = json.loads(line)
            typed, password = str(hello["person"])[:64], str(hello["password"])
        except (TimeoutError, ValueError, KeyError, TypeError, asyncio.LimitOverrunError):
            self._refuse(writer, "bad_sign_in")
            return None
        person = self._conv.person(typed)
        if person is None:
            self._refuse(writer, "unknown_person", person=typed)
        elif not self._conv.may_command(person):
            self._refuse(writer, "no_command_role", person=person.id)
        elif not await self._verify(person, password):
            self._refuse(writer, "wrong_password", person=person.id)
        else:
            return person
        return None

    async def _verify(self, person: Person, password: str) -> bool:
        if not person.password_hash or not password or len(password) > 1024:
            return False
        try:
            return await asyncio.to_thread(self._hasher.verify, person.password_hash, password)
        except (InvalidHashError, Argon2Error):
            return False

    async def _serve(self, person: Person, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        room = ConsoleRoom(_SocketSink(writer), self._lang, f"console:{person.id}:{next(self._numbers)}")
        self._fanout.add_room(room)
        self._desk.record(Kind.CONSOLE_ATTACHED, actor=person.id, details={"room": room.room_id})
        try:
            writer.write(f"OK {room.room_id}\n".encode())
            room.print(t(self._lang, Msg.CONSOLE_SOCKET_READY, name=person.name, room=room.room_id))
            self._on_join()
            while line := await reader.readline():
                await answer(self._desk, room, person, line.decode(errors="replace"))
                await writer.drain()
        finally:
            await self._fanout.remove_room(room.room_id)
            self._desk.record(Kind.CONSOLE_DETACHED, actor=person.id, details={"room": room.room_id})


def console_socket_ctx(server: ConsoleServer) -> Callable[[web.Application], AsyncIterator[None]]:
    """The socket lives while the service does; a socket that cannot be bound leaves the service up."""
    async def ctx(_: web.Application) -> AsyncIterator[None]:
        try:
            await server.start()
        except OSError as exc:
            logger.warning("no attachable console on %s: %s", server.path, exc)
        yield
        await server.stop()

    return ctx


def attach(path: Path, person: str, password: str, stdin: TextIO, stdout: TextIO, lang: str) -> int:
    """The ``vigie console`` client: sign in, then typed lines out and the room's lines in, until end
    of input (the console detaches; the service carries on). 0 once attached, 2 if refused or absent."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError as exc:
        print(t(lang, Msg.CONSOLE_SOCKET_UNREACHABLE, path=path, error=exc.strerror or exc), file=sys.stderr)
        sock.close()
        return 2
    with sock, sock.makefile("r", encoding="utf-8", errors="replace") as lines:
        sock.sendall((json.dumps({"person": person, "password": password}) + "\n").encode())
        first = lines.readline()
        if not first.startswith("OK "):
            print(first.removeprefix("ERR ").strip() or t(lang, Msg.CONSOLE_SOCKET_REFUSED), file=sys.stderr)
            return 2

        def typed() -> None:  # a daemon thread: a blocking readline of stdin cannot be cancelled
            try:
                for line in stdin:
                    sock.sendall(line.encode())
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the service went away: the reading side ends too

        threading.Thread(target=typed, name="console-typed", daemon=True).start()
        for line in lines:
            stdout.write(line)
            stdout.flush()
    return 0
