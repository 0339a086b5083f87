"""Faults against a real Synapse: a send racing a device-list change, then a stop while the
homeserver is down (bounded, and no HTTP session left open)."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path
from typing import Any

import pytest
from synapse_server import Synapse
from vigie_bot import (
    OFFICER,
    Bot,
    create_room,
    is_notice,
    is_reply_to,
    jpeg,
    new_officer,
    officer_ready,
    say,
    settings_for,
)

# A hang guard, not a speed measure: the README promises that SIGTERM stops the service in 5 s.
STOP_PROMISE = 5.0


async def test_trust_race_then_stop_with_the_homeserver_down(synapse: Synapse, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    bot_user = synapse.register(synapse.unique_localpart("vigie"))
    officer_user, officer = await new_officer(synapse, tmp_path / "officer-store", "OFFICERPHONE")
    try:
        room_id = await create_room(officer, [bot_user.user_id])
        settings = settings_for(synapse, bot_user, [room_id], {OFFICER: officer_user.user_id})
        bot = await Bot(settings, tmp_path / "data").start([room_id])
        await officer_ready(officer, room_id, bot_user.user_id)
        mark = len(officer.events)
        await say(officer, room_id, "/alert attaque_armee Hall A")
        await officer.wait_for(is_notice(room_id, "ACCÈS VIDÉO OUVERT"), since=mark)
        [inc] = bot.desk.open_incidents()

        # nio raises KeyError when the sync loop changes its device lists under a send: the reply
        # is sent again (same transaction id) and arrives once.
        client = bot.conn.client
        real_send = client.room_send
        raced: list[str] = []

        async def racing_send(*args: Any, **kwargs: Any) -> Any:
            if not raced:
                raced.append(kwargs.get("tx_id", ""))
                raise KeyError(officer_user.user_id)
            return await real_send(*args, **kwargs)

        client.room_send = racing_send
        mark = len(officer.events)
        asked = await say(officer, room_id, "/statut")
        await officer.wait_for(is_reply_to(room_id, asked), since=mark)
        await asyncio.sleep(0.5)
        assert raced and [1 for r, e in officer.events[mark:] if is_reply_to(room_id, asked)(r, e)] == [1]
        client.room_send = real_send

        await asyncio.to_thread(synapse.stop)
        bot.desk.post_tile(inc.id, jpeg((10, 10, 10)), lambda lang: "pendant la coupure")  # cannot leave
        await asyncio.sleep(0.5)
        await asyncio.wait_for(bot.stop(), STOP_PROMISE)
        gc.collect()
        await asyncio.sleep(0)
        assert "Unclosed client session" not in caplog.text
        assert "Unclosed connector" not in caplog.text
    finally:
        await officer.close()
        await asyncio.to_thread(synapse.start)
