"""One configured Telegram group as a Vigie room (the ``Room`` protocol of ``bot.rooms``).

The fan-out calls these methods from the room's own outbox, which retries failures with backoff
and bounds each attempt with a timeout; this class only speaks the Bot API correctly:
- message references are ``"<chat_id>:<message_id>"``, plain strings that survive a restart;
- the link message is edited in place (``editMessageText``), the tile is sent once with
  ``protect_content`` and then replaced with ``editMessageMedia`` under the same reference;
- the group's rate budget (``budget``) is never waited for by a tile: a frame that does not fit
  is skipped (the first one leaves a placeholder reference, ``NO_TILE``), so the outbox moves on;
- operations are idempotent where Telegram lets them be: an edit that changes nothing and a
  delete of a message already gone count as done, so a retry after a lost answer converges;
- every Telegram error leaves as ``TelegramRoomError`` with the token redacted, because the
  outbox writes the error text to the log and to the registre; an edit or a deletion Telegram
  refuses for good (the message is gone or too old) is ``TelegramRefused``, a ``PermanentRoomError``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ExtBot

from ..rooms import Outgoing, PermanentRoomError
from .budget import Lane

logger = logging.getLogger(__name__)

MAX_TEXT = 4096  # Bot API limits, counted in UTF-16 code units
MAX_CAPTION = 1024
MAX_CALLBACK_ANSWER = 200
# Telegram would otherwise fetch the live link to build a preview: an access nobody asked for.
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
NO_TILE = 0  # message id of a tile not posted yet (Telegram's ids start at 1)
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_T = TypeVar("_T")


class TelegramRoomError(Exception):
    """A Bot API call failed; the text is safe to log and audit (no token)."""


class TelegramRefused(TelegramRoomError, PermanentRoomError):
    """Telegram refused an edit or a deletion for good: the message is gone, or may not be changed."""


# Answers to an edit or a deletion that no retry can change (a person deleted the message, it is
# too old, it is not the bot's): the outbox records them and moves on instead of retrying forever.
_FOR_GOOD = ("message to edit not found", "message can't be edited", "message can't be deleted")


class BotLink(Protocol):
    """What a room needs from the gateway: the connected bot, and a way to scrub secrets."""

    async def ready_bot(self) -> ExtBot[Any]:
        """The bot once connected; raises ``TelegramRoomError`` if it is not (yet, or any more)."""
        ...

    def redact(self, text: str) -> str: ...

    def spare(self, chat_id: int, lane: Lane) -> bool:
        """Whether the chat's rate budget lets a request of ``lane`` leave now."""
        ...


