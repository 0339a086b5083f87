"""The one small interface every chat room implements (Telegram, Matrix, the console).

The desk talks only to this protocol; each transport renders buttons and images its own way
(inline keyboards on Telegram, "reply /confirm or react ✅" on Matrix, typed commands in the
console). Message references are opaque strings the room understands, persisted by the desk so
a restarted bot can still edit or delete what it posted before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Button:
    label: str
    data: str  # what a press sends back, e.g. "confirm:INC-20261125-01" (≤ 64 bytes for Telegram)


@dataclass(frozen=True)
class Outgoing:
    text: str  # plain text, already in the room's language
    html: str  # the same with minimal HTML (<b>, <i>, <a>, <code>, <br>)
    buttons: tuple[Button, ...] = ()
    # Carries the access link: a room that must pace its messages sends this one first.
    urgent: bool = False
    # The outbox's durable id of this operation ("" when it has none): a transport whose sends can
    # be made idempotent (Matrix transaction ids) derives the send's identity from it, so that the
    # same operation replayed after a restart is not posted twice.
    op: str = ""


class PermanentRoomError(Exception):
    """The room refused an operation for good: trying again cannot help (the message to edit or
    delete was removed by hand, is too old, or is not the bot's to change). The outbox does not
    retry it: it writes a room error and, for the link, posts a fresh one."""


@runtime_checkable
class Room(Protocol):
    @property
    def room_id(self) -> str:
        """Stable id such as ``console``, ``telegram:-1001234``, ``matrix:!abc:server``."""
        ...

    @property
    def lang(self) -> str: ...

    async def send_text(self, msg: Outgoing) -> str: ...

    async def edit_text(self, ref: str, msg: Outgoing) -> None: ...

    async def ask_confirmation(self, incident_id: str, msg: Outgoing) -> str: ...

    async def send_tile(self, jpeg: bytes, caption: str) -> str: ...

    async def replace_tile(self, ref: str, jpeg: bytes, caption: str) -> str: ...

    async def remove(self, ref: str) -> None: ...


class ReplyTasks:
    """Answers to people, each sent from a task of its own so that one waiting for the room never
    holds up the next command. At close, those still under way are cancelled: each reports itself
    (log and registre), none is dropped silently."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)  # a reference, or the task could be collected mid-send
        task.add_done_callback(self._tasks.discard)

    async def abandon(self, timeout: float) -> None:
        late = set(self._tasks)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=timeout)
