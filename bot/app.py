"""The composition root: builds every service from settings and wires the lifecycle.

Nothing else constructs clients or reads the environment. ``build_app`` returns the aiohttp
application; ``web.run_app`` owns the loop, and each long-lived part (scheduler, room outboxes,
the desk's restored timers, the console) starts and stops as a ``cleanup_ctx`` entry, in order.
"""

from __future__ import annotations

import hmac
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web, web_response
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .access import Access
from .alarms.route import add_routes as add_alarm_routes
from .audit import Registre
from .catastrophe import Catastrophes
from .config_load import build_convention
from .console import ConsoleOptions, ConsoleTransport
from .console_socket import SOCKET_NAME, ConsoleServer, console_socket_ctx
from .desk import Desk
from .fanout import Fanout
from .kinds import Kind
from .linkwatch import record_link_posted
from .media.memory import trim_malloc, tune_malloc
from .media.service import MediaOptions, build_media
from .messages import Renderer, guessing_notice
from .notices import announce
from .ops.admin import admin_app, admin_ctx
from .ops.metrics import Metrics, Probes, RoomProbe, safe
from .outbox_store import Journal
from .passkey_store import PasskeyStore
from .passkeys import Passkeys
from .policy.convention import Convention, Person
from .ptz.synthetic import SyntheticPtz
from .ptz_control import CameraControl, PtzDriver
from .room_failures import record_room_failure
from .rooms import Room
from .settings import Settings
from .sia.transport import build_sia
from .status import page_info, viewer_lines
from .store import Store
from .transport import Transport
from .viewing import Watching, close_unclosed, viewers_now
from .web.live import add_routes as add_live_routes
from .web.media import MEDIA, install_media
from .web.passkeys import add_passkey_routes
from .web.ptz import add_ptz_routes
from .web.venue import add_venue_routes, load_plan

if TYPE_CHECKING:
    from .telegram.transport import TelegramOptions

logger = logging.getLogger(__name__)

DESK = web.AppKey("desk", Desk)
ACCESS = web.AppKey("access", Access)
REGISTRE = web.AppKey("registre", Registre)
STORE = web.AppKey("store", Store)
CONVENTION = web.AppKey("convention", Convention)
HEALTH_TOKEN = web.AppKey("health_token", str)
METRICS = web.AppKey("metrics", Metrics)
PASSKEYS = web.AppKey("passkeys", Passkeys)


def utcnow() -> datetime:
    return datetime.now(UTC)


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


class StorageError(Exception):
    """The data directory cannot be used: one line naming the file and the cause."""


def open_storage(data_dir: Path, venue: str | None = None) -> tuple[Registre, Store, Journal, PasskeyStore]:
    path = data_dir
    try:
        private_data_dir(data_dir)
        path = data_dir / "registre.sqlite3"
        registre = Registre(path, venue=venue)
        path = data_dir / "state.sqlite3"
        return registre, Store(path), Journal(path), PasskeyStore(path)
    except (sqlite3.Error, OSError) as exc:
        cause = getattr(exc, "strerror", None) or str(exc)
        path = getattr(exc, "filename", None) or path  # the file the OS refused, when it says
        raise StorageError(f"{path}: {cause} — the data directory must exist, be writable by this user and "
                           "have free space") from exc


