"""The composition root: builds every service from settings and wires the lifecycle.

Nothing else constructs clients or reads the environment. ``build_app`` returns the aiohttp
application; ``web.run_app`` owns the loop, and each long-lived part (scheduler, room outboxes,
the desk's restored timers, the console) starts and stops as a ``cleanup_ctx`` entry, in order.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from aiohttp import web, web_response
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .access import Access
from .alarms.route import add_routes as add_alarm_routes
from .audit import Registre
from .config_load import build_convention
from .console import ConsoleInput, ConsoleRoom
from .desk import Desk
from .matrix.transport import MATRIX, build_matrix
from .media.service import MediaOptions
from .messages import Renderer, guessing_notice
from .outbox import Fanout
from .policy.convention import Convention
from .rooms import Room
from .settings import Settings
from .sia.receiver import SIA, build_receiver
from .store import Store
from .telegram.transport import TelegramGateway, TelegramOptions
from .web.live import add_routes as add_live_routes
from .web.media import MEDIA, install_media

logger = logging.getLogger(__name__)

DESK = web.AppKey("desk", Desk)
ACCESS = web.AppKey("access", Access)
REGISTRE = web.AppKey("registre", Registre)
STORE = web.AppKey("store", Store)
CONVENTION = web.AppKey("convention", Convention)
HEALTH_TOKEN = web.AppKey("health_token", str)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ConsoleOptions:
    """The demo's console room: who types, where it reads and writes, how it ends the demo."""

    person: str
    stdin: TextIO
    stdout: TextIO
    on_eof: Callable[[], None]


