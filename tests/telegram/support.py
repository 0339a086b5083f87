"""The whole bot (build_app) against the fake Bot API: settings, a running app, waiting helpers."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Literal

from aiohttp import web
from argon2 import PasswordHasher
from PIL import Image
from pydantic import SecretStr

from bot.app import DESK, REGISTRE, STORE, build_app
from bot.audit import Registre
from bot.demo import build_demo
from bot.desk import Desk
from bot.media.service import MediaOptions
from bot.policy.convention import Person
from bot.rooms import Room
from bot.settings import Settings, TelegramCfg
from bot.store import Store
from bot.telegram.transport import TelegramOptions
from tests.fakes import FakeMessage, FakeTelegram

# These tests post their own tiles and count them: no automatic tile at activation.
NO_AUTO_TILE = MediaOptions(tile_at_activation=False)

TOKEN = "123456789:AAFakeTokenForVigieTests_abcdefghijk"
GROUP = -1001234567890  # the configured group: venue security and the police liaison
OTHER_GROUP = -1009876543210  # a group the bot was added to, not in the convention
CHIEF, DIRECTOR, CIC, AGENT, STRANGER = 111, 112, 113, 114, 333
ROSTER_IDS = {"demo-chef": CHIEF, "demo-directeur": DIRECTOR, "demo-cic": CIC, "demo-agent": AGENT}
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def jpeg(width: int = 640, height: int = 360, color: str = "navy") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG")
    return out.getvalue()


def caption(lang: str) -> str:
    return "Mosaïque des caméras — 4 caméras" if lang == "fr" else "Camera mosaic — 4 cameras"


def make_fake() -> FakeTelegram:
    fake = FakeTelegram(TOKEN, username="vigie_test_bot")
    for uid, name in ((CHIEF, "Martine"), (DIRECTOR, "Paul"), (CIC, "Julien"), (AGENT, "Lucie"), (STRANGER, "Eve")):
        fake.add_user(uid, name, language_code="fr")
    fake.add_group(GROUP, "PC sécurité — Zénith", [CHIEF, DIRECTOR, CIC, AGENT, STRANGER])
    fake.add_group(OTHER_GROUP, "Amis du Zénith", [CHIEF, STRANGER])
    return fake


def make_settings(port: int, *, webhook: bool = False, strangers: Literal["refuse", "silent"] = "refuse",
                  token: str = TOKEN, api_url: str | None = None, venue_code: str | None = None) -> Settings:
    s = build_demo(port, 4, date.today(), hasher=FAST_HASHER).settings
    s = s.model_copy(update={"vigie": s.vigie.model_copy(update={
        "service": s.vigie.service.model_copy(update={"venue_code": venue_code})})})
    people = tuple(p.model_copy(update={"telegram_id": ROSTER_IDS.get(p.id)}) for p in s.roster.person)
    tg = TelegramCfg(enabled=True, chats=(GROUP,), language="fr", strangers=strangers, webhook=webhook,
                     **({"api_url": api_url} if api_url else {}))
    return s.model_copy(update={
        "vigie": s.vigie.model_copy(update={"telegram": tg}),
        "roster": s.roster.model_copy(update={"person": people}),
        "secrets": s.secrets.model_copy(update={"telegram_token": SecretStr(token)}),
    })


async def until(what: Callable[[], object], timeout: float = 10.0, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message or what}")
        await asyncio.sleep(0.02)


class Vigie:
    """One build_app on ``data_dir``, served on 127.0.0.1:``port`` so cleanup_ctx and webhooks run."""

    def __init__(self, fake: FakeTelegram, data_dir: Path, settings: Settings, port: int,
                 options: TelegramOptions | None = None, rooms: tuple[Room, ...] = ()) -> None:
        self.fake = fake
        self.port = port
        self.settings = settings
        opts = options or TelegramOptions(api_url=fake.url, poll_timeout=2)
        self.app = build_app(settings, data_dir, telegram=opts, extra_rooms=rooms, media=NO_AUTO_TILE)
        self._stopped = False
        self.runner = web.AppRunner(self.app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        self.base = f"http://127.0.0.1:{port}"

    @property
    def desk(self) -> Desk:
        return self.app[DESK]

    @property
    def registre(self) -> Registre:
        return self.app[REGISTRE]

    @property
    def store(self) -> Store:
        return self.app[STORE]

    def person(self, telegram_id: int) -> Person:
        person = self.desk.conv.by_telegram(telegram_id)
        assert person is not None
        return person

    async def start(self, wait_intake: bool = True) -> Vigie:
        menus = len(self.fake.calls_of("setMyCommands"))
        polls = len(self.fake.calls_of("getUpdates"))
        hooks = len(self.fake.calls_of("setWebhook"))
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        if wait_intake:
            await until(lambda: len(self.fake.calls_of("setMyCommands")) >= menus + 3, message="the command menu")
            if self.settings.vigie.telegram.webhook:
                await until(lambda: len(self.fake.calls_of("setWebhook")) > hooks, message="setWebhook")
            else:
                await until(lambda: len(self.fake.calls_of("getUpdates")) > polls, message="polling")
        return self

    async def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            await self.runner.cleanup()

    async def settle(self) -> None:
        """Every queued room operation delivered (or given up)."""
        await self.desk.fanout.drain(timeout=30)

    def refusals(self) -> list[tuple[str | None, dict[str, object]]]:
        return [(r.actor, dict(r.details)) for r in self.registre.records() if r.kind == "refusal"]


def bot_messages(fake: FakeTelegram, chat: int) -> list[FakeMessage]:
    return [m for m in fake.messages(chat) if m.from_bot]


def find(fake: FakeTelegram, chat: int, needle: str) -> list[FakeMessage]:
    return [m for m in bot_messages(fake, chat) if needle in (m.text or m.caption or "")]


async def reply_to(fake: FakeTelegram, chat: int, message_id: int, timeout: float = 10.0) -> FakeMessage:
    """The bot's answer quoting the person's message ``message_id``."""
    def answered() -> list[FakeMessage]:
        return [m for m in bot_messages(fake, chat) if m.reply_to == message_id]
    await until(answered, timeout, f"a reply to message {message_id} in {chat}")
    return answered()[0]


async def opens(fake: FakeTelegram, chat: int, user: int, text: str) -> FakeMessage:
    """``user`` types a command that opens access: the link posted in ``chat`` is the answer."""
    fake.user_sends(chat, user, text)
    await until(lambda: find(fake, chat, "ACCÈS VIDÉO OUVERT"), message="the link")
    return find(fake, chat, "ACCÈS VIDÉO OUVERT")[0]


async def say(fake: FakeTelegram, chat: int, user: int, text: str) -> FakeMessage:
    """``user`` types ``text`` in ``chat`` and the bot answers it."""
    sent = fake.user_sends(chat, user, text)
    return await reply_to(fake, chat, sent["message_id"])