def build_app(settings: Settings, data_dir: Path, *, clock: Callable[[], datetime] = utcnow,
              console: ConsoleOptions | None = None, extra_rooms: tuple[Room, ...] = (),
              telegram: TelegramOptions | None = None, media: MediaOptions | None = None) -> web.Application:
    service = settings.vigie.service
    conv = build_convention(settings)
    # Parser errors (a 400 for an over-long line) never reach the app's signals: no version there either.
    web_response.SERVER_SOFTWARE = "Vigie"
    registre, store, journal, keys = open_storage(data_dir, service.venue_code)
    scheduler = AsyncIOScheduler(timezone=UTC)
    transports = build_transports(settings, conv, data_dir, clock, scheduler, console, telegram)
    rooms = [*extra_rooms, *(room for t in transports for room in t.chat_rooms)]
    fanout = Fanout(rooms, store, record_room_failure(registre, store), clock, journal=journal,
                    on_link_posted=record_link_posted(registre))
    renderer = Renderer(conv, ZoneInfo(service.timezone), service.venue_code)

    def guessing(person: Person, n: int, clients: int) -> None:  # the rooms are told an officer is targeted
        announce(registre, fanout, renderer, Kind.PASSWORD_GUESSING, guessing_notice(person, n, clients),
                 person=person.id, failures=n, clients=clients)

    access = Access(conv, [k.get_secret_value() for k in settings.secrets.link_keys], registre, store, clock,
                    store.get, service.public_url, on_guessing=guessing)
    tune_malloc()  # before any reader thread: see bot/media/memory.py
    cameras = build_media(settings.cameras.camera, conv.cameras_in_scope, media)
    watching = Watching()  # the streams and mosaics open now, fed by the live page's routes

    def status_lines(lang: str) -> list[str]:  # /statut: who watches what, the cameras, a catastrophe's cameras
        viewers = viewers_now(watching, desk.open_incidents(), partial(_signed_in, store), clock())
        return [*viewer_lines(lang, renderer, desk.camera_names, viewers), *cameras.status_lines(lang),
                *catastrophes.status_lines(lang, control.held_text)]

    desk = Desk(conv, store, registre, fanout, access, scheduler, renderer, clock,
                settings.camera_names(), status_lines=status_lines)
    catastrophes = Catastrophes(conv, store, registre, fanout, scheduler, renderer, clock, desk,
                                lambda: frozenset(fanout.room_ids))
    control = CameraControl(conv, catastrophes, registre, fanout, renderer, clock, build_ptz(settings),
                            settings.camera_names())
    desk.catastrophes = catastrophes
    desk.other_venues = frozenset(v for room in settings.vigie.matrix.shared for v in room.venues)
    desk.watching_now = lambda: len({n.person for now in viewers_now(watching, desk.open_incidents(), partial(
        _signed_in, store), clock()).values() for n in now})

    metrics = build_metrics(desk, fanout, store, registre, lambda: {c: h["online"] for c, h in cameras.health().items()},
                            clock)
    app = web.Application(client_max_size=256 * 1024, middlewares=[metrics.webhook_middleware])
    app[DESK], app[ACCESS], app[REGISTRE], app[STORE], app[CONVENTION] = desk, access, registre, store, conv
    app[METRICS] = metrics
    page = add_live_routes(app, access, partial(page_info, conv, desk.camera_names, venue_code=service.venue_code))
    app[PASSKEYS] = passkeys = Passkeys(access, keys, registre, clock, service.public_url)
    passkeys.disable_absent()  # people removed from the roster since the last start
    add_passkey_routes(app, page, passkeys)
    add_venue_routes(app, access, load_plan(settings), desk.refocus)
    add_alarm_routes(app, desk, settings.secrets.alarm_secrets, lambda s: conv.alarm_source(s) is not None,
                     registre.append, store, time.time, tally=access.tally)
    # Unauthenticated refusals become one registre record per client and minute.
    scheduler.add_job(access.tally.flush, "interval", seconds=20, id="refusals:flush",
                      replace_existing=True, coalesce=True, max_instances=1)
    add_ptz_routes(app, access, control)
    scheduler.add_job(trim_malloc, "interval", seconds=30, id="memory:trim", replace_existing=True, coalesce=True,
                      max_instances=1)
    add_health_routes(app, settings)
    # Started in this order, stopped in reverse: the scheduler, the outboxes, the restored desk,
    # the cameras, then each transport (so nothing arrives before the desk can answer it).
    app.cleanup_ctx.extend([_scheduler_ctx(scheduler), _rooms_ctx(fanout), _desk_ctx(desk, registre, clock),
                            _catastrophe_ctx(catastrophes, control, registre)])
    install_media(app, cameras, settings, conv, desk, access, registre, scheduler, clock, watching)
    for transport in transports:
        transport.attach(app, desk)
    consoles = ConsoleServer(data_dir / SOCKET_NAME, desk, fanout, conv, service.language,
                             on_join=desk.post_links_owed)
    app.cleanup_ctx.append(console_socket_ctx(consoles))
    if service.admin_port is not None:  # last to start, first to stop
        app.cleanup_ctx.append(admin_ctx(admin_app(metrics, lambda: health_details(app)), service.admin_host,
                                         service.admin_port))

    async def close_files(_: web.Application) -> None:
        access.tally.flush(everything=True)
        store.close()
        journal.close()
        keys.close()
        registre.close()

    app.on_cleanup.append(close_files)
    return app


