"""The incident state machine.

pending confirmation → active → ended | expired; pending → refused when nobody confirms in
time. Every transition is a pure function that returns the new incident (frozen) or raises
``Refused`` with the reason the user sees; the desk performs the I/O that follows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .convention import ConfirmRule, Convention, Org, Person
from .reasons import Reason, Refused, Why
from .zones import Focus


class State(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    ENDED = "ended"
    EXPIRED = "expired"
    REFUSED = "refused"


OPEN_STATES = frozenset({State.PENDING, State.ACTIVE})


class Source(StrEnum):
    PERSON = "person"
    ALARM = "alarm"


@dataclass(frozen=True)
class TriggerInfo:
    """What set things off: who or what, from where, and what they said."""

    source: Source
    actor: str
    category: str
    at: datetime
    room: str | None = None
    details: str = ""
    alarm_type: str | None = None
    org: Org | None = None


@dataclass(frozen=True)
class Extension:
    actor: str
    at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Incident:
    id: str
    drill: bool
    category: str
    trigger: TriggerInfo
    state: State
    opened_at: datetime
    confirm_rule: ConfirmRule = ConfirmRule.NONE
    confirm_by: datetime | None = None
    confirmed_by: str | None = None
    activated_at: datetime | None = None
    ends_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    # An alarm storm can join thousands of triggers: keep a count and the latest one here (the
    # registre holds every trigger), so saving the incident stays O(1).
    joined_count: int = 0
    last_joined: TriggerInfo | None = None
    extensions: tuple[Extension, ...] = ()
    # Where the officers look first: a zone of cameras.toml, or the place as written when it names none.
    focus: Focus = Focus()

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def grants_access(self, now: datetime) -> bool:
        return self.state is State.ACTIVE and self.ends_at is not None and now < self.ends_at


# Reasons shared by the transitions and the decision function.
NOT_PENDING = Reason(Why.NOT_PENDING)
NOT_ACTIVE = Reason(Why.NOT_ACTIVE)
WINDOW_LAPSED = Reason(Why.CONFIRM_WINDOW_LAPSED)
SELF_CONFIRM = Reason(Why.SELF_CONFIRM)
COUNTERPARTY = Reason(Why.COUNTERPARTY_REQUIRED)
NOT_ALLOWED_CONFIRM = Reason(Why.NOT_ALLOWED_CONFIRM)
NOT_ALLOWED_EXTEND = Reason(Why.NOT_ALLOWED_EXTEND)
NOT_ALLOWED_END = Reason(Why.NOT_ALLOWED_END)
AT_MAXIMUM = Reason(Why.AT_MAXIMUM)
BAD_EXTENSION = Reason(Why.BAD_EXTENSION)
NOT_FOCUS_ROLE = Reason(Why.NOT_FOCUS_ROLE)
FOCUS_WHERE = Reason(Why.FOCUS_WHERE)


def open_pending(
    incident_id: str, trigger: TriggerInfo, rule: ConfirmRule, window: timedelta, drill: bool
) -> Incident:
    return Incident(
        id=incident_id,
        drill=drill,
        category=trigger.category,
        trigger=trigger,
        state=State.PENDING,
        opened_at=trigger.at,
        confirm_rule=rule,
        confirm_by=trigger.at + window,
    )


def activate(inc: Incident, now: datetime, duration: timedelta, confirmed_by: str | None = None) -> Incident:
    if inc.state is not State.PENDING:
        raise Refused(NOT_PENDING)
    return replace(
        inc,
        state=State.ACTIVE,
        confirmed_by=confirmed_by,
        activated_at=now,
        ends_at=now + duration,
    )


def may_confirm(conv: Convention, inc: Incident, person: Person) -> Reason | None:
    """None when ``person`` may confirm ``inc``; otherwise why not."""
    if not conv.may_initiate(person):
        return NOT_ALLOWED_CONFIRM
    if inc.trigger.source is Source.PERSON and person.id == inc.trigger.actor:
        return SELF_CONFIRM
    if inc.confirm_rule is ConfirmRule.COUNTERPARTY:
        # An alarm comes from the venue's own system: the counterparty is the police.
        origin = inc.trigger.org or Org.VENUE
        if person.org is origin:
            return COUNTERPARTY
    return None


def confirm(conv: Convention, inc: Incident, person: Person, now: datetime) -> Incident:
    if inc.state is not State.PENDING:
        raise Refused(NOT_PENDING)
    if inc.confirm_by is not None and now >= inc.confirm_by:
        raise Refused(WINDOW_LAPSED)
    reason = may_confirm(conv, inc, person)
    if reason is not None:
        raise Refused(reason)
    return activate(inc, now, conv.limits.default_duration, confirmed_by=person.id)


def lapse(inc: Incident, now: datetime) -> Incident:
    """Close a pending incident nobody confirmed in time (no-op otherwise)."""
    if inc.state is not State.PENDING or inc.confirm_by is None or now < inc.confirm_by:
        return inc
    return replace(inc, state=State.REFUSED, closed_at=now, close_reason="not_confirmed", closed_by="system")


def extend(conv: Convention, inc: Incident, person: Person, minutes: int, now: datetime) -> Incident:
    """Push the end by ``minutes``, never past activation + the convention's maximum."""
    if not inc.grants_access(now):
        raise Refused(NOT_ACTIVE)
    if person.role not in conv.extend_roles:
        raise Refused(NOT_ALLOWED_EXTEND)
    if minutes <= 0:
        raise Refused(BAD_EXTENSION)
    assert inc.activated_at is not None and inc.ends_at is not None  # noqa: S101 - ACTIVE invariant
    ceiling = inc.activated_at + conv.limits.max_duration
    if inc.ends_at >= ceiling:
        raise Refused(AT_MAXIMUM)
    new_end = min(inc.ends_at + timedelta(minutes=minutes), ceiling)
    return replace(inc, ends_at=new_end, extensions=(*inc.extensions, Extension(person.id, now, new_end)))


