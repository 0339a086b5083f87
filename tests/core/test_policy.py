"""The convention's rules, as pure functions: examples first, then hypothesis invariants."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from bot.locales import reason_text
from bot.policy import incident as sm
from bot.policy.convention import GRAVE_CATEGORIES, ConfirmRule
from bot.policy.decide import Outcome, Trigger, evaluate
from bot.policy.incident import Incident, Source, State
from bot.policy.reasons import Refused
from tests.policy_fixtures import ROSTER, T0, convention

CONV = convention()
GRAVE = [c.code for c in GRAVE_CATEGORIES]


def person_trigger(actor: str, category: str | None, drill: bool = False, at=T0) -> Trigger:
    return Trigger(Source.PERSON, actor, at, category=category, room="console", drill=drill)


def test_security_chief_opens_access_at_once() -> None:
    d = evaluate(CONV, person_trigger("chef", "attaque_armee"), None, T0, "INC-1")
    assert d.outcome is Outcome.OPENED
    assert d.incident is not None and d.incident.grants_access(T0)
    assert d.incident.ends_at == T0 + timedelta(minutes=60)
    assert any(r.code == "grave_category" for r in d.reasons)


def test_non_grave_category_refused_with_the_list() -> None:
    d = evaluate(CONV, person_trigger("chef", "vol_simple"), None, T0, "INC-1")
    assert d.refused and d.incident is None
    assert d.reasons[0].code == "not_grave"
    text = reason_text(d.reasons[0], "fr")
    assert "attaque_armee" in text and "vol_simple" in text


@pytest.mark.parametrize("actor,code", [("op", "not_initiator"), ("agent", "not_initiator"), ("stranger", "unknown_person")])
def test_unauthorised_initiators_refused(actor: str, code: str) -> None:
    d = evaluate(CONV, person_trigger(actor, "attaque_armee"), None, T0, "INC-1")
    assert d.refused and d.reasons[0].code == code


def test_lapsed_authorisation_refuses() -> None:
    conv = convention(expires=date(2026, 11, 24))
    d = evaluate(conv, person_trigger("chef", "attaque_armee"), None, T0, "INC-1")
    assert d.refused and d.reasons[0].code == "authorisation_lapsed"


def test_alarm_waits_for_confirmation_then_counterparty_rules() -> None:
    trig = Trigger(Source.ALARM, "ssi", T0, alarm_type="panic", details="Hall A")
    d = evaluate(CONV, trig, None, T0, "INC-1")
    assert d.outcome is Outcome.PENDING and d.incident is not None
    inc = d.incident
    assert not inc.grants_access(T0)
    active = sm.confirm(CONV, inc, ROSTER[0], T0 + timedelta(minutes=1))
    assert active.grants_access(T0 + timedelta(minutes=2)) and active.confirmed_by == "chef"
    # counterparty: the venue's own people cannot confirm the venue's alarm
    conv = convention(alarm_confirm=ConfirmRule.COUNTERPARTY)
    pending = evaluate(conv, trig, None, T0, "INC-2").incident
    assert pending is not None
    with pytest.raises(Refused) as r:
        sm.confirm(conv, pending, ROSTER[0], T0)
    assert r.value.reason.code == "counterparty_required"
    assert sm.confirm(conv, pending, ROSTER[3], T0).state is State.ACTIVE


def test_confirmation_window_lapses() -> None:
    trig = Trigger(Source.ALARM, "ssi", T0, alarm_type="panic")
    inc = evaluate(CONV, trig, None, T0, "INC-1").incident
    assert inc is not None
    late = T0 + timedelta(minutes=5)
    with pytest.raises(Refused):
        sm.confirm(CONV, inc, ROSTER[0], late)
    assert sm.lapse(inc, late).state is State.REFUSED


def test_unmapped_alarm_type_refused() -> None:
    d = evaluate(CONV, Trigger(Source.ALARM, "ssi", T0, alarm_type="fire"), None, T0, "INC-1")
    assert d.refused and d.reasons[0].code == "unmapped_alarm"


def test_person_alert_confirms_a_pending_alarm() -> None:
    pending = evaluate(CONV, Trigger(Source.ALARM, "ssi", T0, alarm_type="panic"), None, T0, "INC-1").incident
    d = evaluate(CONV, person_trigger("cic", "attaque_armee"), pending, T0, "INC-2")
    assert d.outcome is Outcome.CONFIRMED and d.incident is not None and d.incident.id == "INC-1"
    assert d.incident.grants_access(T0)


def test_alarm_that_opens_at_once_activates_a_pending_incident() -> None:
    conv = convention()
    hold_up = replace(conv.alarm_sources[0], name="panel", types={"hold_up": "attaque_armee"}, confirm=ConfirmRule.NONE)
    conv = replace(conv, alarm_sources=(*conv.alarm_sources, hold_up))
    pending = evaluate(conv, Trigger(Source.ALARM, "ssi", T0, alarm_type="panic"), None, T0, "INC-1").incident
    assert pending is not None and pending.state is State.PENDING
    # another alarm that needs a confirmation only joins
    again = evaluate(conv, Trigger(Source.ALARM, "ssi", T0, alarm_type="bomb"), pending, T0, "INC-2")
    assert again.outcome is Outcome.JOINED and again.incident is not None and again.incident.state is State.PENDING
    d = evaluate(conv, Trigger(Source.ALARM, "panel", T0, alarm_type="hold_up"), pending, T0, "INC-2")
    assert d.outcome is Outcome.CONFIRMED and d.incident is not None and d.incident.id == "INC-1"
    assert d.incident.grants_access(T0) and d.incident.confirmed_by == "panel"
    # not once the confirmation window is over
    late = evaluate(conv, Trigger(Source.ALARM, "panel", T0, alarm_type="hold_up"), pending, pending.confirm_by, "INC-2")
    assert late.outcome is Outcome.JOINED


def test_self_confirmation_refused_when_person_confirm_required() -> None:
    conv = convention(person_confirm=ConfirmRule.ANY)
    inc = evaluate(conv, person_trigger("chef", "attaque_armee"), None, T0, "INC-1").incident
    assert inc is not None and inc.state is State.PENDING
    with pytest.raises(Refused) as r:
        sm.confirm(conv, inc, ROSTER[0], T0)
    assert r.value.reason.code == "self_confirm"


def test_round_trip_serialisation() -> None:
    inc = evaluate(CONV, person_trigger("chef", "nrbc"), None, T0, "INC-1").incident
    assert inc is not None
    inc = sm.extend(CONV, inc, ROSTER[3], 30, T0)
    inc = sm.join(inc, inc.trigger)
    assert sm.from_dict(sm.to_dict(inc)) == inc


# ---------------- property-based: the invariants of the convention ----------------

people = st.sampled_from([p.id for p in ROSTER] + ["stranger"])
categories = st.one_of(st.sampled_from(GRAVE), st.text(max_size=12))


@given(actor=people, category=categories, drill=st.booleans())
def test_no_access_without_grave_category_and_authorised_initiator(actor: str, category: str, drill: bool) -> None:
    d = evaluate(CONV, person_trigger(actor, category, drill), None, T0, "X")
    person = CONV.person(actor)
    allowed = person is not None and CONV.may_initiate(person) and category in GRAVE
    assert (d.incident is not None and d.incident.grants_access(T0)) == allowed
    assert d.refused == (not allowed)


@given(minutes=st.lists(st.integers(min_value=-10, max_value=500), max_size=12))
def test_extensions_never_pass_the_maximum(minutes: list[int]) -> None:
    inc = evaluate(CONV, person_trigger("chef", "attaque_armee"), None, T0, "X").incident
    assert inc is not None
    now = T0
    for m in minutes:
        now += timedelta(minutes=1)
        try:
            inc = sm.extend(CONV, inc, ROSTER[3], m, now)
        except Refused:
            pass
        assert inc.ends_at is not None and inc.activated_at is not None
        assert inc.ends_at <= inc.activated_at + CONV.limits.max_duration


@dataclass
class World:
    incidents: dict[str, Incident] = field(default_factory=dict)
    n: int = 0


class ConventionMachine(RuleBasedStateMachine):
    """Random sequences of alerts, alarms, drills, confirmations, extensions, ends and time passing."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.w = World()
        self.conv = convention(expires=date(2026, 11, 26))  # lapses during long runs

    def open_of(self, drill: bool) -> Incident | None:
        return next((i for i in self.w.incidents.values() if i.is_open and i.drill == drill), None)

    def store(self, inc: Incident) -> None:
        before = self.w.incidents.get(inc.id)
        if before is not None:
            assert before.drill == inc.drill
        self.w.incidents[inc.id] = inc

    @rule(actor=people, category=categories, drill=st.booleans())
    def alert(self, actor: str, category: str, drill: bool) -> None:
        real_before = {k: v for k, v in self.w.incidents.items() if not v.drill}
        self.w.n += 1
        d = evaluate(self.conv, person_trigger(actor, category, drill, self.now), self.open_of(drill), self.now, f"I{self.w.n}")
        if d.incident is not None:
            if d.outcome in (Outcome.JOINED, Outcome.CONFIRMED):
                assert d.incident.id in self.w.incidents  # a repeated trigger joins, no duplicate
            self.store(d.incident)
        if drill:  # a drill never opens, extends or ends a real incident
            assert {k: v for k, v in self.w.incidents.items() if not v.drill} == real_before

    @rule(alarm=st.sampled_from(["panic", "bomb", "fire"]))
    def alarm(self, alarm: str) -> None:
        self.w.n += 1
        d = evaluate(self.conv, Trigger(Source.ALARM, "ssi", self.now, alarm_type=alarm), self.open_of(False), self.now, f"I{self.w.n}")
        if d.incident is not None:
            self.store(d.incident)

    @rule(actor=st.sampled_from(ROSTER), drill=st.booleans())
    def confirm(self, actor, drill: bool) -> None:
        inc = self.open_of(drill)
        if inc is not None:
            try:
                self.store(sm.confirm(self.conv, inc, actor, self.now))
            except Refused:
                pass

    @rule(actor=st.sampled_from(ROSTER), minutes=st.integers(-5, 300), drill=st.booleans())
    def extend(self, actor, minutes: int, drill: bool) -> None:
        inc = self.open_of(drill)
        if inc is not None:
            try:
                self.store(sm.extend(self.conv, inc, actor, minutes, self.now))
            except Refused:
                pass

    @rule(actor=st.sampled_from(ROSTER), drill=st.booleans())
    def end(self, actor, drill: bool) -> None:
        inc = self.open_of(drill)
        if inc is not None:
            try:
                self.store(sm.end(self.conv, inc, actor, self.now))
            except Refused:
                pass

    @rule(minutes=st.integers(1, 400))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        for inc in list(self.w.incidents.values()):
            inc2 = sm.expire(sm.lapse(inc, self.now), self.now)
            if not self.conv.authorisation.in_force(self.now):
                inc2 = sm.close(inc2, self.now, State.ENDED, "authorisation_lapsed", "system")
            self.store(inc2)

    @invariant()
    def invariants(self) -> None:
        for kind in (True, False):
            assert sum(1 for i in self.w.incidents.values() if i.is_open and i.drill == kind) <= 1
        for inc in self.w.incidents.values():
            if inc.grants_access(self.now):
                assert inc.state is State.ACTIVE
                assert self.conv.authorisation.in_force(self.now)
                assert inc.category in GRAVE
                assert inc.ends_at is not None and inc.activated_at is not None
                assert inc.ends_at <= inc.activated_at + self.conv.limits.max_duration
                assert self.now < inc.ends_at
            if inc.state in (State.ENDED, State.EXPIRED, State.REFUSED):
                assert not inc.grants_access(self.now) and inc.closed_at is not None


ConventionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestConvention = ConventionMachine.TestCase


def test_who_may_use_commands() -> None:
    """The console is refused to a person no command is open to (an operator, a plain viewer)."""
    conv = convention()
    assert {p.id for p in ROSTER if conv.may_command(p)} == {"chef", "dir", "cic"}
    only_end = replace(conv, request_roles=frozenset(), initiative_roles=frozenset(), extend_roles=frozenset(),
                       drill_roles=frozenset())
    assert {p.id for p in ROSTER if only_end.may_command(p)} == {"chef", "dir", "cic"}
    nothing = replace(only_end, end_roles=frozenset())
    assert not any(nothing.may_command(p) for p in ROSTER)
