"""Incoming Telegram updates: who may speak where, commands, and button presses.

Only the configured group chats and the roster's people (by Telegram user id) are served:
- a message in a group that is not configured is refused (``wrong_room``), whoever sends it;
- a message from someone off the roster, in a configured group or in a private chat, is refused
  (``unknown_person``);
- a roster person in a private chat is answered, but the desk refuses anything that acts on an
  incident there (that chat is not a room of the convention) and audits it.
Every refusal is written to the registre through the desk; the short reply is sent or not per
``telegram.strangers`` ("refuse" | "silent"), and at most once a minute per person and chat so a
stranger cannot make the bot spend the group's flood allowance.

Button presses are decided by the desk like typed commands: the presser is the actor, so a
press by someone not allowed changes nothing, is audited, and gets a callback alert.

Messages typed while Vigie was stopped are read on its return (Telegram keeps them 24 h) and go
through ``commands.run_late``: ``/fin`` is applied, a stale ``/alerte`` gets a request to resend.

Replies are protected from forwarding like everything the bot posts, leave in the group's REPLY
lane (after any link), and are sent from their own task so a reply waiting for the group's
budget never holds up the next command. When a command opened access (or asked for its
confirmation) in this very group, there is no separate reply: the link message (or the
confirmation request) posted in the group is the answer, one request fewer before the link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.constants import ChatType
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ContextTypes, ExtBot

from .. import commands
from ..desk_port import DeskPort
from ..kinds import Kind
from ..locales import Msg, t
from ..messages import Reply, refusal
from ..policy.convention import Person
from ..policy.incident import State
from ..policy.reasons import UNKNOWN_PERSON, WRONG_ROOM, Reason, Refused
from ..rooms import ReplyTasks
from .budget import Lane
from .room import MAX_CALLBACK_ANSWER, MAX_TEXT, clip, keyboard

logger = logging.getLogger(__name__)

REPLY_ATTEMPTS = 3
OPENING = frozenset({"alert", "drill", "confirm"})
REFUSAL_EVERY = 60.0  # seconds between two refusal replies to the same person in the same chat


class TelegramInput:
    def __init__(self, desk: DeskPort, chats: frozenset[int], lang: str, strangers: Literal["refuse", "silent"],
                 redact: Callable[[str], str], wall_clock: Callable[[], datetime]) -> None:
        self._desk = desk
        self._chats = chats
        self._lang = lang
        self._strangers = strangers
        self._redact = redact
        self._wall_clock = wall_clock
        self._refused_at: dict[tuple[int, int], float] = {}
        self._sending = ReplyTasks()
        self.username: str | None = None  # the bot's @username, known once connected

    # ---------- messages ----------

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.message
        if msg is None or msg.from_user is None or msg.from_user.is_bot:
            return
        text = msg.text or ""
        cmd = commands.parse(text, self.username) if text else None
        if cmd is None and text.lstrip().startswith("/"):
            return  # addressed to another bot of the group
        chat, user = msg.chat, msg.from_user
        room = f"telegram:{chat.id}"
        person = self._desk.person_by_telegram(user.id)
        configured = chat.id in self._chats
        if not configured and chat.type != ChatType.PRIVATE:
            await self._stranger(context.bot, msg, WRONG_ROOM, person, cmd)
            return
        if person is None:
            await self._stranger(context.bot, msg, UNKNOWN_PERSON, None, cmd)
            return
        if cmd is None:
            if chat.type == ChatType.PRIVATE:
                await self._reply(context.bot, msg, t(self._lang, Msg.TYPE_HELP))
            return  # ordinary chat in the group, e.g. a reply to one of our messages
        if cmd.name == "alert" and not cmd.args and configured:
            await self._reply(context.bot, msg, self._category_question(), self._category_keyboard())
            return
        before = self._opening_states() if configured and cmd.name in OPENING else None
        try:
            answer = await commands.run_late(self._desk, cmd, person, room, self._lang, msg.date, self._wall_clock())
        except Exception:
            logger.exception("Telegram command /%s failed", cmd.name)
            answer = t(self._lang, Msg.INTERNAL_ERROR)
        if before is not None and self._opening_states() - before:
            return  # the link (or the confirmation request) posted in this group is the answer
        await self._reply(context.bot, msg, answer)

    def _opening_states(self) -> set[tuple[str, State]]:
        return {(i.id, i.state) for i in self._desk.open_incidents()}

    async def _stranger(self, bot: ExtBot[Any], msg: Message, reason: Reason, person: Person | None,
                        cmd: commands.Command | None) -> None:
        user = msg.from_user
        if user is None:
            return
        actor = person.id if person else f"telegram:{user.id}"
        self._desk.refuse_stranger(actor, f"telegram:{msg.chat.id}", reason.code, chat_type=msg.chat.type,
                                   command=cmd.name if cmd else None)
        logger.info("refused %s in telegram:%s (%s)", actor, msg.chat.id, reason.code)
        if self._strangers == "silent" or (cmd is None and msg.chat.type != ChatType.PRIVATE):
            return
        key, now = (msg.chat.id, user.id), time.monotonic()
        if now - self._refused_at.get(key, -REFUSAL_EVERY) < REFUSAL_EVERY:
            return
        if len(self._refused_at) > 1000:
            self._refused_at.clear()  # bounded memory; at worst one extra refusal each
        self._refused_at[key] = now
        await self._reply(bot, msg, refusal(reason, self._lang))

    def _category_question(self) -> str:
        return t(self._lang, Msg.CATEGORY_BUTTONS)

    def _category_keyboard(self) -> InlineKeyboardMarkup | None:
        return keyboard([(c.label(self._lang), f"alert:{c.code}") for c in self._desk.categories()])

    async def _reply(self, bot: ExtBot[Any], msg: Message, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Answer a person's message, quoting it, from a task of its own (see the module doc)."""
        self._sending.spawn(self._send_reply(bot, msg, text, markup), f"telegram:reply:{msg.chat.id}")

    async def _send_reply(self, bot: ExtBot[Any], msg: Message, text: str, markup: InlineKeyboardMarkup | None) -> None:
        """Network errors retried briefly; a reply that cannot be sent is logged and written to the
        registre (``room_error``), never raised."""
        error: str | None = "stopping"
        try:
            error = await self._try_reply(bot, msg, text, markup)
        finally:
            if error is not None:
                logger.warning("reply in telegram:%s not delivered: %s", msg.chat.id, error)
                with contextlib.suppress(Exception):  # reporting must not hide the cause in the log
                    self._desk.record(Kind.ROOM_ERROR, actor="system", details={
                        "room": f"telegram:{msg.chat.id}", "operation": "reply", "error": error[:300],
                        "text": text[:200]})

    async def _try_reply(self, bot: ExtBot[Any], msg: Message, text: str,
                         markup: InlineKeyboardMarkup | None) -> str | None:
        """None once sent, else why not."""
        quote = ReplyParameters(message_id=msg.message_id, allow_sending_without_reply=True)
        delay = 0.5
        for attempt in range(1, REPLY_ATTEMPTS + 1):
            try:
                await bot.send_message(msg.chat.id, clip(text, MAX_TEXT), reply_parameters=quote, reply_markup=markup,
                                       protect_content=True, rate_limit_args=Lane.REPLY)
                return None
            except BadRequest as exc:  # a subclass of NetworkError in PTB: never worth retrying
                return "refused: " + self._redact(exc.message)
            except NetworkError as exc:
                if attempt == REPLY_ATTEMPTS:
                    return "lost: " + self._redact(exc.message)
                await asyncio.sleep(delay)
                delay *= 2
            except TelegramError as exc:
                return "failed: " + self._redact(exc.message)
        return "not sent"

    async def abandon_replies(self, timeout: float = 1.0) -> None:
        """At close: replies still not sent are cancelled; each writes itself to the registre."""
        await self._sending.abandon(timeout)

    # ---------- button presses ----------

    async def on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        kind, _, arg = (query.data or "").partition(":")
        message = query.message
        if message is None or kind not in ("confirm", "alert") or not arg:
            await self._answer(query, None)
            return
        chat, user = message.chat, query.from_user
        room = f"telegram:{chat.id}"
        person = self._desk.person_by_telegram(user.id)
        stranger = WRONG_ROOM if chat.id not in self._chats and chat.type != ChatType.PRIVATE else (
            UNKNOWN_PERSON if person is None else None)
        if stranger is not None:
            # Audited here rather than by the desk, so the record names the Telegram account.
            self._desk.refuse_stranger(person.id if person else f"telegram:{user.id}", room, stranger.code,
                                       chat_type=chat.type, command=kind)
            await self._answer(query, None if self._strangers == "silent" else
                               refusal(stranger, self._lang), alert=True)
            return
        try:
            if kind == "confirm":
                reply: Reply = await self._desk.confirm(person, room, arg[:64])
            else:
                reply = await self._desk.alert(person, room, arg[:64])
        except Refused as refused:  # the desk has audited it; the presser is told why, nothing changed
            await self._answer(query, refusal(refused.reason, self._lang), alert=True)
            return
        except Exception:
            logger.exception("Telegram button %s failed", kind)
            await self._answer(query, t(self._lang, Msg.INTERNAL_ERROR_SHORT), alert=True)
            return
        answer = reply.text(self._lang)
        await self._answer(query, answer)
        if kind == "alert" and isinstance(message, Message) and person is not None:
            # The category is chosen: the keyboard goes, so nobody presses it again by mistake.
            cat = self._desk.category(arg)
            label = cat.label(self._lang) if cat else arg
            done = t(self._lang, Msg.CATEGORY_CHOSEN, name=person.name, label=label, answer=answer)
            try:
                await message.edit_text(clip(done, MAX_TEXT))
            except TelegramError as exc:
                logger.info("could not close the category keyboard in %s: %s", room, self._redact(exc.message))

    async def _answer(self, query: CallbackQuery, text: str | None, alert: bool = False) -> None:
        try:
            await query.answer(clip(text, MAX_CALLBACK_ANSWER) if text else None, show_alert=alert and bool(text))
        except TelegramError as exc:  # too late (Telegram waits ~15 s) or network: the press was handled anyway
            logger.info("callback answer failed: %s", self._redact(exc.message))
