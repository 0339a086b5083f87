"""Zones in the pure core: what a text names (accents, case, punctuation, inside a sentence), panel
numbers, the zone's cameras first, and who may change the focus zone."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.policy import incident as sm
from bot.policy.reasons import Refused, Why
from bot.policy.zones import Focus, Zone, ZoneMap, cameras_first, normalise, panel_zone
from tests.policy_fixtures import ROSTER, T0, convention

ZONES = ZoneMap((
    Zone("hall-a", "Hall A", ("hall-entree", "billetterie"), ("hall d'entrée", "accueil")),
    Zone("hall-b", "Hall B", ("quai",), ("arrière-scène",)),
    Zone("hall", "Hall", ("bar",)),
    Zone("coursives", "Coursives", ("c-nord", "c-sud"), ("sorties de secours",)),
))

ACCENTS = {"a": "àâä", "e": "éèêë", "i": "îï", "o": "ôö", "u": "ùûü", "c": "ç"}


@st.composite
def disguised(draw: st.DrawFn, text: str) -> str:
    """``text`` as people and panels write it: any case, accents added, punctuation for spaces."""
    out = []
    for ch in text:
        if ch == " ":
            out.append(draw(st.sampled_from([" ", "  ", "-", "_", ", ", ". ", "/"])))
            continue
        if ch in ACCENTS and draw(st.booleans()):
            ch = draw(st.sampled_from(ACCENTS[ch]))
        out.append(ch.upper() if draw(st.booleans()) else ch)
    return "".join(out)


names = st.sampled_from([w for z in ZONES.zones for w in (z.name, *z.aliases)])


@given(st.data(), names)
def test_every_name_and_alias_is_found_whatever_the_spelling(data: st.DataObject, name: str) -> None:
    expected = ZONES.find(name)
    assert expected is not None
    assert ZONES.find(data.draw(disguised(name))) == expected


@given(st.data(), names, st.sampled_from(["coups de feu", "un individu armé", "", "vite"]))
def test_a_name_inside_a_sentence_is_found(data: st.DataObject, name: str, tail: str) -> None:
    text = data.draw(disguised(name)) + (", " + tail if tail else "")
    assert ZONES.find(text) == ZONES.find(name)


def test_the_longest_name_wins_and_words_must_be_whole() -> None:
    assert ZONES.find("Hall A, coups de feu").id == "hall-a"  # not "Hall"
    assert ZONES.find("au hall, près du bar").id == "hall"
    assert ZONES.find("halloween") is None and ZONES.find("hall ab") is not None  # "hall" as a word


@given(st.text(max_size=80))
def test_unknown_text_is_kept_as_written_never_dropped(text: str) -> None:
    focus = ZONES.focus(text)
    if not normalise(" ".join(text.split())[:120]):
        assert focus.empty  # punctuation only ("—"): no place named
    elif focus.zone is None:
        assert focus.text == " ".join(text.split())[:120]
    else:
        assert focus.text == "" and ZONES.get(focus.zone) is not None
    assert ZONES.focus("Rue des Aciéries, porte 3") == Focus(None, "Rue des Aciéries, porte 3")


@given(st.text())
def test_normalise_is_idempotent_and_ascii(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once
    assert all(c.isascii() for c in once)
    assert normalise(unicodedata.normalize("NFD", text)) == normalise(unicodedata.normalize("NFC", text))


@given(st.lists(st.sampled_from("abcdefgh"), unique=True), st.lists(st.sampled_from("abcdefghxyz"), max_size=6))
def test_cameras_first_is_a_permutation_with_the_zone_in_front(order: list[str], first: list[str]) -> None:
    out = cameras_first(order, first)
    assert sorted(out) == sorted(order)
    head = [c for c in dict.fromkeys(first) if c in order]
    assert out[: len(head)] == head
    assert [c for c in out if c not in head] == [c for c in order if c not in head]


def test_panel_zone_then_partition_with_or_without_leading_zeros() -> None:
    zones, parts = {"005": "hall-a", "12": "coursives"}, {"01": "hall-b"}
    assert panel_zone(zones, parts, "5", "01") == "hall-a"
    assert panel_zone(zones, parts, "012", "") == "coursives"
    assert panel_zone(zones, parts, "007", "1") == "hall-b"  # the zone is not mapped: its partition
    assert panel_zone(zones, parts, "", "") is None and panel_zone({}, {}, "5", "1") is None


def test_only_the_police_change_the_focus_and_only_while_open() -> None:
    conv = convention()
    trig = sm.TriggerInfo(sm.Source.PERSON, "chef", "attaque_armee", T0)
    inc = sm.activate(sm.open_pending("INC-1", trig, conv.person_confirm, conv.limits.confirm_window, False),
                      T0, conv.limits.default_duration)
    people = {p.id: p for p in ROSTER}
    assert sm.refocus(conv, inc, people["agent"], Focus("hall-b")).focus == Focus("hall-b")
    assert sm.refocus(conv, inc, people["cic"], Focus(None, "parking")).focus.text == "parking"
    for who, why in (("chef", Why.NOT_FOCUS_ROLE), ("dir", Why.NOT_FOCUS_ROLE)):
        with pytest.raises(Refused) as r:
            sm.refocus(conv, inc, people[who], Focus("hall-b"))
        assert r.value.reason.code is why
    with pytest.raises(Refused) as r:
        sm.refocus(conv, inc, people["agent"], Focus())
    assert r.value.reason.code is Why.FOCUS_WHERE
    ended = sm.close(inc, T0, sm.State.ENDED, "ended", "chef")
    with pytest.raises(Refused):
        sm.refocus(conv, ended, people["agent"], Focus("hall-b"))


def test_the_focus_survives_persistence_and_old_incidents_have_none() -> None:
    conv = convention()
    trig = sm.TriggerInfo(sm.Source.PERSON, "chef", "attaque_armee", T0)
    inc = sm.open_pending("INC-1", trig, conv.person_confirm, conv.limits.confirm_window, False)
    moved = sm.refocus(conv, inc, next(p for p in ROSTER if p.id == "agent"), Focus("hall-a"))
    assert sm.from_dict(sm.to_dict(moved)).focus == Focus("hall-a")
    old = sm.to_dict(inc)
    del old["focus"]
    assert sm.from_dict(old).focus == Focus()
