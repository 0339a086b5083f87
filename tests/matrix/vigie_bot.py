"""The real Vigie bot (build_app, real desk) wired to the test Synapse, and a duty officer's client.

Used by test_matrix_room.py and bench/matrix_latency.py. The bot runs inside an aiohttp
``TestServer`` so its whole ``cleanup_ctx`` lifecycle (scheduler, outboxes, desk, Matrix client)
starts and stops as in production.
"""

from __future__ import annotations

import asyncio
import io
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from matrix_clients import ENCRYPTION_STATE, MxClient, check, login, step
from nio import Event, RedactionEvent, RoomMessageNotice
from PIL import Image
from pydantic import SecretStr
from synapse_server import Synapse, User, free_port

from bot.app import DESK, REGISTRE, build_app
from bot.demo import build_demo
from bot.desk import Desk
from bot.matrix.transport import MATRIX, MatrixConnection
from bot.media.service import MediaOptions
from bot.settings import MatrixCfg, RosterFile, Settings

# These tests post their own tiles and count them: no automatic tile at activation.
NO_AUTO_TILE = MediaOptions(tile_at_activation=False)

OFFICER = "demo-cic"  # the demo roster's CIC duty officer (may take the initiative, may confirm)
BOT_DEVICE = "VIGIEBOT"
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def settings_for(synapse: Synapse, bot: User, rooms: list[str], matrix_ids: dict[str, str], *,
                 strangers: str = "refuse", language: str = "fr") -> Settings:
    # One synthetic camera, no SIA panel, and automatic room tiles far apart: the tests post tiles
    # themselves (desk.post_tile) and count every event the bot puts in the room.
    base = build_demo(free_port(), 1, date.today(), _CHEAP, sia_port=0).settings
    base = base.model_copy(update={"vigie": base.vigie.model_copy(update={
        "service": base.vigie.service.model_copy(update={"tile_interval_seconds": 600})})})
    roster = RosterFile(person=tuple(p.model_copy(update={"matrix_id": matrix_ids.get(p.id)})
                                     for p in base.roster.person))
    mx = MatrixCfg(enabled=True, homeserver=synapse.base_url, user_id=bot.user_id, device_id=BOT_DEVICE,
                   rooms=tuple(rooms), language=language, strangers=strangers,  # type: ignore[arg-type]
                   store_dir=Path("matrix-store"))
    return base.model_copy(update={
        "vigie": base.vigie.model_copy(update={"matrix": mx}),
        "roster": roster,
        "secrets": base.secrets.model_copy(update={"matrix_password": SecretStr(bot.password)}),
    })


class Bot:
    def __init__(self, settings: Settings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.app: web.Application | None = None
        self.server: TestServer | None = None

    async def start(self, rooms: list[str] | None = None, room_timeout: float = 20.0) -> Bot:
        """Start, and wait until the bot is in ``rooms`` (default: every configured room)."""
        self.app = build_app(self.settings, self.data_dir, media=NO_AUTO_TILE)
        self.server = TestServer(self.app, host="127.0.0.1", port=free_port())
        await self.server.start_server()
        for room in self.settings.vigie.matrix.rooms if rooms is None else rooms:
            await self.conn.wait_room(room, room_timeout)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    @property
    def desk(self) -> Desk:
        assert self.app is not None
        return self.app[DESK]

    @property
    def conn(self) -> MatrixConnection:
        assert self.app is not None
        return self.app[MATRIX]

    def records(self, kind: str | None = None) -> list[Any]:
        assert self.app is not None
        return [r for r in self.app[REGISTRE].records() if kind is None or r.kind == kind]


async def create_room(officer: MxClient, invite: list[str], encrypted: bool = True) -> str:
    created = check(await step(officer.client.room_create(
        name="CIC — Vigie", invite=invite, initial_state=[ENCRYPTION_STATE] if encrypted else [])))
    return str(created.room_id)


async def wait_joined(client: MxClient, room_id: str, user_id: str, since: int = 0) -> None:
    await client.wait_for(lambda r, e: r == room_id and e.source.get("state_key") == user_id
                          and e.source.get("content", {}).get("membership") == "join", timeout=20, since=since)


async def officer_ready(officer: MxClient, room_id: str, bot_user: str, encrypted: bool = True) -> None:
    """The officer's client sees the bot in the room and trusts its device (as its owner would)."""
    await wait_joined(officer, room_id, bot_user)
    if not encrypted:
        return
    await officer.sync_once()
    if not officer.trust_devices_of(bot_user):
        await officer.sync_once()
        assert officer.trust_devices_of(bot_user), "the bot's device is unknown to the officer"


async def say(client: MxClient, room_id: str, text: str, reply_to: str | None = None,
              ignore_unverified: bool = True) -> str:
    # ignore_unverified: the sender's client shares its keys with every device in the room, as
    # Element does by default; what matters here is what the bot shares.
    content: dict[str, Any] = {"msgtype": "m.text", "body": text}
    if reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    resp = check(await step(client.client.room_send(room_id, "m.room.message", content,
                                                    ignore_unverified_devices=ignore_unverified)))
    return str(resp.event_id)


def is_notice(room_id: str, needle: str, sender: str | None = None) -> Any:
    return lambda r, e: (r == room_id and isinstance(e, RoomMessageNotice) and needle in e.body
                         and (sender is None or e.sender == sender)
                         and e.source.get("content", {}).get("m.relates_to", {}).get("rel_type") != "m.replace")


def is_reply_to(room_id: str, event_id: str) -> Any:
    return lambda r, e: (r == room_id and isinstance(e, RoomMessageNotice)
                         and e.source.get("content", {}).get("m.relates_to", {}).get("m.in_reply_to", {})
                         .get("event_id") == event_id)


def is_redaction_of(room_id: str, event_id: str) -> Any:
    return lambda r, e: r == room_id and isinstance(e, RedactionEvent) and e.redacts == event_id


def jpeg(color: tuple[int, int, int], w: int = 96, h: int = 54) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "JPEG", quality=80)
    return buf.getvalue()


@dataclass
class Timed:
    event: Event
    seconds: float


async def timed_alert(officer: MxClient, room_id: str, text: str, needle: str) -> Timed:
    """Send a command and wait for the bot's notice containing ``needle``: the time in between."""
    mark = len(officer.events)
    t0 = time.perf_counter()
    await say(officer, room_id, text)
    ev = await officer.wait_for(is_notice(room_id, needle), since=mark, timeout=15)
    return Timed(ev, time.perf_counter() - t0)


async def new_officer(synapse: Synapse, store: Path, device: str, user: User | None = None) -> tuple[User, MxClient]:
    user = user or synapse.register(synapse.unique_localpart("officer"))
    return user, await login(synapse, user, store, device)


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def until(cond: Any, timeout: float) -> None:
    """Wait for ``cond()`` to be true, at most ``timeout`` seconds (then TimeoutError)."""
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), timeout)
