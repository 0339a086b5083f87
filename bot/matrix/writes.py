"""What Vigie writes to the homeserver (posts, redactions, uploads), each done once whatever the retries.

Every write carries a transaction id kept per operation until it succeeds (``tx``): a retry after
a lost answer is deduplicated by Synapse, nothing is posted twice. 5xx answers and connection
failures are retried until ``send_deadline``; anything else raises, so the room's outbox retries
later with the same transaction id. A send that races a device-list change of the sync loop
(nio raises ``KeyError``) is made again with the same transaction id, then raises
``MatrixUnavailable`` so the caller retries: never logged and dropped. Uploads are made from
memory (encrypted in an encrypted room) and remembered per operation, so a retried tile post
does not upload its picture twice. Once the connection is closed, nothing is retried.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import nio
from aiohttp import ClientError

logger = logging.getLogger(__name__)

_MEMO = 500  # pending transaction ids / uploads kept for retries, oldest dropped first
_TX_REUSE_SECONDS = 600.0  # an outbox gives up on an operation well within this
_TRUST_RACES = 3  # sends tried again when nio's device lists change under them


class MatrixUnavailable(RuntimeError):
    """Not connected, not synced or not in the room (yet): the caller retries later."""


class MatrixRequestError(RuntimeError):
    """The homeserver refused a request; ``status`` is its HTTP status when it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def for_good(self) -> bool:
        """A 4xx other than a rate limit (M_FORBIDDEN, M_NOT_FOUND…): the same request will fail again."""
        return self.status is not None and 400 <= self.status < 500 and self.status != 429


def http_status(resp: Any) -> int | None:
    transport = getattr(resp, "transport_response", None)
    return getattr(transport, "status", None)


def transient(resp: Any) -> bool:
    """A failure worth trying again: no answer, a server error, or a rate limit."""
    status = http_status(resp)
    return status is None or status >= 500 or status == 429


class Homeserver(Protocol):
    """What the writes need of the connection (``bot.matrix.transport``)."""

    @property
    def closed(self) -> bool: ...

    async def wait_room(self, room_id: str, timeout: float | None = None) -> Any: ...

    def is_encrypted(self, room_id: str) -> bool: ...

    async def share_keys(self, client: Any, room_id: str) -> None:
        """Before an encrypted send: device trust applied; ``MatrixUnavailable`` if it cannot be."""
        ...

    def trust(self) -> None: ...


class Writes:
    def __init__(self, server: Homeserver, send_deadline: float, upload_timeout: float) -> None:
        self._server = server
        self._send_deadline = send_deadline
        self._upload_timeout = upload_timeout
        self._pending_tx: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._uploads: OrderedDict[str, tuple[str, dict[str, Any] | None]] = OrderedDict()

    def tx(self, key: str, durable: bool = False) -> str:
        """The transaction id of an operation, the same for all its retries (for a while: much later the
        same words are a new message, e.g. tomorrow's authorisation warning). ``durable``: the key
        names an operation of the outbox's journal (its row and its content), which a restart may
        send again: its id is derived from the key, so the homeserver, which keeps a device's
        transaction ids (Synapse: 30 min), answers the replay with the event already posted."""
        if durable:
            return f"vigie.op.{key[:40]}"
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

    async def send(self, room_id: str, content: dict[str, Any], key: str, event_type: str,
                   durable: bool = False) -> str:
        """Post an event once, whatever the retries (and, ``durable``, whatever the restarts: see
        ``tx``); returns its event id."""
        server = self._server
        client = await server.wait_room(room_id)
        tx = self.tx(key, durable)

        async def once() -> Any:
            if server.is_encrypted(room_id):
                await server.share_keys(client, room_id)
            for attempt in range(1, _TRUST_RACES + 1):
                try:
                    return await client.room_send(room_id, event_type, content, tx_id=tx)
                except nio.OlmUnverifiedDeviceError:
                    # A device appeared between our keys query and nio's: classify it and go again.
                    server.trust()
                except KeyError as exc:
                    # nio's device lists changed under the send (the sync loop's keys round): the
                    # session is shared again from the new lists; same transaction id, no duplicate.
                    if attempt == _TRUST_RACES:
                        raise MatrixUnavailable(f"room {room_id}: device list changed during the send ({exc})") from exc
                    logger.info("matrix: device lists changed during a send to %s, again", room_id)
                    server.trust()
                    await asyncio.sleep(0.05 * attempt)
                except nio.LocalProtocolError as exc:
                    raise MatrixUnavailable(f"room {room_id}: {exc}") from exc
            raise MatrixUnavailable(f"room {room_id}: devices kept changing during the send")

        resp = await self.retrying(f"send to {room_id}", once)
        if not isinstance(resp, nio.RoomSendResponse):
            raise MatrixRequestError(f"send to {room_id}: {resp}", http_status(resp))
        self._pending_tx.pop(key, None)
        return str(resp.event_id)

    async def redact(self, room_id: str, event_id: str, reason: str) -> None:
        client = await self._server.wait_room(room_id)
        key = f"redact:{room_id}:{event_id}"
        tx = self.tx(key)
        resp = await self.retrying(f"redact in {room_id}",
                                   lambda: client.room_redact(room_id, event_id, reason=reason, tx_id=tx))
        if isinstance(resp, nio.RoomRedactError) and resp.status_code == "M_NOT_FOUND":
            logger.info("matrix: %s in %s already gone", event_id, room_id)
        elif not isinstance(resp, nio.RoomRedactResponse):
            raise MatrixRequestError(f"redact in {room_id}: {resp}", http_status(resp))
        self._pending_tx.pop(key, None)

    async def retrying(self, what: str, call: Callable[[], Any]) -> Any:
        """``call()`` again on a 5xx answer or a connection failure until the deadline (same transaction
        id, so at most one event results); then the last answer, or the error raised."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._send_deadline
        delay = 0.25
        while True:
            if self._server.closed:  # an operation still under way at shutdown: the client is closed
                raise MatrixUnavailable(f"{what}: the Matrix connection is stopped")
            try:
                resp = await call()
            except (ClientError, TimeoutError) as exc:  # nio gave up its own connection retries
                if loop.time() + delay > deadline:
                    raise MatrixUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc
                why = type(exc).__name__
            else:
                if not isinstance(resp, nio.ErrorResponse) or not transient(resp):
                    return resp
                if loop.time() + delay > deadline:
                    return resp
                why = f"{resp.status_code} (HTTP {http_status(resp)})"
            logger.info("matrix: %s: %s, retrying in %.2fs", what, why, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)

    async def upload_jpeg(self, room_id: str, jpeg: bytes, key: str) -> tuple[str, dict[str, Any] | None]:
        """Upload from memory (encrypted in an encrypted room); a retry of the same operation reuses it."""
        cached = self._uploads.get(key)
        if cached is not None:
            return cached
        client = await self._server.wait_room(room_id)
        encrypt = self._server.is_encrypted(room_id)
        resp, file_keys = await asyncio.wait_for(
            client.upload(io.BytesIO(jpeg), content_type="image/jpeg", filename="vigie-tuile.jpg",
                          encrypt=encrypt, filesize=len(jpeg)),
            self._upload_timeout)
        if not isinstance(resp, nio.UploadResponse):
            raise MatrixRequestError(f"upload: {resp}")
        result = self._uploads[key] = (str(resp.content_uri), file_keys if encrypt else None)
        while len(self._uploads) > _MEMO:
            self._uploads.popitem(last=False)
        return result

    def forget_upload(self, key: str) -> None:
        self._uploads.pop(key, None)
