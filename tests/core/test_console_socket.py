"""The attachable consoles' socket: private to the service's user, refused to anyone else."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any, cast

from bot.console_socket import ConsoleServer, peer_uid
from bot.desk_port import DeskPort
from bot.fanout import Fanout
from bot.kinds import Kind
from tests.policy_fixtures import convention


class Recorder:
    def __init__(self) -> None:
        self.records: list[tuple[Kind, dict[str, Any]]] = []

    def record(self, kind: Kind, *, actor: str | None = None, details: dict[str, Any] | None = None,
               **_: Any) -> None:
        self.records.append((kind, dict(details or {})))


async def refused_line(path: Path) -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        return await reader.readline()
    finally:
        writer.close()


async def test_socket_is_0600_and_refuses_another_user(tmp_path: Path) -> None:
    desk = Recorder()
    # The service "runs" as another user than this test: the test's connection is a stranger's.
    server = ConsoleServer(tmp_path / "console.sock", cast(DeskPort, desk), cast(Fanout, None), convention(), "fr",
                           uid=os.getuid() + 1)
    await server.start()
    try:
        assert stat.S_IMODE((tmp_path / "console.sock").stat().st_mode) == 0o600
        line = await refused_line(tmp_path / "console.sock")
        assert line.startswith(b"ERR ") and "refusée" in line.decode()
        assert desk.records == [(Kind.CONSOLE_REFUSED, {"reason": "other_user", "uid": os.getuid()})]
    finally:
        await server.stop()
    assert not (tmp_path / "console.sock").exists()


async def test_the_peer_is_known_by_its_credentials(tmp_path: Path) -> None:
    seen: list[int | None] = []

    async def handler(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(peer_uid(writer))
        writer.close()

    srv = await asyncio.start_unix_server(handler, path=str(tmp_path / "s"))
    try:
        _, writer = await asyncio.open_unix_connection(str(tmp_path / "s"))
        writer.close()
        while not seen:
            await asyncio.sleep(0.01)
        assert seen == [os.getuid()]
    finally:
        srv.close()
        await srv.wait_closed()


async def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    desk = Recorder()
    path = tmp_path / "console.sock"
    first = ConsoleServer(path, cast(DeskPort, desk), cast(Fanout, None), convention(), "fr")
    await first.start()
    assert first._server is not None
    first._server.close()  # a crashed service leaves its socket file behind
    second = ConsoleServer(path, cast(DeskPort, desk), cast(Fanout, None), convention(), "fr")
    await second.start()
    await second.stop()
    await first.stop()
