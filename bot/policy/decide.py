"""The decision: does this trigger open access under the convention, join an open incident, or not?

``evaluate`` is a pure function of the convention, the trigger, the open incident of the same
kind (real or drill) and the time. It returns a ``Decision`` carrying the reasons either way,
so the registre can say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from . import incident as sm
from .convention import ConfirmRule, Convention, Org
from .incident import Incident, Source, TriggerInfo
from .reasons import UNKNOWN_PERSON, Reason, Why


class Outcome(StrEnum):
    OPENED = "opened"  # access active now
    PENDING = "pending"  # waiting for a confirmation
    JOINED = "joined"  # folded into the open incident
    CONFIRMED = "confirmed"  # joined a pending incident and, being a valid confirmation, activated it
    REFUSED = "refused"


@dataclass(frozen=True)
class Trigger:
    source: Source
    actor: str  # roster person id, or alarm source name
    at: datetime
    category: str | None = None  # persons name a category
    alarm_type: str | None = None  # alarms name a type the source maps to a category
    room: str | None = None
    details: str = ""
    drill: bool = False


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reasons: tuple[Reason, ...]
    incident: Incident | None = None

    @property
    def refused(self) -> bool:
        return self.outcome is Outcome.REFUSED


def _refuse(*reasons: Reason) -> Decision:
    return Decision(Outcome.REFUSED, reasons)


def unknown_category(conv: Convention, given: str | None) -> Reason:
    accepted = ", ".join(c.code for c in conv.categories)
    shown = given or "—"
    return Reason(Why.NOT_GRAVE, {"shown": shown, "accepted": accepted})


def evaluate(
    conv: Convention, trigger: Trigger, open_incident: Incident | None, now: datetime, new_id: str
) -> Decision:
    reasons: list[Reason] = []
    org: Org | None
    if trigger.source is Source.PERSON:
        person = conv.person(trigger.actor)
        if person is None:
            return _refuse(UNKNOWN_PERSON)
        category = conv.category(trigger.category or "")
        if category is None:
            return _refuse(unknown_category(conv, trigger.category))
        if not conv.may_initiate(person):
            return _refuse(Reason(Why.NOT_INITIATOR, {"role": person.role}))
        reasons.append(Reason(Why.INITIATOR_OK, {"org": person.org, "name": person.name}))
        rule = conv.person_confirm
        org = person.org
    else:
        source = conv.alarm_source(trigger.actor)
        if source is None:
            return _refuse(Reason(Why.UNKNOWN_SOURCE))
        code = source.types.get(trigger.alarm_type or "")
        category = conv.category(code or "")
        if category is None:
            return _refuse(Reason(Why.UNMAPPED_ALARM, {"alarm_type": trigger.alarm_type, "source": source.label}))
        reasons.append(Reason(Why.ALARM_OK, {"alarm_type": trigger.alarm_type, "source": source.label}))
        rule = source.confirm
        org = Org.VENUE
    reasons.append(Reason(Why.GRAVE_CATEGORY, {"category": category}))

    if not conv.authorisation.in_force(now):
        a = conv.authorisation
        return _refuse(Reason(Why.AUTHORISATION_LAPSED, {"reference": a.reference, "expires": a.expires}))

    info = TriggerInfo(
        source=trigger.source,
        actor=trigger.actor,
        category=category.code,
        at=trigger.at,
        room=trigger.room,
        details=trigger.details,
        alarm_type=trigger.alarm_type,
        org=org,
    )

    if open_incident is not None and open_incident.is_open and open_incident.drill == trigger.drill:
        joined = sm.join(open_incident, info)
        reasons.append(Reason(Why.JOINED, {"incident": open_incident.id}))
        in_time = joined.confirm_by is None or now < joined.confirm_by
        if joined.state is sm.State.PENDING and rule is ConfirmRule.NONE and in_time:
            if trigger.source is Source.PERSON:
                person = conv.person(trigger.actor)
                assert person is not None  # noqa: S101 - checked above
                if sm.may_confirm(conv, joined, person) is None:
                    activated = sm.activate(joined, now, conv.limits.default_duration, confirmed_by=person.id)
                    return Decision(Outcome.CONFIRMED, tuple(reasons), activated)
            else:
                # An alarm whose source opens at once (a hold-up button, a venue request) would have
                # opened access on its own: it must not wait behind an intrusion alarm awaiting its
                # confirmation, and be lost if nobody confirms that one.
                activated = sm.activate(joined, now, conv.limits.default_duration, confirmed_by=trigger.actor)
                return Decision(Outcome.CONFIRMED, tuple(reasons), activated)
        return Decision(Outcome.JOINED, tuple(reasons), joined)

    if rule is ConfirmRule.NONE:
        pending = sm.open_pending(new_id, info, rule, conv.limits.confirm_window, trigger.drill)
        return Decision(Outcome.OPENED, tuple(reasons), sm.activate(pending, now, conv.limits.default_duration))
    reasons.append(Reason(Why.NEEDS_CONFIRMATION))
    return Decision(
        Outcome.PENDING,
        tuple(reasons),
        sm.open_pending(new_id, info, rule, conv.limits.confirm_window, trigger.drill),
    )
