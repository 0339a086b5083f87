"""Addressing a venue in a shared room (bot/policy/venues.py): examples, then hypothesis properties
over every instance of a room deciding alone on the same line."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.messages import Renderer
from bot.policy.decide import Trigger, evaluate
from bot.policy.incident import Source
from bot.policy.venues import Action, RoomVenues, address, first_word
from bot.status import page_info, status_line
from tests.policy_fixtures import T0, convention

CODES = ["arena", "stade", "zenith", "palais", "expo"]
COMMANDS = ["alert", "end", "extend", "confirm", "status", "help", "drill", "unlock", "unknown"]


def views(codes: set[str], running: set[str]) -> list[RoomVenues]:
    """The view of each running instance of one room they all declare: every one sees the same members."""
    return [RoomVenues(c, frozenset(codes - {c}), frozenset(running)) for c in sorted(running)]


ZENITH = RoomVenues("zenith", frozenset({"stade"}), frozenset({"stade", "zenith"}))
STADE = RoomVenues("stade", frozenset({"zenith"}), frozenset({"stade", "zenith"}))
ALONE = RoomVenues("zenith")


def test_named_venue_acts_with_the_rest_untouched() -> None:
    assert address(ZENITH, "alert", "zenith attaque_armee Hall A") == (Action.ACT, "attaque_armee Hall A")
    assert address(STADE, "alert", "zenith attaque_armee Hall A").action is Action.IGNORE
    assert address(ZENITH, "alert", "ZENITH attaque_armee  Hall  A").rest == "attaque_armee  Hall  A"


def test_venue_less_in_shared_room_lists_once_acts_nowhere() -> None:
    answers = [address(v, "alert", "attaque_armee Hall A").action for v in (ZENITH, STADE)]
    assert sorted(answers) == [Action.IGNORE, Action.LIST]
    assert address(STADE, "alert", "attaque_armee").action is Action.LIST  # "stade" < "zenith"


def test_reply_names_the_venue() -> None:
    assert address(ZENITH, "end", "", replied_venue="zenith") == (Action.ACT, "")
    assert address(STADE, "end", "", replied_venue="zenith").action is Action.IGNORE
    # the first word wins over the reply
    assert address(STADE, "end", "stade", replied_venue="zenith") == (Action.ACT, "")


def test_status_without_venue_one_line_each() -> None:
    assert {address(v, "status", "").action for v in (ZENITH, STADE)} == {Action.STATUS_LINE}
    assert address(ZENITH, "status", "zenith").action is Action.ACT


def test_alone_short_commands_work_and_naming_is_allowed() -> None:
    assert address(ALONE, "alert", "attaque_armee Hall A") == (Action.ACT, "attaque_armee Hall A")
    assert address(ALONE, "end", "zenith") == (Action.ACT, "")
    assert address(RoomVenues(None), "end", "") == (Action.ACT, "")


def test_absent_lowest_venue_does_not_silence_the_room() -> None:
    zenith = RoomVenues("zenith", frozenset({"arena"}), frozenset({"zenith"}))  # arena's bot not in the room
    assert address(zenith, "alert", "attaque_armee").action is Action.LIST


def test_the_next_venues_stand_by_in_order() -> None:
    codes = {"arena", "stade", "zenith"}
    ranks = {v.own: v.before() for v in views(codes, codes)}
    assert ranks == {"arena": (), "stade": ("arena",), "zenith": ("arena", "stade")}
    assert [v.own for v in views(codes, codes) if not v.before()] == [v.answerer() for v in views(codes, codes)][:1]


def test_first_word() -> None:
    assert first_word("  Zenith  a b ") == ("zenith", "a b")
    assert first_word("") == ("", "")


words = st.one_of(st.sampled_from(CODES + ["attaque_armee", "INC-20261125-01", "30", ""]),
                  st.text(alphabet="abcz_ -", max_size=12))


@settings(max_examples=400, deadline=None)
@given(codes=st.sets(st.sampled_from(CODES), min_size=2, max_size=5),
       stopped=st.sets(st.sampled_from(CODES)),
       command=st.sampled_from(COMMANDS), first=words, tail=st.text(max_size=20),
       replied=st.one_of(st.none(), st.sampled_from(CODES)))
def test_at_most_one_acts_exactly_one_answers(codes: set[str], stopped: set[str], command: str,
                                             first: str, tail: str, replied: str | None) -> None:
    up = (codes - stopped) or {min(codes)}
    running = views(codes, up)
    rest = f"{first} {tail}"
    if replied is not None and replied not in codes:
        replied = None  # a reply names a venue of the room or none
    decided = [address(v, command, rest, replied) for v in running]
    actions = [d.action for d in decided]
    assert actions.count(Action.ACT) <= 1
    word = first_word(rest)[0]
    named = word if word in codes else replied
    if named is not None:
        assert Action.LIST not in actions and Action.STATUS_LINE not in actions
        assert actions.count(Action.ACT) == (1 if named in up else 0)  # the venue named, when it runs
    elif command == "status":
        assert actions == [Action.STATUS_LINE] * len(running)
    else:
        assert Action.ACT not in actions
        assert actions.count(Action.LIST) == 1
        # the one that lists has nobody before it; the others stand by, each at a turn of its own
        assert [d.action for v, d in zip(running, decided, strict=True) if not v.before()] == [Action.LIST]
        assert len({len(v.before()) for v in running}) == len(running)
    for d in decided:  # whatever follows the venue's word is left as typed
        if d.action is Action.ACT and first_word(rest)[0] in codes:
            assert d.rest == first_word(rest)[1]


@settings(max_examples=200, deadline=None)
@given(own=st.sampled_from(CODES), command=st.sampled_from(COMMANDS), first=words, tail=st.text(max_size=20))
def test_alone_always_acts(own: str, command: str, first: str, tail: str) -> None:
    assert address(RoomVenues(own), command, f"{first} {tail}").action is Action.ACT


def test_every_message_and_the_page_name_the_venue() -> None:
    conv = convention()
    trig = Trigger(Source.PERSON, "chef", T0, category="attaque_armee", room="console")
    inc = evaluate(conv, trig, None, T0, "INC-1").incident
    assert inc is not None
    render = Renderer(conv, ZoneInfo("Europe/Paris"), "zenith")
    link = render.link(inc, "https://v/live/x", "fr", T0)
    assert link.text.startswith("[zenith] ") and link.html.startswith("[zenith] ")
    assert render.reminder(inc, "en", T0).text.startswith("[zenith] ")
    closure = render.closure(inc, "fr", [], 0, 3).text
    assert closure.startswith("[zenith] ") and f"Site : {conv.venue} (zenith)" in closure
    assert render.notice(lambda lang: "x", "fr").text == "[zenith] x"
    line = status_line("fr", render, T0 + timedelta(minutes=1), [inc])
    assert "\n" not in line and "INC-1" in line and "/statut zenith" in line
    assert page_info(conv, {}, inc, venue_code="zenith")["venue"] == f"{conv.venue} · zenith"
    plain = Renderer(conv, ZoneInfo("Europe/Paris"))
    assert plain.link(inc, "https://v/live/x", "fr", T0).text == link.text.removeprefix("[zenith] ")
    assert page_info(conv, {}, inc)["venue"] == conv.venue
