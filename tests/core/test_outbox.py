"""The outbox's folding rules, and what it writes to disk (text only: never a tile, never a link)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.fanout import Fanout
from bot.outbox import Edit, Post, Tile
from bot.outbox_store import Journal
from bot.rooms import Outgoing
from bot.store import Store
from tests.harness import Clock, RecordingRoom


def text(t: str) -> Outgoing:
    return Outgoing(t, t)


class GateRoom(RecordingRoom):
    """Holds each send until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__("console")
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def send_text(self, msg: Outgoing) -> str:
        self.waiting.set()
        await self.gate.wait()
        return await super().send_text(msg)


async def outbox(tmp_path: Path, room: RecordingRoom) -> tuple[Fanout, Journal, Store]:
    store, journal = Store(tmp_path / "state.sqlite3"), Journal(tmp_path / "state.sqlite3")
    fanout = Fanout([room], store, lambda *_: None, Clock(), journal=journal, base_delay=0.001, max_delay=0.005)
    fanout.start()
    return fanout, journal, store


async def close(fanout: Fanout, journal: Journal, store: Store) -> None:
    await fanout.stop()
    journal.close()
    store.close()


async def test_an_edit_folds_into_a_queued_post(tmp_path: Path) -> None:
    room = RecordingRoom("console", fail=10**9)
    fanout, journal, store = await outbox(tmp_path, room)
    try:
        fanout.put(Post("INC-1", "extension:1", lambda _: text("v1")))
        fanout.put(Edit("INC-1", "extension:1", lambda _: text("v2")))
        room.fail = 0
        await fanout.drain(5)
        assert [(k, t) for k, _, t in room.log] == [("send", "v2")]
    finally:
        await close(fanout, journal, store)


async def test_an_edit_follows_a_post_already_on_the_wire(tmp_path: Path) -> None:
    room = GateRoom()
    fanout, journal, store = await outbox(tmp_path, room)
    try:
        fanout.put(Post("INC-1", "link", lambda _: text("v1")))
        await room.waiting.wait()
        fanout.put(Edit("INC-1", "link", lambda _: text("v2")))
        room.gate.set()
        await fanout.drain(5)
        assert [(k, t) for k, _, t in room.log] == [("send", "v1"), ("edit", "v2")]
    finally:
        await close(fanout, journal, store)


async def test_a_newer_tile_replaces_a_queued_one_and_nothing_secret_reaches_the_disk(tmp_path: Path) -> None:
    room = RecordingRoom("console", fail=10**9)
    fanout, journal, store = await outbox(tmp_path, room)
    try:
        fanout.put(Post("INC-1", "link", lambda _: text("https://vigie.test/live/SECRET")))
        fanout.put(Post("INC-1", "reminder:0", lambda _: text("rappel")))
        for n in range(3):
            fanout.put(Tile("INC-1", b"\xff\xd8JPEG" * (n + 1), lambda _, n=n: f"tile {n}"))  # type: ignore[misc]
        with sqlite3.connect(tmp_path / "state.sqlite3") as db:
            rows = db.execute("SELECT kind, key, body FROM outbox").fetchall()
        assert [(k, key) for k, key, _ in rows] == [("post", "reminder:0")]
        assert not any("SECRET" in body or "JPEG" in body for _, _, body in rows)
        room.fail = 0
        await fanout.drain(5)
        assert [k for k, _, _ in room.log] == ["send", "send", "tile"]
        assert room.log[2][2] == "tile 2 (18 B)"
    finally:
        await close(fanout, journal, store)


async def test_rooms_join_and_leave_while_running(tmp_path: Path) -> None:
    """An attached console joins the fan-out: it gets what is put from then on; when it leaves, what it
    was owed is dropped from the journal and the other rooms are untouched."""
    stays = RecordingRoom("telegram")
    fanout, journal, store = await outbox(tmp_path, stays)
    try:
        joins = RecordingRoom("console:a", fail=10**9)  # down: its messages stay owed
        fanout.add_room(joins)
        assert fanout.room_ids == {"telegram", "console:a"}
        fanout.put(Post("INC-1", "report", lambda _: text("report")))
        await fanout.outboxes[0].drain()
        assert journal.pending("console:a")
        await fanout.remove_room("console:a")
        assert fanout.room_ids == {"telegram"} and not journal.pending("console:a")
        fanout.put(Post("INC-1", "after", lambda _: text("after")))
        await fanout.drain(5)
        assert [t for _, _, t in stays.log] == ["report", "after"] and not joins.log
        await fanout.remove_room("console:a")  # twice: nothing to do
    finally:
        await close(fanout, journal, store)
