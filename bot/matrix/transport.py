"""Matrix for the police duty officers' rooms (Tchap is Matrix on Synapse): one nio client, E2EE.

``build_matrix(settings, data_dir)`` makes a ``MatrixConnection`` (one matrix-nio ``AsyncClient``)
and one ``MatrixRoom`` (matrix_room.py) per configured room; ``lifecycle(desk)`` is the aiohttp
``cleanup_ctx`` that starts and stops it. Beside this file: matrix_inbox.py (incoming events →
desk), matrix_trust.py (device trust, keys housekeeping), matrix_session.py (login, saved
session), matrix_admin.py (Synapse admin API: media deletion).

Session. Password login the first time, then the saved access token (``session.json``, 0600,
matrix_session.py); the device id from settings and nio's store (Olm/Megolm keys,
sync token) live in ``<data_dir>/<store_dir>`` too, so a restarted bot is the same device, keeps
its keys and resumes sync where it stopped. nio keeps no room state, so the first sync of every
start is ``full_state``; its timeline (everything from before start-up) is never acted upon.
Invites to configured rooms are accepted; other invites are ignored.

Device trust (matrix_trust.py): trust on first use for the roster, nothing for
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
Every write carries a transaction id kept per operation until it succeeds: a retry after a lost
answer is deduplicated by Synapse, nothing is posted twice.

Media. Tiles are uploaded from memory (encrypted attachments in encrypted rooms) and redacted
when replaced or at the end. If the bot's account is a server admin (asked once:
``GET /_synapse/admin/v1/users/<id>/admin``; 403 or 404 mean no), the media are also deleted
(``DELETE /_synapse/admin/v1/media/<server>/<id>``); otherwise they stay in Synapse's media store
until its own retention removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nio
from aiohttp import ClientError, web
from pydantic import SecretStr

from ..desk import Desk
from ..rooms import Room
from ..settings import MatrixCfg, Settings
from .admin import AdminApiError, SynapseAdmin
from .inbox import Inbox
from .room import MatrixRoom
from .session import forget_session, login, secure_dir, token_refused
from .trust import KeyKeeper

logger = logging.getLogger(__name__)

_MEMO = 500  # pending transaction ids / uploads kept for retries, oldest dropped first
_TX_REUSE_SECONDS = 600.0  # an outbox gives up on an operation well within this


class MatrixUnavailable(RuntimeError):
    """Not connected, not synced or not in the room (yet): the caller retries later."""


class MatrixRequestError(RuntimeError):
    """The homeserver refused a request."""


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


def _status(resp: Any) -> int | None:
    transport = getattr(resp, "transport_response", None)
    return getattr(transport, "status", None)


def _transient(resp: Any) -> bool:
    status = _status(resp)
    return status is None or status >= 500 or status == 429


class MatrixConnection:
    def __init__(self, cfg: MatrixCfg, password: SecretStr | None, store_dir: Path, tuning: Tuning = Tuning()) -> None:
        self.cfg = cfg
        self._password = password
        self.store_dir = store_dir
        self.tuning = tuning
        self.rooms: dict[str, MatrixRoom] = {rid: MatrixRoom(self, rid, cfg.language) for rid in cfg.rooms}
        self._client: Any = None
        self._desk: Desk | None = None
        self._inbox: Inbox | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._round = asyncio.Event()
        self._stopped = False
        self._pending_tx: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._uploads: OrderedDict[str, tuple[str, dict[str, Any] | None]] = OrderedDict()
        self._joining: set[str] = set()
        self._undecrypted: list[tuple[str, Any, float]] = []
        self._admin = SynapseAdmin(cfg.user_id, tuning.request_timeout)
        self._keys: KeyKeeper | None = None

    # ---------- lifecycle ----------

    @property
    def chat_rooms(self) -> Sequence[Room]:
        return tuple(self.rooms.values())

    def attach(self, app: web.Application, desk: Desk) -> None:
        """Sync loop and inbox start after the outboxes and the restored desk, and stop before them."""
        app[MATRIX] = self
        app.cleanup_ctx.append(self.lifecycle(desk))

    def lifecycle(self, desk: Desk) -> Callable[[web.Application], AsyncIterator[None]]:
        async def matrix_ctx(_: web.Application) -> AsyncIterator[None]:
            await self.start(desk)
            yield
            await self.drain(desk)
            await self.stop()

        return matrix_ctx

    async def start(self, desk: Desk) -> None:
        """Start the sync loop; login and the first sync happen in it (Synapse may be down now)."""
        self._desk = desk
        self._stopped = False
        self._keys = KeyKeeper(lambda user_id: desk.conv.by_matrix(user_id) is not None)
        secure_dir(self.store_dir)
        config = nio.AsyncClientConfig(
            store_sync_tokens=True, encryption_enabled=True, request_timeout=self.tuning.request_timeout,
            max_timeout_retry_wait_time=self.tuning.retry_wait_max, max_timeouts=self.tuning.max_timeouts,
        )
        self._client = nio.AsyncClient(self.cfg.homeserver, self.cfg.user_id, device_id=self.cfg.device_id,
                                       store_path=str(self.store_dir), config=config)
        self._inbox = Inbox(desk, self.cfg, self.cfg.user_id, self.send, self._confirmation, self.is_encrypted)
        self._inbox.start()
        self._task = asyncio.create_task(self._run(), name="matrix-sync")

    async def drain(self, desk: Desk, timeout: float = 3.0) -> None:
        """Let the Matrix rooms' outboxes finish while the client is still up (shutdown)."""
        # Only rooms the bot is in: an outbox waiting for an invite that never came has nothing to flush.
        joined = set(self._client.rooms) if self._client is not None else set()
        mine = [o for o in desk.fanout.outboxes
                if any(o.room is r and r.matrix_id in joined for r in self.rooms.values())]
        try:
            await asyncio.wait_for(asyncio.gather(*(o.drain() for o in mine)), timeout)
        except TimeoutError:
            logger.warning("matrix: stopping with undelivered messages")

    async def stop(self) -> None:
        self._stopped = True
        self._wake()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._inbox is not None:
            await self._inbox.stop()
        if self._client is not None:
            await self._client.close()
        self._ready.clear()

    # ---------- state ----------

    @property
    def client(self) -> Any:
        if self._client is None or self._stopped:
            raise MatrixUnavailable("the Matrix connection is not running")
        return self._client

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._stopped

    @property
    def is_admin(self) -> bool | None:
        return self._admin.is_admin

    def is_encrypted(self, room_id: str) -> bool:
        room = self._client.rooms.get(room_id) if self._client is not None else None
        return bool(room is not None and room.encrypted)

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

    # ---------- writes (used by MatrixRoom and the inbox) ----------

    def _tx(self, key: str) -> str:
        """The transaction id of an operation, the same for all its retries (for a while: much later the
        same words are a new message, e.g. tomorrow's authorisation warning)."""
        now = asyncio.get_running_loop().time()
        kept = self._pending_tx.get(key)
        if kept is not None and now - kept[1] < _TX_REUSE_SECONDS:
            return kept[0]
        tx = f"vigie.{secrets.token_hex(12)}"
        self._pending_tx[key] = (tx, now)
        self._pending_tx.move_to_end(key)
        while len(self._pending_tx) > _MEMO:
            self._pending_tx.popitem(last=False)
        return tx

    async def send(self, room_id: str, content: dict[str, Any], key: str, event_type: str = "m.room.message") -> str:
        """Post an event once, whatever the retries; returns its event id."""
        client = await self.wait_room(room_id)
        tx = self._tx(key)

        async def once() -> Any:
            if self.is_encrypted(room_id) and self._keys is not None:
                try:
                    await self._keys.before_send(client, room_id)
                except RuntimeError as exc:
                    raise MatrixUnavailable(str(exc)) from exc
            try:
                return await client.room_send(room_id, event_type, content, tx_id=tx)
            except nio.OlmUnverifiedDeviceError:
                # A device appeared between our keys query and nio's: classify it and go again.
                self._trust()
                return await client.room_send(room_id, event_type, content, tx_id=tx)
            except nio.LocalProtocolError as exc:
                raise MatrixUnavailable(f"room {room_id}: {exc}") from exc

        resp = await self._retrying(f"send to {room_id}", once)
        if not isinstance(resp, nio.RoomSendResponse):
            raise MatrixRequestError(f"send to {room_id}: {resp}")
        self._pending_tx.pop(key, None)
        return str(resp.event_id)

    async def redact(self, room_id: str, event_id: str, reason: str) -> None:
        client = await self.wait_room(room_id)
        key = f"redact:{room_id}:{event_id}"
        tx = self._tx(key)
        resp = await self._retrying(f"redact in {room_id}",
                                    lambda: client.room_redact(room_id, event_id, reason=reason, tx_id=tx))
        if isinstance(resp, nio.RoomRedactError) and resp.status_code == "M_NOT_FOUND":
            logger.info("matrix: %s in %s already gone", event_id, room_id)
        elif not isinstance(resp, nio.RoomRedactResponse):
            raise MatrixRequestError(f"redact in {room_id}: {resp}")
        self._pending_tx.pop(key, None)

    async def _retrying(self, what: str, call: Callable[[], Any]) -> Any:
        """``call()`` again on a 5xx answer or a connection failure until the deadline (same transaction
        id, so at most one event results); then the last answer, or the error raised."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.tuning.send_deadline
        delay = 0.25
        while True:
            try:
                resp = await call()
            except (ClientError, TimeoutError) as exc:  # nio gave up its own connection retries
                if loop.time() + delay > deadline:
                    raise MatrixUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
                why = type(exc).__name__
            else:
                if not isinstance(resp, nio.ErrorResponse) or not _transient(resp):
                    return resp
                if loop.time() + delay > deadline:
                    return resp
                why = f"{resp.status_code} (HTTP {_status(resp)})"
            logger.info("matrix: %s: %s, retrying in %.2fs", what, why, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)

    async def upload_jpeg(self, room_id: str, jpeg: bytes, key: str) -> tuple[str, dict[str, Any] | None]:
        """Upload from memory (encrypted in an encrypted room); a retry of the same operation reuses it."""
        cached = self._uploads.get(key)
        if cached is not None:
            return cached
        client = await self.wait_room(room_id)
        encrypt = self.is_encrypted(room_id)
        resp, file_keys = await asyncio.wait_for(
            client.upload(io.BytesIO(jpeg), content_type="image/jpeg", filename="vigie-tuile.jpg",
                          encrypt=encrypt, filesize=len(jpeg)),
            self.tuning.upload_timeout)
        if not isinstance(resp, nio.UploadResponse):
            raise MatrixRequestError(f"upload: {resp}")
        result = self._uploads[key] = (str(resp.content_uri), file_keys if encrypt else None)
        while len(self._uploads) > _MEMO:
            self._uploads.popitem(last=False)
        return result

    def forget_upload(self, key: str) -> None:
        self._uploads.pop(key, None)

    async def delete_media(self, mxc: str) -> bool:
        return await self._admin.delete_media(self.client, mxc)

    async def check_admin(self) -> bool:
        return await self._admin.check(self.client)

    def _trust(self) -> None:
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
        resp = await client.sync(timeout=0 if first else self.tuning.sync_timeout_ms, full_state=True if first else None)
        if isinstance(resp, nio.SyncError):
            if token_refused(resp):
                raise _TokenRefused()
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
        if first:
            return  # everything in the first sync happened before start-up
        for room_id, info in resp.rooms.join.items():
            for event in info.timeline.events:
                if isinstance(event, nio.MegolmEvent):
                    # The key may come in a later sync (to-device messages are not ordered with the room).
                    self._undecrypted.append((room_id, event, loop.time() + 30))
                else:
                    self._inbox.put(room_id, event)

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
            else:
                logger.warning("matrix: joining %s failed: %s", room_id, joined)
                if not _transient(joined):
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
    return MatrixConnection(cfg, settings.secrets.matrix_password, store_dir, tuning)