def make_ref(chat_id: int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


def parse_ref(ref: str) -> tuple[int, int]:
    chat, _, message = ref.rpartition(":")
    try:
        return int(chat), int(message)
    except ValueError:
        raise TelegramRoomError(f"not a Telegram message reference: {ref[:40]!r}") from None


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` UTF-16 code units (Telegram's unit), with an ellipsis if cut."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    out: list[str] = []
    used = 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > limit - 1:
            break
        out.append(ch)
        used += width
    return "".join(out) + "…"


def body(msg: Outgoing) -> tuple[str, str | None]:
    """(text, parse_mode) for a room message: the HTML form when it fits, else plain text clipped.

    Telegram's HTML has no ``<br>``: line breaks are newlines. Cutting HTML could split a tag, so
    an over-long message falls back to its plain form.
    """
    html = _BR.sub("\n", msg.html)
    if len(msg.text.encode("utf-16-le")) // 2 <= MAX_TEXT and len(html) <= 3 * MAX_TEXT:
        return html, ParseMode.HTML
    return clip(msg.text, MAX_TEXT), None


def lane(msg: Outgoing) -> Lane:
    return Lane.LINK if msg.urgent else Lane.NORMAL


def keyboard(buttons: list[tuple[str, str]]) -> InlineKeyboardMarkup | None:
    """One button per row: long French labels stay readable on a phone."""
    if not buttons:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label[:64], callback_data=data)] for label, data in buttons])


class TelegramRoom:
    def __init__(self, link: BotLink, chat_id: int, lang: str) -> None:
        self._link = link
        self.chat_id = chat_id
        self._lang = lang
        self.tiles_skipped = 0

    @property
    def room_id(self) -> str:
        return f"telegram:{self.chat_id}"

    @property
    def lang(self) -> str:
        return self._lang

    async def send_text(self, msg: Outgoing) -> str:
        return await self._send(msg, None)

    async def ask_confirmation(self, incident_id: str, msg: Outgoing) -> str:
        return await self._send(msg, keyboard([(b.label, b.data) for b in msg.buttons]))

    async def edit_text(self, ref: str, msg: Outgoing) -> None:
        chat_id, message_id = parse_ref(ref)
        text, mode = body(msg)
        markup = keyboard([(b.label, b.data) for b in msg.buttons])
        bot = await self._link.ready_bot()
        try:
            await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id, parse_mode=mode,
                                        reply_markup=markup, link_preview_options=NO_PREVIEW,
                                        rate_limit_args=lane(msg))
        except BadRequest as exc:
            if _is(exc, "message is not modified"):
                return  # the same text again, e.g. a retry after a lost answer: already done
            raise self._error("editMessageText", exc, refused=True) from None
        except TelegramError as exc:
            raise self._error("editMessageText", exc) from None

    async def send_tile(self, jpeg: bytes, caption: str) -> str:
        bot = await self._link.ready_bot()
        if not self._link.spare(self.chat_id, Lane.TILE):
            # Waiting here would hold up the room's outbox, and the next link behind it: the tile
            # is posted by a later frame instead (``replace_tile`` of this placeholder).
            self.tiles_skipped += 1
            return make_ref(self.chat_id, NO_TILE)
        sent = await self._call("sendPhoto", lambda: bot.send_photo(
            self.chat_id, jpeg, caption=clip(caption, MAX_CAPTION), protect_content=True, filename="vigie.jpg",
            rate_limit_args=Lane.TILE))
        return make_ref(sent.chat_id, sent.message_id)

    async def replace_tile(self, ref: str, jpeg: bytes, caption: str) -> str:
        chat_id, message_id = parse_ref(ref)
        if message_id == NO_TILE:
            return await self.send_tile(jpeg, caption)
        bot = await self._link.ready_bot()
        if not self._link.spare(chat_id, Lane.TILE):
            # The group's budget is kept for the link and the people: this frame is skipped, the
            # tile keeps the previous one until the next period.
            self.tiles_skipped += 1
            logger.debug("room %s: tile frame skipped, rate budget low", self.room_id)
            return ref
        media = InputMediaPhoto(jpeg, caption=clip(caption, MAX_CAPTION), filename="vigie.jpg")
        try:
            await bot.edit_message_media(media, chat_id=chat_id, message_id=message_id, rate_limit_args=Lane.TILE)
        except BadRequest as exc:
            if _is(exc, "message to edit not found"):
                # Someone deleted the tile by hand: post a fresh one so the group keeps a tile.
                logger.info("room %s: tile %s is gone, posting a new one", self.room_id, message_id)
                return await self.send_tile(jpeg, caption)
            if _is(exc, "message is not modified"):
                return ref
            raise self._error("editMessageMedia", exc, refused=True) from None
        except TelegramError as exc:
            raise self._error("editMessageMedia", exc) from None
        return ref

    async def remove(self, ref: str) -> None:
        chat_id, message_id = parse_ref(ref)
        if message_id == NO_TILE:
            return  # a tile that was never posted
        bot = await self._link.ready_bot()
        try:
            await bot.delete_message(chat_id, message_id)
        except BadRequest as exc:
            if _is(exc, "message to delete not found"):
                # Already deleted: by a person, or by our own earlier attempt whose answer was lost.
                logger.info("room %s: message %s was already deleted", self.room_id, message_id)
                return
            raise self._error("deleteMessage", exc, refused=True) from None
        except TelegramError as exc:
            raise self._error("deleteMessage", exc) from None

    async def _send(self, msg: Outgoing, markup: InlineKeyboardMarkup | None) -> str:
        text, mode = body(msg)
        bot = await self._link.ready_bot()
        # protect_content: what the bot posts about a grave event and the police's access is not
        # for forwarding out of the group.
        sent = await self._call("sendMessage", lambda: bot.send_message(
            self.chat_id, text, parse_mode=mode, reply_markup=markup, protect_content=True,
            link_preview_options=NO_PREVIEW, rate_limit_args=lane(msg)))
        return make_ref(sent.chat_id, sent.message_id)

    async def _call(self, method: str, fn: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await fn()
        except TelegramError as exc:
            raise self._error(method, exc) from None

    def _error(self, method: str, exc: BaseException, *, refused: bool = False) -> TelegramRoomError:
        """The error to raise; with ``refused``, a ``BadRequest`` no retry can change is ``TelegramRefused``."""
        text = self._link.redact(f"{method} in {self.room_id}: {type(exc).__name__}: {exc}")
        if refused and isinstance(exc, BadRequest) and any(_is(exc, why) for why in _FOR_GOOD):
            return TelegramRefused(text)
        return TelegramRoomError(text)


def _is(exc: TelegramError, text: str) -> bool:
    return text in exc.message.lower()
