"""Telegram: python-telegram-bot 22, started and stopped by hand inside the aiohttp lifecycle.

``TelegramGateway`` owns the PTB ``Application`` and gives the desk one ``TelegramRoom`` per
configured group (``telegram_room``); incoming updates go to ``TelegramInput``
(``telegram_updates``). ``attach`` wires it into our aiohttp app:

- a ``cleanup_ctx`` entry starts one owned task that connects (``initialize`` = getMe, retried
  with backoff so a Telegram outage never holds up the web page, the console or Matrix), starts
  the Application, publishes the command menu (French by default and for "fr", English for
  "en"), then either long-polls (``updater.start_polling``) or sets a webhook to our own server.
  On exit it stops taking updates: polling first, then the Application;
- an ``on_cleanup`` hook shuts the bot's HTTP client down last, after the outboxes have drained,
  so messages queued before a graceful stop still reach the groups.

Flood limits: a rate budget per group (``budget``) in place of PTB's first-come-first-served
limiter, so the access link never waits behind replies or tiles; it waits out a 429
``retry_after`` and retries; every request has connect/read/write timeouts; the room outbox
retries network failures with backoff and bounds each attempt.

Webhook mode (``telegram.webhook = true``): ``POST /hooks/telegram/<random path>`` on our aiohttp
server, with ``setWebhook(url=public_url + path, secret_token=…)``; a request whose
``X-Telegram-Bot-Api-Secret-Token`` does not match (compared in constant time) gets 403.

The token is in every Bot API URL: it is never logged, and every error text leaving this
package is passed through ``redact``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from telegram import Bot, BotCommand, Update
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import Application, CallbackQueryHandler, ExtBot, MessageHandler, filters

from ..commands import MENU
from ..desk_port import DeskPort
from ..locales import DEFAULT, LANGS, t
from ..rooms import Room
from ..settings import Settings, TelegramCfg
from .budget import BudgetClock, BudgetRules, Lane, LaneLimiter, RateBudget
from .room import TelegramRoom, TelegramRoomError
from .updates import TelegramInput

logger = logging.getLogger(__name__)

ALLOWED_UPDATES = ("message", "callback_query")
HOOK_PREFIX = "/hooks/telegram/"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name, not a secret


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TelegramOptions:
    """Knobs that are not settings: timeouts, retries, and an override of the Bot API's address
    (``telegram.api_url`` / ``telegram.file_url`` otherwise; a fake in tests)."""

    api_url: str | None = None
    file_url: str | None = None
    poll_timeout: int = 10  # long-poll seconds
    budget: BudgetRules = BudgetRules()  # Telegram's flood limits, and the room kept for links
    budget_clock: BudgetClock = BudgetClock()
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    write_timeout: float = 20.0  # tiles are uploads
    ready_timeout: float = 10.0  # how long a room operation waits for the bot to be connected
    reconnect_max: float = 60.0  # ceiling of the backoff between connection attempts
    wall_clock: Callable[[], datetime] = _utcnow  # Telegram dates are wall-clock, not the desk's clock


class TelegramGateway:
    def __init__(self, cfg: TelegramCfg, token: str, public_url: str, options: TelegramOptions | None = None) -> None:
        self._cfg = cfg
        self._token = token
        self._public_url = public_url.rstrip("/")
        self._opts = options or TelegramOptions()
        self.budget = RateBudget(self._opts.budget, self._opts.budget_clock)
        self.rooms = [TelegramRoom(self, chat, cfg.language) for chat in cfg.chats]
        self._hook_path = HOOK_PREFIX + secrets.token_urlsafe(24) if cfg.webhook else None
        self._hook_secret = secrets.token_urlsafe(32)
        self._application: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._input: TelegramInput | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, options: TelegramOptions | None = None) -> TelegramGateway:
        token = settings.secrets.telegram_token
        if token is None:
            raise ValueError("telegram.enabled is true but there is no bot token")
        return cls(settings.vigie.telegram, token.get_secret_value(), settings.vigie.service.public_url, options)

    # ---------- wiring ----------

    @property
    def chat_rooms(self) -> Sequence[Room]:
        return self.rooms

    def attach(self, app: web.Application, desk: DeskPort) -> None:
        """Route the webhook (if any), and hook start/stop into ``app``'s lifecycle."""
        self._input = TelegramInput(desk, frozenset(self._cfg.chats), self._cfg.language, self._cfg.strangers,
                                    self.redact, self._opts.wall_clock)
        if self._hook_path is not None:
            app.router.add_post(self._hook_path, self._webhook)
        app.cleanup_ctx.append(self._lifecycle)
        app.on_cleanup.append(self._close)

    def redact(self, text: str) -> str:
        for secret in (self._token, self._token.partition(":")[2], self._hook_secret, self._hook_path):
            if secret:
                text = text.replace(secret, "…")
        return text

    async def ready_bot(self) -> ExtBot[Any]:
        if not self._ready.is_set():
            if self._closed:
                raise TelegramRoomError("Telegram is stopped")
            try:
                await asyncio.wait_for(self._ready.wait(), self._opts.ready_timeout)
            except TimeoutError:
                raise TelegramRoomError("Telegram is not connected") from None
        if self._application is None:
            raise TelegramRoomError("Telegram is stopped")
        return self._application.bot

    def spare(self, chat_id: int, lane: Lane) -> bool:
        return self.budget.spare(chat_id if chat_id < 0 else None, lane)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    # ---------- lifecycle ----------

    def _build(self, input_: TelegramInput) -> Application[Any, Any, Any, Any, Any, Any]:
        o = self._opts
        api_url = o.api_url or self._cfg.api_url
        file_url = o.file_url or self._cfg.file_url or api_url
        builder = (
            Application.builder().token(self._token)
            .base_url(f"{api_url}/bot").base_file_url(f"{file_url}/file/bot")
            .rate_limiter(LaneLimiter(self.budget))
            .connect_timeout(o.connect_timeout).read_timeout(o.read_timeout)
            .write_timeout(o.write_timeout).media_write_timeout(o.write_timeout).pool_timeout(o.connect_timeout)
            .get_updates_connect_timeout(o.connect_timeout).get_updates_read_timeout(o.read_timeout)
            .get_updates_pool_timeout(o.connect_timeout)
            .job_queue(None)  # the desk owns the one scheduler
        )
        if self._hook_path is not None:
            builder = builder.updater(None)
        application = builder.build()
        application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, input_.on_message))
        application.add_handler(CallbackQueryHandler(input_.on_callback))
        application.add_error_handler(self._on_error)
        return application

    async def _lifecycle(self, _: web.Application) -> AsyncIterator[None]:
        if self._input is None:
            raise RuntimeError("attach() first")
        self._application = self._build(self._input)
        self._task = asyncio.create_task(self._run(self._application, self._input), name="telegram:connect")
        yield
        # Stop taking updates; the bot itself (and replies under way) stays usable until _close,
        # for the outboxes' drain.
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        application = self._application
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()

    async def _close(self, _: web.Application) -> None:
        if self._input is not None:
            await self._input.abandon_replies()  # had the drain's time; each reports itself
        self._closed = True
        self._ready.clear()
        application, self._application = self._application, None
        if application is None:
            return
        if application.running:  # defensive: _lifecycle normally stopped it already
            await application.stop()
        # Application.shutdown does nothing when initialize never completed: close the HTTP client then.
        await application.shutdown()
        await application.bot.shutdown()

    async def _run(self, application: Application[Any, Any, Any, Any, Any, Any], input_: TelegramInput) -> None:
        try:
            await self._connect(application, input_)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the task's failure must be seen now, not at shutdown
            logger.error("Telegram start failed, its rooms stay offline: %s",
                         self.redact(f"{type(exc).__name__}: {exc}"))

    async def _connect(self, application: Application[Any, Any, Any, Any, Any, Any], input_: TelegramInput) -> None:
        delay = 1.0
        while True:
            try:
                await application.initialize()  # getMe: checks the token, learns our @username
                break
            except InvalidToken:
                # Its message quotes the token: say what to fix, not what PTB says.
                logger.error("Telegram refused the bot token: Telegram rooms stay offline (check telegram.token_file)")
                return
            except TelegramError as exc:
                logger.warning("Telegram unreachable (%s); next try in %.0f s", self.redact(exc.message), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._opts.reconnect_max)
        bot = application.bot
        input_.username = bot.username
        await application.start()
        self._ready.set()
        logger.info("Telegram connected as @%s for %d group(s)", bot.username, len(self._cfg.chats))
        await self._publish_menu(bot)
        if self._hook_path is not None:
            url = self._public_url + self._hook_path
            await self._retrying("setWebhook", lambda: bot.set_webhook(
                url, allowed_updates=list(ALLOWED_UPDATES), secret_token=self._hook_secret))
            logger.info("Telegram webhook set on %s%s…", self._public_url, HOOK_PREFIX)
        elif application.updater is not None:
            await application.updater.start_polling(
                timeout=self._opts.poll_timeout, bootstrap_retries=-1, allowed_updates=list(ALLOWED_UPDATES),
                drop_pending_updates=False, error_callback=self._poll_error)

    async def _publish_menu(self, bot: Bot) -> None:
        menus = {lang: [BotCommand(name, t(lang, key)) for name, key in MENU] for lang in LANGS}
        try:
            # Default (no language) in French: the venue's and the police's phones are French.
            for language, menu in ((None, menus[DEFAULT]), *menus.items()):
                await bot.set_my_commands(menu, language_code=language)
        except TelegramError as exc:  # the menu is a convenience; commands work without it
            logger.warning("could not publish the Telegram command menu: %s", self.redact(exc.message))

    async def _retrying(self, what: str, call: Callable[[], Awaitable[object]]) -> None:
        delay = 1.0
        while True:
            try:
                await call()
                return
            except BadRequest as exc:  # e.g. a webhook URL Telegram will not accept: retrying cannot help
                logger.error("Telegram %s refused: %s", what, self.redact(exc.message))
                return
            except TelegramError as exc:
                logger.warning("Telegram %s failed (%s); next try in %.0f s", what, self.redact(exc.message), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._opts.reconnect_max)

    def _poll_error(self, exc: TelegramError) -> None:
        # PTB's polling loop retries by itself with backoff; one line per failure is enough.
        logger.warning("Telegram polling: %s: %s", type(exc).__name__, self.redact(exc.message))

    async def _on_error(self, update: object, context: Any) -> None:
        error = getattr(context, "error", None)
        logger.error("Telegram update handling failed: %s",
                     self.redact(f"{type(error).__name__}: {error}") if error else "unknown error")

    # ---------- webhook ----------

    async def _webhook(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._hook_secret.encode()):
            logger.warning("Telegram webhook: request from %s without the right secret header", request.remote)
            return web.Response(status=403)
        application = self._application
        if application is None or not application.running:
            return web.Response(status=503)  # Telegram retries later
        try:
            data = await request.json()
            update = Update.de_json(data, application.bot) if isinstance(data, dict) else None
        except (ValueError, KeyError, TypeError):
            update = None
        if update is None:
            return web.Response(status=400)
        await application.update_queue.put(update)
        return web.Response(status=200)
