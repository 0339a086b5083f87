"""Catastrophe mode, desk side: declarations, their timers, announcements, and the end of control.

``/catastrophe`` declares (or confirms) a catastrophe on the access in force; ``/fin_catastrophe``
ends it; the one APScheduler ends it at its confirmation deadline or its maximum, and the desk
tells it when access ends. Each change is saved (``state.sqlite3``, restored at start), recorded
in the registre and announced in every room. Decisions are the pure policy's
(``bot.policy.catastrophe``); steering cameras is ``bot.ptz_control``'s, which this module
tells when control closes so every moved camera goes back home.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, NoReturn, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .fanout import Fanout
from .kinds import Kind, Recorder
from .locales import Msg, role_label, t
from .messages import Renderer, Reply
from .outbox import Post
from .policy import catastrophe as cm
from .policy.catastrophe import Catastrophe, CatState
from .policy.convention import ConfirmRule, Convention, Org, Person
from .policy.incident import Incident
from .policy.reasons import UNKNOWN_PERSON, WRONG_ROOM, Reason, Refused, Why
from .store import Store

logger = logging.getLogger(__name__)


class Incidents(Protocol):
    """What this module needs of the desk: the accesses, and a refusal recorded like the desk's."""

    def incident(self, incident_id: str) -> Incident | None: ...

    def open_incidents(self) -> list[Incident]: ...


class Control(Protocol):
    """The camera control (``bot.ptz_control``): told when control closes; runs ``/ptz`` from rooms."""

    async def control_closed(self, cat: Catastrophe) -> None: ...

    async def room_command(self, person: Person, room: str, what: str) -> Reply: ...

    async def warm(self) -> None: ...


