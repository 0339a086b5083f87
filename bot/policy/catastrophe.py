"""Catastrophe mode: the only state in which a camera may be steered, and every decision about it.

Declaring a catastrophe is its own act, separate from opening access: a person whose role the
convention names declares it during an access that is open (``declare``); unless the
convention says otherwise the other party confirms it within a short window (``confirm``);
it then lasts at most the convention's maximum, and ends on ``end``, at that maximum
(``expire``), or with the access it belongs to (``close``).

While it is in force, one person at a time holds each PTZ camera (``take``, ``release``; a
role of higher precedence may take over). ``authorise`` is the one gate every camera command
goes through: it refuses unless the catastrophe is confirmed, unexpired, belongs to an access
still granted, the person's role may steer, the camera is a PTZ camera in scope, and the person
holds it. Pure functions over frozen data, like the incident state machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from .convention import ConfirmRule, Convention, Person
from .incident import Incident
from .reasons import Reason, Refused, Why


class CatState(StrEnum):
    PENDING = "pending"  # declared, awaiting the other party's confirmation
    DECLARED = "declared"  # confirmed (or needing no confirmation): cameras may be steered
    ENDED = "ended"
    EXPIRED = "expired"
    LAPSED = "lapsed"  # nobody confirmed in time


OPEN = frozenset({CatState.PENDING, CatState.DECLARED})

NO_CATASTROPHE = Reason(Why.NO_CATASTROPHE)
ALREADY = Reason(Why.CATASTROPHE_ALREADY)
NOT_ALLOWED_DECLARE = Reason(Why.NOT_ALLOWED_DECLARE)
NOT_ACCESS = Reason(Why.NOT_ACTIVE)
SELF_CONFIRM = Reason(Why.SELF_CONFIRM)
COUNTERPARTY = Reason(Why.COUNTERPARTY_REQUIRED)
WINDOW_LAPSED = Reason(Why.CONFIRM_WINDOW_LAPSED)
NOT_ALLOWED_END = Reason(Why.NOT_ALLOWED_END)


@dataclass(frozen=True)
class Catastrophe:
    id: str
    incident: str
    drill: bool
    state: CatState
    declared_by: str
    declared_at: datetime
    confirm_by: datetime | None = None
    confirmed_by: str | None = None
    in_force_from: datetime | None = None
    ends_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    moved: tuple[str, ...] = ()  # cameras steered: each goes back to its home preset at the end

    @property
    def is_open(self) -> bool:
        return self.state in OPEN

    def in_force(self, now: datetime) -> bool:
        return self.state is CatState.DECLARED and self.ends_at is not None and now < self.ends_at


@dataclass(frozen=True)
class Holder:
    person: str
    name: str
    rank: int
    since: datetime


Holders = Mapping[str, Holder]  # camera id → who steers it


def _check_access(inc: Incident | None, now: datetime) -> Incident:
    if inc is None or not inc.grants_access(now):
        raise Refused(NOT_ACCESS)
    return inc


def may_confirm(conv: Convention, cat: Catastrophe, person: Person, declarer: Person | None) -> Reason | None:
    rules = conv.catastrophe
    if person.role not in rules.declare_roles:
        return NOT_ALLOWED_DECLARE
    if person.id == cat.declared_by:
        return SELF_CONFIRM
    if rules.confirm is ConfirmRule.COUNTERPARTY and declarer is not None and person.org is declarer.org:
        return COUNTERPARTY
    return None


def declare(conv: Convention, inc: Incident | None, current: Catastrophe | None, person: Person,
            now: datetime, new_id: str) -> Catastrophe:
    """``/catastrophe``: a new declaration, or the confirmation of one awaiting it."""
    rules = conv.catastrophe
    if person.role not in rules.declare_roles:
        raise Refused(NOT_ALLOWED_DECLARE)
    access = _check_access(inc, now)
    if current is not None and current.incident == access.id:
        if current.in_force(now):
            raise Refused(ALREADY)
        if current.state is CatState.PENDING and current.confirm_by is not None and now < current.confirm_by:
            return confirm(conv, access, current, person, conv.person(current.declared_by), now)
        # otherwise what was there has lapsed or expired: this declaration starts afresh
    cat = Catastrophe(id=new_id, incident=access.id, drill=access.drill, state=CatState.PENDING,
                      declared_by=person.id, declared_at=now, confirm_by=now + rules.confirm_window)
    if rules.confirm is ConfirmRule.NONE:
        return _in_force(conv, access, cat, now, None)
    return cat


def confirm(conv: Convention, inc: Incident | None, cat: Catastrophe | None, person: Person,
            declarer: Person | None, now: datetime) -> Catastrophe:
    if cat is None or cat.state is not CatState.PENDING:
        raise Refused(NO_CATASTROPHE)
    access = _check_access(inc, now)
    if access.id != cat.incident:
        raise Refused(NO_CATASTROPHE)
    if cat.confirm_by is not None and now >= cat.confirm_by:
        raise Refused(WINDOW_LAPSED)
    reason = may_confirm(conv, cat, person, declarer)
    if reason is not None:
        raise Refused(reason)
    return _in_force(conv, access, cat, now, person.id)


def _in_force(conv: Convention, inc: Incident, cat: Catastrophe, now: datetime, by: str | None) -> Catastrophe:
    # The convention's maximum. The access bounds it too, but as it stands at each moment
    # (expire, authorise): an access extended during the attack keeps camera control going.
    ends = now + conv.catastrophe.max_duration
    return replace(cat, state=CatState.DECLARED, confirmed_by=by, in_force_from=now, ends_at=ends, confirm_by=None)


def may_end(conv: Convention, person: Person) -> bool:
    return person.role in conv.catastrophe.declare_roles | conv.end_roles


def end(conv: Convention, cat: Catastrophe | None, person: Person, now: datetime) -> Catastrophe:
    if cat is None or not cat.is_open:
        raise Refused(NO_CATASTROPHE)
    if not may_end(conv, person):
        raise Refused(NOT_ALLOWED_END)
    return close(cat, now, CatState.ENDED, "ended", person.id)


def close(cat: Catastrophe, now: datetime, state: CatState, reason: str, actor: str) -> Catastrophe:
    if not cat.is_open:
        return cat
    return replace(cat, state=state, closed_at=now, close_reason=reason, closed_by=actor)


def lapse(cat: Catastrophe, now: datetime) -> Catastrophe:
    if cat.state is CatState.PENDING and cat.confirm_by is not None and now >= cat.confirm_by:
        return close(cat, now, CatState.LAPSED, "not_confirmed", "system")
    return cat


def expire(cat: Catastrophe, inc: Incident | None, now: datetime) -> Catastrophe:
    """What time or the end of access has closed: a lapsed confirmation, the maximum, access gone."""
    if not cat.is_open:
        return cat
    if inc is None or inc.id != cat.incident or not inc.grants_access(now):
        return close(cat, now, CatState.ENDED, "access_ended", "system")
    if cat.state is CatState.DECLARED and cat.ends_at is not None and now >= cat.ends_at:
        return close(cat, now, CatState.EXPIRED, "expired", "system")
    return lapse(cat, now)


# --- camera control ---


def may_steer(conv: Convention, person: Person) -> bool:
    """Whether ``person``'s role may steer cameras in a catastrophe (and they may view at all)."""
    return conv.catastrophe.rank(person.role) >= 0 and conv.may_view(person)


