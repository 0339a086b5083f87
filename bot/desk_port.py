"""What an adapter may ask of the desk: one narrow protocol, and the desk's side of it.

Telegram, Matrix, the console, the DC-09 receiver and the command dispatcher hold a ``DeskPort``,
never the ``Desk`` itself: they can run commands, look people and categories up, record what
they saw and ask the time in the service's words, but they cannot reach the desk's store,
outboxes or scheduler. ``PortLookups`` is the desk's implementation of the look-ups, kept here
so the desk module stays about decisions and timers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from .alarm import AlarmIn, AlarmResult
from .fanout import Fanout
from .kinds import Kind, Recorder
from .messages import Renderer, Reply
from .policy.convention import Category, Convention, Person
from .policy.incident import Incident
from .policy.reasons import CAMERA_CONTROL, Refused
from .store import Store


class DeskPort(Protocol):
    """The desk as the adapters see it."""

    # commands from people (each checks the room and the person against the convention)
    async def alert(self, person: Person | None, room: str, category: str | None, details: str = "",
                    drill: bool = False) -> Reply: ...

    async def confirm(self, person: Person | None, room: str, incident_id: str | None = None) -> Reply: ...

    async def extend(self, person: Person | None, room: str, minutes: int,
                     incident_id: str | None = None) -> Reply: ...

    async def end(self, person: Person | None, room: str, incident_id: str | None = None) -> Reply: ...

    async def record_request(self, person: Person | None, room: str, requisition: str) -> Reply: ...

    async def camera_control(self, person: Person | None, room: str, what: str) -> Reply: ...

    async def declare_catastrophe(self, person: Person | None, room: str) -> Reply: ...

    async def end_catastrophe(self, person: Person | None, room: str) -> Reply: ...

    async def unlock(self, person: Person | None, room: str, who: str) -> Reply: ...

    async def refocus(self, person: Person | None, room: str, where: str, incident_id: str | None = None) -> Reply: ...

    def status(self, brief: bool = False) -> Reply: ...

    def title(self, lang: str) -> str: ...

    def venues(self) -> tuple[str | None, frozenset[str]]: ...

    def refuse_stranger(self, actor: str, room: str, reason: str, **details: Any) -> None: ...

    # alarms
    async def alarm(self, alarm: AlarmIn) -> AlarmResult: ...

    def announce(self, kind: Kind, text: Callable[[str], str], **details: Any) -> None: ...

    # what is open
    def incident(self, incident_id: str) -> Incident | None: ...

    def open_incidents(self) -> list[Incident]: ...

    # look-ups and records
    def person_by_telegram(self, user_id: int) -> Person | None: ...

    def person_by_matrix(self, user_id: str) -> Person | None: ...

    def categories(self) -> tuple[Category, ...]: ...

    def category(self, code: str) -> Category | None: ...

    def is_confirmation_request(self, incident_id: str, room: str, ref: str) -> bool: ...

    def record(self, kind: Kind, *, incident: str | None = None, actor: str | None = None,
               details: Mapping[str, Any] | None = None) -> None: ...

    def hm(self, at: datetime | None) -> str: ...

    async def drain_rooms(self) -> None: ...


class CatastropheDesk(Protocol):
    """Catastrophe mode and camera control (``bot.catastrophe``, ``bot.ptz_control``), as the desk sees them."""

    async def declare(self, person: Person | None, room: str) -> Reply: ...

    async def end(self, person: Person | None, room: str) -> Reply: ...

    async def camera_command(self, person: Person | None, room: str, what: str) -> Reply: ...

    def access_closed(self, inc: Incident) -> None: ...



class PortLookups:
    """The look-up half of ``DeskPort``, over the desk's convention, store, registre and outboxes;
    and the catastrophe commands, handed to catastrophe mode when the composition root set it up."""

    conv: Convention
    store: Store
    registre: Recorder
    render: Renderer
    fanout: Fanout
    catastrophes: CatastropheDesk | None = None
    other_venues: frozenset[str] = frozenset()  # the venues this one shares a room with (their codes)
    watching_now: Callable[[], int] | None = None  # how many people watch an open access now

    def venues(self) -> tuple[str | None, frozenset[str]]:
        """This venue's code and the other venues' it knows (a room's first word may be either)."""
        return self.render.venue, self.other_venues

    async def declare_catastrophe(self, person: Person | None, room: str) -> Reply:
        return await self._catastrophes(person, room, "catastrophe").declare(person, room)

    async def end_catastrophe(self, person: Person | None, room: str) -> Reply:
        return await self._catastrophes(person, room, "end_catastrophe").end(person, room)

    async def camera_control(self, person: Person | None, room: str, what: str) -> Reply:
        return await self._catastrophes(person, room, "camera", what).camera_command(person, room, what)

    def _catastrophes(self, person: Person | None, room: str, command: str, what: str = "") -> CatastropheDesk:
        if self.catastrophes is None:  # no catastrophe mode wired (a bare desk): control is never open
            self.registre.append(Kind.REFUSAL, actor=person.id if person else "unknown",
                                 details={"reason": CAMERA_CONTROL.code, "room": room, "command": command,
                                          "request": what[:100] or None})
            raise Refused(CAMERA_CONTROL)
        return self.catastrophes

    def person_by_telegram(self, user_id: int) -> Person | None:
        return self.conv.by_telegram(user_id)

    def person_by_matrix(self, user_id: str) -> Person | None:
        return self.conv.by_matrix(user_id)

    def categories(self) -> tuple[Category, ...]:
        return tuple(self.conv.categories)

    def category(self, code: str) -> Category | None:
        return self.conv.category(code)

    def is_confirmation_request(self, incident_id: str, room: str, ref: str) -> bool:
        """Whether ``ref`` is the confirmation request posted for ``incident_id`` in ``room``."""
        return self.store.get_ref(incident_id, room, "confirm") == ref

    def record(self, kind: Kind, *, incident: str | None = None, actor: str | None = None,
               details: Mapping[str, Any] | None = None) -> None:
        self.registre.append(kind, incident=incident, actor=actor, details=details)

    def hm(self, at: datetime | None) -> str:
        return self.render.hm(at)

    def title(self, lang: str) -> str:
        """What starts every message of this venue (``[zenith] ``; empty without a venue code)."""
        return self.render.title(lang)

    async def drain_rooms(self) -> None:
        await self.fanout.drain()
