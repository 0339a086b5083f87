"""Catastrophe mode in the pure policy: examples, then a stateful property.

The property: whatever the sequence of declarations, confirmations, ends, take-overs, releases,
access endings and passing time, a camera command is authorised only inside a confirmed,
unexpired catastrophe of an access still granted, to a person whose role may steer and who holds
that camera.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bot.policy import catastrophe as cm
from bot.policy import incident as sm
from bot.policy.catastrophe import Catastrophe, CatState, Holder
from bot.policy.convention import ConfirmRule, Convention, Org, Person, Role
from bot.policy.incident import Incident, Source, TriggerInfo
from bot.policy.reasons import Refused, Why
from tests.policy_fixtures import HASH, ROSTER, T0, convention

FIELD = Person("terrain", "Cne Vidal", Org.POLICE, Role.FIELD_COMMANDER, habilitation="HAB-3", password_hash=HASH)
PEOPLE = (*ROSTER, FIELD)
PTZ = frozenset({"hall"})


def conv(rule: ConfirmRule = ConfirmRule.COUNTERPARTY) -> Convention:
    base = convention()
    return replace(base, roster=PEOPLE, catastrophe=replace(base.catastrophe, confirm=rule))


def person(pid: str) -> Person:
    return next(p for p in PEOPLE if p.id == pid)


def access(now: timedelta = timedelta(0), minutes: int = 60) -> Incident:
    info = TriggerInfo(Source.PERSON, "chef", "attaque_armee", T0 + now, org=Org.VENUE)
    pending = sm.open_pending("INC-1", info, ConfirmRule.NONE, timedelta(minutes=5), False)
    return sm.activate(pending, T0 + now, timedelta(minutes=minutes))


def reason(exc: pytest.ExceptionInfo[Refused]) -> Why:
    return exc.value.reason.code


def declared(c: Convention, inc: Incident) -> Catastrophe:
    cat = cm.declare(c, inc, None, person("chef"), T0, "INC-1:1")
    return cm.declare(c, inc, cat, person("cic"), T0 + timedelta(minutes=1), "unused")


def test_declared_by_one_party_confirmed_by_the_other() -> None:
    c, inc = conv(), access(minutes=240)
    cat = cm.declare(c, inc, None, person("chef"), T0, "INC-1:1")
    assert cat.state is CatState.PENDING
    with pytest.raises(Refused) as same_org:
        cm.declare(c, inc, cat, person("dir"), T0, "x")
    assert reason(same_org) is Why.COUNTERPARTY_REQUIRED
    with pytest.raises(Refused) as self_:
        cm.declare(c, inc, cat, person("chef"), T0, "x")
    assert reason(self_) is Why.SELF_CONFIRM
    done = cm.declare(c, inc, cat, person("cic"), T0 + timedelta(minutes=1), "x")
    assert done.in_force(T0 + timedelta(minutes=2)) and done.confirmed_by == "cic"
    assert done.ends_at == T0 + timedelta(minutes=1) + c.catastrophe.max_duration


def test_confirmation_window_lapses_and_access_bounds_the_duration() -> None:
    c, inc = conv(), access(minutes=30)
    cat = cm.declare(c, inc, None, person("chef"), T0, "INC-1:1")
    late = T0 + c.catastrophe.confirm_window
    with pytest.raises(Refused) as lapsed:
        cm.confirm(c, inc, cat, person("cic"), person("chef"), late)
    assert reason(lapsed) is Why.CONFIRM_WINDOW_LAPSED
    assert cm.expire(cat, inc, late).state is CatState.LAPSED
    now_declared = cm.declare(conv(ConfirmRule.NONE), inc, None, person("cic"), T0, "INC-1:2")
    assert now_declared.in_force(T0)
    # never outlives the access: at its end, control is refused and the catastrophe closes
    over = inc.ends_at
    assert over is not None and over < T0 + c.catastrophe.max_duration
    assert cm.expire(now_declared, inc, over).state is CatState.ENDED
    # but an access extended during the attack keeps it going, up to the convention's maximum
    longer = replace(inc, ends_at=T0 + 2 * c.catastrophe.max_duration)
    assert cm.expire(now_declared, longer, over) == now_declared
    assert cm.expire(now_declared, longer, T0 + c.catastrophe.max_duration).state is CatState.EXPIRED


def test_roles_that_may_not_declare_or_steer() -> None:
    c, inc = conv(), access()
    with pytest.raises(Refused) as viewer:
        cm.declare(c, inc, None, person("agent"), T0, "x")
    assert reason(viewer) is Why.NOT_ALLOWED_DECLARE
    cat = declared(c, inc)
    now = T0 + timedelta(minutes=2)
    with pytest.raises(Refused) as steer:
        cm.take(c, inc, cat, {}, person("agent"), "hall", PTZ, now)
    assert reason(steer) is Why.NOT_ALLOWED_CONTROL
    with pytest.raises(Refused) as not_ptz:
        cm.take(c, inc, cat, {}, person("cic"), "fosse", PTZ, now)
    assert reason(not_ptz) is Why.NOT_PTZ


def test_one_controller_and_take_over_by_a_higher_role_only() -> None:
    c, inc = conv(), access()
    cat, now = declared(c, inc), T0 + timedelta(minutes=2)
    held = cm.take(c, inc, cat, {}, FIELD, "hall", PTZ, now)
    with pytest.raises(Refused) as no_takeover:
        cm.authorise(c, inc, cat, held, person("cic"), "hall", PTZ, now)
    assert reason(no_takeover) is Why.NOT_CONTROLLER
    with pytest.raises(Refused) as busy:
        cm.take(c, inc, cat, held, person("cic"), "hall", PTZ, now)
    assert reason(busy) is Why.CAMERA_HELD
    taken = cm.take(c, inc, cat, held, person("cic"), "hall", PTZ, now, takeover=True)
    cm.authorise(c, inc, cat, taken, person("cic"), "hall", PTZ, now)
    with pytest.raises(Refused) as lower:
        cm.take(c, inc, cat, taken, FIELD, "hall", PTZ, now, takeover=True)
    assert reason(lower) is Why.CAMERA_HELD
    assert cm.release(taken, person("cic"), "hall") == {}


def test_round_trip_through_json() -> None:
    cat = cm.moved(declared(conv(), access()), "hall")
    assert cm.from_dict(cm.to_dict(cat)) == cat


# --- the property ---

ACTORS = st.sampled_from([p.id for p in PEOPLE])
CAMERAS = st.sampled_from(["hall", "fosse"])


class CatastropheMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.conv = conv()
        self.now = T0
        self.inc: Incident | None = access()
        self.cat: Catastrophe | None = None
        self.holders: dict[str, Holder] = {}
        self.n = 0

    def _apply(self, fn: object) -> None:
        try:
            fn()  # type: ignore[operator]
        except Refused:
            pass

    @rule(who=ACTORS)
    def declare(self, who: str) -> None:
        def go() -> None:
            self.n += 1
            self.cat = cm.declare(self.conv, self.inc, self.cat, person(who), self.now, f"c{self.n}")
        self._apply(go)

    @rule(who=ACTORS)
    def end(self, who: str) -> None:
        def go() -> None:
            self.cat = cm.end(self.conv, self.cat, person(who), self.now)
        self._apply(go)

    @rule(minutes=st.integers(0, 90))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        if self.cat is not None:
            self.cat = cm.expire(self.cat, self.inc, self.now)

    @precondition(lambda self: self.inc is not None)
    @rule()
    def access_ends(self) -> None:
        assert self.inc is not None
        self.inc = sm.close(self.inc, self.now, sm.State.ENDED, "ended", "chef")

    @rule()
    def access_reopens(self) -> None:
        self.inc = access(self.now - T0)

    @rule(who=ACTORS, camera=CAMERAS, takeover=st.booleans())
    def take(self, who: str, camera: str, takeover: bool) -> None:
        def go() -> None:
            self.holders = cm.take(self.conv, self.inc, self.cat, self.holders, person(who), camera, PTZ,
                                   self.now, takeover)
        self._apply(go)

    @rule(who=ACTORS, camera=CAMERAS)
    def release(self, who: str, camera: str) -> None:
        def go() -> None:
            self.holders = cm.release(self.holders, person(who), camera)
        self._apply(go)

    @invariant()
    def no_command_outside_a_confirmed_unexpired_catastrophe(self) -> None:
        for who in PEOPLE:
            for camera in ("hall", "fosse"):
                try:
                    cm.authorise(self.conv, self.inc, self.cat, self.holders, who, camera, PTZ, self.now)
                except Refused:
                    continue
                cat, inc = self.cat, self.inc
                assert cat is not None and inc is not None
                assert cat.state is CatState.DECLARED and cat.confirmed_by not in (None, cat.declared_by)
                assert cat.ends_at is not None and self.now < cat.ends_at
                assert inc.grants_access(self.now) and cat.incident == inc.id
                assert who.role in self.conv.catastrophe.control_roles and camera in PTZ
                assert self.holders[camera].person == who.id

    @invariant()
    def one_holder_per_camera(self) -> None:
        assert all(h.person for h in self.holders.values())


CatastropheMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestCatastropheMachine = CatastropheMachine.TestCase
