"""The chat command parser and dispatcher: aliases, @bot suffixes, and fuzzing (no crash, no state change)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import commands
from bot.kinds import Kind
from bot.policy.venues import Action, RoomVenues
from tests.harness import Harness


def test_aliases_and_bot_suffix() -> None:
    assert commands.parse("/alerte attaque_armee Hall A") == commands.Command("alert", ("attaque_armee", "Hall", "A"), "attaque_armee Hall A")
    assert commands.parse("/FIN")and commands.parse("/FIN").name == "end"  # type: ignore[union-attr]
    assert commands.parse("/prolonger 30").args == ("30",)  # type: ignore[union-attr]
    assert commands.parse("/end@vigie_bot", "vigie_bot").name == "end"  # type: ignore[union-attr]
    assert commands.parse("/end@other_bot", "vigie_bot") is None
    assert commands.parse("bonjour") is None and commands.parse("") is None
    assert commands.parse("/zzz").name == "unknown"  # type: ignore[union-attr]


def test_venue_addressing_keeps_the_rest_of_the_line() -> None:
    room = RoomVenues("zenith", frozenset({"stade"}), frozenset({"stade", "zenith"}))
    cmd = commands.parse("/alerte zenith attaque_armee Hall A, escalier 3")
    assert cmd is not None
    action, mine = commands.addressed(cmd, room)
    assert action is Action.ACT and mine.args[0] == "attaque_armee" and mine.rest == "attaque_armee Hall A, escalier 3"
    assert mine.word == "alerte"
    venue_less = commands.parse("/fin INC-20261125-01")
    assert venue_less is not None
    assert commands.addressed(venue_less, room)[0] is Action.IGNORE  # "stade" answers, not "zenith"
    text = commands.venue_choices("fr", venue_less, room)
    assert "/fin stade INC-20261125-01" in text and "/fin zenith INC-20261125-01" in text and "aucun n'a agi" in text
    unknown = commands.parse("/zzz zenith")
    assert unknown is not None and commands.addressed(unknown, room)[1].args == ("zzz",)


@given(st.text(max_size=300))
def test_parse_never_crashes(text: str) -> None:
    cmd = commands.parse(text)
    assert cmd is None or cmd.name in set(commands.ALIASES.values()) | {"unknown"}


words = st.sampled_from(["/alert", "/alerte", "/end", "/fin", "/extend", "/prolonger", "/confirm", "/status",
                         "/drill", "/exercice", "/help", "/record", "/camera", "/x"])
args = st.lists(st.one_of(st.sampled_from(["attaque_armee", "30", "-5", "0", "INC-20261125-01", "99999"]),
                          st.text(min_size=1, max_size=20).filter(lambda s: not s.isspace())), max_size=4)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(word=words, rest=args, who=st.sampled_from(["op", "agent", "nohab", None]))
def test_fuzzed_commands_from_unauthorised_people_change_nothing(tmp_path_factory, word, rest, who) -> None:
    """Whatever an unauthorised person types, the answer is text and no incident opens or changes."""

    async def go() -> None:
        h = await Harness(tmp_path_factory.mktemp("fuzz")).start()
        try:
            cmd = commands.parse(" ".join([word, *rest]))
            assert cmd is not None
            reply = await commands.run(h.desk, cmd, h.person(who) if who else None, "console", "fr")
            assert isinstance(reply, str) and reply
            assert h.store.open_incidents() == []
            await h.fanout.drain()
            assert all(not r.log for r in h.rooms)
        finally:
            await h.stop()

    asyncio.run(go())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(words, args, st.sampled_from(["chef", "cic", "dir"])), min_size=1, max_size=8))
def test_fuzzed_sessions_by_authorised_people_keep_invariants(tmp_path_factory, lines) -> None:
    async def go() -> None:
        h = await Harness(tmp_path_factory.mktemp("fuzz")).start()
        try:
            for word, rest, who in lines:
                cmd = commands.parse(" ".join([word, *rest]))
                assert cmd is not None
                assert await commands.run(h.desk, cmd, h.person(who), "console", "fr")
                open_ = h.store.open_incidents()
                assert sum(not i.drill for i in open_) <= 1 and sum(i.drill for i in open_) <= 1
                for inc in open_:
                    if inc.ends_at and inc.activated_at:
                        assert inc.ends_at - inc.activated_at <= h.conv.limits.max_duration
            assert h.registre.verify().ok
        finally:
            await h.stop()

    asyncio.run(go())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(word=st.sampled_from(["/alerte attaque_armee Hall A", "/exercice", "/fin", "/statut", "/aide", "/prolonger 30",
                             "/confirmer"]),
       late=st.integers(0, 24 * 3600))
def test_late_commands(tmp_path_factory, word, late) -> None:
    """Typed while Vigie was away: /fin and reading commands apply; opening ones past the window do not."""

    async def go() -> None:
        h = await Harness(tmp_path_factory.mktemp("late")).start()
        try:
            await h.desk.alert(h.person("chef"), "console", "attaque_armee")  # an incident is open
            before = [(i.id, i.state, i.ends_at) for i in h.store.open_incidents()]
            cmd = commands.parse(word)
            assert cmd is not None
            now = h.clock()
            reply = await commands.run_late(h.desk, cmd, h.person("chef"), "console", "fr",
                                            now - timedelta(seconds=late), now)
            after = [(i.id, i.state, i.ends_at) for i in h.store.open_incidents()]
            records = [dict(r.details) for r in h.registre.records() if r.kind == Kind.LATE_COMMAND]
            if late <= commands.LATE_WINDOW.total_seconds():
                assert records == []
            elif cmd.name in commands.ALWAYS_APPLIED:
                assert [(r["command"], r["applied"]) for r in records] == [(cmd.name, True)]
            else:
                assert [(r["command"], r["applied"]) for r in records] == [(cmd.name, False)]
                assert "n'a PAS été appliquée" in reply and after == before
            if cmd.name == "end":
                assert after == []  # ending access is applied whenever it was typed
        finally:
            await h.stop()

    asyncio.run(go())
