"""Delivery to the rooms: one durable, prioritised outbox per room, all rooms in parallel.

Each room has its own worker, so a room that is slow or down never delays another. Within a
room, operations go out by lane, then in the order they were queued:

1. the link (its post, and the edits that re-issue it): what the officers are waiting for;
2. messages, edits and removals (the end's removals and report keep their relative order);
3. the mosaic tile, which only ever replaces the previous one.

An operation that fails is retried with capped backoff (``max_delay``) for as long as it is
owed; it is never dropped after N attempts. It stops being owed when it is delivered, or when
it becomes obsolete: a newer tile replaces a queued one, an edit folds into a queued post or
edit of the same message, and ending an incident cancels everything still queued for it
except the closing steps. Text operations are written to the journal (``state.sqlite3``) when
queued and deleted when done, so a restart resumes them; tiles and the link's text never go to
disk (see ``outbox_store``).

Health is truthful: a room whose link is undelivered stays failing until that link is
delivered, whatever else gets through meanwhile.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from .outbox_store import Journal, Row
from .policy.incident import State
from .rooms import Button, Outgoing, Room
from .store import Store

logger = logging.getLogger(__name__)

Render = Callable[[str], Outgoing]  # language → message
LINK_KEY = "link"
REPORT_AFTER = 4  # failed attempts before a room error is written to the registre


@dataclass(frozen=True)
class Post:
    incident: str | None
    key: str
    render: Render
    confirm: bool = False
    closing: bool = False  # part of an incident's end: survives the end's cancellation


@dataclass(frozen=True)
class Edit:
    incident: str
    key: str
    render: Render
    closing: bool = False


@dataclass(frozen=True)
class Tile:
    incident: str
    jpeg: bytes = field(repr=False)
    caption: Callable[[str], str]


@dataclass(frozen=True)
class Remove:
    incident: str
    keys: tuple[str, ...]


Op = Post | Edit | Tile | Remove


class Lane(IntEnum):
    LINK = 0
    MESSAGE = 1
    TILE = 2


@dataclass(eq=False)
class Item:
    """One operation for one room, rendered in the room's language."""

    lane: Lane
    kind: str  # post, ask, edit, tile, remove
    incident: str | None
    key: str
    msg: Outgoing | None = None
    keys: tuple[str, ...] = ()
    jpeg: bytes | None = field(default=None, repr=False)
    caption: str = ""
    closing: bool = False
    seq: int = 0
    row: int | None = None
    failures: int = 0
    first_failure: datetime | None = None
    queued_at: datetime | None = None

    @property
    def durable(self) -> bool:
        # Images never go to disk; the link's text is a bearer credential, re-derived at start instead.
        return self.kind != "tile" and self.key != LINK_KEY

    @classmethod
    def of(cls, op: Op, lang: str) -> Item:
        if isinstance(op, Tile):
            return cls(Lane.TILE, "tile", op.incident, "tile", jpeg=op.jpeg, caption=op.caption(lang))
        if isinstance(op, Remove):
            return cls(Lane.MESSAGE, "remove", op.incident, "remove", keys=op.keys, closing=True)
        lane = Lane.LINK if op.key == LINK_KEY else Lane.MESSAGE
        kind = "edit" if isinstance(op, Edit) else ("ask" if op.confirm else "post")
        return cls(lane, kind, op.incident, op.key, msg=op.render(lang), closing=op.closing)

    def to_row(self, room: str) -> Row:
        body: dict[str, Any] = {"keys": list(self.keys)}
        if self.msg is not None:
            body["msg"] = [self.msg.text, self.msg.html, [[b.label, b.data] for b in self.msg.buttons]]
        return Row(room, int(self.lane), self.incident, self.kind, self.key, body, self.closing)

    @classmethod
    def from_row(cls, row: Row) -> Item:
        m = row.body.get("msg")
        msg = Outgoing(m[0], m[1], tuple(Button(b[0], b[1]) for b in m[2])) if m else None
        return cls(Lane(row.lane), row.kind, row.incident, row.key, msg=msg, keys=tuple(row.body.get("keys", ())),
                   closing=row.closing, row=row.id)


@dataclass
class RoomHealth:
    ok: bool = True
    last_error: str | None = None
    failed_at: datetime | None = None
    delivered: int = 0
    failures: int = 0
    links_failing: dict[str, datetime] = field(default_factory=dict)  # incident → first failed attempt


OnFailure = Callable[[Room, Item, BaseException], None]


