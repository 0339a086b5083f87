"""All rooms' outboxes: the desk enqueues once, every room's outbox takes its copy.

Rooms may join and leave while running (an attached console): a room that leaves stops being
served, and what it was still owed is dropped from the journal.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from .outbox import OnFailure, Outbox
from .outbox_items import Op, RoomHealth
from .outbox_store import Journal
from .rooms import Room
from .store import Store

logger = logging.getLogger(__name__)

class Fanout:
    """All rooms' outboxes; the desk only enqueues and never waits on a room."""

    def __init__(self, rooms: list[Room], store: Store, on_failure: OnFailure, clock: Callable[[], datetime],
                 journal: Journal | None = None, **outbox_kw: Any) -> None:
        self.journal = journal if journal is not None else Journal.memory()
        journal_ = self.journal

        def make(room: Room) -> Outbox:
            return Outbox(room, store, journal_, on_failure, clock, **outbox_kw)

        self._make = make
        self.outboxes = [self._make(r) for r in rooms]
        self._started = False

    @property
    def room_ids(self) -> set[str]:
        return {o.room.room_id for o in self.outboxes}

    def start(self) -> None:
        self._started = True
        for o in self.outboxes:
            o.start()

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(o.stop() for o in self.outboxes))

    def add_room(self, room: Room) -> None:
        """A room that joins while running (an attached console): it gets what is put from now on."""
        if room.room_id in self.room_ids:
            raise ValueError(f"room {room.room_id} is already served")
        outbox = self._make(room)
        self.outboxes.append(outbox)
        if self._started:
            outbox.start()

    async def remove_room(self, room_id: str) -> None:
        """A room that leaves: nothing more is queued for it, its workers stop, and what it was still
        owed is dropped from the journal (nobody is there to read it; the other rooms are untouched)."""
        outbox = next((o for o in self.outboxes if o.room.room_id == room_id), None)
        if outbox is None:
            return
        self.outboxes.remove(outbox)  # first, so that no put admits anything for it any more
        await outbox.stop()
        try:
            self.journal.delete([row.id for row in self.journal.pending(room_id) if row.id is not None])
        except sqlite3.Error as exc:  # rows of an unknown room are never loaded again
            logger.error("room %s: cannot clear its pending messages (%s)", room_id, exc)

    def put(self, op: Op, rooms: Iterable[str] | None = None) -> None:
        """Queue ``op`` for every room (or only ``rooms``); a journal error keeps it in memory, delivered anyway."""
        self.put_all([op], rooms)

    def put_all(self, ops: Iterable[Op], rooms: Iterable[str] | None = None, *,
                finish_closing: str | None = None) -> None:
        """Queue ``ops`` with one journal write. With ``finish_closing``, all or nothing: on a journal
        error nothing is queued and the error is raised, so the closing job retries."""
        wanted = set(rooms) if rooms is not None else None
        fresh = [(o, item) for op in ops for o in self.outboxes
                 if wanted is None or o.room.room_id in wanted
                 if (item := o.admit(op)) is not None]
        durable = [(o, i) for o, i in fresh if i.durable]
        try:
            ids = self.journal.add([i.to_row(o.room.room_id) for o, i in durable], finish_closing=finish_closing)
            for (_, i), row_id in zip(durable, ids, strict=True):
                i.row = row_id
        except sqlite3.Error as exc:
            logger.error("cannot journal %d room message(s): %s", len(durable), exc)
            if finish_closing is not None:
                raise
        for o, i in fresh:
            o.accept(i)

    def cancel_incident(self, incident: str) -> None:
        rows = [r for o in self.outboxes for r in o.cancel_incident(incident)]
        try:
            self.journal.delete(rows)
        except sqlite3.Error as exc:  # at start, rows of an ended incident are dropped anyway
            logger.error("cannot clear the cancelled messages of %s: %s", incident, exc)

    async def drain(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(o.drain() for o in self.outboxes)), timeout)

    def health(self) -> dict[str, RoomHealth]:
        return {o.room.room_id: o.health for o in self.outboxes}
