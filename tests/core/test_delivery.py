"""Delivery through faults: rooms down for long, restarts with a link owed, and an end that storage refuses."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from bot import commands
from bot.access import LinkGone
from bot.app import ACCESS, DESK, HEALTH_TOKEN, StorageError, healthz, healthz_details, open_storage
from bot.kinds import Kind
from bot.outbox_store import rollback
from bot.policy.convention import Convention
from bot.web.media import MEDIA
from tests.core.test_outbox import GateRoom
from tests.harness import FAST_HASHER, Clock, Harness, RecordingRoom
from tests.policy_fixtures import convention

LINK = re.compile(r"https://vigie\.test/live/(\S+)")
OPEN = "ACCÈS VIDÉO OUVERT"
PASSWORD = "un mot de passe assez long"
DOWN = 10**9  # a room that fails until told otherwise


async def run(h: Harness, text: str, who: str = "chef", room: str = "console") -> str:
    cmd = commands.parse(text)
    assert cmd is not None
    return await commands.run(h.desk, cmd, h.person(who), room, "fr")


async def until(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.005)
    await asyncio.wait_for(poll(), timeout)


async def health_of(h: Harness) -> dict[str, Any]:
    app = web.Application()
    app[DESK] = h.desk
    app[MEDIA] = SimpleNamespace(health=lambda: [])  # type: ignore[assignment]
    app[ACCESS], app[HEALTH_TOKEN] = h.access, "t"
    public = json.loads((await healthz(make_mocked_request("GET", "/healthz", app=app))).text or "{}")
    request = make_mocked_request("GET", "/healthz/details", headers={"Authorization": "Bearer t"}, app=app)
    details = json.loads((await healthz_details(request)).text or "{}")
    assert public == {"status": details["status"]}  # the world sees the word, never the names
    return details  # type: ignore[no-any-return]


def with_password() -> Convention:
    conv = convention()
    agent_hash = FAST_HASHER.hash(PASSWORD)
    return replace(conv, roster=tuple(replace(p, password_hash=agent_hash) if p.id == "agent" else p
                                      for p in conv.roster))


def links(room: RecordingRoom) -> int:
    return sum(1 for kind, _, t in room.log if kind == "send" and OPEN in t)


async def test_room_down_longer_than_the_old_retries_gets_the_link_when_it_returns(tmp_path: Path) -> None:
    bad, good = RecordingRoom("telegram:-1", fail=DOWN), RecordingRoom("console")
    h = await Harness(tmp_path, rooms=[bad, good]).start()
    try:
        await run(h, "/alerte attaque_armee")
        await h.fanout.outboxes[1].drain()
        assert links(good) == 1
        inc = h.desk.open_incidents()[0]
        await until(lambda: h.fanout.health()["telegram:-1"].failures >= 8)  # the old outbox gave up after 4
        health = h.fanout.health()["telegram:-1"]
        assert not health.ok and inc.id in health.links_failing
        assert f"Salon telegram:-1: EN ÉCHEC : lien {inc.id} non remis" in h.desk.status().text("fr")
        body = await health_of(h)
        assert body["status"] == "failing" and body["rooms"]["telegram:-1"]["links_undelivered"] == [inc.id]
        assert "room_error" in h.kinds(inc.id)

        h.desk.linkwatch.check()  # under the threshold: the others are not told yet
        h.clock.advance(seconds=31)
        h.desk.linkwatch.check()
        await h.fanout.outboxes[1].drain()
        assert any("n'a pas pu être remis au salon telegram:-1" in t for t in good.texts())
        assert "link_undelivered" in h.kinds(inc.id)

        bad.fail = 0  # the room is back
        await h.fanout.drain()
        assert links(bad) == 1 and links(good) == 1
        assert h.fanout.health()["telegram:-1"].ok and "EN ÉCHEC" not in h.desk.status().text("fr")
        assert (await health_of(h))["status"] == "ok"
        h.desk.linkwatch.check()
        await h.fanout.drain()
        assert any("a finalement été remis au salon telegram:-1" in t for t in good.texts())
        assert "link_delivered" in h.kinds(inc.id)
    finally:
        bad.fail = 0
        await h.stop()


async def test_the_link_goes_before_what_was_queued_earlier(tmp_path: Path) -> None:
    room = RecordingRoom("console", fail=DOWN)
    h = await Harness(tmp_path, rooms=[room]).start()
    try:
        h.desk.announce(Kind.PANEL_SILENT, lambda _: "Centrale muette.")
        await until(lambda: h.fanout.health()["console"].failures >= 1)
        await run(h, "/alerte attaque_armee")
        await until(lambda: bool(h.fanout.health()["console"].links_failing))
        room.fail = 0
        await h.fanout.drain()
        assert OPEN in room.log[0][2] and "Centrale muette." in room.log[1][2]
    finally:
        room.fail = 0
        await h.stop()


async def test_restart_with_an_undelivered_link_posts_it_once(tmp_path: Path) -> None:
    clock = Clock()
    bad, good = RecordingRoom("telegram:-1", fail=DOWN), RecordingRoom("console")
    h = await Harness(tmp_path, clock=clock, rooms=[bad, good]).start()
    await run(h, "/alerte attaque_armee")
    await h.fanout.outboxes[1].drain()
    await until(lambda: h.fanout.health()["telegram:-1"].failures >= 2)
    await h.stop(drain=False)  # Vigie stops with the link still owed to one room

    bad.fail = 0
    h2 = await Harness(tmp_path, clock=clock, rooms=[bad, good]).start()
    try:
        await h2.fanout.drain()
        assert links(bad) == 1 and links(good) == 1, "posted once where missing, not again where delivered"
        inc = h2.desk.open_incidents()[0]
        await h2.desk._relink(inc.id)  # the periodic re-issue edits it now
        await h2.fanout.drain()
        assert links(bad) == 1 and any(k == "edit" and OPEN in t for k, _, t in bad.log)
    finally:
        await h2.stop()


async def test_a_relink_in_a_room_that_never_got_the_link_posts_it(tmp_path: Path) -> None:
    room = RecordingRoom("console")
    h = await Harness(tmp_path, rooms=[room]).start()
    try:
        await run(h, "/alerte attaque_armee")
        await h.fanout.drain()
        inc = h.desk.open_incidents()[0]
        h.store.drop_ref(inc.id, "console", "link")  # as if the post had never been recorded
        await h.desk._relink(inc.id)
        await h.fanout.drain()
        assert links(room) == 2
    finally:
        await h.stop()


def break_storage(h: Harness, monkeypatch: pytest.MonkeyPatch, error: str = "database or disk is full") -> None:
    def fail(*_: Any, **__: Any) -> Any:
        raise sqlite3.OperationalError(error)
    for obj, names in ((h.store, ("save", "delete_sessions", "set_ref", "drop_ref", "sessions_of")),
                       (h.journal, ("add", "open_closing", "delete", "update_body")),
                       (h.registre, ("append",))):
        for name in names:
            monkeypatch.setattr(obj, name, fail)


async def open_with_viewer(h: Harness) -> tuple[str, str, list[str]]:
    await run(h, "/alerte attaque_armee")
    await h.fanout.drain()
    token = LINK.search(next(t for t in h.rooms[0].texts() if OPEN in t)).group(1)  # type: ignore[union-attr]
    cookie, _ = await h.access.login(token, "agent", PASSWORD, "203.0.113.5 ua")
    streams: list[str] = []
    h.access.add_revocation_listener(streams.append)
    return token, cookie, streams


def assert_access_closed(h: Harness, token: str, cookie: str, streams: list[str], incident: str) -> None:
    with pytest.raises(LinkGone):
        h.access.check_link(token)
    assert h.access.viewer(cookie) is None
    assert streams == [incident]


def assert_closed_everywhere(h: Harness, incident: str) -> None:
    kinds = h.kinds(incident)
    assert kinds.count("end") == 1 and kinds.count("closure_report") == 1
    for room in h.rooms:
        assert not any(OPEN in t for t in room.live.values()), "link message removed"
        assert sum("ACCÈS TERMINÉ" in t or "ACCESS ENDED" in t for t in room.live.values()) == 1
    assert h.registre.verify().ok


async def test_end_on_a_full_disk_closes_access_at_once_and_records_it_later(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    h = await Harness(tmp_path, conv=with_password()).start()
    try:
        token, cookie, streams = await open_with_viewer(h)
        inc = h.desk.open_incidents()[0]
        with monkeypatch.context() as m:
            break_storage(h, m)
            assert "terminé" in await run(h, "/fin", who="cic")
            assert_access_closed(h, token, cookie, streams, inc.id)
            await h.fanout.drain()
            for room in h.rooms:
                assert any(f"Accès {inc.id} fermé" in t or f"Access {inc.id} closed" in t for t in room.texts())
            assert inc.id in h.desk.closer.pending and "Clôture pas encore inscrite" in h.desk.status().text("fr")
            assert h.desk.open_incidents() == [] and "Aucun incident ouvert" in h.desk.status().text("fr")
            assert "Refusé" in await run(h, "/fin", who="cic")  # nothing left to end
        await asyncio.wait_for(h.desk.closer.wait(), 20)  # the disk has room again
        await h.fanout.drain()
        assert_closed_everywhere(h, inc.id)
        assert h.desk.open_incidents() == []
    finally:
        await h.stop()


async def test_end_with_the_registre_locked_closes_access_and_records_once_unlocked(tmp_path: Path) -> None:
    h = await Harness(tmp_path, conv=with_password()).start()
    other = sqlite3.connect(tmp_path / "registre.sqlite3", isolation_level=None)
    try:
        token, cookie, streams = await open_with_viewer(h)
        inc = h.desk.open_incidents()[0]
        other.execute("BEGIN EXCLUSIVE")
        assert "terminé" in await run(h, "/fin", who="cic")
        assert_access_closed(h, token, cookie, streams, inc.id)
        assert "end" not in h.kinds(inc.id) and inc.id in h.desk.closer.pending
        other.execute("ROLLBACK")
        await asyncio.wait_for(h.desk.closer.wait(), 20)
        await h.fanout.drain()
        assert_closed_everywhere(h, inc.id)
    finally:
        other.close()
        await h.stop()


async def test_a_closing_interrupted_before_its_record_is_resumed_at_start(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    h = await Harness(tmp_path, clock=clock).start()
    await run(h, "/alerte attaque_armee")
    await h.fanout.drain()
    inc = h.desk.open_incidents()[0]
    monkeypatch.setattr(h.registre, "append", lambda *a, **k: (_ for _ in ()).throw(sqlite3.OperationalError("locked")))
    await run(h, "/fin", who="cic")
    await h.stop(drain=False)  # the process dies with the end unrecorded
    monkeypatch.undo()

    h2 = await Harness(tmp_path, clock=clock, rooms=h.rooms).start()
    try:
        await asyncio.wait_for(h2.desk.closer.wait(), 20)
        await h2.fanout.drain()
        assert_closed_everywhere(h2, inc.id)
        assert h2.desk.open_incidents() == []
    finally:
        await h2.stop()


async def test_a_failed_attempt_burns_no_incident_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = await Harness(tmp_path).start()
    try:
        with monkeypatch.context() as m:
            m.setattr(h.store, "save", lambda *_: (_ for _ in ()).throw(sqlite3.OperationalError("disk is full")))
            with pytest.raises(sqlite3.OperationalError):
                await run(h, "/alerte attaque_armee")
        await run(h, "/alerte attaque_armee")
        assert h.desk.open_incidents()[0].id.endswith("-01")
    finally:
        await h.stop()


def test_an_unusable_data_directory_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "state.sqlite3").mkdir()  # stands for a file that cannot be opened
    with pytest.raises(StorageError) as err:
        open_storage(tmp_path)
    text = str(err.value)
    assert "state.sqlite3" in text and "\n" not in text and "writable" in text
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(StorageError, match="file"):
        open_storage(blocked / "data")


def test_a_failing_rollback_does_not_hide_the_real_error() -> None:
    class Full:
        def execute(self, sql: str) -> None:
            raise sqlite3.OperationalError("database or disk is full")

    rollback(Full())  # type: ignore[arg-type]  # logged, not raised: the caller re-raises its own error


async def test_a_link_stuck_on_the_wire_is_failing_once_overdue(tmp_path: Path) -> None:
    slow, good = GateRoom(), RecordingRoom("matrix:!r")  # e.g. a Telegram flood wait inside one attempt
    h = await Harness(tmp_path, rooms=[slow, good]).start()
    try:
        await run(h, "/alerte attaque_armee")
        await slow.waiting.wait()
        h.clock.advance(seconds=31)
        h.desk.linkwatch.check()
        assert "Salon console: EN ÉCHEC : lien INC-20261125-01 non remis — toujours sans réponse" in h.desk.status().text("fr")
        assert (await health_of(h))["status"] == "failing"
        slow.gate.set()
        await h.fanout.drain()
        assert links(slow) == 1 and "EN ÉCHEC" not in h.desk.status().text("fr")
    finally:
        slow.gate.set()
        await h.stop()
