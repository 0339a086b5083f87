"""The Matrix room against a real Synapse: the real bot (build_app, real desk) and a duty officer's
matrix-nio client in an end-to-end encrypted room.

Covered: /alert → link (decrypted) → tiles replaced (old one redacted) → /prolonger edits the link
in place → /fin redacts link and tile, posts the closure report, and an admin bot deletes the media;
strangers refused (or silent) and audited, their devices shut out of the room keys while a roster
member's new device is trusted on first use; an alarm confirmed by ✔️/✅ reactions (plain and
Element-style encrypted) and by a /confirm reply; an unencrypted room (non-admin bot, silent
strangers, an ignored invite, an unreachable second room that holds nothing up); Synapse restarted
mid-incident; the bot restarted while an alarm waits (✅ still confirms) and mid-incident (/fin
redacts what it posted before, same device, same token); 429 and a lost answer, nothing posted twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, ClientTimeout, web
from matrix_clients import MxClient, check, step
from nio import (
    DownloadError,
    DownloadResponse,
    MegolmEvent,
    RoomEncryptedImage,
    RoomMessageImage,
    RoomMessageNotice,
)
from nio.crypto.attachments import decrypt_attachment
from synapse_server import Synapse, User, free_port
from vigie_bot import (
    BOT_DEVICE,
    OFFICER,
    Bot,
    create_room,
    is_notice,
    is_redaction_of,
    is_reply_to,
    jpeg,
    new_officer,
    officer_ready,
    say,
    settings_for,
    until,
)

from bot import commands
from bot.alarms.route import AlarmIn
from bot.kinds import Kind
from bot.policy.incident import State

LINK = "ACCÈS VIDÉO OUVERT"
ENDED = "ACCÈS TERMINÉ"


@dataclass
class World:
    synapse: Synapse
    bot_user: User
    officer_user: User
    officer: MxClient
    room_id: str
    bot: Bot
    tmp: Path

    @property
    def desk(self) -> Any:
        return self.bot.desk

    def open_incident(self) -> Any:
        incs = self.desk.open_incidents()
        assert len(incs) == 1, incs
        return incs[0]


async def make_world(synapse: Synapse, tmp: Path, *, admin: bool, encrypted: bool = True,
                     strangers: str = "refuse", homeserver: str | None = None,
                     unreachable_room: str | None = None) -> World:
    bot_user = synapse.register(synapse.unique_localpart("vigie"), admin=admin)
    officer_user, officer = await new_officer(synapse, tmp / "officer-store", "OFFICERPHONE")
    room_id = await create_room(officer, [bot_user.user_id], encrypted=encrypted)
    rooms = [room_id] + ([unreachable_room] if unreachable_room else [])
    settings = settings_for(synapse, bot_user, rooms, {OFFICER: officer_user.user_id}, strangers=strangers)
    if homeserver is not None:
        mx = settings.vigie.matrix.model_copy(update={"homeserver": homeserver})
        settings = settings.model_copy(update={"vigie": settings.vigie.model_copy(update={"matrix": mx})})
    bot = await Bot(settings, tmp / "data").start([room_id])
    await officer_ready(officer, room_id, bot_user.user_id, encrypted)
    return World(synapse, bot_user, officer_user, officer, room_id, bot, tmp)


@pytest.fixture
async def world(synapse: Synapse, tmp_path: Path) -> AsyncIterator[World]:
    w = await make_world(synapse, tmp_path, admin=True)
    try:
        yield w
    finally:
        await w.bot.stop()
        await w.officer.close()


async def alert(w: World, text: str = "/alert attaque_armee Hall A") -> tuple[str, RoomMessageNotice]:
    mark = len(w.officer.events)
    sent = await say(w.officer, w.room_id, text)
    link = await w.officer.wait_for(is_notice(w.room_id, LINK, w.bot_user.user_id), since=mark)
    await w.officer.wait_for(is_reply_to(w.room_id, sent), since=mark)
    assert isinstance(link, RoomMessageNotice)
    return sent, link


async def tile(w: World, incident: str, color: tuple[int, int, int], encrypted: bool = True) -> tuple[Any, bytes]:
    data = jpeg(color)
    mark = len(w.officer.events)
    w.desk.post_tile(incident, data, lambda lang: f"Mosaïque {incident}")
    kind = RoomEncryptedImage if encrypted else RoomMessageImage
    ev = await w.officer.wait_for(lambda r, e: r == w.room_id and isinstance(e, kind), since=mark)
    return ev, data


async def download(client: MxClient, url: str) -> Any:
    return await step(client.client.download(url))


async def media_gone(client: MxClient, url: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await download(client, url)
        if isinstance(resp, DownloadError) and resp.status_code == "M_NOT_FOUND":
            return
        assert asyncio.get_running_loop().time() < deadline, f"media {url} still served: {resp}"
        await asyncio.sleep(0.1)


def bot_events(synapse: Synapse, w: World) -> list[dict[str, Any]]:
    """Every event the bot's account put in the room, straight from the server."""
    status, body = synapse.request("GET", f"/_matrix/client/v3/rooms/{w.room_id}/messages?dir=b&limit=500",
                                   token=w.officer_user.access_token)
    assert status == 200, body
    return [e for e in body["chunk"] if e["sender"] == w.bot_user.user_id and "state_key" not in e]


