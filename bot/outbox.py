"""Delivery to the rooms: one ordered outbox per room, all rooms in parallel.

Each room gets its own queue and worker task, so a room that is slow or down (Telegram
outage, Synapse restarting) never delays another, while messages to one room keep their order
(the link is posted before it is edited, the tile before it is replaced). Each operation is
retried with backoff; a final failure is logged, audited and shown in /status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .rooms import Outgoing, Room
from .store import Store

logger = logging.getLogger(__name__)

Render = Callable[[str], Outgoing]  # language → message


@dataclass(frozen=True)
class Post:
    incident: str | None
    key: str
    render: Render
    confirm: bool = False


@dataclass(frozen=True)
class Edit:
    incident: str
    key: str
    render: Render


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


@dataclass
class RoomHealth:
    ok: bool = True
    last_error: str | None = None
    failed_at: datetime | None = None
    delivered: int = 0
    failures: int = 0


class Outbox:
    def __init__(
        self,
        room: Room,
        store: Store,
        on_failure: Callable[[Room, Op, BaseException], None],
        clock: Callable[[], datetime],
        attempts: int = 4,
        base_delay: float = 0.5,
        timeout: float = 90.0,  # Telegram may ask to wait out a flood for tens of seconds
    ) -> None:
        self.room = room
        self.health = RoomHealth()
        self._store = store
        self._on_failure = on_failure
        self._clock = clock
        self._attempts = attempts
        self._base_delay = base_delay
        self._timeout = timeout
        self._queue: asyncio.Queue[Op] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox:{self.room.room_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def put(self, op: Op) -> None:
        self._queue.put_nowait(op)

    async def drain(self) -> None:
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            op = await self._queue.get()
            try:
                await self._deliver(op)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one op failing must not stop the room's outbox
                self.health.ok = False
                self.health.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self.health.failed_at = self._clock()
                self.health.failures += 1
                logger.warning("room %s: giving up on %s: %s", self.room.room_id, type(op).__name__, self.health.last_error)
                self._on_failure(self.room, op, exc)
            else:
                self.health.ok = True
                self.health.delivered += 1
            finally:
                self._queue.task_done()

    async def _deliver(self, op: Op) -> None:
        delay = self._base_delay
        for attempt in range(1, self._attempts + 1):
            try:
                await asyncio.wait_for(self._once(op), self._timeout)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt == self._attempts:
                    raise
                logger.info("room %s: %s failed (%s), retry %d in %.1fs", self.room.room_id, type(op).__name__, exc, attempt, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _once(self, op: Op) -> None:
        room, lang, rid = self.room, self.room.lang, self.room.room_id
        if isinstance(op, Post):
            msg = op.render(lang)
            ref = await (room.ask_confirmation(op.incident or "", msg) if op.confirm else room.send_text(msg))
            if op.incident is not None:
                self._store.set_ref(op.incident, rid, op.key, ref)
        elif isinstance(op, Edit):
            old = self._store.get_ref(op.incident, rid, op.key)
            if old is not None:
                await room.edit_text(old, op.render(lang))
        elif isinstance(op, Tile):
            tile = self._store.get_ref(op.incident, rid, "tile")
            caption = op.caption(lang)
            new = await (room.replace_tile(tile, op.jpeg, caption) if tile else room.send_tile(op.jpeg, caption))
            self._store.set_ref(op.incident, rid, "tile", new)
        else:
            for key, ref in self._store.live_refs(op.incident, rid).items():
                if key in op.keys:
                    await room.remove(ref)
                    self._store.drop_ref(op.incident, rid, key)


class Fanout:
    """All rooms' outboxes; the desk only enqueues and never waits on a room."""

    def __init__(self, rooms: list[Room], store: Store, on_failure: Callable[[Room, Op, BaseException], None],
                 clock: Callable[[], datetime], **outbox_kw: Any) -> None:
        self.outboxes = [Outbox(r, store, on_failure, clock, **outbox_kw) for r in rooms]

    @property
    def room_ids(self) -> set[str]:
        return {o.room.room_id for o in self.outboxes}

    def start(self) -> None:
        for o in self.outboxes:
            o.start()

    async def stop(self) -> None:
        await asyncio.gather(*(o.stop() for o in self.outboxes))

    def put(self, op: Op) -> None:
        for o in self.outboxes:
            o.put(op)

    async def drain(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(o.drain() for o in self.outboxes)), timeout)

    def health(self) -> dict[str, RoomHealth]:
        return {o.room.room_id: o.health for o in self.outboxes}
