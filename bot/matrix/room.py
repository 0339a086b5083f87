"""One configured Matrix room as a ``Room``: notices, edits, confirmation requests and tiles.

What the desk stores as a message reference is the Matrix event id, which stays valid across
restarts of the bot and of Synapse. A tile's reference also carries its ``mxc://`` URI
("``$event mxc://server/id``") so that a bot restarted mid-incident can still delete the media,
not only redact the event.

Every write goes through ``MatrixConnection.send`` with a key derived from the operation: a
retried operation reuses its transaction id and Synapse answers with the event it already made,
so an outbox retry after a lost response never posts twice. An edit or a redaction the homeserver
refuses for good (a 4xx other than 429) leaves as ``MatrixRefused``, a ``PermanentRoomError``.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from PIL import Image, UnidentifiedImageError

from ..locales import Msg, t
from ..rooms import Outgoing, PermanentRoomError
from .writes import MatrixRequestError


class MatrixConnection(Protocol):
    """What a room needs of the shared connection (``bot.matrix.transport``), no more."""

    async def send(self, room_id: str, content: dict[str, Any], key: str,
                   event_type: str = "m.room.message", durable: bool = False) -> str: ...

    async def redact(self, room_id: str, event_id: str, reason: str) -> None: ...

    async def edits_of(self, room_id: str, event_id: str) -> list[str]: ...

    async def upload_jpeg(self, room_id: str, jpeg: bytes, key: str) -> tuple[str, dict[str, Any] | None]: ...

    def forget_upload(self, key: str) -> None: ...

    async def delete_media(self, mxc: str) -> bool: ...


logger = logging.getLogger(__name__)

HTML_FORMAT = "org.matrix.custom.html"
TILE_FILENAME = "vigie-tuile.jpg"


def op_key(*parts: str) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def notice(text: str, html_body: str, reply_to: str | None = None) -> dict[str, Any]:
    content: dict[str, Any] = {"msgtype": "m.notice", "body": text, "format": HTML_FORMAT,
                               "formatted_body": html_body}
    if reply_to:
        content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
    return content


def plain_notice(text: str, reply_to: str | None = None) -> dict[str, Any]:
    return notice(text, html.escape(text).replace("\n", "<br>"), reply_to)


def edit(event_id: str, text: str, html_body: str) -> dict[str, Any]:
    # The "* " fallback is what clients without edit support show; m.new_content is the message.
    return {**notice("* " + text, "* " + html_body), "m.new_content": notice(text, html_body),
            "m.relates_to": {"rel_type": "m.replace", "event_id": event_id}}


def jpeg_size(jpeg: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(jpeg)) as im:  # reads the header only, never decodes
            return int(im.size[0]), int(im.size[1])
    except (OSError, ValueError, UnidentifiedImageError):
        return None


def image(caption: str, jpeg: bytes, mxc: str, file_keys: dict[str, Any] | None) -> dict[str, Any]:
    info: dict[str, Any] = {"mimetype": "image/jpeg", "size": len(jpeg)}
    size = jpeg_size(jpeg)
    if size is not None:
        info["w"], info["h"] = size
    # body is the caption when filename differs from it (Matrix 1.10 media captions).
    content: dict[str, Any] = {"msgtype": "m.image", "body": caption or TILE_FILENAME, "filename": TILE_FILENAME,
                               "info": info}
    if file_keys is not None:
        # nio drops content_type for encrypted uploads: the mimetype must travel in the event.
        content["file"] = {**file_keys, "url": mxc, "mimetype": "image/jpeg"}
    else:
        content["url"] = mxc
    return content


def split_ref(ref: str) -> tuple[str, str | None]:
    event_id, _, mxc = ref.partition(" ")
    return event_id, (mxc or None)


class MatrixRefused(MatrixRequestError, PermanentRoomError):
    """The homeserver refused an edit or a redaction for good (M_FORBIDDEN, M_NOT_FOUND…)."""


@contextmanager
def refused_for_good() -> Iterator[None]:
    """An edit or a redaction answered with a 4xx (not 429) leaves as ``MatrixRefused``: the outbox
    records it and moves on (a fresh link for a link re-issue) instead of retrying forever."""
    try:
        yield
    except MatrixRequestError as exc:
        if exc.for_good and not isinstance(exc, MatrixRefused):
            raise MatrixRefused(str(exc), exc.status) from exc
        raise


class MatrixRoom:
    """The Room protocol for one Matrix room, over the shared ``MatrixConnection``."""

    def __init__(self, conn: MatrixConnection, matrix_room_id: str, lang: str) -> None:
        self._conn = conn
        self.matrix_id = matrix_room_id
        self._room_id = f"matrix:{matrix_room_id}"
        self._lang = lang
        # confirmation message event id → incident id, for ✅ reactions and /confirm replies
        self.confirmations: dict[str, str] = {}
        # event id → the ids of our edits of it, to redact them with it (the server is asked too)
        self._edits: dict[str, list[str]] = {}
        # old tile ref → its replacement already posted, so a retried replace_tile posts no second tile
        self._replacements: dict[str, str] = {}

    @property
    def room_id(self) -> str:
        return self._room_id

    @property
    def lang(self) -> str:
        return self._lang

    async def _send(self, content: dict[str, Any], kind: str, op: str = "") -> str:
        # with the outbox's id of the operation (``Outgoing.op``), the key names that operation: a
        # replay after a restart reuses its transaction id (see ``writes.Writes.tx``)
        key = op_key(self.matrix_id, kind, json.dumps(content, sort_keys=True, ensure_ascii=False), *([op] if op else []))
        return await self._conn.send(self.matrix_id, content, key, durable=bool(op))

    async def send_text(self, msg: Outgoing) -> str:
        return await self._send(notice(msg.text, msg.html), "text", msg.op)

    async def edit_text(self, ref: str, msg: Outgoing) -> None:
        event_id, _ = split_ref(ref)
        with refused_for_good():
            edited = await self._send(edit(event_id, msg.text, msg.html), "edit", msg.op)
        # An edit of the link message carries the link too: it is redacted with the original.
        self._edits.setdefault(event_id, []).append(edited)

    async def ask_confirmation(self, incident_id: str, msg: Outgoing) -> str:
        hint = t(self._lang, Msg.MATRIX_CONFIRM_HINT)
        event_id = await self._send(notice(f"{msg.text}\n{hint}", f"{msg.html}<br><i>{html.escape(hint)}</i>"), "confirm",
                                    msg.op)
        self.confirmations[event_id] = incident_id
        return event_id

    async def send_tile(self, jpeg: bytes, caption: str) -> str:
        key = op_key(self.matrix_id, "tile", hashlib.sha256(jpeg).hexdigest(), caption)
        mxc, file_keys = await self._conn.upload_jpeg(self.matrix_id, jpeg, key)
        event_id = await self._conn.send(self.matrix_id, image(caption, jpeg, mxc, file_keys), key)
        self._conn.forget_upload(key)
        return f"{event_id} {mxc}"

    async def replace_tile(self, ref: str, jpeg: bytes, caption: str) -> str:
        new = self._replacements.get(ref)
        if new is None:
            new = self._replacements[ref] = await self.send_tile(jpeg, caption)
        await self.remove(ref)
        self._replacements.pop(ref, None)
        return new

    async def remove(self, ref: str) -> None:
        """Redact the event and every edit of it: redacting an original leaves its ``m.replace``
        edits (which carry the same link) served by the homeserver. Edits made before a restart
        are found through the server's relations API."""
        event_id, mxc = split_ref(ref)
        reason = t(self._lang, Msg.MATRIX_REDACTED)
        known = self._edits.get(event_id, [])
        # Asked before the original goes. Tiles (with their media) are replaced, never edited.
        listed = await self._conn.edits_of(self.matrix_id, event_id) if mxc is None else []
        with refused_for_good():
            await self._conn.redact(self.matrix_id, event_id, reason)
            for edited in dict.fromkeys(known + listed):
                await self._conn.redact(self.matrix_id, edited, reason)
        self._edits.pop(event_id, None)
        if mxc is not None:
            await self._conn.delete_media(mxc)
