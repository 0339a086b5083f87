"""Delivery to the rooms: one durable, prioritised outbox per room, all rooms in parallel.

Each room has its own workers, so a room that is slow or down never delays another. Within a
room, operations go out by lane, then in the order they were queued:

1. the link (its post, and the edits that re-issue it): what the officers are waiting for;
2. messages, edits and removals (the end's removals and report keep their relative order);
3. the mosaic tile, which only ever replaces the previous one.

The link lane has a worker of its own: a link never waits for another operation of its room
already on the wire (a report waiting for a slot of Telegram's per-group budget). The other
lanes' worker starts nothing while a link is queued and not yet on the wire.

An operation that fails is retried with capped backoff (``max_delay``; 5 s for the link) while it is
owed; it is never dropped after N attempts. One the room refuses for good (``PermanentRoomError``:
the message to edit or delete is gone) is recorded and not retried: a link re-issue then posts a
fresh link, anything else is dropped. It stops being owed when it is delivered, or when
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
from dataclasses import replace
from datetime import datetime, timedelta

from .outbox_items import LINK_KEY, Edit, Item, Lane, Op, Post, Remove, Render, RoomHealth, Tile
from .outbox_store import Journal
from .policy.incident import State
from .rooms import PermanentRoomError, Room
from .store import Store

__all__ = ["LINK_KEY", "Edit", "Item", "Lane", "Op", "Outbox", "Post", "Remove", "Render", "RoomHealth",
           "Tile"]

logger = logging.getLogger(__name__)

REPORT_AFTER = 4  # failed attempts before a room error is written to the registre

OnFailure = Callable[[Room, Item, BaseException], None]
OnLinkPosted = Callable[[Room, str], None]  # a room has the link of this incident


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
        link_max_delay: float = 5.0,  # a room coming back gets its link within seconds, not half a minute
        timeout: float = 90.0,  # Telegram may ask to wait out a flood for tens of seconds
        give_up: timedelta = timedelta(hours=24),  # only for a message that outlives every incident
        on_link_posted: OnLinkPosted | None = None,
    ) -> None:
        self.room = room
        self.health = RoomHealth()
        self._store = store
        self._journal = journal
        self._on_failure = on_failure
        self._on_link_posted = on_link_posted
        self._clock = clock
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._link_max_delay = link_max_delay
        self._timeout = timeout
        self._give_up = give_up
        self._pending: list[Item] = []
        # What each worker has on the wire: True is the link lane's worker, False the other lanes'.
        self._busy: dict[bool, Item] = {}
        self._closed: set[str] = set()
        self._seq = itertools.count(1)
        self._wake = {True: asyncio.Event(), False: asyncio.Event()}
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # --- lifecycle ---

    def start(self) -> None:
        self._load()
        self._tasks = [asyncio.create_task(self._run(link), name=f"outbox:{self.room.room_id}:{name}")
                       for link, name in ((True, "link"), (False, "messages"))]

    async def stop(self, grace: float = 0.5) -> None:
        """Stop between operations when possible: one cut mid-send could be sent again after a restart."""
        if not self._tasks:
            return
        self._stopping = True
        self._poke()
        tasks, self._tasks = self._tasks, []
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.gather(*tasks)), grace)
        except TimeoutError:
            for task in tasks:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        await self._idle.wait()

    @property
    def depth(self) -> int:
        """Operations waiting for this room (on the wire included)."""
        return len(self._pending)

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
            on_wire = list(self._busy.values())
            for queued in self._pending:
                if queued in on_wire:
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
        self._poke()

    def cancel_incident(self, incident: str) -> list[int]:
        """The incident ended: drop what is queued for it (but its closing steps); the journal rows to delete."""
        self._closed.add(incident)
        gone = [i for i in self._pending if i.incident == incident and not i.closing]
        self._pending = [i for i in self._pending if i not in gone]
        self.health.links_failing.pop(incident, None)
        self._refresh_ok()
        self._settle()
        self._poke()
        return [i.row for i in gone if i.row is not None]

    def pending_links(self) -> list[Item]:
        """Links not delivered yet (queued or on the wire)."""
        wire = self._busy.get(True)
        current = [wire] if wire is not None and wire not in self._pending else []
        return [i for i in self._pending + current if i.lane is Lane.LINK and i.kind != "edit"]

    # --- delivery ---

    def _head(self, link: bool) -> Item | None:
        """The next operation for the link worker (``link``) or for the other lanes' worker.

        The link has a worker of its own, so it never waits for an operation on the wire (a report
        waiting for a slot of Telegram's budget). The other worker starts nothing while a link is
        queued and not yet on the wire (the link goes first), and an end's removals wait for the
        link post of their incident under way, so that they remove it too.
        """
        if link:
            return min((i for i in self._pending if i.lane is Lane.LINK), key=lambda i: i.seq, default=None)
        wire = self._busy.get(True)
        if any(i.lane is Lane.LINK and i is not wire for i in self._pending):
            return None
        item = min((i for i in self._pending if i.lane is not Lane.LINK), key=lambda i: (i.lane, i.seq), default=None)
        if item is not None and item.kind == "remove" and wire is not None and wire.incident == item.incident:
            return None
        return item

    def _poke(self) -> None:
        for wake in self._wake.values():
            wake.set()

    def _settle(self) -> None:
        if not self._pending and not self._busy:
            self._idle.set()

    async def _run(self, link: bool) -> None:
        wake = self._wake[link]
        while not self._stopping:
            item = self._head(link)
            if item is None:
                self._settle()
                wake.clear()
                await wake.wait()
                continue
            self._busy[link] = item
            self._poke()  # the other worker may be waiting for this link to be on the wire
            try:
                await asyncio.wait_for(self._once(item), self._timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one operation failing must not stop the room's outbox
                del self._busy[link]
                self._poke()
                if isinstance(exc, PermanentRoomError) and await self._refused(item, exc):
                    continue
                if self._failed(item, exc):
                    await self._backoff(item, link)
                continue
            del self._busy[link]
            self._done(item)
            self._poke()

    async def _backoff(self, item: Item, link: bool) -> None:
        """Wait before the next attempt; a new head (the link arriving) is tried at once."""
        cap = self._link_max_delay if link else self._max_delay
        delay = min(self._base_delay * 2 ** min(item.failures - 1, 20), cap)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        wake = self._wake[link]
        while (left := deadline - loop.time()) > 0:
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), left)
            except TimeoutError:
                return
            if self._stopping or self._head(link) is not item:
                return

    def _done(self, item: Item) -> None:
        if item in self._pending:
            self._pending.remove(item)
        if item.row is not None:
            self._forget([item.row])
        self.health.delivered += 1
        if item.lane is Lane.LINK and item.incident is not None:
            self.health.links_failing.pop(item.incident, None)
            if item.kind == "post" and self._on_link_posted is not None:
                self._on_link_posted(self.room, item.incident)
        self._refresh_ok()

    def _drop(self, item: Item) -> None:
        if item in self._pending:
            self._pending.remove(item)
        self._forget([item.row] if item.row is not None else [])

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
            self._report(item, exc)
        if now - item.first_failure >= self._give_up and item in self._pending:
            logger.error("room %s: giving up on %s %s after %s", self.room.room_id, item.kind, item.key, self._give_up)
            self._drop(item)
            return False
        return True

    async def _refused(self, item: Item, exc: PermanentRoomError) -> bool:
        """The room refused ``item`` for good: recorded at once, then never retried as it was. A
        re-issue of a link message that is gone becomes a fresh link post; the link's post itself
        is never dropped (False: retried like any failure); anything else is dropped."""
        if item.lane is Lane.LINK and item.kind != "edit":
            return False
        item.failures += 1
        logger.warning("room %s: %s %s refused for good: %s", self.room.room_id, item.kind, item.key, exc)
        self._report(item, exc)
        if item.incident is None or item not in self._pending:
            self._drop(item)
            return True
        incident, rid = item.incident, self.room.room_id
        if item.lane is Lane.LINK:
            old = self._store.get_ref(incident, rid, LINK_KEY)
            if old is not None:
                await self._quietly_remove(old)  # a stale link left in the room would only mislead
                self._keep(lambda: self._store.drop_ref(incident, rid, LINK_KEY))
            item.kind = "post"  # tried again at once: the room gets a new link message
            self._poke()
            return True
        if item.kind == "tile":
            self._keep(lambda: self._store.drop_ref(incident, rid, "tile"))  # the next frame posts a new tile
        self._drop(item)
        return True

    async def _quietly_remove(self, ref: str) -> None:
        try:
            await asyncio.wait_for(self.room.remove(ref), self._timeout)
        except Exception as exc:  # best effort: the message may be gone already
            logger.info("room %s: old link message not removed (%s)", self.room.room_id, exc)

    def _report(self, item: Item, exc: BaseException) -> None:
        try:
            self._on_failure(self.room, item, exc)
        except Exception:
            logger.exception("room %s: could not report a delivery failure", self.room.room_id)

    def _refresh_ok(self) -> None:
        self.health.ok = not self.health.links_failing

    def _forget(self, rows: Iterable[int]) -> None:
        try:
            self._journal.delete(rows)
        except sqlite3.Error as exc:
            logger.error("room %s: cannot clear delivered messages from the journal (%s)", self.room.room_id, exc)

    async def _once(self, item: Item) -> None:
        room, rid = self.room, self.room.room_id
        if item.msg is not None and item.row is not None and not item.msg.op:
            # the journal's row names the operation across restarts (see ``Outgoing.op``)
            item.msg = replace(item.msg, op=f"outbox:{item.row}")
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
                    try:
                        await room.remove(ref)
                    except PermanentRoomError as exc:  # gone already, or not ours to delete: nothing to retry
                        self._report(item, exc)
                    self._keep(lambda k=key: self._store.drop_ref(item.incident or "", rid, k))  # type: ignore[misc]

    def _keep(self, write: Callable[[], None]) -> None:
        # The room already has the message: a storage error here must not make a retry post it twice.
        try:
            write()
        except sqlite3.Error as exc:
            logger.error("room %s: delivered, but its reference could not be stored (%s)", self.room.room_id, exc)
