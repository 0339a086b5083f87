"""Open camera streams end with the viewer's session, with the bot, and are audited."""

from __future__ import annotations

import gc
import hashlib
import json
import sqlite3
import time
from pathlib import Path

import aiohttp

from bot.app import STORE
from bot.audit import Registre
from bot.media.relay import Batch, Segment
from tests.web.support import Cam, LiveApp, until


async def read_until_close(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> tuple[int | None, float]:
    t0 = time.monotonic()
    while (msg := await ws.receive(timeout=timeout)).type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
        pass
    return (msg.data if msg.type == aiohttp.WSMsgType.CLOSE else None), time.monotonic() - t0


async def test_a_dead_session_closes_its_streams(tmp_path: Path) -> None:
    app = await LiveApp(tmp_path / "data", [Cam("parvis", "Parvis nord"), Cam("hall", "Hall d'entrée")]).start()
    try:
        await app.online()
        incident, link = await app.alert()
        async with aiohttp.ClientSession() as s:
            ck = await app.login(s, link)
            ws = await app.video(s, ck, "hall")
            assert json.loads(await ws.receive_str(timeout=5))["quality"] == "hd"
            assert (await ws.receive_str(timeout=5)).startswith("video/mp4")
            await ws.receive_bytes(timeout=5)
            # the session disappears without any revocation event: the periodic sessions check sees it
            app.app[STORE].delete_sessions(incident)
            code, took = await read_until_close(ws, 3)
            assert code == 4001 and took < 1.5, (code, took)
            await ws.close()
        await until(lambda: app.records(incident, "stream_closed"), 2)
        [closed] = app.records(incident, "stream_closed")
        assert closed.actor == "demo-agent"
        assert closed.details["camera"] == "hall" and closed.details["reason"] == "session_ended"
        assert closed.details["person"] == "demo-agent" and closed.details["duration_s"] >= 0
    finally:
        await app.stop()


async def test_the_sessions_check_closes_only_the_streams_of_a_dead_session(tmp_path: Path) -> None:
    """One pass checks every open stream: the stream of a session deleted elsewhere closes, the
    other viewer's stream plays on."""
    app = await LiveApp(tmp_path / "data", [Cam("parvis", "Parvis nord"), Cam("hall", "Hall d'entrée")]).start()
    try:
        await app.online()
        incident, link = await app.alert()
        async with aiohttp.ClientSession() as one, aiohttp.ClientSession() as two:
            cookies = [await app.login(one, link), await app.login(two, link)]
            sockets = []
            for s, ck, cam in ((one, cookies[0], "hall"), (two, cookies[1], "parvis")):
                ws = await app.video(s, ck, cam)
                await ws.receive_str(timeout=5)
                sockets.append(ws)
            doomed = hashlib.sha256(cookies[0].encode()).hexdigest()
            assert doomed in {x.id_hash for x in app.app[STORE].sessions_of(incident)}
            other = sqlite3.connect(tmp_path / "data" / "state.sqlite3")  # another process's connection
            with other:
                other.execute("DELETE FROM sessions WHERE id_hash = ?", (doomed,))
            other.close()
            code, took = await read_until_close(sockets[0], 3)
            assert code == 4001 and took < 1.5, (code, took)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 1.5:  # several checks later, the other still gets video
                msg = await sockets[1].receive(timeout=2)
                assert msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT), msg
            for ws in sockets:
                await ws.close()
        await until(lambda: len(app.records(incident, "stream_closed")) == 2, 3)
        reasons = {r.details["camera"]: r.details["reason"] for r in app.records(incident, "stream_closed")}
        assert reasons == {"hall": "session_ended", "parvis": "client_closed"}
    finally:
        await app.stop()


async def test_sessions_that_cannot_be_checked_close_their_streams(tmp_path: Path) -> None:
    """A locked state file during the periodic check: the streams close (fail closed), audited."""
    app = await LiveApp(tmp_path / "data", [Cam("hall", "Hall d'entrée")]).start()
    try:
        await app.online()
        incident, link = await app.alert()
        async with aiohttp.ClientSession() as s:
            ck = await app.login(s, link)
            ws = await app.video(s, ck, "hall")
            await ws.receive_str(timeout=5)

            def locked(_: object) -> None:
                raise sqlite3.OperationalError("database is locked")

            app.app[STORE].get_sessions = locked  # type: ignore[method-assign]
            code, took = await read_until_close(ws, 3)
            assert code == aiohttp.WSCloseCode.INTERNAL_ERROR and took < 1.5, (code, took)
            await ws.close()
        await until(lambda: app.records(incident, "stream_closed"), 2)
        assert app.records(incident, "stream_closed")[0].details["reason"] == "error"
    finally:
        await app.stop()


async def test_a_stream_that_keeps_up_holds_no_fragment(tmp_path: Path) -> None:
    """Live fragments go straight to a socket that keeps up; nothing else may keep the cached GOP
    (~1 MB at 4 Mbit/s) a stream got at its start: not the viewer, not its feed."""
    app = await LiveApp(tmp_path / "data", [Cam("hall", "Hall d'entrée")]).start()
    try:
        await app.online()
        _, link = await app.alert()
        await until(lambda: len(app.media.hub["hall"].gop()) >= 10, 5)  # a GOP worth holding on to
        async with aiohttp.ClientSession() as s:
            ck = await app.login(s, link)
            ws = await app.video(s, ck, "hall")
            received = 0
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2:  # the GOP, then a second and more of live fragments
                if (await ws.receive(timeout=2)).type == aiohttp.WSMsgType.BINARY:
                    received += 1
            held = [o for o in gc.get_objects() if isinstance(o, Segment | Batch)]
            assert received > 25 and len(held) <= 3, (received, len(held))
            await ws.close()
    finally:
        await app.stop()


async def test_stopping_the_bot_closes_streams(tmp_path: Path) -> None:
    app = await LiveApp(tmp_path / "data", [Cam("parvis", "Parvis nord")]).start()
    stopped = False
    try:
        await app.online()
        incident, link = await app.alert()
        async with aiohttp.ClientSession() as s:
            ck = await app.login(s, link)
            ws = await app.video(s, ck, "parvis")
            await ws.receive_str(timeout=5)
            t0 = time.monotonic()
            await app.stop()
            stopped = True
            assert time.monotonic() - t0 < 3.0
            code, _ = await read_until_close(ws, 2)
            assert code == 1001  # going away: the page retries, it does not say "access ended"
            await ws.close()
        # the close was audited before the registre closed
        with_registre = Registre(tmp_path / "data" / "registre.sqlite3")
        try:
            reasons = [r.details["reason"] for r in with_registre.records(incident) if r.kind == "stream_closed"]
        finally:
            with_registre.close()
        assert reasons == ["shutdown"]
    finally:
        if not stopped:
            await app.stop()
