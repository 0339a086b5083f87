"""The incident desk: applies the convention's decisions and performs what follows.

It owns the incident timers (confirmation windows, reminders, expiry, link re-issue) on the
one APScheduler, writes the registre, persists state for restarts, and hands messages to the
rooms' outboxes. Every public method takes the desk's lock, so two commands never interleave
their state changes; room delivery happens after, in the outboxes, never under the lock.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NoReturn, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .alarm import AlarmIn, AlarmResult
from .closing import Closer
from .desk_port import PortLookups
from .fanout import Fanout
from .kinds import Kind, Recorder
from .linkwatch import LINK_OVERDUE, LinkWatch
from .locales import Msg, phrase, reason_text, t
from .messages import Renderer, Reply
from .notices import announce
from .outbox import Edit, Post, Tile
from .policy import incident as sm
from .policy import reasons as rs
from .policy.convention import Convention, Person
from .policy.decide import Decision, Outcome, Trigger, evaluate
from .policy.incident import Incident, Source, State
from .policy.reasons import UNKNOWN_PERSON, WRONG_ROOM, Reason, Refused
from .policy.zones import NO_FOCUS, Focus
from .status import status_line, status_text
from .store import Store

logger = logging.getLogger(__name__)


class LinkIssuer(Protocol):
    def issue_link(self, incident: Incident) -> str: ...

    def revoke_incident(self, incident_id: str) -> int: ...

    def unlock(self, person: Person, actor: str) -> int: ...


class Audit(Recorder, Protocol):
    def records(self, incident: str | None = None, *, drill: bool | None = None) -> list[Any]: ...


PAGE = "page"  # the room name of what a signed-in viewer does on the page


@dataclass(frozen=True)
class DeskConfig:
    drill_category: str = "attaque_armee"
    sweep_seconds: float = 30.0
    closing_retry_max: float = 30.0  # seconds between attempts to record an end, at most
    link_overdue: timedelta = LINK_OVERDUE  # the other rooms are told after this
    link_watch_seconds: float = 5.0


class Desk(PortLookups):
    def __init__(
        self,
        conv: Convention,
        store: Store,
        registre: Audit,
        fanout: Fanout,
        links: LinkIssuer,
        scheduler: AsyncIOScheduler,
        renderer: Renderer,
        clock: Callable[[], datetime],
        camera_names: Mapping[str, str],
        config: DeskConfig = DeskConfig(),
        status_lines: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.conv = conv
        self.store = store
        self.registre = registre
        self.fanout = fanout
        self.links = links
        self.scheduler = scheduler
        self.render = renderer
        self.clock = clock
        self.camera_names = dict(camera_names)
        self.config = config
        self._lock = asyncio.Lock()
        self._warned_on: str | None = None
        # Lines other services add to /status (the cameras' line), given by the composition root.
        self._status_lines = status_lines
        self.closer = Closer(store, registre.records, self._audit, fanout, fanout.journal, renderer,
                             config.closing_retry_max, str(getattr(registre, "path", "registre")), camera_names)
        self.linkwatch = LinkWatch(fanout, store, registre.append, renderer, clock, links.issue_link, config.link_overdue)

    # ---------- lifecycle ----------

    def post_links_owed(self) -> None:
        """Each room that lacks the link of an open access gets it (after a restart; a console attaching)."""
        for inc in (i for i in self.open_incidents() if i.grants_access(self.clock())):
            self.linkwatch.post_missing(inc)

    async def start(self) -> None:
        """Finish interrupted closings, restore open incidents, re-arm their timers, post links still owed."""
        for inc, revoked in self.closer.interrupted():
            self._revoke(inc)
            self.closer.close(inc, revoked)
        restored = self.open_incidents()
        for inc in restored:  # timers first, then the links still owed
            self._arm(inc)
        self.post_links_owed()
        if restored:
            logger.info("restored %d open incident(s): %s", len(restored), ", ".join(i.id for i in restored))
        self.scheduler.add_job(self.linkwatch.check, "interval", seconds=self.config.link_watch_seconds,
                               id="desk:links", replace_existing=True, coalesce=True, max_instances=1)
        self.scheduler.add_job(self.sweep, "interval", seconds=self.config.sweep_seconds, id="desk:sweep",
                               replace_existing=True, coalesce=True, max_instances=1)
        # The rooms are warned every day from 4 months before the authorisation lapses.
        self.scheduler.add_job(self.check_authorisation, "interval", hours=6, id="desk:authorisation",
                               replace_existing=True, coalesce=True, max_instances=1)
        await self.sweep()
        self.check_authorisation()

    async def stop(self) -> None:
        await self.closer.stop()

    # ---------- queries ----------

    def incident(self, incident_id: str) -> Incident | None:
        return self.store.get(incident_id)

    def open_incidents(self) -> list[Incident]:
        # An end whose saving storage refused is still "open" in the file, but access is closed.
        return [i for i in self.store.open_incidents() if i.id not in self.closer.pending]

    def status(self, brief: bool = False) -> Reply:
        now, incs, health, closing = self.clock(), self.open_incidents(), self.fanout.health(), self.closer.pending
        if brief:  # this venue's one line, in a room shared by venues, with how many watch now
            watching = self.watching_now() if self.watching_now is not None else 0
            return Reply.of(lambda lang: status_line(lang, self.render, now, incs, watching))
        extra, auth = self._status_lines, self.conv.authorisation
        return Reply.of(lambda lang: status_text(lang, self.render, now, incs, health, sorted(closing), auth, extra))

    # ---------- commands from people ----------

    async def alert(self, person: Person | None, room: str, category: str | None, details: str = "",
                    drill: bool = False) -> Reply:
        async with self._lock:
            now = self.clock()
            actor = self._check_actor(person, room, "alert", drill)
            if drill and actor.role not in self.conv.drill_roles:
                self._refuse(rs.NOT_DRILL_ROLE, actor.id, room, drill, command="drill")
            if drill and not category:
                category = self.config.drill_category
            trig = Trigger(Source.PERSON, actor.id, now, category=category, room=room, details=details, drill=drill)
            decision = self._decide(trig, now, focus=self.conv.zones.focus(details))
            return self._apply(decision, trig, now)

    async def confirm(self, person: Person | None, room: str, incident_id: str | None = None) -> Reply:
        async with self._lock:
            now = self.clock()
            actor = self._check_actor(person, room, "confirm", False)
            inc = self._target(incident_id, {State.PENDING}, actor.id, room)
            try:
                done = sm.confirm(self.conv, inc, actor, now)
            except Refused as r:
                self._refuse(r.reason, actor.id, room, inc.drill, incident=inc.id, command="confirm")
            self.store.save(done)
            self._audit(Kind.CONFIRMATION, done, actor.id, {"room": room})
            self.fanout.put(Edit(done.id, "confirm", lambda lang: self.render.confirm_closed(done, lang)))
            self._activated(done, now)
            return Reply.of(lambda lang: self._opened_reply(done, lang))

    async def extend(self, person: Person | None, room: str, minutes: int, incident_id: str | None = None) -> Reply:
        async with self._lock:
            now = self.clock()
            actor = self._check_actor(person, room, "extend", False)
            inc = self._target(incident_id, {State.ACTIVE}, actor.id, room)
            try:
                done = sm.extend(self.conv, inc, actor, minutes, now)
            except Refused as r:
                self._refuse(r.reason, actor.id, room, inc.drill, incident=inc.id, command="extend")
            self.store.save(done)
            self._audit(Kind.EXTENSION, done, actor.id, {"minutes": minutes, "ends_at": done.ends_at, "room": room})
            self._arm(done)
            n = len(done.extensions)
            self.fanout.put(Post(done.id, f"extension:{n}", lambda lang: self.render.extended(done, lang)))
            self.linkwatch.edit(done, now)
            return Reply.of(lambda lang: self.render.extended(done, lang).text)

    async def end(self, person: Person | None, room: str, incident_id: str | None = None) -> Reply:
        async with self._lock:
            now = self.clock()
            actor = self._check_actor(person, room, "end", False)
            inc = self._target(incident_id, {State.PENDING, State.ACTIVE}, actor.id, room)
            try:
                done = sm.end(self.conv, inc, actor, now)
            except Refused as r:
                self._refuse(r.reason, actor.id, room, inc.drill, incident=inc.id, command="end")
            self._closed(done)
            return Reply.of(lambda lang: t(lang, Msg.ENDED_REPLY, incident=done.id))

    async def record_request(self, person: Person | None, room: str, requisition: str) -> Reply:
        async with self._lock:
            actor = self._check_actor(person, room, "record", False)
            self.registre.append(Kind.RECORDING_REQUEST, actor=actor.id,
                                 details={"room": room, "requisition": requisition[:100] or None})
            raise Refused(rs.RECORDING)

    async def unlock(self, person: Person | None, room: str, who: str) -> Reply:
        """``/debloquer``: those who may end access may also lift an officer's sign-in locks."""
        async with self._lock:
            actor = self._check_actor(person, room, "unlock", False)
            if actor.role not in self.conv.end_roles:
                self._refuse(rs.NOT_UNLOCK_ROLE, actor.id, room, False, command="unlock")
            target = self.conv.identify(who)
            if target is None:
                self._refuse(rs.UNLOCK_WHO, actor.id, room, False, command="unlock", requested=who[:40])
            n = self.links.unlock(target, actor.id)
            return Reply.of(phrase(Msg.UNLOCKED_REPLY, name=target.name, locks=n))

    async def refocus(self, person: Person | None, room: str, where: str, incident_id: str | None = None) -> Reply:
        """``/zone Hall B`` or the page's zone menu (room ``PAGE``): the officers look there first (police only)."""
        async with self._lock:
            actor = person if room == PAGE and person else self._check_actor(person, room, "zone", False)
            inc = self._target(incident_id, {State.ACTIVE}, actor.id, room)
            try:
                done = sm.refocus(self.conv, inc, actor, self.conv.zones.focus(where))
            except Refused as r:
                self._refuse(r.reason, actor.id, room, inc.drill, incident=inc.id, command="zone")
            if done.focus != inc.focus:  # the same zone again (a double tap): nothing to record or announce
                self.store.save(done)
                self._audit(Kind.FOCUS, done, actor.id, {"zone": done.focus.zone, "text": done.focus.text or None,
                                                         "room": room, "before": inc.focus.zone or inc.focus.text or None})
                self.fanout.put(Post(done.id, f"focus:{self.clock().timestamp()}", self.render.focus_notice(done, actor.id)))
            return Reply.of(lambda lang: t(lang, Msg.FOCUS_REPLY, incident=done.id, zone=self.render.zone(done, lang)))

    def refuse_stranger(self, actor: str, room: str, reason: str, **details: Any) -> None:
        """A message from someone or somewhere the convention does not know: audited, nothing else."""
        self.registre.append(Kind.REFUSAL, actor=actor, details={"reason": reason, "room": room, **details})

    # ---------- alarms ----------

    async def alarm(self, alarm: AlarmIn) -> AlarmResult:
        async with self._lock:
            now = self.clock()
            details = alarm.zone or alarm.message
            trig = Trigger(Source.ALARM, alarm.source, now, alarm_type=alarm.alarm_type, details=details[:200])
            try:
                focus = Focus(alarm.zone_id) if self.conv.zones.get(alarm.zone_id) else self.conv.zones.focus(alarm.zone)
                decision = self._decide(trig, now, delivery=alarm.delivery_id, focus=focus)
                self._apply(decision, trig, now)
            except Refused as r:
                return AlarmResult(False, None, "refused", r.reason.code, reason_text(r.reason, "fr"))
            inc = decision.incident
            return AlarmResult(True, inc.id if inc else None, decision.outcome.value)

    # ---------- timers ----------

    async def sweep(self) -> None:
        """Close what time has closed: lapsed confirmations, expired access, a lapsed authorisation."""
        async with self._lock:
            now = self.clock()
            for inc in self.open_incidents():
                if not self.conv.authorisation.in_force(now):
                    self._closed(sm.close(inc, now, State.ENDED, "authorisation_lapsed", "system"))
                    continue
                lapsed = sm.lapse(inc, now)
                if lapsed is not inc:
                    self.store.save(lapsed)
                    self._audit(Kind.REFUSAL, lapsed, "system", {"reason": "not_confirmed"})
                    self._drop_jobs(lapsed.id)
                    self.fanout.put(Edit(lapsed.id, "confirm", partial(self.render.confirm_closed, lapsed)))
                    continue
                expired = sm.expire(inc, now)
                if expired is not inc:
                    self._closed(expired)

    async def _remind(self, incident_id: str) -> None:
        async with self._lock:
            inc = self.store.get(incident_id)
            now = self.clock()
            if inc is None or not inc.grants_access(now):
                return
            self._audit(Kind.REMINDER, inc, "system", {"ends_at": inc.ends_at})
            n = len(inc.extensions)
            self.fanout.put(Post(inc.id, f"reminder:{n}", lambda lang: self.render.reminder(inc, lang, now)))

    async def _relink(self, incident_id: str) -> None:
        async with self._lock:
            inc = self.store.get(incident_id)
            now = self.clock()
            if inc is not None and inc.grants_access(now):
                self.linkwatch.forget(inc.id)
                self.linkwatch.edit(inc, now)

    def check_authorisation(self) -> None:
        now = self.clock()
        today = now.date().isoformat()
        if self.conv.authorisation.expires_soon(now) and self._warned_on != today:
            self._warned_on = today
            self.registre.append(Kind.AUTHORISATION_WARNING, actor="system",
                                 details={"reference": self.conv.authorisation.reference,
                                          "expires": self.conv.authorisation.expires.isoformat()})
            self.fanout.put(Post(None, "authorisation", self.render.authorisation_warning))

    def announce(self, kind: Kind, text: Callable[[str], str], **details: Any) -> None:
        """A notice for every room outside any incident (alarm panel silent, back, …), audited in French."""
        announce(self.registre, self.fanout, self.render, kind, text, **details)

    def post_tile(self, incident_id: str, jpeg: bytes, caption: Callable[[str], str]) -> None:
        self.fanout.put(Tile(incident_id, jpeg, lambda lang: self.render.title(lang) + caption(lang)))

    # ---------- internals ----------

    def _check_actor(self, person: Person | None, room: str, command: str, drill: bool) -> Person:
        if room not in self.fanout.room_ids:
            self._refuse(WRONG_ROOM, person.id if person else "unknown", room, drill, command=command)
        if person is None:
            self._refuse(UNKNOWN_PERSON, "unknown", room, drill, command=command)
        return person

    def _refuse(self, reason: Reason, actor: str, room: str, drill: bool, incident: str | None = None, **details: Any) -> NoReturn:
        try:
            self.registre.append(Kind.REFUSAL, incident=incident, actor=actor, drill=drill,
                                 details={"reason": reason.code, "room": room, **details})
        except sqlite3.Error as exc:  # the person still gets the answer; the log says what was lost
            logger.error("refusal %s not recorded: %s", reason.code, exc)
        raise Refused(reason)

    def _target(self, incident_id: str | None, states: set[State], actor: str, room: str) -> Incident:
        open_ = [i for i in self.open_incidents() if i.state in states]
        if incident_id:
            found = next((i for i in open_ if i.id.upper() == incident_id.upper()), None)
            if found is None:
                self._refuse(rs.NO_SUCH_INCIDENT, actor, room, False, requested=incident_id[:40])
            return found
        # Without a number, a real incident always comes first: a drill never shadows it.
        open_.sort(key=lambda i: (i.drill, i.opened_at))
        if not open_:
            reason = sm.NOT_PENDING if states == {State.PENDING} else sm.NOT_ACTIVE
            self._refuse(reason, actor, room, False)
        return open_[0]

    def _decide(self, trig: Trigger, now: datetime, delivery: str | None = None, focus: Focus = NO_FOCUS) -> Decision:
        current = next((i for i in self.open_incidents() if i.drill == trig.drill), None)
        decision = evaluate(self.conv, trig, current, now, new_id="new")
        base = {"source": trig.source.value, "room": trig.room, "category": trig.category,
                "alarm_type": trig.alarm_type, "details": trig.details, "delivery": delivery, "zone": focus.zone}
        base = {k: v for k, v in base.items() if v}
        if decision.refused:
            reason = decision.reasons[0]
            self.registre.append(Kind.REFUSAL, actor=trig.actor, drill=trig.drill,
                                 details={**base, "reason": reason.code, "text": reason_text(reason, "fr")})
            raise Refused(reason)
        inc = decision.incident
        assert inc is not None  # noqa: S101 - granted decisions carry the incident
        if inc.id == "new":
            inc = replace(inc, id=self._new_id(trig.drill, now), focus=focus)
            decision = replace(decision, incident=inc)
        self._audit(Kind.TRIGGER, inc, trig.actor, base)
        self._audit(Kind.DECISION, inc, "system", {"outcome": decision.outcome.value,
                                                "reasons": [reason_text(r, "fr") for r in decision.reasons]})
        return decision

    def _apply(self, decision: Decision, trig: Trigger, now: datetime) -> Reply:
        inc = decision.incident
        assert inc is not None  # noqa: S101
        self.store.save(inc)
        if decision.outcome is Outcome.OPENED:
            self._activated(inc, now)
            return Reply.of(lambda lang: self._opened_reply(inc, lang))
        if decision.outcome is Outcome.PENDING:
            self._audit(Kind.CONFIRMATION_REQUESTED, inc, "system", {"confirm_by": inc.confirm_by, "rule": inc.confirm_rule.value})
            self.fanout.put(Post(inc.id, "confirm", lambda lang: self.render.confirm_request(inc, lang), confirm=True))
            self._arm(inc)
            return Reply.of(lambda lang: self.render.confirm_request(inc, lang).text)
        if decision.outcome is Outcome.CONFIRMED:
            self._audit(Kind.CONFIRMATION, inc, trig.actor, {"by_trigger": True})
            self.fanout.put(Edit(inc.id, "confirm", lambda lang: self.render.confirm_closed(inc, lang)))
            self._activated(inc, now)
            return Reply.of(lambda lang: self._opened_reply(inc, lang))
        self._audit(Kind.JOINED, inc, trig.actor, {"joined": inc.joined_count})
        return Reply.of(lambda lang: t(lang, Msg.JOINED_REPLY, incident=inc.id))

    def _opened_reply(self, inc: Incident, lang: str) -> str:
        drill = t(lang, Msg.DRILL_PREFIX) if inc.drill else ""
        return t(lang, Msg.OPENED_REPLY, drill=drill, incident=inc.id, until=self.render.hm(inc.ends_at))

    def _activated(self, inc: Incident, now: datetime) -> None:
        self._audit(Kind.ACTIVATION, inc, inc.confirmed_by or inc.trigger.actor, {"ends_at": inc.ends_at})
        self.linkwatch.post(inc, now)
        self._arm(inc)

    def _closed(self, inc: Incident) -> None:
        """Access ends now, in memory, whatever the storage does; recording it is the closer's durable job."""
        revoked = self._revoke(inc)
        self._drop_jobs(inc.id)
        if self.catastrophes is not None:  # a catastrophe never outlives its access
            self.catastrophes.access_closed(inc)
        self.closer.close(inc, revoked)

    def _revoke(self, inc: Incident) -> int:
        revoked = self.links.revoke_incident(inc.id)
        self.linkwatch.forget(inc.id)
        self.fanout.cancel_incident(inc.id)
        return revoked

    def _arm(self, inc: Incident) -> None:
        now = self.clock()
        if inc.state is State.PENDING and inc.confirm_by:
            self._job(f"{inc.id}:lapse", self.sweep, inc.confirm_by)
        if inc.state is State.ACTIVE and inc.ends_at:
            self._job(f"{inc.id}:expiry", self.sweep, inc.ends_at)
            remind_at = inc.ends_at - self.conv.limits.reminder_before
            if remind_at > now:
                self._job(f"{inc.id}:reminder", self._remind, remind_at, inc.id)
            every = max(self.conv.limits.link_validity * 2 / 3, timedelta(seconds=30))
            self.scheduler.add_job(self._relink, "interval", seconds=every.total_seconds(), args=[inc.id],
                                   id=f"{inc.id}:relink", replace_existing=True, coalesce=True, max_instances=1)

    def _job(self, job_id: str, fn: Callable[..., Any], at: datetime, *args: Any) -> None:
        self.scheduler.add_job(fn, "date", run_date=at, args=list(args), id=job_id, replace_existing=True,
                               misfire_grace_time=None)

    def _drop_jobs(self, incident_id: str) -> None:
        for suffix in ("lapse", "expiry", "reminder", "relink"):
            job = self.scheduler.get_job(f"{incident_id}:{suffix}")
            if job is not None:
                job.remove()

    def _new_id(self, drill: bool, now: datetime) -> str:
        prefix = "EX" if drill else "INC"
        day = now.astimezone(self.render.tz).strftime("%Y%m%d")
        return f"{prefix}-{day}-{self.store.next_number(prefix + day):02d}"

    def _audit(self, kind: Kind, inc: Incident, actor: str | None, details: dict[str, Any]) -> Any:
        clean = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in details.items()}
        return self.registre.append(kind, incident=inc.id, actor=actor, details=clean, drill=inc.drill)