class Catastrophes:
    def __init__(self, conv: Convention, store: Store, registre: Recorder, fanout: Fanout,
                 scheduler: AsyncIOScheduler, render: Renderer, clock: Callable[[], datetime],
                 incidents: Incidents, room_ids: Callable[[], frozenset[str]]) -> None:
        self.conv, self.store, self.registre, self.fanout = conv, store, registre, fanout
        self.scheduler, self.render, self.clock, self.incidents = scheduler, render, clock, incidents
        self._room_ids = room_ids
        self._current: dict[str, Catastrophe] = {}  # incident id → its latest declaration
        self._lock = asyncio.Lock()
        self.control: Control | None = None  # the camera control, told when a catastrophe closes
        self._closing: set[asyncio.Task[None]] = set()

    # ---------- queries ----------

    def of(self, incident_id: str) -> Catastrophe | None:
        return self._current.get(incident_id)

    def in_force(self, incident_id: str, now: datetime | None = None) -> Catastrophe | None:
        cat = self._current.get(incident_id)
        return cat if cat is not None and cat.in_force(now or self.clock()) else None

    def all_in_force(self) -> list[Catastrophe]:
        now = self.clock()
        return [c for c in self._current.values() if c.in_force(now)]

    def status_lines(self, lang: str, held: Callable[[str], str]) -> list[str]:
        return [t(lang, Msg.CAT_STATUS, incident=c.incident, until=self.render.hm(self._until(c)), held=held(c.incident))
                for c in self.all_in_force()]

    # ---------- lifecycle ----------

    async def start(self) -> None:
        for cat in self.store.catastrophes(open_only=True):
            self._current[cat.incident] = cat
            self._arm(cat)
        self.scheduler.add_job(self.sweep, "interval", seconds=30, id="catastrophe:sweep",
                               replace_existing=True, coalesce=True, max_instances=1)
        await self.sweep()

    async def stop(self) -> None:
        if self._closing:
            await asyncio.wait(self._closing, timeout=5)

    # ---------- commands ----------

    async def declare(self, person: Person | None, room: str) -> Reply:
        async with self._lock:
            actor = self._check(person, room, "catastrophe")
            now = self.clock()
            inc = self._access(now)
            current = self._current.get(inc.id) if inc else None
            n = len(self.store.catastrophes(inc.id)) + 1 if inc else 1
            try:
                cat = cm.declare(self.conv, inc, current, actor, now, f"{inc.id if inc else '-'}:K{n}")
            except Refused as r:
                self._refuse(r, actor.id, room, "catastrophe", inc)
            self._save(cat)
            if cat.state is CatState.PENDING:
                self._record(Kind.CATASTROPHE_DECLARED, cat, actor.id, room=room, confirm_by=cat.confirm_by)
                self.fanout.put(Post(cat.incident, f"{cat.id}:pending", lambda lang: self.render.notice(
                    lambda lg: self._pending_text(cat, lg), lang)))
                return Reply.of(lambda lang: self._pending_text(cat, lang))
            if cat.confirmed_by is None:
                self._record(Kind.CATASTROPHE_DECLARED, cat, actor.id, room=room, ends_at=cat.ends_at)
            else:
                self._record(Kind.CATASTROPHE_CONFIRMED, cat, actor.id, room=room, ends_at=cat.ends_at)
            self.fanout.put(Post(cat.incident, f"{cat.id}:declared", lambda lang: self.render.notice(
                lambda lg: self._declared_text(cat, lg), lang)))
            if self.control is not None:  # connect to the cameras now, not at the first touch
                self.spawn(self.control.warm(), f"{cat.id}:warm")
            return Reply.of(lambda lang: self._declared_text(cat, lang))

    async def end(self, person: Person | None, room: str) -> Reply:
        async with self._lock:
            actor = self._check(person, room, "end_catastrophe")
            now = self.clock()
            open_ = [c for c in self._current.values() if c.is_open]
            open_.sort(key=lambda c: (c.drill, c.declared_at))  # a real one first, as for /fin
            try:
                done = cm.end(self.conv, open_[0] if open_ else None, actor, now)
            except Refused as r:
                self._refuse(r, actor.id, room, "end_catastrophe", None)
            self._closed(done, room=room)
            return Reply.of(lambda lang: t(lang, Msg.CAT_ENDED_REPLY, incident=done.incident))

    async def camera_command(self, person: Person | None, room: str, what: str) -> Reply:
        """``/ptz …`` from a room: the camera control decides; without PTZ cameras it is refused and recorded."""
        actor = self._check(person, room, "camera")
        if self.control is None:
            self._refuse(Refused(Reason(Why.CAMERA_CONTROL_REFUSED)), actor.id, room, "camera", None)
        return await self.control.room_command(actor, room, what)

    def access_closed(self, inc: Incident) -> None:
        """The desk's hook: access ended, so does its catastrophe (now, before anything else)."""
        cat = self._current.get(inc.id)
        if cat is not None and cat.is_open:
            self._closed(cm.close(cat, inc.closed_at or self.clock(), CatState.ENDED, "access_ended", "system"))

    async def sweep(self) -> None:
        async with self._lock:
            now = self.clock()
            for cat in [c for c in self._current.values() if c.is_open]:
                after = cm.expire(cat, self.incidents.incident(cat.incident), now)
                if after is not cat:
                    self._closed(after)

    # ---------- internals ----------

    def _access(self, now: datetime) -> Incident | None:
        granted = [i for i in self.incidents.open_incidents() if i.grants_access(now)]
        granted.sort(key=lambda i: (i.drill, i.opened_at))  # a real access first: a drill never shadows it
        return granted[0] if granted else None

    def _check(self, person: Person | None, room: str, command: str) -> Person:
        if person is None or room not in self._room_ids():
            self.registre.append(Kind.REFUSAL, actor=person.id if person else "unknown",
                                 details={"reason": "wrong_room" if person else "unknown_person", "room": room,
                                          "command": command})
            raise Refused(UNKNOWN_PERSON if person is None else WRONG_ROOM)
        return person

    def _refuse(self, r: Refused, actor: str, room: str, command: str, inc: Incident | None) -> NoReturn:
        self.registre.append(Kind.REFUSAL, incident=inc.id if inc else None, actor=actor, drill=bool(inc and inc.drill),
                             details={"reason": r.reason.code, "room": room, "command": command})
        raise r

    def _save(self, cat: Catastrophe) -> None:
        self._current[cat.incident] = cat
        self.store.save_catastrophe(cat)
        self._arm(cat)

    def save_moved(self, cat: Catastrophe, camera: str) -> Catastrophe:
        """The camera control notes a moved camera, so it goes home at the end even after a restart."""
        done = cm.moved(cat, camera)
        if done is not cat:
            self._current[cat.incident] = done
            self.store.save_catastrophe(done)
        return done

    def _closed(self, cat: Catastrophe, room: str | None = None) -> None:
        self._current[cat.incident] = cat
        self.store.save_catastrophe(cat)
        for suffix in ("deadline",):
            job = self.scheduler.get_job(f"{cat.id}:{suffix}")
            if job is not None:
                job.remove()
        if cat.state is CatState.LAPSED:
            self._record(Kind.CATASTROPHE_ENDED, cat, "system", reason="not_confirmed")
            self.fanout.put(Post(cat.incident, f"{cat.id}:lapsed", lambda lang: self.render.notice(
                lambda lg: t(lg, Msg.CAT_LAPSED, incident=cat.incident), lang), closing=True))
            return
        self._record(Kind.CATASTROPHE_ENDED, cat, cat.closed_by, reason=cat.close_reason, room=room)
        self.fanout.put(Post(cat.incident, f"{cat.id}:ended", lambda lang: self.render.notice(
            lambda lg: self._ended_text(cat, lg), lang), closing=True))
        if self.control is not None:
            self.spawn(self.control.control_closed(cat), f"{cat.id}:home")

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Camera work that follows a decision (homing, a dead-man stop): kept, awaited at stop."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _arm(self, cat: Catastrophe) -> None:
        at = cat.confirm_by if cat.state is CatState.PENDING else cat.ends_at
        if cat.is_open and at is not None:
            self.scheduler.add_job(self.sweep, "date", run_date=at, id=f"{cat.id}:deadline",
                                   replace_existing=True, misfire_grace_time=None)

    def _record(self, kind: Kind, cat: Catastrophe, actor: str | None, **details: Any) -> None:
        clean = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in details.items() if v is not None}
        self.registre.append(kind, incident=cat.incident, actor=actor, drill=cat.drill,
                             details={"catastrophe": cat.id, **clean})

    def _name(self, pid: str | None, lang: str) -> str:
        return self.render.who(pid, lang)

    def _drill(self, cat: Catastrophe, lang: str) -> str:
        return t(lang, Msg.DRILL_PREFIX) if cat.drill else ""

    def _pending_text(self, cat: Catastrophe, lang: str) -> str:
        declarer = self.conv.person(cat.declared_by)
        rule = self.conv.catastrophe.confirm
        if rule is ConfirmRule.COUNTERPARTY and declarer is not None:
            other = Org.POLICE if declarer.org is Org.VENUE else Org.VENUE
            confirmer = self.conv.police if other is Org.POLICE else self.conv.venue
        else:
            confirmer = t(lang, Msg.CONFIRMER_ANY)
        return t(lang, Msg.CAT_PENDING, drill=self._drill(cat, lang), name=self._name(cat.declared_by, lang),
                 incident=cat.incident, confirmer=confirmer, until=self.render.hm(cat.confirm_by))

    def _declared_text(self, cat: Catastrophe, lang: str) -> str:
        confirmed = t(lang, Msg.CONFIRMED_BY, who=self._name(cat.confirmed_by, lang)) if cat.confirmed_by else ""
        roles = ", ".join(role_label(r, lang) for r in self.conv.catastrophe.control_roles)
        return t(lang, Msg.CAT_DECLARED, drill=self._drill(cat, lang), incident=cat.incident,
                 declared=self._name(cat.declared_by, lang), confirmed=f", {confirmed.strip()}" if confirmed.strip() else "", roles=roles,
                 until=self.render.hm(self._until(cat)))

    def _until(self, cat: Catastrophe) -> datetime | None:
        """When control ends as things stand: its maximum, or the end of access if sooner."""
        inc = self.incidents.incident(cat.incident)
        ends = [e for e in (cat.ends_at, inc.ends_at if inc is not None else None) if e is not None]
        return min(ends) if ends else None

    def _ended_text(self, cat: Catastrophe, lang: str) -> str:
        reasons = {"expired": t(lang, Msg.CAT_EXPIRED), "access_ended": t(lang, Msg.CAT_ACCESS_ENDED)}
        reason = reasons.get(cat.close_reason or "") or t(lang, Msg.CAT_BY, name=self._name(cat.closed_by, lang))
        return t(lang, Msg.CAT_ENDED, incident=cat.incident, reason=reason)
