"""Webhook mode: Telegram posts updates to our own aiohttp server, proven by its secret header."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from bot.policy.incident import State
from tests.fakes import FakeTelegram
from tests.telegram.conftest import Start
from tests.telegram.support import CHIEF, GROUP, find, opens, until

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")


def end_update(update_id: int) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": 4242, "date": int(time.time()), "text": "/fin",
        "entities": [{"type": "bot_command", "offset": 0, "length": 4}],
        "chat": {"id": GROUP, "type": "supergroup", "title": "PC sécurité — Zénith"},
        "from": {"id": CHIEF, "is_bot": False, "first_name": "Martine"}}}


async def test_webhook_with_secret_header(fake: FakeTelegram, vigie: Start) -> None:
    v = await vigie(webhook=True)
    [hook] = fake.calls_of("setWebhook")
    url, secret = hook["url"], hook["secret_token"]
    assert url.startswith(f"{v.base}/hooks/telegram/") and len(url.rsplit("/", 1)[1]) >= 32
    assert len(secret) >= 32 and hook["allowed_updates"] == ["message", "callback_query"]
    assert fake.calls_of("getUpdates") == []  # no polling in webhook mode

    await opens(fake, GROUP, CHIEF, "/alerte attaque_armee Parvis")
    assert fake.webhook_deliveries
    [inc] = v.desk.open_incidents()

    async with aiohttp.ClientSession() as s:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                        {"X-Telegram-Bot-Api-Secret-Token": secret + "x"},
                        {"X-Telegram-Bot-Api-Secret-Token": secret[:-1]}):
            async with s.post(url, json=end_update(900_001), headers=headers) as r:
                assert r.status == 403
        async with s.post(f"{v.base}/hooks/telegram/guessed", json=end_update(900_002),
                          headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as r:
            assert r.status == 404
        await v.settle()
        assert v.desk.incident(inc.id).state is State.ACTIVE  # type: ignore[union-attr]  # nothing happened
        assert find(fake, GROUP, "ACCÈS VIDÉO OUVERT")

        async with s.post(url, data=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as r:
            assert r.status == 400
        # the very same update with the right header is Telegram's: it is acted on
        async with s.post(url, json=end_update(900_003), headers={"X-Telegram-Bot-Api-Secret-Token": secret}) as r:
            assert r.status == 200
    await until(lambda: v.desk.incident(inc.id).state is State.ENDED)  # type: ignore[union-attr]
    await v.settle()
    assert not find(fake, GROUP, "ACCÈS VIDÉO OUVERT")
