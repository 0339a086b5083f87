"""What the outboxes carry: the operations the desk queues (``Op``), and one room's rendering of one (``Item``).

An ``Item`` is an operation rendered in its room's language, with its lane and delivery state;
the text ones are stored as journal rows (``outbox_store.Row``) until delivered. ``RoomHealth``
is what /status and /healthz say of a room.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from .outbox_store import Row
from .rooms import Button, Outgoing

Render = Callable[[str], Outgoing]  # language → message
LINK_KEY = "link"


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
