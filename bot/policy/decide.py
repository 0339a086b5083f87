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
from .reasons import Reason

ROLE_LABELS_FR = {
    "security_chief": "chef de la sécurité",
    "director": "directeur",
    "operator": "opérateur vidéo",
    "cic_officer": "officier du CIC",
    "field_commander": "commandant des opérations",
    "viewer": "agent habilité",
}


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
    return Reason(
        "not_grave",
        f"« {shown} » n'est pas une catégorie d'événement grave prévue par la convention. "
        f"Catégories acceptées : {accepted}.",
        f"'{shown}' is not a grave-event category of the convention. Accepted: {accepted}.",
    )


def evaluate(
    conv: Convention, trigger: Trigger, open_incident: Incident | None, now: datetime, new_id: str
) -> Decision:
    reasons: list[Reason] = []
    org: Org | None
    if trigger.source is Source.PERSON:
        person = conv.person(trigger.actor)
        if person is None:
            return _refuse(
                Reason("unknown_person", "Vous n'êtes pas sur la liste de la convention.", "You are not on the convention's roster.")
            )
        category = conv.category(trigger.category or "")
        if category is None:
            return _refuse(unknown_category(conv, trigger.category))
        if not conv.may_initiate(person):
            return _refuse(
                Reason(
                    "not_initiator",
                    f"Votre rôle ({ROLE_LABELS_FR.get(person.role, person.role)}) ne permet pas de déclencher l'accès.",
                    f"Your role ({person.role}) may not trigger access.",
                )
            )
        kind_fr = "demande de l'exploitant" if person.org is Org.VENUE else "initiative de la police"
        kind_en = "venue request" if person.org is Org.VENUE else "police initiative"
        reasons.append(
            Reason("initiator_ok", f"{kind_fr} par {person.name}", f"{kind_en} by {person.name}")
        )
        rule = conv.person_confirm
        org = person.org
    else:
        source = conv.alarm_source(trigger.actor)
        if source is None:
            return _refuse(Reason("unknown_source", "Source d'alarme inconnue.", "Unknown alarm source."))
        code = source.types.get(trigger.alarm_type or "")
        category = conv.category(code or "")
        if category is None:
            return _refuse(
                Reason(
                    "unmapped_alarm",
                    f"Type d'alarme « {trigger.alarm_type} » non prévu pour la source {source.label}.",
                    f"Alarm type '{trigger.alarm_type}' is not mapped for source {source.label}.",
                )
            )
        reasons.append(
            Reason("alarm_ok", f"alarme {trigger.alarm_type} de {source.label}", f"alarm {trigger.alarm_type} from {source.label}")
        )
        rule = source.confirm
        org = Org.VENUE
    reasons.append(Reason("grave_category", f"catégorie grave : {category.label_fr}", f"grave category: {category.label_en}"))

    if not conv.authorisation.in_force(now):
        return _refuse(
            Reason(
                "authorisation_lapsed",
                f"L'autorisation préfectorale {conv.authorisation.reference} a expiré le "
                f"{conv.authorisation.expires:%d/%m/%Y} : aucune transmission n'est possible.",
                f"Prefectoral authorisation {conv.authorisation.reference} expired on "
                f"{conv.authorisation.expires:%Y-%m-%d}: no transmission is possible.",
            )
        )

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
        reasons.append(Reason("joined", f"rattaché à l'incident {open_incident.id}", f"joined incident {open_incident.id}"))
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
    reasons.append(Reason("needs_confirmation", "confirmation requise", "confirmation required"))
    return Decision(
        Outcome.PENDING,
        tuple(reasons),
        sm.open_pending(new_id, info, rule, conv.limits.confirm_window, trigger.drill),
    )