def private_data_dir(data_dir: Path) -> None:
    """Officers' names, addresses and incident timelines: the directory 0700, its databases 0600.

    The SQLite files are created here, empty, with mode 0600 before SQLite opens them; SQLite
    gives its -wal and -shm files the mode of their database.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    for name in ("registre.sqlite3", "state.sqlite3"):
        os.close(os.open(data_dir / name, os.O_CREAT | os.O_WRONLY, 0o600))
    for path in data_dir.iterdir():
        if path.is_file() and path.name.split(".sqlite3")[0] in ("registre", "state"):
            path.chmod(0o600)  # files left by an older version, -wal and -shm included


def build_app(settings: Settings, data_dir: Path, *, clock: Callable[[], datetime] = utcnow,
              console: ConsoleOptions | None = None, extra_rooms: tuple[Room, ...] = (),
              telegram: TelegramOptions | None = None, media: MediaOptions | None = None) -> web.Application:
    service = settings.vigie.service
    conv = build_convention(settings)
    private_data_dir(data_dir)
    # Parser errors (a 400 for an over-long line) never reach the app's signals: no version there either.
    web_response.SERVER_SOFTWARE = "Vigie"
    registre = Registre(data_dir / "registre.sqlite3")
    store = Store(data_dir / "state.sqlite3")
    renderer = Renderer(conv, ZoneInfo(service.timezone))
    scheduler = AsyncIOScheduler(timezone=UTC)

    rooms: list[Room] = list(extra_rooms)
    console_room = ConsoleRoom(console.stdout, service.language) if console else None
    if console_room is not None:
        rooms.append(console_room)
    # --- Matrix (issue 5): its rooms join the fan-out; its client starts after the outboxes, below ---
    matrix = build_matrix(settings, data_dir) if settings.vigie.matrix.enabled else None
    if matrix is not None:
        rooms.extend(matrix.rooms.values())
    # --- end Matrix ---
    # --- Telegram (issue 4): one room per configured group; PTB starts after the outboxes, below ---
    tg = TelegramGateway.from_settings(settings, telegram) if settings.vigie.telegram.enabled else None
    if tg is not None:
        rooms.extend(tg.rooms)
    # --- end Telegram ---

    access = Access(conv, [k.get_secret_value() for k in settings.secrets.link_keys], registre, store, clock,
                    store.get, service.public_url)
    failures: list[Desk] = []
    fanout = Fanout(rooms, store, lambda room, op, exc: failures[0].on_room_failure(room, op, exc), clock)
    desk = Desk(conv, store, registre, fanout, access, scheduler, renderer, clock, settings.camera_names())
    failures.append(desk)
    access.on_guessing = lambda person, n, clients: desk.announce(
        "password_guessing", *guessing_notice(person, n, clients), person=person.id, failures=n, clients=clients)

    app = web.Application(client_max_size=256 * 1024)
    app[DESK], app[ACCESS], app[REGISTRE], app[STORE], app[CONVENTION] = desk, access, registre, store, conv
    add_live_routes(app, access, desk.page_info)
    add_alarm_routes(app, desk, settings.secrets.alarm_secrets, lambda s: conv.alarm_source(s) is not None,
                      registre.append, store, time.time, tally=access.tally)
    token = settings.secrets.health_token
    app[HEALTH_TOKEN] = token.get_secret_value() if token else ""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/healthz/details", healthz_details)

    async def scheduler_ctx(_: web.Application) -> AsyncIterator[None]:
        # Unauthenticated refusals become one registre record per client and minute.
        scheduler.add_job(access.tally.flush, "interval", seconds=20, id="refusals:flush",
                          replace_existing=True, coalesce=True, max_instances=1)
        scheduler.start()
        yield
        scheduler.shutdown(wait=False)

    async def rooms_ctx(_: web.Application) -> AsyncIterator[None]:
        fanout.start()
        yield
        try:
            await fanout.drain(timeout=3.0)
        except TimeoutError:
            logger.warning("stopping with undelivered room messages (a room is down)")
        await fanout.stop()

    async def desk_ctx(_: web.Application) -> AsyncIterator[None]:
        await desk.start()
        yield

    app.cleanup_ctx.extend([scheduler_ctx, rooms_ctx, desk_ctx])
    # --- Media (issue 3): cameras in scope, mosaic and live video routes, room tiles; start/stop ---
    install_media(app, settings, conv, desk, access, registre, scheduler, clock, media)
    # --- end Media ---
    # --- Matrix (issue 5): sync loop and inbox after the outboxes and the restored desk ---
    if matrix is not None:
        app[MATRIX] = matrix
        app.cleanup_ctx.append(matrix.lifecycle(desk))
    # --- end Matrix ---
    # --- Telegram (issue 4): webhook route, PTB start/stop after the outboxes and the restored desk ---
    if tg is not None:
        tg.attach(app, desk)
    # --- end Telegram ---
    # --- SIA DC-09 (issue 6): the panels' receiver listens once the desk is restored, stops before it ---
    sia = build_receiver(settings, desk, clock)
    if sia is not None:
        app[SIA] = sia

        async def sia_ctx(_: web.Application) -> AsyncIterator[None]:
            await sia.start()
            yield
            await sia.stop()

        app.cleanup_ctx.append(sia_ctx)
    # --- end SIA DC-09 ---

    if console is not None and console_room is not None:
        person = conv.person(console.person)
        if person is None:
            raise ValueError(f"console person {console.person!r} is not on the roster")
        reader = ConsoleInput(desk, console_room, person, console.stdin, console.on_eof)

        async def console_ctx(_: web.Application) -> AsyncIterator[None]:
            reader.start()
            yield
            await reader.stop()

        app.cleanup_ctx.append(console_ctx)

    async def close_files(_: web.Application) -> None:
        access.tally.flush(everything=True)
        store.close()
        registre.close()

    app.on_cleanup.append(close_files)
    return app


def _failing(desk: Desk) -> bool:
    return any(not h.ok for h in desk.fanout.health().values())


async def healthz(request: web.Request) -> web.Response:
    """Public: up or failing, nothing more (no incident, camera or room is named to the world)."""
    failing = _failing(request.app[DESK])
    return web.json_response({"status": "failing" if failing else "ok"}, status=503 if failing else 200)


def _may_see_details(request: web.Request) -> bool:
    """The configured bearer token; without one, a direct connection from this machine only
    (a request relayed by the reverse proxy carries X-Forwarded-For and is refused)."""
    token = request.app[HEALTH_TOKEN]
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    forwarded = any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))
    return request.remote in ("127.0.0.1", "::1") and not forwarded


async def healthz_details(request: web.Request) -> web.Response:
    if not _may_see_details(request):
        return web.json_response({"error": "forbidden"}, status=403)
    desk = request.app[DESK]
    rooms = {rid: {"ok": h.ok, "last_error": h.last_error, "delivered": h.delivered, "failures": h.failures}
             for rid, h in desk.fanout.health().items()}
    incidents = [{"id": i.id, "state": i.state.value, "drill": i.drill,
                  "ends_at": i.ends_at.isoformat() if i.ends_at else None} for i in desk.open_incidents()]
    body = {
        "status": "failing" if _failing(desk) else "ok",
        "rooms": rooms,
        "cameras": request.app[MEDIA].health(),  # cameras in scope only (issue 3)
        "incident_state": incidents[0]["state"] if incidents else "none",
        "incidents": incidents,
        "refusals_pending": request.app[ACCESS].tally.pending(),
    }
    return web.json_response(body)