def end(conv: Convention, inc: Incident, person: Person, now: datetime) -> Incident:
    if not inc.is_open:
        raise Refused(NOT_ACTIVE)
    if person.role not in conv.end_roles:
        raise Refused(NOT_ALLOWED_END)
    return close(inc, now, State.ENDED, "ended", person.id)


def close(inc: Incident, now: datetime, state: State, reason: str, actor: str) -> Incident:
    """Close an open incident for a system reason (expiry, authorisation lapsed, shutdown policy)."""
    if not inc.is_open:
        return inc
    return replace(inc, state=state, closed_at=now, close_reason=reason, closed_by=actor)


def expire(inc: Incident, now: datetime) -> Incident:
    if inc.state is State.ACTIVE and inc.ends_at is not None and now >= inc.ends_at:
        return close(inc, now, State.EXPIRED, "expired", "system")
    return inc


def refocus(conv: Convention, inc: Incident, person: Person, focus: Focus) -> Incident:
    """Look at another zone (or place) first: the police's call, while access is open."""
    if not inc.is_open:
        raise Refused(NOT_ACTIVE)
    if not conv.may_refocus(person):
        raise Refused(NOT_FOCUS_ROLE)
    if focus.empty:
        raise Refused(FOCUS_WHERE)
    return replace(inc, focus=focus)


def join(inc: Incident, trigger: TriggerInfo) -> Incident:
    return replace(inc, joined_count=inc.joined_count + 1, last_joined=trigger)


# --- persistence as plain JSON-compatible data (the store writes it; no I/O here) ---


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _pdt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _trigger_dict(t: TriggerInfo) -> dict[str, Any]:
    return {
        "source": t.source.value,
        "actor": t.actor,
        "category": t.category,
        "at": _dt(t.at),
        "room": t.room,
        "details": t.details,
        "alarm_type": t.alarm_type,
        "org": t.org.value if t.org else None,
    }


def _trigger_from(d: dict[str, Any]) -> TriggerInfo:
    at = _pdt(d["at"])
    assert at is not None  # noqa: S101 - written by _trigger_dict
    return TriggerInfo(
        source=Source(d["source"]),
        actor=d["actor"],
        category=d["category"],
        at=at,
        room=d.get("room"),
        details=d.get("details", ""),
        alarm_type=d.get("alarm_type"),
        org=Org(d["org"]) if d.get("org") else None,
    )


def to_dict(inc: Incident) -> dict[str, Any]:
    return {
        "id": inc.id,
        "drill": inc.drill,
        "category": inc.category,
        "trigger": _trigger_dict(inc.trigger),
        "state": inc.state.value,
        "opened_at": _dt(inc.opened_at),
        "confirm_rule": inc.confirm_rule.value,
        "confirm_by": _dt(inc.confirm_by),
        "confirmed_by": inc.confirmed_by,
        "activated_at": _dt(inc.activated_at),
        "ends_at": _dt(inc.ends_at),
        "closed_at": _dt(inc.closed_at),
        "closed_by": inc.closed_by,
        "close_reason": inc.close_reason,
        "joined_count": inc.joined_count,
        "last_joined": _trigger_dict(inc.last_joined) if inc.last_joined else None,
        "extensions": [{"actor": e.actor, "at": _dt(e.at), "ends_at": _dt(e.ends_at)} for e in inc.extensions],
        "focus": {"zone": inc.focus.zone, "text": inc.focus.text},
    }


def from_dict(d: dict[str, Any]) -> Incident:
    opened = _pdt(d["opened_at"])
    assert opened is not None  # noqa: S101 - written by to_dict
    return Incident(
        id=d["id"],
        drill=bool(d["drill"]),
        category=d["category"],
        trigger=_trigger_from(d["trigger"]),
        state=State(d["state"]),
        opened_at=opened,
        confirm_rule=ConfirmRule(d["confirm_rule"]),
        confirm_by=_pdt(d.get("confirm_by")),
        confirmed_by=d.get("confirmed_by"),
        activated_at=_pdt(d.get("activated_at")),
        ends_at=_pdt(d.get("ends_at")),
        closed_at=_pdt(d.get("closed_at")),
        closed_by=d.get("closed_by"),
        close_reason=d.get("close_reason"),
        joined_count=int(d.get("joined_count", 0)),
        last_joined=_trigger_from(d["last_joined"]) if d.get("last_joined") else None,
        extensions=tuple(
            Extension(e["actor"], _pdt(e["at"]), _pdt(e["ends_at"]))  # type: ignore[arg-type]
            for e in d.get("extensions", [])
        ),
        # absent in incidents saved before zones existed
        focus=Focus(d["focus"].get("zone"), d["focus"].get("text", "")) if d.get("focus") else Focus(),
    )
