"""Who is watching, on the real app: /statut names each viewer and what they have open (a camera,
the mosaic, nothing), the stream records pair by id, and the closure report gives the timeline."""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import aiohttp

from bot.kinds import Kind
from tests.web.support import AGENT, Cam, LiveApp, cookie, until

CIC = "demo-cic"


def status(app: LiveApp, lang: str = "fr") -> str:
    return app.desk.status().text(lang)


async def open_camera(s: aiohttp.ClientSession, app: LiveApp, ck: str, camera: str) -> aiohttp.ClientWebSocketResponse:
    ws = await s.ws_connect(f"{app.base.replace('http', 'ws')}/live/api/cam/{camera}/ws", headers=cookie(ck))
    await ws.receive_str(timeout=5)  # the quality served: the stream is open and recorded
    return ws


async def test_status_and_report_name_viewers_and_their_cameras(tmp_path: Path) -> None:
    cams = [Cam("parvis", "Parvis nord"), Cam("hall", "Hall d'entrée"), Cam("fosse", "Fosse")]
    app = await LiveApp(tmp_path / "data", cams).start()
    try:
        await app.online()
        incident, link = await app.alert()
        assert f"Personne ne regarde {incident}." in status(app)
        async with aiohttp.ClientSession() as agent, aiohttp.ClientSession() as cic:
            ck_agent = await app.login(agent, link, AGENT)
            ck_cic = await app.login(cic, link, CIC)
            async with cic.get(f"{app.base}/live/api/mosaic.jpg", headers=cookie(ck_cic)) as r:
                assert r.status == 200
            hall = await open_camera(agent, app, ck_agent, "hall")
            fosse = await open_camera(agent, app, ck_agent, "fosse")  # a second tab
            fr, en = status(app), status(app, "en")
            assert f"Qui regarde {incident} :" in fr, fr
            assert "• Brigadier Lucie Perrin (démo) (agent habilité) — Hall d'entrée, Fosse" in fr, fr
            assert "• Cdt Julien Moreau (démo) (officier du CIC) — mosaïque" in fr, fr
            assert f"Watching {incident}:" in en and "— Hall d'entrée, Fosse" in en and "— mosaic" in en, en
            await hall.close()
            await until(lambda: "(agent habilité) — Fosse\n" in status(app), 5, message="hall closed in /statut")
            ck_again = await app.login(agent, link, AGENT)  # the same officer signs in again
            parvis = await open_camera(agent, app, ck_again, "parvis")
            await until(lambda: "— Fosse, Parvis nord" in status(app), 5, message="parvis open in /statut")
            await app.end(incident)
            await app.desk.fanout.drain()
            for ws in (fosse, parvis):
                await ws.receive(timeout=5)  # closed by the end of access
        await until(lambda: len(app.records(incident, "stream_closed")) == 3, 5, message="three streams closed")
        opened = {r.details["stream"]: r.details["camera"] for r in app.records(incident, "stream_opened")}
        closed = {r.details["stream"]: r.details["camera"] for r in app.records(incident, "stream_closed")}
        assert opened == closed and sorted(opened.values()) == ["fosse", "hall", "parvis"]
        assert all(r.details["client"].endswith(tuple("0123456789abcdef")) for r in app.records(incident, "stream_opened"))
        report = next(t for t in app.room.texts() if "ACCÈS TERMINÉ" in t)
        assert "Qui a regardé quoi (2 personne(s)) :" in report, report
        assert "• Brigadier Lucie Perrin (démo) (agent habilité) — 2 connexions (" in report
        assert "• Cdt Julien Moreau (démo) (officier du CIC) — 1 connexion à" in report
        lines = report.splitlines()
        agent_cameras = lines[lines.index(next(x for x in lines if "Lucie Perrin" in x)) + 1]
        for name in ("Hall d'entrée", "Fosse", "Parvis nord"):
            assert agent_cameras.count(name) == 1, agent_cameras
        assert "aucune caméra ouverte" in report, "the CIC officer watched the mosaic only"
    finally:
        await app.stop()


async def test_a_socket_dropped_without_a_close_still_gets_its_closing(tmp_path: Path) -> None:
    """The phone's connection is cut (no WebSocket close frame): the stream is closed at the
    disconnect, in the registre and in /statut."""
    app = await LiveApp(tmp_path / "data", [Cam("hall", "Hall d'entrée")]).start()
    try:
        await app.online()
        incident, link = await app.alert()
        async with aiohttp.ClientSession() as s:
            ck = await app.login(s, link, AGENT)
        reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /live/api/cam/hall/ws HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nCookie: vigie_session={ck}\r\n\r\n").encode())
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        await until(lambda: "— Hall d'entrée" in status(app), 5, message="the camera open in /statut")
        writer.transport.abort()  # gone: no close frame, no FIN handshake
        await until(lambda: app.records(incident, "stream_closed"), 5, message="the stream's closing recorded")
        [closed] = app.records(incident, "stream_closed")
        [opened] = app.records(incident, "stream_opened")
        assert closed.details["stream"] == opened.details["stream"]
        assert closed.details["reason"] == "client_closed" and closed.at >= opened.at
        assert "— connecté, aucune image affichée" in status(app)
    finally:
        await app.stop()


async def test_streams_left_open_by_a_killed_service_close_at_the_next_start(tmp_path: Path) -> None:
    app = await LiveApp(tmp_path / "data", [Cam("hall", "Hall d'entrée")]).start()
    try:
        incident, _ = await app.alert()
        # what a killed service leaves: an opening with no closing
        app.registre.append(Kind.STREAM_OPENED, incident=incident, actor=AGENT,
                            details={"camera": "hall", "person": AGENT, "mode": "video", "stream": "orphan"})
    finally:
        await app.stop()
    again = await LiveApp(tmp_path / "data", [Cam("hall", "Hall d'entrée")]).start()
    try:
        [closed] = again.records(incident, "stream_closed")
        assert (closed.details["stream"], closed.details["reason"]) == ("orphan", "service_restart")
        assert f"Personne ne regarde {incident}." in status(again)
    finally:
        await again.stop()
