"""Matrix for the police duty officers' rooms (Tchap is Matrix on Synapse): one nio client, E2EE.

``build_matrix(settings, data_dir)`` makes a ``MatrixConnection`` (one matrix-nio ``AsyncClient``)
and one ``MatrixRoom`` (room.py) per configured room; ``attach(app, desk)`` adds its lifecycle to
the application. Beside this file: inbox.py (incoming events → desk), writes.py (posts,
redactions, uploads: transaction ids and retries), trust.py (device trust, keys housekeeping),
session.py (login, saved session), admin.py (Synapse admin API: media deletion), relations.py
(our edits of a message, to redact them with it).

Session. Password login the first time, then the saved access token (``session.json``, 0600,
session.py); the device id from settings and nio's store (Olm/Megolm keys,
sync token) live in ``<data_dir>/<store_dir>`` too, so a restarted bot is the same device, keeps
its keys and resumes sync where it stopped. nio keeps no room state, so the first sync of every
start is ``full_state``; it starts from the inbox's saved position (``inbox-position.json``: the
sync after the last event handled), so commands said while Vigie was stopped are read (up to
``FIRST_SYNC_EVENTS`` a room) and go through ``commands.run_late``. A new device has no position:
its first timeline is history and is not acted upon. Invites to configured rooms are accepted;
other invites are ignored.

Device trust (trust.py): trust on first use for the roster, nothing for
anyone else. After every keys query and before every encrypted send, every device of a person
whose Matrix id is on the roster is verified, and every other device (strangers in the room, the
bot's own other sessions) is blacklisted: it never gets a Megolm key, so it cannot read the link
or see a tile. A stranger joining a configured room is announced in the room and audited. The
bot cannot tell a roster member's new phone from a stolen account's new session (nio has no
cross-signing): keeping the roster's accounts safe is the homeserver's job; each newly trusted
device is logged. In an unencrypted room there is nothing to withhold: everyone in it reads
what the bot posts, which is logged at start-up and said in the room when a stranger joins.

Resilience. The sync loop is the bot's own (nio's ``sync_forever`` stops on the first error):
keys upload/query/claim and to-device messages each round, exponential backoff on any failure,
a re-login when the token is refused. nio itself retries a request on connection errors for about
5 s (so a restarting Synapse is picked up at once, and a long outage falls to the loop's backoff,
not to a warning every 2 s) and waits out 429 ``M_LIMIT_EXCEEDED`` for ``retry_after_ms``. Room
methods wait (bounded) for the first sync and the room, retry 5xx answers and connection failures
until a deadline, and otherwise raise so the room's outbox retries.
Writes (writes.py) carry a transaction id kept per operation until it succeeds, so a retry after
a lost answer posts nothing twice, and a send racing a device-list change is made again.

Stopping: the ``cleanup_ctx`` exit stops the sync loop and the inbox only; the client stays open
through the outboxes' drain and is closed by ``close`` (an ``on_cleanup`` hook), each wait
bounded, so SIGTERM ends in the drain's time whatever the homeserver does. The closed aiohttp
session is left on the client so that nothing re-opens one behind our back.

Media. Tiles are uploaded from memory (encrypted attachments in encrypted rooms) and redacted
when replaced or at the end. If the bot's account is a server admin (asked once:
``GET /_synapse/admin/v1/users/<id>/admin``; 403 or 404 mean no), the media are also deleted
(``DELETE /_synapse/admin/v1/media/<server>/<id>``); otherwise they stay in Synapse's media store
until its own retention removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nio
from aiohttp import web
from pydantic import SecretStr

from ..desk_port import DeskPort
from ..policy.venues import RoomVenues
from ..rooms import Room
from ..settings import MatrixCfg, Settings
from .admin import AdminApiError, SynapseAdmin
from .inbox import Inbox
from .relations import own_edits
from .room import MatrixRoom
from .session import forget_session, login, secure_dir, token_refused
from .trust import KeyKeeper
from .venues import Sharing, mark_rooms
from .writes import MatrixRequestError, MatrixUnavailable, Writes, transient

logger = logging.getLogger(__name__)

FIRST_SYNC_EVENTS = 100  # events per room read from while Vigie was away
_STOP_WAIT = 1.0  # each step of stop(): SIGTERM must finish in 5 s whatever the homeserver does


__all__ = ["MATRIX", "MatrixConnection", "MatrixRequestError", "MatrixUnavailable", "Tuning", "build_matrix"]


class _TokenRefused(Exception):  # noqa: N818 - control flow inside the sync loop
    pass


@dataclass(frozen=True)
class Tuning:
    sync_timeout_ms: int = 30_000
    ready_wait: float = 15.0  # how long a room method waits for the first sync and the room
    send_deadline: float = 15.0  # retrying 5xx inside one outbox attempt (which allows 20 s)
    upload_timeout: float = 30.0  # nio's upload has no timeout of its own
    request_timeout: float = 10.0
    retry_wait_max: float = 2.0  # nio's wait between its retries on connection errors...
    max_timeouts: int = 6  # ...and how many before it raises: ~5 s, a Synapse restart; then our backoff
    backoff_first: float = 0.5
    backoff_max: float = 30.0


class MatrixConnection:
    def __init__(self, cfg: MatrixCfg, password: SecretStr | None, store_dir: Path, tuning: Tuning = Tuning(),
                 venue: str | None = None) -> None:
        self.cfg = cfg
        self.venue = venue
        self._password = password
        self.store_dir = store_dir
        self.tuning = tuning
        self.rooms: dict[str, MatrixRoom] = {rid: MatrixRoom(self, rid, cfg.language) for rid in cfg.rooms}
        self._client: Any = None
        self._desk: DeskPort | None = None
        self._inbox: Inbox | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._round = asyncio.Event()
        self._stopped = False  # no more reading the rooms
        self._closed = False  # no more requests at all
        self.writes = Writes(self, tuning.send_deadline, tuning.upload_timeout)
        self._joining: set[str] = set()
        self._undecrypted: list[tuple[str, Any, float]] = []
        self._admin = SynapseAdmin(cfg.user_id, tuning.request_timeout)
        self._keys: KeyKeeper | None = None
        self._resume_from: str | None = None
        self._sharing = Sharing(venue, cfg, self._members, self.sender_of)

    # ---------- lifecycle ----------

    @property
    def chat_rooms(self) -> Sequence[Room]:
        return tuple(self.rooms.values())

    def attach(self, app: web.Application, desk: DeskPort) -> None:
        """Sync loop and inbox start after the outboxes and the restored desk, and stop before them;
        the client itself is closed after the outboxes' drain (``on_cleanup``), like Telegram's."""
        app[MATRIX] = self
        app.cleanup_ctx.append(self.lifecycle(desk))
        app.on_cleanup.append(self.close)

    def lifecycle(self, desk: DeskPort) -> Callable[[web.Application], AsyncIterator[None]]:
        """The ``cleanup_ctx`` entry: start; at exit stop reading the rooms, but keep the client
        for the outboxes' drain (``close`` is the app's ``on_cleanup`` hook, after it)."""
        async def matrix_ctx(_: web.Application) -> AsyncIterator[None]:
            await self.start(desk)
            yield
            await self.stop_sync()

        return matrix_ctx

    async def start(self, desk: DeskPort) -> None:
        """Start the sync loop; login and the first sync happen in it (Synapse may be down now)."""
        self._desk = desk
        self._stopped = self._closed = False
        self._keys = KeyKeeper(lambda user_id: desk.person_by_matrix(user_id) is not None)
        secure_dir(self.store_dir)
        config = nio.AsyncClientConfig(
            store_sync_tokens=True, encryption_enabled=True, request_timeout=self.tuning.request_timeout,
            max_timeout_retry_wait_time=self.tuning.retry_wait_max, max_timeouts=self.tuning.max_timeouts,
        )
        self._client = nio.AsyncClient(self.cfg.homeserver, self.cfg.user_id, device_id=self.cfg.device_id,
                                       store_path=str(self.store_dir), config=config)
        self._inbox = Inbox(desk, self.cfg, self.cfg.user_id, self.send, self._confirmation, self.is_encrypted,
                            self.store_dir, sharing=self._sharing)
        self._inbox.start()
        self._task = asyncio.create_task(self._run(), name="matrix-sync")

    async def stop_sync(self) -> None:
        """Stop reading the rooms (sync loop, inbox); sends keep working until ``close``."""
        self._stopped = True
        self._wake()
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=_STOP_WAIT)
            self._task = None
        if self._inbox is not None:
            await self._inbox.stop(_STOP_WAIT)

    async def close(self, _: web.Application | None = None) -> None:
        """Close the HTTP session for good; every wait bounded, whatever the homeserver does."""
        await self.stop_sync()
        if self._inbox is not None:
            await self._inbox.abandon_replies(_STOP_WAIT)
        self._closed = True
        self._ready.clear()
        self._wake()
        client = self._client
        if client is not None:
            session = client.client_session
            if session is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(session.close(), _STOP_WAIT)
            # nio opens a new session on its next request when the attribute is None: an operation
            # still under way (an outbox retry) would leak it ("Unclosed client session"). Leave
            # the closed one in place, so such a request fails instead.
            client.client_session = session

    async def stop(self) -> None:
        await self.close()

    # ---------- state ----------

    @property
    def client(self) -> Any:
        if self._client is None or self._closed:
            raise MatrixUnavailable("the Matrix connection is not running")
        return self._client

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._closed

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def is_admin(self) -> bool | None:
        return self._admin.is_admin

    def is_encrypted(self, room_id: str) -> bool:
        room = self._client.rooms.get(room_id) if self._client is not None else None
        return bool(room is not None and room.encrypted)

    def venues(self, room_id: str) -> RoomVenues:
        """The venues sharing ``room_id`` as this instance sees them (declared and found)."""
        return self._sharing.view(room_id)

    def _members(self, room_id: str) -> set[str]:
        room = self._client.rooms.get(room_id) if self._client is not None else None
        return set(room.users) if room is not None else set()

    async def sender_of(self, room_id: str, event_id: str) -> str | None:
        """Who sent ``event_id`` (in clear even when encrypted); None if the server does not say."""
        client = await self.wait_room(room_id)
        resp = await asyncio.wait_for(client.room_get_event(room_id, event_id), self.tuning.request_timeout)
        return getattr(getattr(resp, "event", None), "sender", None)

    def _confirmation(self, room_id: str, event_id: str) -> str | None:
        room = self.rooms.get(room_id)
        return room.confirmations.get(event_id) if room else None

    def _wake(self) -> None:
        self._round.set()
        self._round = asyncio.Event()

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout or self.tuning.ready_wait)

    async def wait_room(self, room_id: str, timeout: float | None = None) -> Any:
        """The client once it is synced and joined to ``room_id``; MatrixUnavailable after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if timeout is not None else self.tuning.ready_wait)
        while True:
            client = self.client
            if self._ready.is_set() and room_id in client.rooms:
                return client
            left = deadline - loop.time()
            if left <= 0:
                why = "not synced yet" if not self._ready.is_set() else "not joined (invite the bot)"
                raise MatrixUnavailable(f"room {room_id}: {why}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._round.wait(), left)

    # ---------- writes (used by MatrixRoom and the inbox; see writes.py) ----------

    async def send(self, room_id: str, content: dict[str, Any], key: str, event_type: str = "m.room.message",
                   durable: bool = False) -> str:
        return await self.writes.send(room_id, content, key, event_type, durable)

    async def redact(self, room_id: str, event_id: str, reason: str) -> None:
        await self.writes.redact(room_id, event_id, reason)

    async def upload_jpeg(self, room_id: str, jpeg: bytes, key: str) -> tuple[str, dict[str, Any] | None]:
        return await self.writes.upload_jpeg(room_id, jpeg, key)

    def forget_upload(self, key: str) -> None:
        self.writes.forget_upload(key)

    async def edits_of(self, room_id: str, event_id: str) -> list[str]:
        """The bot's own ``m.replace`` edits of ``event_id`` as the server lists them ([] if it cannot)."""
        client = await self.wait_room(room_id)
        return await own_edits(client, room_id, event_id, self.cfg.user_id, self.tuning.request_timeout)

    async def share_keys(self, client: Any, room_id: str) -> None:
        if self._keys is not None:
            try:
                await self._keys.before_send(client, room_id)
            except RuntimeError as exc:
                raise MatrixUnavailable(str(exc)) from exc

    async def delete_media(self, mxc: str) -> bool:
        return await self._admin.delete_media(self.client, mxc)

    async def check_admin(self) -> bool:
        return await self._admin.check(self.client)

    def trust(self) -> None:
        if self._keys is not None and self._client is not None:
            self._keys.apply(self._client)

    # ---------- the sync loop ----------

    async def _run(self) -> None:
        client = self._client
        logged_in, first = False, True
        delay = self.tuning.backoff_first
        while True:
            try:
                if not logged_in:
                    await login(client, self.cfg, self._password, self.store_dir)
                    logged_in = True
                resp = await asyncio.wait_for(self._round_once(client, first), self.tuning.sync_timeout_ms / 1000 + 30)
                if first:
                    first = False
                    self._ready.set()
                    self._after_first_sync(client, resp)
                    with contextlib.suppress(AdminApiError):
                        await self.check_admin()
                    await mark_rooms(client, self.rooms, self.cfg.user_id, self.venue, self.tuning.request_timeout)
                delay = self.tuning.backoff_first
                self._wake()
            except asyncio.CancelledError:
                raise
            except _TokenRefused:
                logger.warning("matrix: access token refused by the server, logging in again")
                forget_session(self.store_dir)
                logged_in = False
            except Exception as exc:  # the loop must survive anything the server or network does
                logger.warning("matrix: sync failed (%s: %s), retrying in %.1fs", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.tuning.backoff_max)

    async def _round_once(self, client: Any, first: bool) -> Any:
        if client.should_upload_keys:
            resp = await client.keys_upload()
            if isinstance(resp, nio.ErrorResponse):
                logger.warning("matrix: keys upload: %s", resp)
        assert self._inbox is not None  # noqa: S101 - set by start()
        if first:
            # Resume after the last event the inbox handled (not nio's token, saved as soon as a sync
            # arrives): what was said while Vigie was away is read, up to FIRST_SYNC_EVENTS a room.
            self._resume_from = self._inbox.saved_position()
            resp = await client.sync(timeout=0, full_state=True, since=self._resume_from,
                                     sync_filter={"room": {"timeline": {"limit": FIRST_SYNC_EVENTS}}})
        else:
            resp = await client.sync(timeout=self.tuning.sync_timeout_ms)
        if isinstance(resp, nio.SyncError):
            if token_refused(resp):
                raise _TokenRefused()
            if first and self._resume_from is not None and not transient(resp):
                # A position the server does not know (a store copied from another server, say):
                # start from nio's own token instead of failing on it forever.
                logger.warning("matrix: the saved inbox position was refused (%s); reading from the sync token", resp)
                self._inbox.forget_position()
            raise MatrixRequestError(f"sync: {resp}")
        # Events first (already decrypted by nio), then the keys round: a command is not held up by it.
        self._dispatch(client, resp, first)
        assert self._keys is not None  # noqa: S101 - set by start()
        await self._keys.after_sync(client)
        await self._join_invited(client, resp)
        return resp

    def _dispatch(self, client: Any, resp: Any, first: bool) -> None:
        assert self._inbox is not None  # noqa: S101 - started before the loop
        loop = asyncio.get_running_loop()
        self._retry_undecrypted(client)
        for room_id, info in resp.rooms.join.items():  # other venues' Vigie, from their member state
            for ev in (e for e in [*getattr(info, "state", ()), *info.timeline.events] if isinstance(e, nio.RoomMemberEvent)):
                self._sharing.member(room_id, ev.state_key, ev.membership, ev.content)
        if first and self._resume_from is None:
            # A new device, or no position saved yet: the timeline is history, not commands to us.
            self._inbox.put_position(resp.next_batch)
            return
        for room_id, info in resp.rooms.join.items():
            if first and info.timeline.limited:
                logger.warning("matrix: more than %d events in %s while Vigie was away: only the last %d are read",
                               FIRST_SYNC_EVENTS, room_id, FIRST_SYNC_EVENTS)
            for event in info.timeline.events:
                sender = getattr(event, "sender", "")
                self._sharing.heard(room_id, getattr(event, "event_id", ""), sender)
                if isinstance(event, nio.MegolmEvent) and self._sharing.is_venue_bot(room_id, sender):
                    continue  # another venue's Vigie: its room keys are for the officers, not for us
                if isinstance(event, nio.MegolmEvent):
                    # The key may come in a later sync (to-device messages are not ordered with the room).
                    self._undecrypted.append((room_id, event, loop.time() + 30))
                else:
                    self._inbox.put(room_id, event)
        self._inbox.put_position(resp.next_batch)

    def _retry_undecrypted(self, client: Any) -> None:
        assert self._inbox is not None  # noqa: S101
        now = asyncio.get_running_loop().time()
        keep: list[tuple[str, Any, float]] = []
        for room_id, event, until in self._undecrypted:
            try:
                self._inbox.put(room_id, client.decrypt_event(event))
            except (nio.EncryptionError, ValueError):
                if now < until:
                    keep.append((room_id, event, until))
                else:
                    self._inbox.put(room_id, event)  # logged as undecryptable
        self._undecrypted = keep[-100:]

    async def _join_invited(self, client: Any, resp: Any) -> None:
        for room_id in resp.rooms.invite:
            if room_id in self.rooms:
                self._joining.add(room_id)
            else:
                logger.info("matrix: ignoring an invite to %s (not a configured room)", room_id)
        for room_id in list(self._joining):
            if room_id in client.rooms:
                self._joining.discard(room_id)
                continue
            joined = await client.join(room_id)
            if isinstance(joined, nio.JoinResponse):
                logger.info("matrix: joined %s", room_id)
                self._joining.discard(room_id)
                await mark_rooms(client, [room_id], self.cfg.user_id, self.venue, self.tuning.request_timeout)
            else:
                logger.warning("matrix: joining %s failed: %s", room_id, joined)
                if not transient(joined):
                    self._joining.discard(room_id)

    def _after_first_sync(self, client: Any, resp: Any) -> None:
        for room_id in self.rooms:
            room = client.rooms.get(room_id)
            if room is None:
                if room_id not in resp.rooms.invite:
                    logger.warning("matrix: not a member of %s: invite %s to it", room_id, self.cfg.user_id)
            elif not room.encrypted:
                logger.warning("matrix: room %s is not end-to-end encrypted: every member reads what Vigie posts",
                               room_id)


MATRIX = web.AppKey("matrix", MatrixConnection)


def build_matrix(settings: Settings, data_dir: Path, tuning: Tuning = Tuning()) -> MatrixConnection:
    cfg = settings.vigie.matrix
    store_dir = cfg.store_dir if cfg.store_dir.is_absolute() else data_dir / cfg.store_dir
    return MatrixConnection(cfg, settings.secrets.matrix_password, store_dir, tuning, settings.vigie.service.venue_code)
