"""A faithful in-memory fake of the Telegram Bot API, served by aiohttp on 127.0.0.1, for tests.

Point python-telegram-bot at it with ``base_url=f"{url}/bot"`` and ``base_file_url=f"{url}/file/bot"``.
Requests may be GET or POST with JSON, urlencoded or multipart bodies (files stay in memory).
Answers are ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code", "description"[,
"parameters"]}`` with the matching HTTP status and Telegram's own error texts.

What it enforces, as Telegram does:
- token in the path (401 Unauthorized), unknown method (404 Not Found), method names case-insensitive;
- chats: unknown -> 400 chat not found; private chat never opened -> 403 can't initiate conversation;
  blocked -> 403 bot was blocked by the user; group the bot is not in -> 403 bot is not a member;
- sendMessage / editMessageText: HTML parse mode (tdlib's parser and messages), text 1-4096 UTF-16
  units after parsing and trimming; captions <= 1024; inline keyboards (callback_data 1-64 bytes);
  reply targets must exist; every edit drops the keyboard unless reply_markup is sent again;
- edits: message must exist (message to edit not found), be the bot's (message can't be edited),
  have text / a photo as the method needs, and change something (message is not modified: ...);
- sendPhoto / editMessageMedia: uploads decoded with Pillow (IMAGE_PROCESS_FAILED), <= 10 MB,
  width+height <= 10000, ratio <= 20 (PHOTO_INVALID_DIMENSIONS); ``attach://`` parts; file_id reuse;
- deleteMessage: message to delete not found (unknown or already deleted); others' messages only in
  private chats or as admin; 48 h age limit;
- answerCallbackQuery: unknown / answered / older than ``callback_timeout`` -> query is too old...;
  text <= 200 (MESSAGE_TOO_LONG);
- getUpdates: offset confirmation, limit, long-poll ``timeout`` that really waits, allowed_updates
  (sticky, default excludes chat_member and reactions), 409 when a webhook is set or when a newer
  getUpdates call supersedes a waiting one; setWebhook delivers to a loopback URL with
  X-Telegram-Bot-Api-Secret-Token and retries failures; privacy mode in groups;
- setMyCommands: tdlib + server rules (1-32 chars [a-z0-9_], description 1-256, <= 100), scopes
  and language codes; flood control on demand (``flood``), or opt-in rate limits (``rate_limits``):
  at most 20 sends/edits per group in any 60 s and 30 per second overall, counted when they
  arrive, answered past that with 429 ``retry_after`` = seconds until a slot frees, as Telegram does.
  ``clock`` lets a benchmark run the fake's time (limits, message dates) faster than real time.
Parameters the fake does not model are refused with a ``[fake] ... not supported`` 400, never ignored.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import telegram
from aiohttp import web

from . import telegram_rules as rules
from .telegram_model import FakeChat, FakeMessage, Params, Photo, Upload
from .telegram_rules import ApiError, bad, fake_unsupported

NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are exactly "
                "the same as a current content and reply markup of the message")
CONFLICT_WEBHOOK = ("Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first")
CONFLICT_POLLING = ("Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running")
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CHAT_ACTIONS = frozenset({"typing", "upload_photo", "record_video", "upload_video", "record_voice",
                          "upload_voice", "upload_document", "choose_sticker", "find_location",
                          "record_video_note", "upload_video_note"})
# Real Bot API method names (PTB's camelCase aliases): refused loudly rather than 404 when not modelled.
BOT_API_METHODS = frozenset(n.lower() for n in dir(telegram.Bot) if n[:1].islower() and n != n.lower())
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_T = TypeVar("_T")
_SEND = ("chat_id", "disable_notification", "protect_content", "reply_parameters", "reply_to_message_id",
         "allow_sending_without_reply", "reply_markup", "message_effect_id")
_EDIT = ("chat_id", "message_id", "inline_message_id", "reply_markup")


Handler = Callable[["FakeTelegram", Params], Awaitable[Any]]
_METHODS: dict[str, tuple[str, Handler, frozenset[str]]] = {}


def _method(name: str, *params: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _METHODS[name.lower()] = (name, fn, frozenset(params))
        return fn
    return register


class FakeTelegram:
    """The fake Bot API server and the world it serves (users, chats, messages, updates)."""

    def __init__(self, token: str, username: str = "vigie_test_bot", *, privacy_mode: bool = True,
                 rate_limits: bool = False, callback_timeout: float = 15.0,
                 webhook_retry_delay: float = 0.2, clock: Callable[[], float] = time.time) -> None:
        head, _, rest = token.partition(":")
        if not head.isdigit() or not rest:
            raise ValueError("token must look like '<bot id>:<secret>'")
        self.token = token
        self.bot_id = int(head)
        self.username = username
        self.privacy_mode = privacy_mode
        self.rate_limits = rate_limits
        self.callback_timeout = callback_timeout
        self.webhook_retry_delay = webhook_retry_delay
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.call_times: list[float] = []  # when each of ``calls`` arrived, on the fake's clock
        self.errors: list[tuple[str, int, str]] = []  # (method, error_code, description) answered
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.webhook_deliveries: list[dict[str, Any]] = []
        self.problems: list[str] = []  # misuse the fake saw but could not answer over HTTP
        self._users: dict[int, dict[str, Any]] = {}
        self._chats: dict[int, FakeChat] = {}
        self._messages: dict[tuple[int, int], FakeMessage] = {}
        self._photos: dict[str, Photo] = {}
        self._file_paths: dict[str, bytes] = {}
        self._callbacks: dict[str, dict[str, Any]] = {}
        self._updates: list[dict[str, Any]] = []
        self._last_update_id = 100_000
        self._allowed: frozenset[str] | None = None
        self._poll_generation = 0
        self._wakeup = asyncio.Event()
        self._floods: list[list[Any]] = []  # [method or None, remaining, retry_after]
        self._drop_before = 0
        self._drop_after = 0
        self._windows: dict[object, collections.deque[float]] = {}
        self.accepted: dict[int, list[float]] = {}  # group → when each counted request was accepted
        self._clock = clock
        self._clock_offset = 0.0
        self._ids = itertools.count(1)
        self._webhook: dict[str, Any] | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> str:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self._session = aiohttp.ClientSession()
        self.url = f"http://{host}:{port}"
        return self.url

    async def stop(self) -> None:
        self._stopping = True
        self._notify()
        if self._webhook_task:
            self._webhook_task.cancel()
            await asyncio.gather(self._webhook_task, return_exceptions=True)
        if self._session:
            await self._session.close()
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def now(self) -> float:
        return self._clock() + self._clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (message age, callback expiry, rate buckets) forward."""
        self._clock_offset += seconds

    # ------------------------------------------------------------------ world setup
    @property
    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Vigie", "username": self.username}

    def add_user(self, user_id: int, first_name: str, username: str | None = None,
                 language_code: str | None = None) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return user

    def add_group(self, chat_id: int, title: str, members: list[int], *, bot_member: bool = True,
                  bot_admin: bool = False) -> dict[str, Any]:
        """A supergroup when the id starts with -100, else a basic group."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        unknown = [m for m in members if m not in self._users]
        if unknown:
            raise ValueError(f"add_user first: {unknown}")
        kind = "supergroup" if str(chat_id).startswith("-100") else "group"
        self._chats[chat_id] = FakeChat(chat_id, kind, title, members=set(members),
                                        bot_member=bot_member, bot_admin=bot_admin)
        return self._chat_json(self._chats[chat_id])

    def add_private_chat(self, user_id: int) -> dict[str, Any]:
        """The user has started the bot."""
        if user_id not in self._users:
            raise ValueError(f"add_user({user_id}) first")
        chat = self._chats.setdefault(user_id, FakeChat(user_id, "private", user_id=user_id))
        return self._chat_json(chat)

    def kick_bot(self, chat_id: int) -> None:
        """The bot is banned from the group (a my_chat_member update is queued)."""
        chat = self._chats[chat_id]
        chat.bot_member, chat.bot_kicked = False, True
        self._member_update(chat, "kicked")

    def block_bot(self, user_id: int) -> None:
        chat = self._chats[user_id]
        chat.blocked = True
        self._member_update(chat, "kicked")

    def _member_update(self, chat: FakeChat, status: str) -> None:
        actor = next(iter(sorted(chat.members)), chat.user_id) or 0
        self._push("my_chat_member", {
            "chat": self._chat_json(chat), "from": self._users.get(actor, self.bot_user),
            "date": int(self.now()), "old_chat_member": {"user": self.bot_user, "status": "member"},
            "new_chat_member": {"user": self.bot_user, "status": status, **(
                {"until_date": 0} if status == "kicked" else {})}})

    # ------------------------------------------------------------------ acting as users
    def user_sends(self, chat_id: int, user_id: int, text: str, reply_to: int | None = None) -> dict[str, Any]:
        """A user posts ``text``; returns the Message. Queued as an update if the bot would see it."""
        if chat_id == user_id and chat_id not in self._chats:
            self.add_private_chat(user_id)
        chat = self._user_chat(chat_id, user_id)
        if reply_to is not None and self._live(chat_id, reply_to) is None:
            raise ValueError(f"no message {reply_to} to reply to in {chat_id}")
        msg = self._store(chat, user_id, text=text, entities=rules.command_entities(text), reply_to=reply_to)
        payload = self.to_api(msg)
        if self._bot_sees(chat, msg):
            self._push("message", payload)
        return payload

    def user_presses(self, chat_id: int, user_id: int, message_id: int, data: str) -> str:
        """A user presses the inline button carrying ``data``; returns the callback query id."""
        self._user_chat(chat_id, user_id)
        msg = self._live(chat_id, message_id)
        if msg is None or not msg.from_bot:
            raise ValueError(f"no live bot message {message_id} in chat {chat_id}")
        if not any(b.get("callback_data") == data for b in msg.buttons):
            raise ValueError(f"message {message_id} has no button with callback_data {data!r}")
        query_id = str(4_300_000_000_000_000_000 + next(self._ids))
        self._callbacks[query_id] = {"at": self.now(), "answered": False, "user_id": user_id}
        self._push("callback_query", {
            "id": query_id, "from": self._users[user_id], "message": self.to_api(msg),
            "chat_instance": str(abs(chat_id) * 7919 % 10**18), "data": data})
        return query_id

    def push_update(self, kind: str, payload: dict[str, Any]) -> int:
        """Queue any other update type verbatim; returns its update_id."""
        return self._push(kind, payload)

    def _user_chat(self, chat_id: int, user_id: int) -> FakeChat:
        chat = self._chats.get(chat_id)
        if user_id not in self._users or chat is None:
            raise ValueError(f"unknown user {user_id} or chat {chat_id}")
        if user_id not in chat.members and chat.user_id != user_id:
            raise ValueError(f"user {user_id} is not in chat {chat_id}")
        return chat

    def _bot_sees(self, chat: FakeChat, msg: FakeMessage) -> bool:
        if chat.type == "private":
            return True
        if not chat.bot_member:
            return False
        if not self.privacy_mode or chat.bot_admin:
            return True
        replied = self._messages.get((chat.id, msg.reply_to or 0))
        if replied and replied.from_bot:
            return True
        match = re.match(r"/[A-Za-z0-9_]+(@\w+)?", msg.text or "")
        return bool(match and msg.entities and msg.entities[0]["offset"] == 0 and (
            match.group(1) is None or match.group(1)[1:].lower() == self.username.lower()))

    # ------------------------------------------------------------------ test controls & inspection
    def flood(self, method: str | None, times: int, retry_after: int = 1) -> None:
        """The next ``times`` calls (of ``method``, or of any method) answer 429 retry_after."""
        self._floods.append([method.lower() if method else None, times, retry_after])

    def fail_network(self, times: int, after_processing: bool = False) -> None:
        """Drop the connection of the next ``times`` requests, before or after they took effect."""
        if after_processing:
            self._drop_after += times
        else:
            self._drop_before += times

    def messages(self, chat_id: int) -> list[FakeMessage]:
        return [m for m in self._chat_messages(chat_id) if not m.deleted]

    def deleted(self, chat_id: int) -> list[FakeMessage]:
        return [m for m in self._chat_messages(chat_id) if m.deleted]

    def commands_for(self, language_code: str = "", scope: dict[str, Any] | None = None) -> list[dict[str, str]]:
        """The command list setMyCommands stored for that scope (default scope if None) and language."""
        key = json.dumps(rules.command_scope(scope), sort_keys=True)
        return self.commands.get((key, language_code), [])

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        return list(self._updates)

    def _chat_messages(self, chat_id: int) -> list[FakeMessage]:
        return sorted((m for (c, _), m in self._messages.items() if c == chat_id), key=lambda m: m.message_id)

    # ------------------------------------------------------------------ rendering
    def _chat_json(self, chat: FakeChat) -> dict[str, Any]:
        if chat.type == "private":
            user = self._users[chat.user_id or 0]
            return {"id": chat.id, "type": "private", "first_name": user["first_name"],
                    **({"username": user["username"]} if "username" in user else {})}
        return {"id": chat.id, "type": chat.type, "title": chat.title}

    def to_api(self, msg: FakeMessage, nested: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": self.bot_user if msg.from_bot else self._users[msg.from_id],
            "chat": self._chat_json(self._chats[msg.chat_id]), "date": msg.date}
        if msg.edit_date:
            out["edit_date"] = msg.edit_date
        replied = self._messages.get((msg.chat_id, msg.reply_to or 0))
        if replied and not nested:
            out["reply_to_message"] = self.to_api(replied, nested=True)
        if msg.text is not None:
            out["text"] = msg.text
            if msg.entities:
                out["entities"] = msg.entities
        if msg.photo:
            out["photo"] = msg.photo.sizes
            if msg.caption:
                out["caption"] = msg.caption
                if msg.caption_entities:
                    out["caption_entities"] = msg.caption_entities
            if msg.has_spoiler:
                out["has_media_spoiler"] = True
        if msg.reply_markup:
            out["reply_markup"] = msg.reply_markup
        if msg.protect_content:
            out["has_protected_content"] = True
        return out

    # ------------------------------------------------------------------ updates
    def _push(self, kind: str, payload: dict[str, Any]) -> int:
        self._last_update_id += 1
        self._updates.append({"update_id": self._last_update_id, kind: payload})
        self._notify()
        return self._last_update_id

    def _notify(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def _wait(self, timeout: float | None) -> None:
        try:
            await asyncio.wait_for(self._wakeup.wait(), timeout)
        except TimeoutError:
            pass

    def _deliverable(self) -> list[dict[str, Any]]:
        """Drop updates the allowed_updates setting excludes; return the rest, oldest first."""
        def allowed(update: dict[str, Any]) -> bool:
            kind = next(k for k in update if k != "update_id")
            return kind in self._allowed if self._allowed else kind not in NOT_BY_DEFAULT
        self._updates = [u for u in self._updates if allowed(u)]
        return self._updates

    def _set_allowed(self, p: Params) -> None:
        if p.has("allowed_updates"):
            value = p.obj("allowed_updates", "allowed updates")
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad("can't parse allowed updates JSON object")
            self._allowed = frozenset(value) or None

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._drop_before:
            self._drop_before -= 1
            return self._drop(request)
        name = request.match_info["method"]
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            entry = _METHODS.get(name.lower())
            if entry is None:
                if name.lower() in BOT_API_METHODS:
                    raise fake_unsupported(f"method {name}")
                raise ApiError(404, "Not Found")
            name, handler, accepted = entry
            params = await self._read(request)
            self.calls.append((name, params.record))
            self.call_times.append(now := self.now())
            self._check_flood(name, params, now)
            extra = params.names() - accepted
            if extra:
                raise fake_unsupported(f"parameter(s) {sorted(extra)} of {name}")
            body: dict[str, Any] = {"ok": True, "result": await handler(self, params)}
            status = 200
        except ApiError as exc:
            self.errors.append((name, exc.code, exc.description))
            body, status = exc.body(), exc.code
        if self._drop_after:
            self._drop_after -= 1
            return self._drop(request)
        return web.json_response(body, status=status)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response()

    async def _read(self, request: web.Request) -> Params:
        values: dict[str, Any] = dict(request.query)
        files: dict[str, Upload] = {}
        if request.body_exists:
            kind = request.content_type
            if kind == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise bad("[fake] request body is not valid JSON") from None
                if not isinstance(body, dict):
                    raise bad("[fake] JSON request body must be an object")
                values.update(body)
            elif kind == "application/x-www-form-urlencoded":
                values.update((await request.post()).items())
            elif kind == "multipart/form-data":
                reader = await request.multipart()
                while (part := await reader.next()) is not None:
                    if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                        raise bad("[fake] nested or unnamed multipart parts")
                    data = await part.read(decode=False)
                    if part.filename is not None:
                        files[part.name] = Upload(part.name, part.filename, bytes(data))
                    else:
                        values[part.name] = bytes(data).decode("utf-8")
            else:
                raise fake_unsupported(f"Content-Type {kind!r}")
        return Params(values, files)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        data = self._file_paths.get(request.match_info["path"])
        if request.match_info["token"] != self.token or data is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=data, content_type="image/jpeg")

    def _check_flood(self, name: str, p: Params, now: float) -> None:
        for rule in self._floods:
            if rule[1] > 0 and rule[0] in (None, name.lower()):
                rule[1] -= 1
                raise ApiError(429, f"Too Many Requests: retry after {rule[2]}", retry_after=rule[2])
        if not self.rate_limits or not name.startswith(("send", "edit", "copy", "forward")):
            return
        try:
            chat_id = p.integer("chat_id")
        except ApiError:
            return
        group = chat_id is not None and chat_id < 0
        self._window("global", 30, 1.0, now)
        if group:
            self._window(chat_id, 20, 60.0, now)
            self.accepted.setdefault(chat_id, []).append(now)
        self._windows["global"].append(now)
        if group:
            self._windows[chat_id].append(now)

    def _window(self, key: object, capacity: int, period: float, now: float) -> None:
        """At most ``capacity`` requests in any ``period`` seconds; 429 until the oldest leaves."""
        times = self._windows.setdefault(key, collections.deque())
        while times and times[0] <= now - period:
            times.popleft()
        if len(times) >= capacity:
            wait = max(1, math.ceil(times[0] + period - now))
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)

    # ------------------------------------------------------------------ helpers for methods
    def _chat(self, p: Params) -> FakeChat:
        if not p.has("chat_id"):
            raise bad("chat_id is empty")
        try:
            chat_id = p.integer("chat_id") or 0
        except ApiError:
            raise bad("chat not found") from None  # @usernames: no chat here has one
        return self._chat_by_id(chat_id)

    def _chat_by_id(self, chat_id: Any) -> FakeChat:
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            if chat_id in self._users:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            raise bad("chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat.bot_kicked:
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        if not chat.bot_member:
            raise ApiError(403, f"Forbidden: bot is not a member of the {chat.type} chat")
        return chat

    def _live(self, chat_id: int, message_id: int) -> FakeMessage | None:
        msg = self._messages.get((chat_id, message_id))
        return msg if msg and not msg.deleted else None

    def _store(self, chat: FakeChat, from_id: int, **fields: Any) -> FakeMessage:
        msg = FakeMessage(chat.id, chat.next_id, from_id, from_id == self.bot_id, int(self.now()), **fields)
        chat.next_id += 1
        self._messages[(chat.id, msg.message_id)] = msg
        return msg

    def _common_send(self, chat: FakeChat, p: Params) -> dict[str, Any]:
        if p.has("message_effect_id"):
            raise fake_unsupported("message_effect_id")
        p.flag("disable_notification")
        reply = p.obj("reply_parameters", "reply parameters")
        if reply is None and p.has("reply_to_message_id"):
            reply = {"message_id": p.integer("reply_to_message_id")}
        reply_to = None
        if reply is not None:
            if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
                raise bad("can't parse reply parameters JSON object")
            if reply.get("chat_id") not in (None, chat.id) or set(reply) - {
                    "message_id", "chat_id", "allow_sending_without_reply"}:
                raise fake_unsupported(f"reply_parameters {sorted(reply)}")
            loose = reply.get("allow_sending_without_reply") or p.flag("allow_sending_without_reply")
            if self._live(chat.id, reply["message_id"]):
                reply_to = reply["message_id"]
            elif not loose:
                raise bad("message to be replied not found")
        return {"reply_to": reply_to, "protect_content": p.flag("protect_content"),
                "reply_markup": rules.inline_keyboard(p.obj("reply_markup", "reply keyboard markup"))}

    def _text(self, p: Params, name: str, limit: int, too_long: str, empty: str | None) -> tuple[str, list[Any]]:
        raw = p.string(name) or ""
        ents_name = "entities" if name == "text" else "caption_entities"
        text, ents = rules.formatted(raw, p.string("parse_mode"), p.obj(ents_name, "entities"))
        if not text and empty:
            raise bad(empty)
        if rules.utf16_len(text) > limit:
            raise bad(too_long)
        return text, ents

    def _caption(self, p: Params) -> tuple[str, list[Any]]:
        return self._text(p, "caption", rules.MAX_CAPTION, "message caption is too long", None)

    def _photo(self, value: Any, files: dict[str, Upload], direct: Upload | None = None) -> Photo:
        """Resolve a photo given as an upload, an ``attach://`` reference or a known file_id."""
        upload = direct
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://"):])
            if upload is None:
                raise bad("wrong file identifier/HTTP URL specified")
        if upload is None:
            if not value:
                raise bad("there is no photo in the request")
            if not isinstance(value, str):
                raise bad("wrong file identifier/HTTP URL specified")
            if value.startswith(("http://", "https://")):
                raise fake_unsupported("sending a photo by URL")
            if value not in self._photos:
                raise bad("wrong file identifier/HTTP URL specified")
            return self._photos[value]
        width, height = rules.inspect_photo(upload.data)
        sizes: list[dict[str, Any]] = []
        for w, h, approx in rules.photo_sizes(width, height, len(upload.data)):
            sizes.append({"file_id": "AgACAgQAAxkD" + secrets.token_urlsafe(48),
                          "file_unique_id": "AQAD" + secrets.token_urlsafe(9),
                          "file_size": approx, "width": w, "height": h})
        sizes[-1]["file_size"] = len(upload.data)
        photo = Photo(upload.data, width, height, sizes)
        for size in sizes:
            self._photos[size["file_id"]] = photo
        return photo

    def _editable(self, p: Params) -> FakeMessage:
        if p.has("inline_message_id"):
            raise fake_unsupported("inline_message_id")
        chat = self._chat(p)
        msg = self._live(chat.id, p.integer("message_id", "message identifier is not specified") or 0)
        if msg is None:
            raise bad("message to edit not found")
        if not msg.from_bot:
            raise bad("message can't be edited")
        return msg

    def _edited(self, msg: FakeMessage, before: tuple[Any, ...], after: tuple[Any, ...]) -> dict[str, Any]:
        if before == after:
            raise bad(NOT_MODIFIED)
        msg.edit_count += 1
        msg.edit_date = int(self.now())
        return self.to_api(msg)

    # ------------------------------------------------------------------ webhook delivery
    async def _deliver(self) -> None:
        assert self._session is not None
        while self._webhook and not self._stopping:
            pending = self._deliverable()
            if not pending:
                await self._wait(None)
                continue
            update, hook = pending[0], self._webhook
            headers = {"Content-Type": "application/json"}
            if hook["secret"]:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret"]
            try:
                async with self._session.post(hook["url"], data=json.dumps(update), headers=headers,
                                              timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    answer = await resp.read()
                    error = None if 200 <= resp.status < 300 else \
                        f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                answer, error = b"", f"Connection failed: {exc.__class__.__name__}"
            if error is None:
                if update in self._updates:
                    self._updates.remove(update)
                self.webhook_deliveries.append(update)
                try:
                    reply = json.loads(answer) if answer.strip() else None
                except ValueError:
                    reply = None
                if isinstance(reply, dict) and "method" in reply:
                    self.problems.append(f"webhook answered with a method call, not modelled: {answer[:200]!r}")
            else:
                self._webhook_error = (int(self.now()), error)
                await asyncio.sleep(self.webhook_retry_delay)


# ---------------------------------------------------------------------- Bot API methods
@_method("getMe")
async def _get_me(fake: FakeTelegram, p: Params) -> Any:
    return {**fake.bot_user, "can_join_groups": True, "can_read_all_group_messages": not fake.privacy_mode,
            "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}


@_method("getUpdates", "offset", "limit", "timeout", "allowed_updates")
async def _get_updates(fake: FakeTelegram, p: Params) -> Any:
    if fake._webhook:
        raise ApiError(409, CONFLICT_WEBHOOK)
    offset, limit = p.integer("offset") or 0, min(max(p.integer("limit") or 100, 1), 100)
    deadline = asyncio.get_running_loop().time() + max(p.integer("timeout") or 0, 0)
    fake._set_allowed(p)
    if offset > 0:
        fake._updates = [u for u in fake._updates if u["update_id"] >= offset]
    elif offset < 0:
        fake._updates = fake._updates[offset:]
    fake._poll_generation += 1
    generation = fake._poll_generation
    fake._notify()  # a waiting older call is now terminated
    while True:
        batch = fake._deliverable()[:limit]
        remaining = deadline - asyncio.get_running_loop().time()
        if batch or remaining <= 0 or fake._stopping:
            return batch
        await fake._wait(remaining)
        if fake._webhook:
            raise ApiError(409, CONFLICT_WEBHOOK)
        if generation != fake._poll_generation:
            raise ApiError(409, CONFLICT_POLLING)


@_method("setWebhook", "url", "secret_token", "allowed_updates", "drop_pending_updates",
         "max_connections", "ip_address", "certificate")
async def _set_webhook(fake: FakeTelegram, p: Params) -> Any:
    url = p.string("url") or ""
    if not url:
        return await _delete_webhook(fake, p)
    if p.has("ip_address") or p.has("certificate") or "certificate" in p.files:
        raise fake_unsupported("ip_address / certificate")
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        raise bad("bad webhook: An HTTPS URL must be provided for webhook")
    if parts.hostname not in LOOPBACK:
        if (parts.port or 443) not in (80, 88, 443, 8443):
            raise bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        raise fake_unsupported("a webhook outside 127.0.0.1")
    secret = p.string("secret_token")
    if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
        raise bad("secret token contains unallowed characters")
    max_connections = p.integer("max_connections") or 40
    fake._set_allowed(p)
    if p.flag("drop_pending_updates"):
        fake._updates.clear()
    fake._webhook = {"url": url, "secret": secret, "max_connections": max_connections}
    fake._webhook_error = None
    fake._poll_generation += 1
    fake._notify()
    if fake._webhook_task is None or fake._webhook_task.done():
        fake._webhook_task = asyncio.get_running_loop().create_task(fake._deliver())
    return True


@_method("deleteWebhook", "drop_pending_updates")
async def _delete_webhook(fake: FakeTelegram, p: Params) -> Any:
    fake._webhook = None
    if fake._webhook_task:
        fake._webhook_task.cancel()
        fake._webhook_task = None
    if p.flag("drop_pending_updates"):
        fake._updates.clear()
    return True


@_method("getWebhookInfo")
async def _get_webhook_info(fake: FakeTelegram, p: Params) -> Any:
    info: dict[str, Any] = {"url": "", "has_custom_certificate": False,
                            "pending_update_count": len(fake._deliverable())}
    if fake._webhook:
        info.update(url=fake._webhook["url"], max_connections=fake._webhook["max_connections"])
        if fake._allowed:
            info["allowed_updates"] = sorted(fake._allowed)
        if fake._webhook_error:
            info.update(last_error_date=fake._webhook_error[0], last_error_message=fake._webhook_error[1])
    return info


def _commands_key(fake: FakeTelegram, p: Params) -> tuple[str, str]:
    scope = rules.command_scope(p.obj("scope", "bot command scope"))
    if "chat_id" in scope:
        fake._chat_by_id(scope["chat_id"])
    return json.dumps(scope, sort_keys=True), rules.language_code(p.string("language_code"))


@_method("setMyCommands", "commands", "scope", "language_code")
async def _set_my_commands(fake: FakeTelegram, p: Params) -> Any:
    if not p.has("commands"):
        raise bad('parameter "commands" is required')
    commands = rules.bot_commands(p.obj("commands", "commands"))
    key = _commands_key(fake, p)
    if commands:
        fake.commands[key] = commands
    else:
        fake.commands.pop(key, None)
    return True


@_method("getMyCommands", "scope", "language_code")
async def _get_my_commands(fake: FakeTelegram, p: Params) -> Any:
    return fake.commands.get(_commands_key(fake, p), [])


@_method("deleteMyCommands", "scope", "language_code")
async def _delete_my_commands(fake: FakeTelegram, p: Params) -> Any:
    fake.commands.pop(_commands_key(fake, p), None)
    return True


@_method("sendMessage", *_SEND, "text", "parse_mode", "entities", "link_preview_options",
         "disable_web_page_preview")
async def _send_message(fake: FakeTelegram, p: Params) -> Any:
    chat = fake._chat(p)
    text, entities = fake._text(p, "text", rules.MAX_TEXT, "message is too long", "message text is empty")
    extra = fake._common_send(chat, p)
    return fake.to_api(fake._store(chat, fake.bot_id, text=text, entities=entities, **extra))


@_method("sendPhoto", *_SEND, "photo", "caption", "parse_mode", "caption_entities", "has_spoiler",
         "show_caption_above_media")
async def _send_photo(fake: FakeTelegram, p: Params) -> Any:
    chat = fake._chat(p)
    caption, entities = fake._caption(p)
    extra = fake._common_send(chat, p)
    photo = fake._photo(p.values.get("photo"), p.files, p.files.get("photo"))
    msg = fake._store(chat, fake.bot_id, photo=photo, caption=caption or None, caption_entities=entities,
                      has_spoiler=p.flag("has_spoiler"), **extra)
    return fake.to_api(msg)


@_method("editMessageText", *_EDIT, "text", "parse_mode", "entities", "link_preview_options",
         "disable_web_page_preview")
async def _edit_message_text(fake: FakeTelegram, p: Params) -> Any:
    msg = fake._editable(p)
    if msg.text is None:
        raise bad("there is no text in the message to edit")
    text, entities = fake._text(p, "text", rules.MAX_TEXT, "message is too long", "message text is empty")
    markup = rules.inline_keyboard(p.obj("reply_markup", "reply keyboard markup"))
    before = (msg.text, msg.entities, msg.reply_markup)
    msg.text, msg.entities, msg.reply_markup = text, entities, markup
    return fake._edited(msg, before, (text, entities, markup))


@_method("editMessageCaption", *_EDIT, "caption", "parse_mode", "caption_entities", "show_caption_above_media")
async def _edit_message_caption(fake: FakeTelegram, p: Params) -> Any:
    msg = fake._editable(p)
    if msg.photo is None:
        raise bad("there is no caption in the message to edit")
    caption, entities = fake._caption(p)
    markup = rules.inline_keyboard(p.obj("reply_markup", "reply keyboard markup"))
    before = (msg.caption or "", msg.caption_entities, msg.reply_markup)
    msg.caption, msg.caption_entities, msg.reply_markup = caption or None, entities, markup
    return fake._edited(msg, before, (caption, entities, markup))


@_method("editMessageReplyMarkup", *_EDIT)
async def _edit_message_reply_markup(fake: FakeTelegram, p: Params) -> Any:
    msg = fake._editable(p)
    markup = rules.inline_keyboard(p.obj("reply_markup", "reply keyboard markup"))
    before, msg.reply_markup = msg.reply_markup, markup
    return fake._edited(msg, (before,), (markup,))


@_method("editMessageMedia", *_EDIT, "media")
async def _edit_message_media(fake: FakeTelegram, p: Params) -> Any:
    msg = fake._editable(p)
    media = p.obj("media", "input media")
    if not isinstance(media, dict) or "type" not in media:
        raise bad("can't parse input media JSON object")
    if media["type"] != "photo":
        raise fake_unsupported(f"editMessageMedia with type {media['type']!r}")
    extra = set(media) - {"type", "media", "caption", "parse_mode", "caption_entities", "has_spoiler",
                          "show_caption_above_media"}
    if extra:
        raise fake_unsupported(f"InputMediaPhoto fields {sorted(extra)}")
    if msg.photo is None:
        raise bad("there is no media in the message to edit")
    inner = Params({k: v for k, v in media.items() if k != "media"}, {})
    caption, entities = fake._caption(inner)
    markup = rules.inline_keyboard(p.obj("reply_markup", "reply keyboard markup"))
    photo = fake._photo(media.get("media"), p.files)
    before = (id(msg.photo), msg.caption or "", msg.caption_entities, msg.has_spoiler, msg.reply_markup)
    msg.photo, msg.caption, msg.caption_entities, msg.reply_markup = photo, caption or None, entities, markup
    msg.has_spoiler = inner.flag("has_spoiler")
    return fake._edited(msg, before, (id(photo), caption, entities, msg.has_spoiler, markup))


@_method("deleteMessage", "chat_id", "message_id")
async def _delete_message(fake: FakeTelegram, p: Params) -> Any:
    chat = fake._chat(p)
    msg = fake._live(chat.id, p.integer("message_id", "message identifier is not specified") or 0)
    if msg is None:
        raise bad("message to delete not found")
    others_ok = chat.type == "private" or chat.bot_admin
    if (not msg.from_bot and not others_ok) or fake.now() - msg.date > 48 * 3600:
        raise bad("message can't be deleted")
    msg.deleted = True
    return True


@_method("answerCallbackQuery", "callback_query_id", "text", "show_alert", "url", "cache_time")
async def _answer_callback_query(fake: FakeTelegram, p: Params) -> Any:
    query_id = p.string("callback_query_id") or ""
    query = fake._callbacks.get(query_id)
    if query is None or query["answered"] or fake.now() - query["at"] > fake.callback_timeout:
        raise bad(QUERY_INVALID)
    if p.has("url"):
        raise fake_unsupported("answerCallbackQuery url")
    text = p.string("text") or ""
    if len(text) > 200:
        raise bad("MESSAGE_TOO_LONG")
    query["answered"] = True
    fake.callback_answers[query_id] = {"text": text, "show_alert": p.flag("show_alert"),
                                       "cache_time": p.integer("cache_time") or 0}
    return True


@_method("sendChatAction", "chat_id", "action")
async def _send_chat_action(fake: FakeTelegram, p: Params) -> Any:
    fake._chat(p)
    if p.string("action") not in CHAT_ACTIONS:
        raise bad("wrong parameter action in request")
    return True


@_method("getChat", "chat_id")
async def _get_chat(fake: FakeTelegram, p: Params) -> Any:
    chat = fake._chat(p)
    gifts = dict.fromkeys(("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription",
                           "gifts_from_channels"), False)
    return {**fake._chat_json(chat), "accent_color_id": 0, "max_reaction_count": 11,
            "accepted_gift_types": gifts}


@_method("getFile", "file_id")
async def _get_file(fake: FakeTelegram, p: Params) -> Any:
    file_id = p.string("file_id") or ""
    photo = fake._photos.get(file_id)
    if photo is None:
        raise bad("invalid file_id")
    size = next(s for s in photo.sizes if s["file_id"] == file_id)
    path = f"photos/file_{next(fake._ids)}.jpg"
    fake._file_paths[path] = photo.data
    return {**{k: size[k] for k in ("file_id", "file_unique_id", "file_size")}, "file_path": path}
