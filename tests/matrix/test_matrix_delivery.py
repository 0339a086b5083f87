"""The link reaches the police room through a homeserver outage and a restart of Vigie (real Synapse).

- Synapse down longer than the old outbox's retries (about 68 s) while access opens: the room is
  failing meanwhile, and the link is posted once Synapse is back.
- Vigie restarted while the link is still owed to the room: posted once after the restart.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from synapse_server import Synapse
from test_matrix_room import LINK, World, make_world
from vigie_bot import OFFICER, Bot, is_notice, settle, until

DOWN_SECONDS = float(os.environ.get("VIGIE_TEST_DOWN_SECONDS", "90"))
BACK_WITHIN = 20.0  # "within a few seconds of its return": the link lane retries at least every 5 s


@pytest.fixture
async def world(synapse: Synapse, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(synapse, tmp_path, admin=True)
    try:
        yield w
    finally:
        synapse.start()
        await w.bot.stop()
        await w.officer.close()


def links(w: World) -> list[Any]:
    return [e for r, e in w.officer.events if is_notice(w.room_id, LINK, w.bot_user.user_id)(r, e)]


async def open_while_down(w: World) -> str:
    await asyncio.to_thread(w.synapse.stop)
    person = w.desk.conv.person(OFFICER)
    await w.desk.alert(person, f"matrix:{w.room_id}", "attaque_armee", "Hall A")
    [inc] = w.desk.open_incidents()
    room = w.desk.fanout.health()[f"matrix:{w.room_id}"]
    await until(lambda: inc.id in room.links_failing, timeout=60)
    return str(inc.id)


async def test_homeserver_down_longer_than_the_old_retries(world: World) -> None:
    w = world
    incident = await open_while_down(w)
    await asyncio.sleep(DOWN_SECONDS)
    health = w.desk.fanout.health()[f"matrix:{w.room_id}"]
    assert not health.ok and incident in health.links_failing
    assert "EN ÉCHEC" in w.desk.status().text("fr")
    mark = len(w.officer.events)
    await asyncio.to_thread(w.synapse.start)
    await w.officer.wait_for(is_notice(w.room_id, LINK, w.bot_user.user_id), since=mark, timeout=BACK_WITHIN)
    await settle(3.0)
    assert len(links(w)) == 1
    assert w.desk.fanout.health()[f"matrix:{w.room_id}"].ok


async def test_restart_with_an_undelivered_link_posts_it_once(world: World) -> None:
    w = world
    await open_while_down(w)
    await w.bot.stop()
    await asyncio.to_thread(w.synapse.start)
    w.bot = await Bot(w.bot.settings, w.tmp / "data").start()
    await w.officer.wait_for(is_notice(w.room_id, LINK, w.bot_user.user_id), timeout=90)
    await settle(3.0)
    assert len(links(w)) == 1
