"""The receiver inside the real application: started after the desk, stopped with the app."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bot.app import build_app
from bot.config_load import load_settings
from bot.sia.receiver import SIA
from bot.sia.sender import Link, Panel
from tests.config_support import copy_example
from tests.sia.test_config import ENV, KEY, edit, uncomment_panel


async def test_panel_alarm_through_the_app(tmp_path: Path) -> None:
    cfg = copy_example(tmp_path)
    uncomment_panel(cfg / "alarms.toml")
    edit(cfg / "alarms.toml", 'host = "0.0.0.0"', 'host = "127.0.0.1"')
    edit(cfg / "alarms.toml", "port = 12128", "port = 0")
    settings = load_settings(cfg, ENV, date.today())
    app = build_app(settings, tmp_path / "data")
    server = TestServer(app)
    await server.start_server()
    try:
        rx = app[SIA]
        names = [getattr(c, "__name__", "") for c in app.cleanup_ctx]
        assert rx.port and names.index("sia_ctx") > names.index("desk_ctx")  # the desk is restored first
        panel = Panel("A1B2C3", key=KEY)
        link = await Link.open("127.0.0.1", rx.port)
        reply = await link.send(panel.cid(1, 122, partition=1, zone=4, at=datetime.now(UTC))[1], KEY)
        await link.close()
        assert reply.kind == "ACK" and reply.encrypted
        async with aiohttp.ClientSession() as s, s.get(server.make_url("/healthz/details")) as r:
            health = await r.json()
        assert health["incident_state"] == "active"
    finally:
        await server.close()
    try:
        await Link.open("127.0.0.1", rx.port)
    except OSError:
        pass
    else:
        raise AssertionError("the receiver still listens after the app stopped")