def _signed_in(store: Store, incident: str) -> list[str]:
    """The people holding a viewer session of ``incident`` (valid while the incident grants access:
    the stored end is the one at sign-in, and /extend moves the incident's)."""
    return [s.person for s in store.sessions_of(incident)]


def add_health_routes(app: web.Application, settings: Settings) -> None:
    """Public ``/healthz`` (a word), and the details behind the health token or on loopback."""
    token = settings.secrets.health_token
    app[HEALTH_TOKEN] = token.get_secret_value() if token else ""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/healthz/details", healthz_details)


def build_metrics(desk: Desk, fanout: Fanout, store: Store, registre: Registre,
                  cameras: Callable[[], dict[str, bool]], clock: Callable[[], datetime]) -> Metrics:
    """The metrics, reading the running parts through narrow read-only views."""

    def rooms() -> dict[str, RoomProbe]:
        queued = {o.room.room_id: o.depth for o in fanout.outboxes}
        return {rid: RoomProbe(h.ok, h.delivered, h.failures, queued.get(rid, 0)) for rid, h in fanout.health().items()}

    def viewers() -> int:  # a session lives as long as its incident grants access (/extend included)
        now = clock()
        return sum(len(_signed_in(store, i.id)) for i in desk.open_incidents() if i.grants_access(now))

    metrics = Metrics(Probes(
        incidents=safe(lambda: [(i.state.value, i.drill) for i in desk.open_incidents()], []),
        rooms=safe(rooms, {}), cameras=safe(cameras, {}), viewers=safe(viewers, 0),
        registre_kinds=safe(registre.kind_counts, {})))
    registre.on_append.append(metrics.observe)
    return metrics


def build_transports(settings: Settings, conv: Convention, data_dir: Path, clock: Callable[[], datetime],
                     scheduler: AsyncIOScheduler,
                     console: ConsoleOptions | None, telegram: TelegramOptions | None) -> list[Transport]:
    """The enabled transports, in the order they start: Matrix, Telegram, DC-09 panels, the console."""
    vigie = settings.vigie
    transports: list[Transport] = []
    # A room's client library is imported only when that room is configured: matrix-nio and
    # python-telegram-bot (with httpx, h2, jsonschema, vodozemac…) cost ~15 MB of memory each.
    if vigie.matrix.enabled:
        from .matrix.transport import build_matrix

        transports.append(build_matrix(settings, data_dir))
    if vigie.telegram.enabled:
        from .telegram.transport import TelegramGateway

        transports.append(TelegramGateway.from_settings(settings, telegram))
    sia = build_sia(settings, clock, scheduler)
    if sia is not None:
        transports.append(sia)
    if console is not None:
        person = conv.person(console.person)
        if person is None:
            raise ValueError(f"console person {console.person!r} is not on the roster")
        transports.append(ConsoleTransport(console, person, vigie.service.language))
    return transports


def _scheduler_ctx(scheduler: AsyncIOScheduler) -> Callable[[web.Application], AsyncIterator[None]]:
    async def scheduler_ctx(_: web.Application) -> AsyncIterator[None]:
        scheduler.start()
        yield
        scheduler.shutdown(wait=False)

    return scheduler_ctx


