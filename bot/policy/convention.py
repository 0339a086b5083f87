"""The venue-police convention as plain, immutable data.

Settings (``bot.settings``) validate the TOML files and build these objects; the decision
function and the incident state machine read them. Legal sources: Code de la sécurité
intérieure L252-1 (prefectoral authorisation), L252-3 (individually designated, habilitated
recipients), L251-3 (no images of private spaces).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cached_property

from .zones import ZoneMap


class Org(StrEnum):
    VENUE = "venue"
    POLICE = "police"


class Role(StrEnum):
    SECURITY_CHIEF = "security_chief"
    DIRECTOR = "director"
    OPERATOR = "operator"
    CIC_OFFICER = "cic_officer"
    FIELD_COMMANDER = "field_commander"
    VIEWER = "viewer"


class ConfirmRule(StrEnum):
    """Who must confirm a trigger before access opens."""

    NONE = "none"
    ANY = "any_authorised"
    COUNTERPARTY = "counterparty"


@dataclass(frozen=True)
class Category:
    code: str
    label_fr: str
    label_en: str

    def label(self, lang: str) -> str:
        # Labels are the convention's own data (its TOML may rename them), not catalog text.
        return {"fr": self.label_fr, "en": self.label_en}.get(lang, self.label_fr)


# The grave events the convention names (armed attack, bomb threat, mass killing, hostage taking…). A convention may enable a subset, never add a non-grave one
# without saying so in its own file.
GRAVE_CATEGORIES: tuple[Category, ...] = (
    Category("attaque_armee", "attaque armée", "armed attack"),
    Category("tuerie_de_masse", "tuerie de masse", "mass-killing attack"),
    Category("alerte_bombe", "alerte à la bombe / colis suspect", "bomb threat / suspicious package"),
    Category("prise_otages", "prise d'otages", "hostage taking"),
    Category("vehicule_belier", "véhicule bélier", "vehicle ramming"),
    Category("nrbc", "menace NRBC", "CBRN threat"),
    Category("drone_malveillant", "drone malveillant", "hostile drone"),
    Category("intrusion_armee", "intrusion armée", "armed intrusion"),
)


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    org: Org
    role: Role
    habilitation: str | None = None
    telegram_id: int | None = None
    matrix_id: str | None = None
    password_hash: str | None = field(default=None, repr=False)
    rio: str | None = None  # the police officer's RIO number, another way to say who they are


@dataclass(frozen=True)
class AlarmSource:
    """An alarm system allowed to trigger, with its alarm types mapped to categories."""

    name: str
    label: str
    types: Mapping[str, str]
    confirm: ConfirmRule = ConfirmRule.ANY


@dataclass(frozen=True)
class Limits:
    default_duration: timedelta = timedelta(minutes=60)
    max_duration: timedelta = timedelta(hours=4)
    reminder_before: timedelta = timedelta(minutes=10)
    confirm_window: timedelta = timedelta(minutes=5)
    link_validity: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class Authorisation:
    """The prefectoral authorisation (CSI L252-1) the transmission rests on."""

    reference: str
    expires: date
    warn_before: timedelta = timedelta(days=120)

    def in_force(self, now: datetime) -> bool:
        return now.date() <= self.expires

    def expires_soon(self, now: datetime) -> bool:
        return self.in_force(now) and now.date() + self.warn_before >= self.expires


@dataclass(frozen=True)
class CatastropheRules:
    """Catastrophe mode: who may declare it, who must confirm, who may then steer cameras, for how long.

    ``control_roles`` is in order of precedence: a role earlier in the tuple may take over a
    camera held by a later one (the CIC before a field commander), never the reverse.
    """

    declare_roles: frozenset[Role] = frozenset({Role.SECURITY_CHIEF, Role.DIRECTOR, Role.CIC_OFFICER})
    confirm: ConfirmRule = ConfirmRule.COUNTERPARTY
    control_roles: tuple[Role, ...] = (Role.CIC_OFFICER, Role.FIELD_COMMANDER)
    max_duration: timedelta = timedelta(minutes=60)
    confirm_window: timedelta = timedelta(minutes=3)

    def rank(self, role: Role) -> int:
        """Precedence of ``role`` over cameras: higher takes over lower; -1 for a role that may not steer."""
        return len(self.control_roles) - self.control_roles.index(role) if role in self.control_roles else -1


@dataclass(frozen=True)
class Convention:
    venue: str
    police: str
    categories: tuple[Category, ...]
    roster: tuple[Person, ...]
    authorisation: Authorisation
    request_roles: frozenset[Role] = frozenset({Role.SECURITY_CHIEF, Role.DIRECTOR})
    initiative_roles: frozenset[Role] = frozenset({Role.CIC_OFFICER})
    end_roles: frozenset[Role] = frozenset({Role.SECURITY_CHIEF, Role.DIRECTOR, Role.CIC_OFFICER})
    extend_roles: frozenset[Role] = frozenset({Role.SECURITY_CHIEF, Role.DIRECTOR, Role.CIC_OFFICER})
    drill_roles: frozenset[Role] = frozenset({Role.SECURITY_CHIEF, Role.DIRECTOR, Role.CIC_OFFICER})
    police_viewer_roles: frozenset[Role] = frozenset(
        {Role.CIC_OFFICER, Role.FIELD_COMMANDER, Role.VIEWER}
    )
    venue_viewer_roles: frozenset[Role] = frozenset({Role.SECURITY_CHIEF, Role.DIRECTOR})
    person_confirm: ConfirmRule = ConfirmRule.NONE
    alarm_sources: tuple[AlarmSource, ...] = ()
    limits: Limits = Limits()
    cameras_in_scope: frozenset[str] = frozenset()
    catastrophe: CatastropheRules = CatastropheRules()
    zones: ZoneMap = ZoneMap()

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)

    def person(self, person_id: str) -> Person | None:
        return self._by_id.get(person_id)

    @cached_property
    def _by_id(self) -> Mapping[str, Person]:
        # every open stream's session is checked twice a second and each page polls its state:
        # one lookup each, where the roster's scan was a third of each session's check (py-spy)
        people: dict[str, Person] = {}
        for p in self.roster:
            people.setdefault(p.id, p)  # the first of a (refused by the config) duplicate, as the scan did
        return people

    def identify(self, typed: str) -> Person | None:
        """The roster member whose id or RIO was typed on the sign-in page, in any case."""
        key = typed.strip().casefold()
        if not key:
            return None
        return next((p for p in self.roster if key in (p.id.casefold(), (p.rio or "").casefold())), None)

    def by_telegram(self, telegram_id: int) -> Person | None:
        return next((p for p in self.roster if p.telegram_id == telegram_id), None)

    def by_matrix(self, matrix_id: str) -> Person | None:
        return next((p for p in self.roster if p.matrix_id == matrix_id), None)

    def alarm_source(self, name: str) -> AlarmSource | None:
        return next((s for s in self.alarm_sources if s.name == name), None)

    def may_initiate(self, person: Person) -> bool:
        roles = self.request_roles if person.org is Org.VENUE else self.initiative_roles
        return person.role in roles

    def may_command(self, person: Person) -> bool:
        """Whether any command that changes an incident is open to this person's role."""
        return self.may_initiate(person) or person.role in (self.end_roles | self.extend_roles | self.drill_roles)

    def may_refocus(self, person: Person) -> bool:
        """Changing the zone the officers look at first is the police's call: it runs the intervention.

        Police members who view or take the initiative may; the venue says where in the room."""
        return person.org is Org.POLICE and person.role in (self.police_viewer_roles | self.initiative_roles)

    def may_view(self, person: Person) -> bool:
        """CSI L252-3 and Cass. crim. 13 Nov 2024: only individually habilitated police agents."""
        if person.password_hash is None:
            return False
        if person.org is Org.POLICE:
            return person.role in self.police_viewer_roles and bool(person.habilitation)
        return person.role in self.venue_viewer_roles

    def viewers(self) -> tuple[Person, ...]:
        return tuple(p for p in self.roster if self.may_view(p))