def _may_steer(conv: Convention, inc: Incident | None, cat: Catastrophe | None, person: Person, camera: str,
               ptz: frozenset[str], now: datetime) -> None:
    if cat is None or not cat.in_force(now) or inc is None or inc.id != cat.incident or not inc.grants_access(now):
        raise Refused(Reason(Why.CAMERA_CONTROL_REFUSED))
    if not may_steer(conv, person):
        raise Refused(Reason(Why.NOT_ALLOWED_CONTROL, {"role": person.role}))
    if camera not in ptz or camera not in conv.cameras_in_scope:
        raise Refused(Reason(Why.NOT_PTZ, {"camera": camera}))


def take(conv: Convention, inc: Incident | None, cat: Catastrophe | None, holders: Holders, person: Person,
         camera: str, ptz: frozenset[str], now: datetime, takeover: bool = False) -> dict[str, Holder]:
    """``person`` steers ``camera`` from now on; a camera held by someone else needs a take-over by a higher role."""
    _may_steer(conv, inc, cat, person, camera, ptz, now)
    rank = conv.catastrophe.rank(person.role)
    held = holders.get(camera)
    if held is not None and held.person != person.id and not (takeover and rank > held.rank):
        raise Refused(Reason(Why.CAMERA_HELD, {"camera": camera, "holder": held.name}))
    if held is not None and held.person == person.id:
        return dict(holders)
    return {**holders, camera: Holder(person.id, person.name, rank, now)}


def release(holders: Holders, person: Person, camera: str) -> dict[str, Holder]:
    held = holders.get(camera)
    if held is None or held.person != person.id:
        raise Refused(Reason(Why.NOT_CONTROLLER, {"camera": camera}))
    return {k: v for k, v in holders.items() if k != camera}


def authorise(conv: Convention, inc: Incident | None, cat: Catastrophe | None, holders: Holders, person: Person,
              camera: str, ptz: frozenset[str], now: datetime) -> None:
    """The gate of every camera command: raises ``Refused`` unless ``person`` may move ``camera`` now."""
    _may_steer(conv, inc, cat, person, camera, ptz, now)
    held = holders.get(camera)
    if held is None or held.person != person.id:
        raise Refused(Reason(Why.NOT_CONTROLLER, {"camera": camera}))


def moved(cat: Catastrophe, camera: str) -> Catastrophe:
    return cat if camera in cat.moved else replace(cat, moved=(*cat.moved, camera))


# --- persistence as plain JSON-compatible data ---

_TIMES = ("declared_at", "confirm_by", "in_force_from", "ends_at", "closed_at")


def to_dict(cat: Catastrophe) -> dict[str, Any]:
    d: dict[str, Any] = {k: getattr(cat, k) for k in cat.__dataclass_fields__}
    for k in _TIMES:
        d[k] = d[k].isoformat() if d[k] is not None else None
    d["state"], d["moved"] = cat.state.value, list(cat.moved)
    return d


def from_dict(d: dict[str, Any]) -> Catastrophe:
    values = dict(d)
    for k in _TIMES:
        values[k] = datetime.fromisoformat(values[k]) if values.get(k) else None
    values["state"], values["moved"] = CatState(values["state"]), tuple(values.get("moved", ()))
    return Catastrophe(**values)
