"""The fake Telegram Bot API, driven by python-telegram-bot's real Bot (and raw HTTP where PTB won't)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import telegram
from aiohttp import web
from PIL import Image
from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Update
from telegram.error import BadRequest, Conflict, Forbidden, NetworkError, RetryAfter
from telegram.ext import AIORateLimiter, Application, CallbackQueryHandler, CommandHandler, ContextTypes

from tests.fakes import FakeTelegram

TOKEN = "123456789:AAFakeTokenForVigieTests_abcdefghijk"
GROUP = -1001234567890
CHIEF, OFFICER, STRANGER = 111, 222, 333
# PTB 22 warns that RetryAfter.retry_after will become a timedelta; both forms are handled below.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")


def jpeg(width: int, height: int, color: str = "navy") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG")
    return out.getvalue()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.title(), callback_data=d) for d in data]])


def seconds(error: RetryAfter) -> float:
    value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else value


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    tg = FakeTelegram(TOKEN, username="vigie_test_bot")
    tg.add_user(CHIEF, "Claire", "claire_secu", language_code="fr")
    tg.add_user(OFFICER, "Paul")
    tg.add_user(STRANGER, "Eve")
    tg.add_group(GROUP, "PC sécurité", [CHIEF, OFFICER])
    tg.add_private_chat(CHIEF)
    await tg.start()
    yield tg
    await tg.stop()


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(TOKEN, base_url=f"{fake.url}/bot", base_file_url=f"{fake.url}/file/bot") as b:
        yield b


async def raw(fake: FakeTelegram, method: str, token: str = TOKEN, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, \
            session.post(f"{fake.url}/bot{token}/{method}", **kwargs) as resp:
        return resp.status, await resp.json()


async def test_get_me_token_and_unknown_methods(fake: FakeTelegram, bot: telegram.Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot, me.can_read_all_group_messages) == (123456789, "vigie_test_bot", True, False)
    assert await raw(fake, "getMe", token="123456789:wrong") == (
        401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
    assert await raw(fake, "sendMesage") == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    status, body = await raw(fake, "sendDocument", json={"chat_id": GROUP})
    assert status == 400 and "[fake]" in body["description"]
    status, body = await raw(fake, "sendMessage", json={"chat_id": GROUP, "text": "x", "message_thread_id": 3})
    assert status == 400 and "message_thread_id" in body["description"]


async def test_message_lifecycle(fake: FakeTelegram, bot: telegram.Bot) -> None:
    sent = await bot.send_message(GROUP, "<b>Alerte</b> intrusion", parse_mode="HTML",
                                  reply_markup=keyboard("confirm", "cancel"))
    assert sent.text == "Alerte intrusion" and sent.entities[0].type == "bold"
    [stored] = fake.messages(GROUP)
    assert stored.from_bot and stored.buttons[0] == {"text": "Confirm", "callback_data": "confirm"}

    with pytest.raises(BadRequest, match="(?i)message is not modified: specified new message content"):
        await bot.edit_message_text("<b>Alerte</b> intrusion", GROUP, sent.message_id, parse_mode="HTML",
                                    reply_markup=keyboard("confirm", "cancel"))
    edited = await bot.edit_message_text("Alerte confirmée", GROUP, sent.message_id)
    assert edited.text == "Alerte confirmée" and edited.edit_date is not None
    assert fake.messages(GROUP)[0].edit_count == 1
    assert fake.messages(GROUP)[0].reply_markup is None  # no reply_markup sent: Telegram drops the keyboard

    assert await bot.delete_message(GROUP, sent.message_id) is True
    assert fake.messages(GROUP) == [] and [m.message_id for m in fake.deleted(GROUP)] == [sent.message_id]
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("trop tard", GROUP, sent.message_id)
    with pytest.raises(BadRequest, match="(?i)message to delete not found"):
        await bot.delete_message(GROUP, sent.message_id)
    user_msg = fake.user_sends(GROUP, CHIEF, "/status")
    with pytest.raises(BadRequest, match="(?i)message can't be edited"):
        await bot.edit_message_text("x", GROUP, user_msg["message_id"])
    with pytest.raises(BadRequest, match="(?i)message can't be deleted"):
        await bot.delete_message(GROUP, user_msg["message_id"])  # not an admin of the group


async def test_text_rules(fake: FakeTelegram, bot: telegram.Bot) -> None:
    assert (await bot.send_message(CHIEF, "x" * 4096)).text == "x" * 4096
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(CHIEF, "x" * 4097)
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(CHIEF, "🚨" * 2049)  # counted in UTF-16 units, like entity offsets
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await bot.send_message(CHIEF, "  <b> </b> ", parse_mode="HTML")
    with pytest.raises(BadRequest, match='(?i)can\'t parse entities: can\'t find end tag corresponding to start tag "b"'):
        await bot.send_message(CHIEF, "<b>gras", parse_mode="HTML")
    with pytest.raises(BadRequest, match='(?i)unsupported start tag "br" at byte offset 2'):
        await bot.send_message(CHIEF, "a <br> b", parse_mode="HTML")
    with pytest.raises(BadRequest, match="(?i)unsupported parse_mode"):
        await bot.send_message(CHIEF, "a", parse_mode="XML")
    long_data = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match="(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(CHIEF, "a", reply_markup=long_data)
    with pytest.raises(BadRequest, match="(?i)message to be replied not found"):
        await bot.send_message(CHIEF, "a", reply_to_message_id=999)


async def test_chat_access(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(-1009999, "x")
    with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
        await bot.send_message(OFFICER, "x")
    fake.add_group(-1005550000, "Autre", [OFFICER], bot_member=False)
    with pytest.raises(Forbidden, match="bot is not a member of the supergroup chat"):
        await bot.send_message(-1005550000, "x")
    fake.kick_bot(GROUP)
    with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
        await bot.send_chat_action(GROUP, "typing")
    updates = await bot.get_updates(allowed_updates=["my_chat_member"])
    assert updates[-1].my_chat_member.new_chat_member.status == "kicked"
    chat = await bot.get_chat(CHIEF)
    assert (chat.type, chat.first_name, chat.username) == ("private", "Claire", "claire_secu")


async def test_photo_tile_sent_replaced_and_downloaded(fake: FakeTelegram, bot: telegram.Bot) -> None:
    first, second = jpeg(640, 360), jpeg(1280, 720, "maroon")
    sent = await bot.send_photo(GROUP, first, caption="Caméras 1-4", protect_content=True,
                                reply_markup=keyboard("stop"))
    assert sent.has_protected_content and sent.caption == "Caméras 1-4"
    assert (sent.photo[-1].width, sent.photo[-1].height, sent.photo[-1].file_size) == (640, 360, len(first))
    assert [p.width for p in sent.photo] == [90, 320, 640]
    [tile] = fake.messages(GROUP)
    assert tile.protect_content and tile.photo_bytes == first and tile.photo_size == (640, 360)
    call = fake.calls_of("sendPhoto")[-1]
    assert call["photo"] == len(first) and call["protect_content"] is True and call["chat_id"] == GROUP

    replaced = await bot.edit_message_media(InputMediaPhoto(second, caption="Caméras 1-4 · 12:00:05"),
                                            GROUP, sent.message_id, reply_markup=keyboard("stop"))
    assert replaced.photo[-1].width == 1280 and replaced.caption.endswith("12:00:05")
    assert fake.messages(GROUP)[0].photo_bytes == second and fake.messages(GROUP)[0].edit_count == 1
    assert fake.messages(GROUP)[0].buttons == [{"text": "Stop", "callback_data": "stop"}]

    again = await bot.send_photo(CHIEF, replaced.photo[-1].file_id)  # re-send by file_id
    assert again.photo[-1].file_unique_id == replaced.photo[-1].file_unique_id
    downloaded = await (await bot.get_file(again.photo[-1].file_id)).download_as_bytearray()
    assert bytes(downloaded) == second


async def test_photo_refusals(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)message caption is too long"):
        await bot.send_photo(GROUP, jpeg(64, 64), caption="c" * 1025)
    with pytest.raises(BadRequest, match="(?i)PHOTO_INVALID_DIMENSIONS"):
        await bot.send_photo(GROUP, jpeg(2100, 100))
    with pytest.raises(BadRequest, match="(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(GROUP, b"not an image at all")
    text = await bot.send_message(GROUP, "texte")
    with pytest.raises(BadRequest, match="(?i)there is no media in the message to edit"):
        await bot.edit_message_media(InputMediaPhoto(jpeg(64, 64)), GROUP, text.message_id)
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_media(InputMediaPhoto(jpeg(64, 64)), GROUP, 4242)
    assert len(fake.messages(GROUP)) == 1


async def test_long_poll_receives_a_message_pushed_while_waiting(fake: FakeTelegram, bot: telegram.Bot) -> None:
    assert await bot.get_updates(timeout=0) == ()
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)
    assert not poll.done()  # really waiting
    fake.user_sends(GROUP, OFFICER, "bonjour à tous")  # privacy mode: plain group text is not delivered
    fake.user_sends(GROUP, CHIEF, "/alert@vigie_test_bot intrusion quai 3")
    [update] = await poll
    assert time.monotonic() - started < 2
    assert update.message.text == "/alert@vigie_test_bot intrusion quai 3"
    assert update.message.entities[0].type == "bot_command" and update.message.entities[0].length == 21
    assert update.message.from_user.id == CHIEF and update.message.chat.type == "supergroup"

    fake.user_sends(CHIEF, CHIEF, "/fin")
    again = await bot.get_updates(offset=update.update_id, timeout=0)  # not yet confirmed
    assert [u.update_id for u in again] == [update.update_id, update.update_id + 1]
    assert await bot.get_updates(offset=again[-1].update_id + 1, timeout=0) == ()
    assert fake.pending_updates == []


async def test_a_newer_get_updates_terminates_the_waiting_one(fake: FakeTelegram, bot: telegram.Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    # PTB keeps a single connection for getUpdates, so the second poller (another process) is raw HTTP.
    second = asyncio.create_task(raw(fake, "getUpdates", json={"timeout": 2}))
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first
    fake.user_sends(CHIEF, CHIEF, "/status")
    status, body = await second
    assert status == 200 and body["result"][0]["message"]["text"] == "/status"


async def test_callback_press_and_answer(fake: FakeTelegram, bot: telegram.Bot) -> None:
    sent = await bot.send_message(GROUP, "Catégorie ?", reply_markup=keyboard("intrusion", "incendie"))
    with pytest.raises(ValueError, match="no button"):
        fake.user_presses(GROUP, CHIEF, sent.message_id, "attentat")
    query_id = fake.user_presses(GROUP, CHIEF, sent.message_id, "incendie")
    [update] = await bot.get_updates(timeout=1)
    query = update.callback_query
    assert (query.id, query.data, query.from_user.id) == (query_id, "incendie", CHIEF)
    assert query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query_id, text="Incendie choisi", show_alert=True) is True
    assert fake.callback_answers[query_id] == {"text": "Incendie choisi", "show_alert": True, "cache_time": 0}
    with pytest.raises(BadRequest, match="(?i)query is too old and response timeout expired or query id is invalid"):
        await bot.answer_callback_query(query_id)
    late = fake.user_presses(GROUP, OFFICER, sent.message_id, "intrusion")
    fake.advance(30)
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await bot.answer_callback_query(late)
    fresh = fake.user_presses(GROUP, OFFICER, sent.message_id, "intrusion")
    with pytest.raises(BadRequest, match="(?i)MESSAGE_TOO_LONG"):
        await bot.answer_callback_query(fresh, text="t" * 201)


async def test_flood_raises_retry_after(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.flood("sendMessage", 1, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(GROUP, "x")
    assert seconds(caught.value) == 7
    assert fake.errors[-1] == ("sendMessage", 429, "Too Many Requests: retry after 7")
    assert fake.messages(GROUP) == []
    await bot.send_message(GROUP, "x")
    status, body = await raw(fake, "sendMessage", json={"chat_id": GROUP, "text": "y"})
    assert status == 200 and body["ok"] is True


async def test_ptb_rate_limiter_retries_through_a_flood(fake: FakeTelegram) -> None:
    app = (Application.builder().token(TOKEN).base_url(f"{fake.url}/bot")
           .rate_limiter(AIORateLimiter(max_retries=2)).build())
    async with app:
        fake.flood("sendMessage", 2, retry_after=1)
        started = time.monotonic()
        sent = await app.bot.send_message(GROUP, "tuile")
        assert sent.text == "tuile" and time.monotonic() - started >= 2
    assert len(fake.calls_of("sendMessage")) == 3 and len(fake.messages(GROUP)) == 1


async def test_opt_in_group_rate_limit(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.rate_limits = True
    for i in range(20):
        await bot.send_message(GROUP, f"m{i}")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(GROUP, "m20")
    wait = seconds(caught.value)
    assert 58 <= wait <= 60  # a sliding minute: the first message must leave the window
    fake.advance(wait - 2)
    with pytest.raises(RetryAfter):
        await bot.send_message(GROUP, "m20")
    fake.advance(2)
    await bot.send_message(GROUP, "m20")
    assert len(fake.accepted[GROUP]) == 21


async def test_commands_per_language(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fr = [BotCommand("alerte", "Déclencher une alerte"), BotCommand("fin", "Clore l'incident")]
    en = [BotCommand("alert", "Raise an alert"), BotCommand("end", "Close the incident")]
    assert await bot.set_my_commands(fr, language_code="fr") is True
    assert await bot.set_my_commands(en, language_code="en") is True
    default = '{"type": "default"}'
    assert fake.commands_for("fr")[0] == {"command": "alerte", "description": "Déclencher une alerte"}
    assert [c["command"] for c in fake.commands[(default, "en")]] == ["alert", "end"]
    assert [c.command for c in await bot.get_my_commands(language_code="fr")] == ["alerte", "fin"]
    assert await bot.get_my_commands() == ()
    with pytest.raises(BadRequest, match="(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Alerte", "x")])
    with pytest.raises(BadRequest, match="(?i)command description must be non-empty"):
        await bot.set_my_commands([BotCommand("alerte", " ")])
    with pytest.raises(BadRequest, match="(?i)BOT_COMMANDS_TOO_MUCH"):
        await bot.set_my_commands([BotCommand(f"c{i}", "x") for i in range(101)])
    with pytest.raises(BadRequest, match="(?i)invalid language code"):
        await bot.set_my_commands(fr, language_code="fra")
    assert await bot.delete_my_commands(language_code="fr") is True
    assert (default, "fr") not in fake.commands


async def test_raw_requests_are_validated(fake: FakeTelegram) -> None:
    form = {"chat_id": str(GROUP), "text": "x", "reply_markup": "{not json"}
    status, body = await raw(fake, "sendMessage", data=form)
    assert (status, body["description"]) == (400, "Bad Request: can't parse reply keyboard markup JSON object")
    status, body = await raw(fake, "sendMessage", json={"chat_id": GROUP, "text": "a", "reply_markup": {
        "inline_keyboard": [[{"text": "no action"}]]}})
    assert "Text buttons are unallowed in the inline keyboard" in body["description"]
    status, body = await raw(fake, "sendMessage", json={"chat_id": GROUP})
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")
    status, body = await raw(fake, "sendMessage", json={"text": "x"})
    assert body["description"] == "Bad Request: chat_id is empty"
    multipart = aiohttp.FormData({"chat_id": str(GROUP), "media": '{"type": "photo", "media": "attach://tile"}'})
    multipart.add_field("tile", jpeg(32, 32), filename="tile.jpg", content_type="image/jpeg")
    status, body = await raw(fake, "editMessageMedia", data=multipart)
    assert (status, body["description"]) == (400, "Bad Request: message identifier is not specified")
    calls = [name for name, _ in fake.calls]
    assert calls[-1] == "editMessageMedia" and fake.calls[-1][1]["tile"] == len(jpeg(32, 32))


async def test_webhook_delivery_and_conflict(fake: FakeTelegram, bot: telegram.Bot) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    answers = [500]

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(status=answers.pop() if answers else 200)

    app = web.Application()
    app.router.add_post("/tg", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(BadRequest, match="(?i)an https url must be provided"):
            await bot.set_webhook("http://example.org/tg")
        with pytest.raises(BadRequest, match="(?i)secret token contains unallowed characters"):
            await bot.set_webhook(f"http://127.0.0.1:{port}/tg", secret_token="a b")
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/tg", secret_token="s3cr3t-_") is True
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
            await bot.get_updates()
        fake.user_sends(CHIEF, CHIEF, "/status")
        for _ in range(100):
            if fake.webhook_deliveries:
                break
            await asyncio.sleep(0.02)
        assert len(received) == 2 and received[0][1] == received[1][1]  # 500 first, then retried
        assert received[1][0] == "s3cr3t-_" and received[1][1]["message"]["text"] == "/status"
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 0 and "500" in (info.last_error_message or "")
        assert await bot.delete_webhook() is True
        fake.user_sends(CHIEF, CHIEF, "/end")
        assert [u.message.text for u in await bot.get_updates()] == ["/end"]
    finally:
        await runner.cleanup()


async def test_network_outage(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.fail_network(1)
    with pytest.raises(NetworkError):
        await bot.send_message(GROUP, "perdu")
    assert fake.messages(GROUP) == []
    fake.fail_network(1, after_processing=True)
    with pytest.raises(NetworkError):
        await bot.send_message(GROUP, "envoyé mais sans réponse")
    assert [m.text for m in fake.messages(GROUP)] == ["envoyé mais sans réponse"]
    assert (await bot.send_message(GROUP, "ok")).text == "ok"


async def test_ptb_application_polls_and_answers(fake: FakeTelegram) -> None:
    """The way the Telegram handler runs: Application + Updater long polling inside our own loop."""
    seen: list[str] = []

    async def alert(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_chat is not None
        seen.append(update.effective_message.text or "")
        await context.bot.send_message(update.effective_chat.id, "Catégorie ?",
                                       reply_markup=keyboard("intrusion"))

    async def choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.callback_query is not None
        seen.append(update.callback_query.data or "")
        await update.callback_query.answer("Reçu")

    app = (Application.builder().token(TOKEN).base_url(f"{fake.url}/bot")
           .rate_limiter(AIORateLimiter(max_retries=2)).build())
    app.add_handler(CommandHandler(["alert", "alerte"], alert))
    app.add_handler(CallbackQueryHandler(choose))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(timeout=1, drop_pending_updates=True)
    try:
        fake.user_sends(GROUP, CHIEF, "/alerte@vigie_test_bot")
        for _ in range(200):
            if fake.messages(GROUP)[-1].from_bot:
                break
            await asyncio.sleep(0.01)
        question = fake.messages(GROUP)[-1]
        query_id = fake.user_presses(GROUP, CHIEF, question.message_id, "intrusion")
        for _ in range(200):
            if query_id in fake.callback_answers:
                break
            await asyncio.sleep(0.01)
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert seen == ["/alerte@vigie_test_bot", "intrusion"]
    assert fake.callback_answers[query_id]["text"] == "Reçu"
    assert fake.pending_updates == []
