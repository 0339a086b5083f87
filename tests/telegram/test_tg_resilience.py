"""Flood limits, network outages, Telegram down, and a restart in the middle of an incident."""

from __future__ import annotations

import logging
import time

import aiohttp
import pytest

from bot.telegram.transport import TelegramOptions
from tests.fakes import FakeTelegram
from tests.harness import RecordingRoom
from tests.telegram.conftest import Start
from tests.telegram.support import (
    CHIEF,
    CIC,
    GROUP,
    TOKEN,
    bot_messages,
    caption,
    find,
    free_port,
    jpeg,
    opens,
    say,
    until,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")
ROOM = f"telegram:{GROUP}"


def quiet_like_main(caplog: pytest.LogCaptureFixture) -> None:
    """Everything of ours at DEBUG; the libraries that put URLs (hence the token) in their debug
    lines at WARNING, exactly as ``bot.__main__._logging`` sets them in every mode."""
    caplog.set_level(logging.DEBUG)
    for noisy in ("httpx", "httpcore", "telegram"):
        caplog.set_level(logging.WARNING, logger=noisy)


async def test_a_429_storm_is_waited_out(fake: FakeTelegram, vigie: Start) -> None:
    console = RecordingRoom("console")
    v = await vigie(rooms=(console,))
    fake.flood("sendMessage", 2, retry_after=2)
    fake.flood("editMessageMedia", 2, retry_after=1)
    started = time.monotonic()
    await v.desk.alert(v.person(CHIEF), ROOM, "attaque_armee", "Hall A")
    [inc] = v.desk.open_incidents()
    # the other rooms never wait for Telegram's flood control
    await until(lambda: any("ACCÈS VIDÉO OUVERT" in t for t in console.texts()), timeout=1.0)
    assert time.monotonic() - started < 1.0 and not find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
    # One at a time: a tile still queued when the next one comes is replaced, never sent late. The
    # first frame comes while the group is held for the link's flood wait: skipped, never queued.
    v.desk.post_tile(inc.id, jpeg(), caption)
    await v.settle()
    v.desk.post_tile(inc.id, jpeg(800, 450, "teal"), caption)
    await v.settle()
    v.desk.post_tile(inc.id, jpeg(960, 540, "olive"), caption)
    await v.settle()
    assert time.monotonic() - started >= 4  # two 2 s waits, then two 1 s waits, in order
    assert [e[1] for e in fake.errors].count(429) == 4
    assert len(find(fake, GROUP, "ACCÈS VIDÉO OUVERT")) == 1
    [tile] = [m for m in bot_messages(fake, GROUP) if m.photo]
    assert tile.photo_size == (960, 540) and tile.edit_count == 1 and len(fake.calls_of("sendPhoto")) == 1
    assert not any(r.kind == "room_error" for r in v.registre.records())
    assert v.desk.fanout.health()[ROOM].ok


async def test_network_outage_is_retried(fake: FakeTelegram, vigie: Start) -> None:
    # A long poll that outlasts the test, so the dropped requests are ours, not getUpdates.
    v = await vigie(options=TelegramOptions(api_url=fake.url, poll_timeout=30))
    fake.fail_network(2)
    await v.desk.alert(v.person(CHIEF), ROOM, "attaque_armee")
    [inc] = v.desk.open_incidents()
    await v.settle()
    assert len(find(fake, GROUP, "ACCÈS VIDÉO OUVERT")) == 1
    v.desk.post_tile(inc.id, jpeg(), caption)
    await v.settle()
    # deleted, but the answer is lost: the retry finds it gone and counts it as done
    fake.fail_network(1, after_processing=True)
    await v.desk.end(v.person(CIC), ROOM)
    await v.settle()
    assert not find(fake, GROUP, "ACCÈS VIDÉO OUVERT") and not [m for m in fake.messages(GROUP) if m.photo]
    assert ("deleteMessage", 400, "Bad Request: message to delete not found") in fake.errors
    assert find(fake, GROUP, "ACCÈS TERMINÉ")
    assert not any(r.kind == "room_error" for r in v.registre.records())


async def test_restart_mid_incident_keeps_control_of_earlier_messages(fake: FakeTelegram, vigie: Start) -> None:
    first = await vigie()
    await opens(fake, GROUP, CHIEF, "/alerte attaque_armee Fosse")
    [inc] = first.desk.open_incidents()
    first.desk.post_tile(inc.id, jpeg(), caption)
    await first.settle()
    [link] = find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
    [tile] = [m for m in bot_messages(fake, GROUP) if m.photo]
    await first.stop()

    second = await vigie()  # same data directory, same bot
    assert [i.id for i in second.desk.open_incidents()] == [inc.id]
    second.desk.post_tile(inc.id, jpeg(1280, 720, "maroon"), caption)
    await second.settle()
    [tile_now] = [m for m in bot_messages(fake, GROUP) if m.photo]
    assert tile_now.message_id == tile.message_id and tile_now.photo_size == (1280, 720)
    await say(fake, GROUP, CIC, "/prolonger 30")
    await second.settle()
    [link_now] = find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
    assert link_now.message_id == link.message_id and "Prolongé par" in (link_now.text or "")
    await say(fake, GROUP, CHIEF, "/fin")
    await second.settle()
    assert {link.message_id, tile.message_id} <= {m.message_id for m in fake.deleted(GROUP)}
    assert not any(r.kind == "room_error" for r in second.registre.records())


async def test_telegram_down_never_holds_up_the_rest(fake: FakeTelegram, vigie: Start,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    quiet_like_main(caplog)
    console = RecordingRoom("console")
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    v = await vigie(rooms=(console,), wait_intake=False,
                    options=TelegramOptions(api_url=nowhere, ready_timeout=0.2))
    async with aiohttp.ClientSession() as s, s.get(f"{v.base}/healthz") as r:
        assert r.status == 200
    await v.desk.alert(v.person(CHIEF), ROOM, "attaque_armee")
    await until(lambda: any("ACCÈS VIDÉO OUVERT" in t for t in console.texts()), timeout=1.0)
    await until(lambda: "Telegram unreachable" in caplog.text, timeout=5.0)
    await v.stop()
    assert TOKEN not in caplog.text and TOKEN.partition(":")[2] not in caplog.text


async def test_a_refused_token_is_reported_without_the_token(fake: FakeTelegram, vigie: Start,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    quiet_like_main(caplog)
    wrong = "123456789:AAWrongTokenWrongTokenWrongToken_xyz"
    v = await vigie(token=wrong, wait_intake=False)
    await until(lambda: "Telegram refused the bot token" in caplog.text, timeout=5.0)
    async with aiohttp.ClientSession() as s, s.get(f"{v.base}/healthz") as r:
        assert r.status == 200
    await v.stop()
    assert wrong not in caplog.text and wrong.partition(":")[2] not in caplog.text