def _rooms_ctx(fanout: Fanout) -> Callable[[web.Application], AsyncIterator[None]]:
    async def rooms_ctx(_: web.Application) -> AsyncIterator[None]:
        fanout.start()
        yield
        try:
            await fanout.drain(timeout=3.0)
        except TimeoutError:
            logger.warning("stopping with undelivered room messages (a room is down)")
        await fanout.stop()

    return rooms_ctx


def _desk_ctx(desk: Desk, registre: Registre,
              clock: Callable[[], datetime]) -> Callable[[web.Application], AsyncIterator[None]]:
    async def desk_ctx(_: web.Application) -> AsyncIterator[None]:
        # Streams a killed service never closed end at this start, before any report reads them;
        # if the registre refuses now, the report ends them with access instead: start all the same.
        try:
            closed = close_unclosed(registre, desk.store.open_incidents(), clock())
        except (sqlite3.Error, OSError, ValueError) as exc:
            logger.error("could not record the closing of streams left open by the last run: %s", exc)
        else:
            if closed:
                logger.warning("%d camera stream(s) left open by the last run closed at this start", closed)
        await desk.start()
        yield
        await desk.stop()

    return desk_ctx


def _catastrophe_ctx(catastrophes: Catastrophes, control: CameraControl,
                     registre: Registre) -> Callable[[web.Application], AsyncIterator[None]]:
    async def catastrophe_ctx(_: web.Application) -> AsyncIterator[None]:
        await catastrophes.start()  # after the desk: the accesses are restored first
        control.restore(registre.records)  # then who steered which camera, from the registre
        yield
        await catastrophes.stop()
        await control.close()

    return catastrophe_ctx


def build_ptz(settings: Settings) -> dict[str, PtzDriver]:
    """A driver per PTZ camera: ONVIF where an endpoint is given, else the demo's synthetic dome."""
    drivers: dict[str, PtzDriver] = {}
    for cam in settings.cameras.camera:
        p = cam.ptz
        if p is None:
            continue
        if p.onvif:
            # onvif-zeep-async with zeep and lxml weigh ~15 MB: imported only where a venue has ONVIF domes
            from .ptz.onvif_camera import OnvifPtz

            drivers[cam.id] = OnvifPtz(p.onvif, p.username, settings.secrets.onvif_password(cam.id), p.home_preset,
                                       p.profile, p.timeout_seconds)
        else:
            drivers[cam.id] = SyntheticPtz(p.home_preset)
    return drivers


def _status(desk: Desk) -> str:
    """``failing``: a room cannot be reached or still lacks a link; ``degraded``: every room is served
    but an ended incident is not recorded yet (its access is closed all the same); else ``ok``."""
    if any(not h.ok for h in desk.fanout.health().values()):
        return "failing"
    return "degraded" if desk.closer.pending else "ok"


async def healthz(request: web.Request) -> web.Response:
    """Public: the status word only (no incident, camera or room is named to the world)."""
    status = _status(request.app[DESK])
    return web.json_response({"status": status}, status=503 if status == "failing" else 200)


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
    return web.json_response(health_details(request.app))


def health_details(app: web.Application) -> dict[str, Any]:
    """Rooms, cameras in scope, open incidents: for the operator (token or loopback), never the world."""
    desk = app[DESK]
    rooms = {rid: {"ok": h.ok, "last_error": h.last_error, "delivered": h.delivered, "failures": h.failures,
                   "links_undelivered": sorted(h.links_failing)}
             for rid, h in desk.fanout.health().items()}
    incidents = [{"id": i.id, "state": i.state.value, "drill": i.drill,
                  "ends_at": i.ends_at.isoformat() if i.ends_at else None} for i in desk.open_incidents()]
    body = {
        "status": _status(desk),
        "closing_unrecorded": sorted(desk.closer.pending),
        "rooms": rooms,
        "cameras": app[MEDIA].health(),  # cameras in scope only
        "incident_state": incidents[0]["state"] if incidents else "none",
        "incidents": incidents,
        "refusals_pending": app[ACCESS].tally.pending(),
    }
    return body