class Outbox:
    def __init__(
        self,
        room: Room,
        store: Store,
        journal: Journal,
        on_failure: OnFailure,
        clock: Callable[[], datetime],
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout: float = 90.0,  # Telegram may ask to wait out a flood for tens of seconds
        give_up: timedelta = timedelta(hours=24),  # only for a message that outlives every incident
    ) -> None:
        self.room = room
        self.health = RoomHealth()
        self._store = store
        self._journal = journal
        self._on_failure = on_failure
        self._clock = clock
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._timeout = timeout
        self._give_up = give_up
        self._pending: list[Item] = []
        self._current: Item | None = None
        self._closed: set[str] = set()
        self._seq = itertools.count(1)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # --- lifecycle ---

    def start(self) -> None:
        self._load()
        self._task = asyncio.create_task(self._run(), name=f"outbox:{self.room.room_id}")

    async def stop(self, grace: float = 0.5) -> None:
        """Stop between operations when possible: one cut mid-send could be sent again after a restart."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def drain(self) -> None:
        await self._idle.wait()

    def _load(self) -> None:
        """Resume what was still owed before a restart; what an ended incident no longer needs is dropped."""
        try:
            rows = self._journal.pending(self.room.room_id)
        except sqlite3.Error as exc:
            logger.error("room %s: cannot read the pending messages (%s)", self.room.room_id, exc)
            return
        stale = []
        for row in rows:
            if row.incident is not None and not row.closing and not self._is_open(row.incident):
                stale.append(row.id or 0)
                continue
            self._push(Item.from_row(row))
        self._forget(stale)

    def _is_open(self, incident: str) -> bool:
        inc = self._store.get(incident)
        return inc is not None and inc.state in (State.PENDING, State.ACTIVE)

    # --- queueing ---

    def admit(self, op: Op) -> Item | None:
        """The new item to queue for ``op``, or None when it is refused or folded into a queued one."""
        item = Item.of(op, self.room.lang)
        if item.incident in self._closed and not item.closing:
            return None  # an ended incident gets nothing but its closing steps
        if item.kind == "tile":
            # A newer tile makes a queued one obsolete (the one on the wire finishes first).
            self._pending = [i for i in self._pending if not (i.kind == "tile" and i.incident == item.incident)]
        elif item.kind == "edit":
            for queued in self._pending:
                if queued is self._current:
                    continue  # already on the wire with its text: the edit must follow it
                if queued.kind in ("post", "ask", "edit") and (queued.incident, queued.key) == (item.incident, item.key):
                    self._fold(queued, item)
                    return None
        return item

    def _fold(self, queued: Item, edit: Item) -> None:
        queued.msg = edit.msg
        if queued.kind == "ask" and not (edit.msg and edit.msg.buttons):
            queued.kind = "post"  # the request was closed before it was ever shown: a plain message
        if queued.row is not None:
            try:
                self._journal.update_body(queued.row, queued.kind, queued.to_row(self.room.room_id).body)
            except sqlite3.Error as exc:
                logger.error("room %s: cannot update a pending message (%s)", self.room.room_id, exc)

    def accept(self, item: Item) -> None:
        self._push(item)

    def _push(self, item: Item) -> None:
        item.seq = next(self._seq)
        item.queued_at = item.queued_at or self._clock()
        self._pending.append(item)
        self._idle.clear()
        self._wake.set()

    def cancel_incident(self, incident: str) -> list[int]:
        """The incident ended: drop what is queued for it (but its closing steps); the journal rows to delete."""
        self._closed.add(incident)
        gone = [i for i in self._pending if i.incident == incident and not i.closing]
        self._pending = [i for i in self._pending if i not in gone]
        self.health.links_failing.pop(incident, None)
        self._refresh_ok()
        if not self._pending and self._current is None:
            self._idle.set()
        self._wake.set()
        return [i.row for i in gone if i.row is not None]

    def pending_links(self) -> list[Item]:
        """Links not delivered yet (queued or on the wire)."""
        current = [self._current] if self._current is not None else []
        return [i for i in self._pending + current if i.lane is Lane.LINK and i.kind != "edit"]

    # --- delivery ---

    def _head(self) -> Item | None:
        return min(self._pending, key=lambda i: (i.lane, i.seq), default=None)

    async def _run(self) -> None:
        while not self._stopping:
            item = self._head()
            if item is None:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            self._current = item
            try:
                await asyncio.wait_for(self._once(item), self._timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one operation failing must not stop the room's outbox
                self._current = None
                if self._failed(item, exc):
                    await self._backoff(item)
                continue
            self._current = None
            self._done(item)

    async def _backoff(self, item: Item) -> None:
        """Wait before the next attempt; a new head (the link arriving) is tried at once."""
        delay = min(self._base_delay * 2 ** min(item.failures - 1, 20), self._max_delay)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (left := deadline - loop.time()) > 0:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return
            if self._stopping or self._head() is not item:
                return

    def _done(self, item: Item) -> None:
        if item in self._pending:
            self._pending.remove(item)
        if item.row is not None:
            self._forget([item.row])
        self.health.delivered += 1
        if item.lane is Lane.LINK and item.incident is not None:
            self.health.links_failing.pop(item.incident, None)
        self._refresh_ok()

    def _failed(self, item: Item, exc: BaseException) -> bool:
        """Record a failed attempt; False when the item is given up (it outlived every incident)."""
        now = self._clock()
        item.failures += 1
        item.first_failure = item.first_failure or now
        h = self.health
        h.ok = False
        h.last_error = f"{type(exc).__name__}: {exc}"[:300]
        h.failed_at = now
        h.failures += 1
        if item.lane is Lane.LINK and item.incident is not None and item in self._pending:
            h.links_failing.setdefault(item.incident, now)
        logger.warning("room %s: %s %s failed (attempt %d): %s", self.room.room_id, item.kind, item.key,
                       item.failures, h.last_error)
        # The registre hears of an operation that keeps failing, not of every passing hiccup (an
        # overdue link is recorded on its own, by the link watch).
        if item.failures == REPORT_AFTER or item.failures % 50 == 0:
            try:
                self._on_failure(self.room, item, exc)
            except Exception:
                logger.exception("room %s: could not report a delivery failure", self.room.room_id)
        if now - item.first_failure >= self._give_up and item in self._pending:
            logger.error("room %s: giving up on %s %s after %s", self.room.room_id, item.kind, item.key, self._give_up)
            self._pending.remove(item)
            self._forget([item.row] if item.row is not None else [])
            return False
        return True

    def _refresh_ok(self) -> None:
        self.health.ok = not self.health.links_failing

    def _forget(self, rows: Iterable[int]) -> None:
        try:
            self._journal.delete(rows)
        except sqlite3.Error as exc:
            logger.error("room %s: cannot clear delivered messages from the journal (%s)", self.room.room_id, exc)

    async def _once(self, item: Item) -> None:
        room, rid = self.room, self.room.room_id
        if item.kind in ("post", "ask") or (item.kind == "edit" and item.key == LINK_KEY
                                              and self._store.get_ref(item.incident or "", rid, item.key) is None):
            # A link re-issue in a room that never got the link: post it (an edit would do nothing).
            assert item.msg is not None  # noqa: S101 - posts carry their message
            ref = await (room.ask_confirmation(item.incident or "", item.msg) if item.kind == "ask"
                         else room.send_text(item.msg))
            if item.incident is not None:
                self._keep(lambda: self._store.set_ref(item.incident or "", rid, item.key, ref))
        elif item.kind == "edit":
            old = self._store.get_ref(item.incident or "", rid, item.key)
            if old is not None and item.msg is not None:
                await room.edit_text(old, item.msg)
        elif item.kind == "tile":
            assert item.jpeg is not None  # noqa: S101
            tile = self._store.get_ref(item.incident or "", rid, "tile")
            new = await (room.replace_tile(tile, item.jpeg, item.caption) if tile
                         else room.send_tile(item.jpeg, item.caption))
            self._keep(lambda: self._store.set_ref(item.incident or "", rid, "tile", new))
        else:
            for key, ref in self._store.live_refs(item.incident or "", rid).items():
                if key in item.keys:
                    await room.remove(ref)
                    self._keep(lambda k=key: self._store.drop_ref(item.incident or "", rid, k))  # type: ignore[misc]

    def _keep(self, write: Callable[[], None]) -> None:
        # The room already has the message: a storage error here must not make a retry post it twice.
        try:
            write()
        except sqlite3.Error as exc:
            logger.error("room %s: delivered, but its reference could not be stored (%s)", self.room.room_id, exc)


class Fanout:
    """All rooms' outboxes; the desk only enqueues and never waits on a room."""

    def __init__(self, rooms: list[Room], store: Store, on_failure: OnFailure, clock: Callable[[], datetime],
                 journal: Journal | None = None, **outbox_kw: Any) -> None:
        self.journal = journal if journal is not None else Journal.memory()
        self.outboxes = [Outbox(r, store, self.journal, on_failure, clock, **outbox_kw) for r in rooms]

    @property
    def room_ids(self) -> set[str]:
        return {o.room.room_id for o in self.outboxes}

    def start(self) -> None:
        for o in self.outboxes:
            o.start()

    async def stop(self) -> None:
        await asyncio.gather(*(o.stop() for o in self.outboxes))

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
