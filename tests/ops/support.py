"""The demo service in this process, with its public and admin listeners on free loopback ports."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import time
from datetime import date
from pathlib import Path

import aiohttp
from aiohttp import web
from argon2 import PasswordHasher

from bot import commands
from bot.alarms.verify import sign
from bot.app import DESK, build_app
from bot.console import ConsoleOptions
from bot.demo import ALARM_SOURCE, CONSOLE_PERSON, build_demo

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/live/[^\s<>\"]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink(io.StringIO):
    """The console room's output; ``link`` is set once a line carries an access link."""

    def __init__(self) -> None:
        super().__init__()
        self.linked = asyncio.Event()
        self.link = ""

    def write(self, s: str) -> int:
        if not self.link and (m := LINK.search(s)):
            self.link = m.group(1)
            self.linked.set()
        return super().write(s)


class Service:
    def __init__(self, data_dir: Path, cameras: int = 2) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.demo = build_demo(self.port, cameras, date.today(), FAST, sia_port=0, admin_port=self.admin_port)
        self.sink = Sink()
        self.data_dir = data_dir
        self.app = build_app(self.demo.settings, data_dir,
                             console=ConsoleOptions(CONSOLE_PERSON, io.StringIO(), self.sink, lambda: None))
        self.runner = web.AppRunner(self.app, access_log=None)
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"

    async def __aenter__(self) -> Service:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.runner.cleanup()

    async def alert(self) -> str:
        desk = self.app[DESK]
        person = desk.conv.person(CONSOLE_PERSON)
        cmd = commands.parse("/alert attaque_armee Hall A")
        assert cmd is not None
        await commands.run(desk, cmd, person, "console", "fr")
        await asyncio.wait_for(self.sink.linked.wait(), 20)
        return self.sink.link

    async def webhook(self, s: aiohttp.ClientSession, mid: str, *, good: bool = True) -> int:
        body = json.dumps({"type": "panic", "zone": "Hall A"}).encode()
        ts = int(time.time())
        secret = self.demo.alarm_secret if good else "whsec_" + "A" * 43 + "="
        headers = {"webhook-id": mid, "webhook-timestamp": str(ts), "content-type": "application/json",
                   "webhook-signature": sign(secret, mid, ts, body)}
        async with s.post(f"{self.base}/hooks/alarm/{ALARM_SOURCE}", data=body, headers=headers) as r:
            await r.read()
            return r.status

    async def login(self, s: aiohttp.ClientSession, link: str, person: str, password: str) -> int:
        async with s.post(link, data={"person": person, "password": password}, allow_redirects=False) as r:
            await r.read()
            return r.status