def count_types(events: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[e["type"]] = out.get(e["type"], 0) + 1
    return out


# ---------------------------------------------------------------------------------------------


async def test_alert_tiles_extend_end_in_encrypted_room(world: World) -> None:
    w, o = world, world.officer
    sent, link = await alert(w)
    assert link.decrypted and link.format == "org.matrix.custom.html"
    assert re.search(r'<a href="http://127\.0\.0\.1:\d+/live/[^"]+">', link.formatted_body)
    assert "Cdt Julien Moreau" in link.body and "/live/" in link.body
    inc = w.open_incident()

    t1, data1 = await tile(w, inc.id, (200, 30, 30))
    dl = check(await download(o, t1.url))
    assert isinstance(dl, DownloadResponse) and dl.body != data1  # Synapse only holds ciphertext
    assert decrypt_attachment(dl.body, t1.key["k"], t1.hashes["sha256"], t1.iv) == data1
    assert t1.source["content"]["info"]["mimetype"] == "image/jpeg"
    assert t1.source["content"]["file"]["mimetype"] == "image/jpeg"
    assert t1.source["content"]["body"] == f"Mosaïque {inc.id}"

    mark = len(o.events)
    t2, _ = await tile(w, inc.id, (30, 200, 30))
    assert t2.event_id != t1.event_id
    await o.wait_for(is_redaction_of(w.room_id, t1.event_id), since=mark)
    await media_gone(o, t1.url)

    # /prolonger (French alias): the link is edited in place, not posted again.
    mark = len(o.events)
    await say(o, w.room_id, "/prolonger 30")
    edit = await o.wait_for(lambda r, e: isinstance(e, RoomMessageNotice)
                            and e.source["content"].get("m.relates_to", {}).get("rel_type") == "m.replace", since=mark)
    assert edit.source["content"]["m.relates_to"]["event_id"] == link.event_id
    new = edit.source["content"]["m.new_content"]
    assert "Prolongé par" in new["body"] and new["format"] == "org.matrix.custom.html"

    mark = len(o.events)
    await say(o, w.room_id, "/fin")
    await o.wait_for(is_redaction_of(w.room_id, link.event_id), since=mark)
    await o.wait_for(is_redaction_of(w.room_id, t2.event_id), since=mark)
    await o.wait_for(is_redaction_of(w.room_id, edit.event_id), since=mark)  # the edit carried the link too
    report = await o.wait_for(is_notice(w.room_id, ENDED), since=mark)
    assert inc.id in report.body and w.desk.open_incidents() == []
    await media_gone(o, t2.url)
    assert w.bot.conn.is_admin is True

    # Nothing posted twice: 2 replies (/alert, /prolonger) + link + edit + extension notice + 2 tiles
    # + reply to /fin + closure report = 9 messages; 4 redactions (tile 1, link, its edit, tile 2).
    kinds = count_types(bot_events(w.synapse, w))
    assert kinds == {"m.room.encrypted": 9, "m.room.redaction": 4}, kinds


async def test_strangers_refused_audited_and_shut_out(synapse: Synapse, world: World) -> None:
    w, o = world, world.officer
    stranger_user = synapse.register(synapse.unique_localpart("intrus"))
    _, stranger = await new_officer(synapse, w.tmp / "stranger", "STRANGER", stranger_user)
    try:
        check(await step(o.client.room_invite(w.room_id, stranger_user.user_id)))
        await stranger.sync_once()
        check(await step(stranger.client.join(w.room_id)))
        await stranger.sync_once()
        mark = len(o.events)
        warning = await o.wait_for(is_notice(w.room_id, "n'est pas sur la liste de la convention"), since=mark)
        assert stranger_user.user_id in warning.body

        # The stranger's command: refused in the room, written to the registre, nothing opened.
        await stranger.sync_once()
        sent = await say(stranger, w.room_id, "/alert attaque_armee")
        refusal = await o.wait_for(is_reply_to(w.room_id, sent), since=mark)
        assert refusal.body == "Refusé : Vous n'êtes pas sur la liste de la convention."
        refusals = [r for r in w.bot.records("refusal") if r.actor == stranger_user.user_id]
        assert {r.details["reason"] for r in refusals} == {"unknown_person", "not_on_roster"}
        assert w.desk.open_incidents() == []

        # A new device of the roster officer is trusted on first use; the stranger's never gets keys.
        _, laptop = await new_officer(synapse, w.tmp / "officer-laptop", "OFFICERLAPTOP", w.officer_user)
        try:
            await laptop.sync_once()
            _, link = await alert(w)
            seen = await laptop.wait_for(lambda r, e: e.event_id == link.event_id)
            assert isinstance(seen, RoomMessageNotice) and LINK in seen.body
            shut = await stranger.wait_for(lambda r, e: e.event_id == link.event_id)
            assert isinstance(shut, MegolmEvent), shut  # undecryptable for the stranger
        finally:
            await laptop.close()
        bot = w.bot.conn.client
        olm = bot.olm
        for dev in bot.device_store.active_user_devices(w.officer_user.user_id):
            assert olm.is_device_verified(dev), dev.id
        assert {d.id for d in bot.device_store.active_user_devices(w.officer_user.user_id)} >= {"OFFICERPHONE",
                                                                                              "OFFICERLAPTOP"}
        strangers = list(bot.device_store.active_user_devices(stranger_user.user_id))
        assert strangers and all(olm.is_device_blacklisted(d) and not olm.is_device_verified(d) for d in strangers)
    finally:
        await stranger.close()


async def test_alarm_confirmed_by_reaction_and_by_reply(synapse: Synapse, world: World) -> None:
    w, o = world, world.officer

    async def alarm(n: int) -> RoomMessageNotice:
        mark = len(o.events)
        res = await w.desk.alarm(AlarmIn("demo-alarme", "panic", "Hall A", "", None, f"delivery-{n}"))
        assert res.accepted and res.outcome == "pending", res
        ask = await o.wait_for(is_notice(w.room_id, "ALERTE À CONFIRMER"), since=mark)
        assert "réagissez ✅" in ask.body and res.incident_id in ask.body
        return ask

    async def confirmed(ask: RoomMessageNotice, mark: int) -> None:
        await o.wait_for(is_notice(w.room_id, LINK), since=mark)
        edit = await o.wait_for(lambda r, e: e.source.get("content", {}).get("m.relates_to", {})
                                == {"rel_type": "m.replace", "event_id": ask.event_id}, since=mark)
        assert "confirmée par Cdt Julien Moreau" in edit.source["content"]["m.new_content"]["body"]
        inc = w.open_incident()
        assert inc.state is State.ACTIVE and inc.confirmed_by == OFFICER
        mark = len(o.events)
        await say(o, w.room_id, "/fin")
        await o.wait_for(is_notice(w.room_id, ENDED), since=mark)

    # 1. a ✔️ reaction as nio sends it (unencrypted m.reaction, variation selector included)
    ask = await alarm(1)
    mark = len(o.events)
    check(await step(o.client.room_send(w.room_id, "m.reaction", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": ask.event_id, "key": "✔️"}})))
    await confirmed(ask, mark)

    # 2. a ✅ reaction encrypted the way Element sends it in an encrypted room
    ask = await alarm(2)
    mark = len(o.events)
    enc_type, enc = o.client.encrypt(w.room_id, "m.reaction", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": ask.event_id, "key": "✅"}})
    status, body = await asyncio.to_thread(synapse.request, "PUT",
                                           f"/_matrix/client/v3/rooms/{w.room_id}/send/{enc_type}/react-2",
                                           enc, token=o.client.access_token)
    assert status == 200, body
    await confirmed(ask, mark)

    # 3. a reply "/confirm" to the request (with the quoted fallback older clients add)
    ask = await alarm(3)
    mark = len(o.events)
    await say(o, w.room_id, f"> <{w.bot_user.user_id}> ALERTE À CONFIRMER\n\n/confirm", reply_to=ask.event_id)
    await confirmed(ask, mark)
    confirmations = [r for r in w.bot.records("confirmation") if r.actor == OFFICER]
    assert len(confirmations) == 3


async def test_unencrypted_room_silent_strangers_non_admin(synapse: Synapse, tmp_path: Path) -> None:
    # A second configured room the bot was never invited to: it must not hold up the first one.
    w = await make_world(synapse, tmp_path, admin=False, encrypted=False, strangers="silent",
                         unreachable_room="!nowhere:vigie.test")
    o = w.officer
    stranger_user = synapse.register(synapse.unique_localpart("intrus"))
    _, stranger = await new_officer(synapse, tmp_path / "stranger", "STRANGER", stranger_user)
    try:
        # An invite to a room that is not configured is left alone.
        other = await create_room(o, [w.bot_user.user_id], encrypted=False)
        _, link = await alert(w, "/alerte attaque_armee")
        assert not link.decrypted and "<a href=" in link.formatted_body
        inc = w.open_incident()
        t1, _ = await tile(w, inc.id, (10, 10, 200), encrypted=False)
        assert t1.source["content"]["url"].startswith("mxc://")
        mark = len(o.events)
        await tile(w, inc.id, (10, 200, 10), encrypted=False)
        await o.wait_for(is_redaction_of(w.room_id, t1.event_id), since=mark)
        assert w.bot.conn.is_admin is False
        assert isinstance(await download(o, t1.url), DownloadResponse)  # not an admin: media stay

        check(await step(o.client.room_invite(w.room_id, stranger_user.user_id)))
        await stranger.sync_once()
        check(await step(stranger.client.join(w.room_id)))
        await stranger.sync_once()
        mark = len(o.events)
        await o.wait_for(is_notice(w.room_id, "ce salon n'est pas chiffré"), since=mark)
        sent = await say(stranger, w.room_id, "/fin")
        await asyncio.sleep(1.0)
        await o.sync_once()
        assert not any(is_reply_to(w.room_id, sent)(r, e) for r, e in o.events[mark:])  # silence
        assert any(r.actor == stranger_user.user_id and r.details.get("command") == "end"
                   for r in w.bot.records("refusal"))
        assert [i.id for i in w.desk.open_incidents()] == [inc.id]
        status, member = synapse.request(
            "GET", f"/_matrix/client/v3/rooms/{other}/state/m.room.member/{w.bot_user.user_id}",
            token=w.officer_user.access_token)
        assert status == 200 and member["membership"] == "invite", member
        assert other not in w.bot.conn.client.rooms
    finally:
        await stranger.close()
        await w.bot.stop()
        await o.close()


async def test_synapse_restart_mid_incident(synapse: Synapse, world: World) -> None:
    w, o = world, world.officer
    _, link = await alert(w)
    inc = w.open_incident()
    t1, _ = await tile(w, inc.id, (120, 0, 0))

    await asyncio.to_thread(synapse.stop)
    w.desk.post_tile(inc.id, jpeg((0, 120, 0)), lambda lang: "pendant la coupure")
    await asyncio.sleep(1.0)  # the outbox is now trying against a dead server
    await asyncio.to_thread(synapse.start)

    t2 = await o.wait_for(lambda r, e: isinstance(e, RoomEncryptedImage) and e.event_id != t1.event_id, timeout=20)
    await o.wait_for(is_redaction_of(w.room_id, t1.event_id), timeout=20)
    mark = len(o.events)
    await say(o, w.room_id, "/fin")
    await o.wait_for(is_redaction_of(w.room_id, link.event_id), since=mark)
    await o.wait_for(is_redaction_of(w.room_id, t2.event_id), since=mark)
    await o.wait_for(is_notice(w.room_id, ENDED), since=mark)
    images = [e for _, e in o.events if isinstance(e, RoomEncryptedImage)]
    assert len(images) == 2
    # reply to /alert, link, 2 tiles, reply to /fin, report; redactions: tile 1, link, tile 2
    kinds = count_types(bot_events(synapse, w))
    assert kinds == {"m.room.encrypted": 6, "m.room.redaction": 3}, kinds
    assert not w.bot.records("room_error")


async def test_bot_restart_mid_incident(synapse: Synapse, world: World, caplog: pytest.LogCaptureFixture,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    w, o = world, world.officer
    store = w.tmp / "data" / "matrix-store"
    session = store / "session.json"
    token_before = session.read_text()

    async def restart(*while_down: str) -> list[str]:
        await w.bot.stop()
        said = [await say(o, w.room_id, text) for text in while_down]
        w.bot = await Bot(w.bot.settings, w.tmp / "data").start()
        assert session.read_text() == token_before  # resumed with the saved token, no new login
        assert w.bot.conn.client.loaded_sync_token  # and from the saved sync token
        return said

    # 1. Restarted while an alarm waits for confirmation: the ✅ on the request posted before still counts.
    mark = len(o.events)
    res = await w.desk.alarm(AlarmIn("demo-alarme", "panic", "Hall A", "", None, "delivery-restart"))
    ask = await o.wait_for(is_notice(w.room_id, "ALERTE À CONFIRMER"), since=mark)
    await restart()
    mark = len(o.events)
    check(await step(o.client.room_send(w.room_id, "m.reaction", {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": ask.event_id, "key": "✅"}})))
    link = await o.wait_for(is_notice(w.room_id, LINK), since=mark)
    assert w.open_incident().id == res.incident_id and w.open_incident().state is State.ACTIVE
    t1, _ = await tile(w, res.incident_id, (90, 90, 0))
    await say(o, w.room_id, "/prolonger 30")
    edit = await o.wait_for(lambda r, e: isinstance(e, RoomMessageNotice)
                            and e.source["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
                            and e.source["content"]["m.relates_to"]["event_id"] == link.event_id, since=mark)

    # 2. Restarted mid-incident; what was said while it was down is read on its return. Every
    # command counts as late here: /fin is applied all the same, /alert is answered "send it again".
    monkeypatch.setattr(commands, "LATE_WINDOW", timedelta(0))
    mark = len(o.events)
    end, again = await restart("/fin", "/alert alerte_bombe Parvis")
    assert stat.S_IMODE(session.stat().st_mode) == 0o600 and stat.S_IMODE(store.stat().st_mode) == 0o700
    status, body = synapse.request("GET", f"/_synapse/admin/v2/users/{w.bot_user.user_id}/devices",
                                   token=synapse.admin_token)
    # the bot's only session is its one device (the other is the one registration made for the test)
    assert status == 200 and {d["device_id"] for d in body["devices"]} - {w.bot_user.device_id} == {BOT_DEVICE}

    # /fin redacts what the bot posted before the restart (the link's edit too) and deletes the media.
    await o.wait_for(is_redaction_of(w.room_id, link.event_id), since=mark)
    await o.wait_for(is_redaction_of(w.room_id, edit.event_id), since=mark)
    await o.wait_for(is_redaction_of(w.room_id, t1.event_id), since=mark)
    report = await o.wait_for(is_notice(w.room_id, ENDED), since=mark)
    assert report.decrypted
    await media_gone(o, t1.url)
    await o.wait_for(is_reply_to(w.room_id, end), since=mark)
    resend = await o.wait_for(is_reply_to(w.room_id, again), since=mark)
    assert "n'a PAS été appliquée" in resend.body and w.desk.open_incidents() == []
    late = [(r.details["command"], r.details["applied"]) for r in w.bot.records(Kind.LATE_COMMAND)]
    assert late == [("end", True), ("alert", False)]
    # Neither the password nor the access token ever reaches the log, even at DEBUG.
    secret_token = json.loads(token_before)["access_token"]
    assert secret_token not in caplog.text and w.bot_user.password not in caplog.text
    assert "resumed session" in caplog.text


# --- faults injected by a proxy in front of Synapse ----------------------------------------------


class FaultProxy:
    """Forwards everything to Synapse; the next room sends can be answered 429, or forwarded and then
    answered 502 as if the answer were lost on the way back."""

    SEND = re.compile(r"^/_matrix/client/v3/rooms/[^/]+/send/")

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[str] = []
        self.sends: list[str] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._session = ClientSession(timeout=ClientTimeout(total=None))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # the bot's long-poll syncs are in flight when it stops: do not wait for them on cleanup
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault = None
        if request.method == "PUT" and self.SEND.match(request.path):
            self.sends.append(request.path)
            fault = self.faults.pop(0) if self.faults else None
        if fault == "429":
            return web.json_response({"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests",
                                      "retry_after_ms": 400}, status=429)
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        assert self._session is not None
        async with self._session.request(request.method, self.upstream + request.path_qs, data=body,
                                         headers=headers) as up:
            data, status = await up.read(), up.status
            ctype = up.headers.get("Content-Type", "application/json")
        if fault == "lost":
            return web.json_response({"errcode": "M_UNKNOWN", "error": "Bad Gateway"}, status=502)
        return web.Response(body=data, status=status, headers={"Content-Type": ctype})


async def test_429_and_lost_answer_posted_once(synapse: Synapse, tmp_path: Path) -> None:
    proxy = FaultProxy(synapse.base_url)
    await proxy.start()
    w = await make_world(synapse, tmp_path, admin=False, homeserver=proxy.url)
    o = w.officer
    try:
        proxy.faults = ["429", "lost"]
        before = len(proxy.sends)
        t0 = asyncio.get_running_loop().time()
        await alert(w)
        assert asyncio.get_running_loop().time() - t0 >= 0.4  # the 429 was waited out
        sends = proxy.sends[before:]
        # Two messages (the reply to /alert and the link), each tried twice under the same transaction
        # id: one answered 429 then waited out, one processed but its answer lost, then retried.
        assert len(sends) == 4 and len(set(sends)) == 2 and all(sends.count(p) == 2 for p in sends), sends
        # ...and still a single event per message: the reply to /alert and the link.
        assert count_types(bot_events(synapse, w)) == {"m.room.encrypted": 2}
        assert not w.bot.records("room_error")
    finally:
        await w.bot.stop()
        await o.close()
        await proxy.stop()


async def test_send_processed_answer_lost_then_restart_posted_once(synapse: Synapse, tmp_path: Path) -> None:
    """The homeserver posts the alarm's request but its answer is lost, and the bot stops before
    it hears back: the outbox's journal still holds the message and sends it again on return.
    The new process uses the same transaction id (derived from the journal's row), so Synapse
    answers with the event it already has: one request in the room, not two."""
    proxy = FaultProxy(synapse.base_url)
    await proxy.start()
    w = await make_world(synapse, tmp_path, admin=False, homeserver=proxy.url)
    o = w.officer
    try:
        before = len(bot_events(synapse, w))
        mark = len(proxy.sends)
        proxy.faults = ["lost"] * 1000  # every send reaches Synapse; no answer comes back
        await w.desk.alarm(AlarmIn("demo-alarme", "panic", "Hall A", "", None, "lost-then-restart"))
        await until(lambda: len(proxy.sends) > mark, 10)  # the request went; its answer did not come back
        await w.bot.stop()
        assert len(bot_events(synapse, w)) == before + 1  # posted, though the bot never heard so
        proxy.faults = []
        restarted = len(proxy.sends)
        w.bot = await Bot(w.bot.settings, w.tmp / "data").start()
        await w.desk.fanout.drain()
        sends = proxy.sends[mark:]
        assert len(proxy.sends) > restarted, "the journal's message was not sent again after the restart"
        assert len(set(sends)) == 1, sends  # before and after the restart: one transaction id
        assert len(bot_events(synapse, w)) == before + 1
        ask = await o.wait_for(is_notice(w.room_id, "ALERTE À CONFIRMER"), since=0)
        assert ask.decrypted
    finally:
        await w.bot.stop()
        await o.close()
        await proxy.stop()
