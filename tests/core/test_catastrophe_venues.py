"""Catastrophe mode and venue codes: addressed like /fin in a shared room, the venue's own code accepted
in its own rooms (another venue's refused there), its messages titled, its records stamped; the shared
room's one /statut line says how many watch; a backup written without a config keeps the venue."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot import commands
from bot.audit import Registre
from bot.kinds import Kind
from bot.ops.backup import backup
from bot.policy.venues import Action, RoomVenues
from bot.store import Store
from tests.core.test_catastrophe import FIELD, World
from tests.harness import Harness
from tests.policy_fixtures import ROSTER, convention

SHARED = RoomVenues("zenith", frozenset({"stade"}), frozenset({"stade"}))


@pytest.fixture
async def w(tmp_path: Path):
    base = convention()
    conv = replace(base, roster=(*ROSTER, FIELD),
                   catastrophe=replace(base.catastrophe, max_duration=timedelta(minutes=30)))
    h = await Harness(tmp_path, conv=conv, venue="zenith").start()
    h.desk.other_venues = frozenset({"stade"})
    world = World(h)
    await world.cats.start()
    yield world
    await h.stop()


@pytest.mark.parametrize("line", ["/catastrophe", "/fin_catastrophe", "/ptz hall preset scene", "/confirmer_catastrophe"])
def test_catastrophe_commands_are_addressed_like_fin(line: str) -> None:
    cmd = commands.parse(line)
    assert cmd is not None
    word, _, rest = line.partition(" ")
    assert commands.addressed(cmd, SHARED)[0] is Action.IGNORE  # venue-less: "stade" answers, nothing acts
    assert commands.addressed(cmd, RoomVenues("stade", frozenset({"zenith"}), frozenset({"zenith"})))[0] is Action.LIST
    named = commands.parse(f"{word} zenith {rest}")
    assert named is not None
    action, stripped = commands.addressed(named, SHARED)
    assert action is Action.ACT and stripped.name == cmd.name and stripped.rest == rest
    other = commands.parse(f"{word} stade {rest}")
    assert other is not None and commands.addressed(other, SHARED)[0] is Action.IGNORE
    assert commands.addressed(cmd, SHARED, replied_venue="zenith")[0] is Action.ACT
    assert commands.addressed(cmd, SHARED, replied_venue="stade")[0] is Action.IGNORE


async def test_own_code_in_own_room_and_catastrophe_titled_and_stamped(w: World) -> None:
    answer = await w.run("/alerte zenith attaque_armee Hall A", "chef")
    assert answer.startswith("[zenith] ") and "catégorie" not in answer.lower()
    inc = w.incident()
    assert "Hall A" in w.h.desk.incident(inc).trigger.details  # type: ignore[union-attr]
    assert "CATASTROPHE déclarée" in await w.run("/catastrophe zenith", "chef")
    assert "EN VIGUEUR" in await w.run("/catastrophe zenith", "cic")
    assert "fait" in await w.run("/ptz zenith hall prendre", "cic")
    assert (await w.run("/ptz zenith hall preset scene", "cic")).startswith("[zenith] ")
    assert w.hall.calls == [("preset", "scene")]
    assert "terminée" in await w.run("/fin_catastrophe zenith", "cic")
    await w.settle()
    posted = w.h.rooms[0].texts()
    assert posted and all(text.startswith("[zenith] ") for text in posted), posted
    assert any("CATASTROPHE" in text for text in posted)
    records = w.h.registre.records(inc)
    assert {"catastrophe_declared", "catastrophe_ended", "ptz_command"} <= {r.kind for r in records}
    assert {r.venue for r in records} == {"zenith"}
    assert inc in await w.run("/fin zenith", "chef")
    assert w.h.desk.open_incidents() == []


async def test_another_venues_code_in_own_room_acts_on_nothing(w: World) -> None:
    await w.run("/alerte attaque_armee Hall A", "chef")
    inc = w.incident()
    for line in ("/fin stade", "/catastrophe stade", "/alerte stade attaque_armee Hall B"):
        answer = await w.run(line, "chef")
        assert "celui du site zenith" in answer and "stade" in answer and "rien n'a été fait" in answer, answer
    assert [i.id for i in w.h.desk.open_incidents()] == [inc] and w.cats.of(inc) is None
    refused = [r for r in w.h.registre.records() if r.kind == Kind.REFUSAL and r.details["reason"] == "other_venue"]
    assert len(refused) == 3 and {r.details["venue"] for r in refused} == {"stade"}
    assert {r.venue for r in refused} == {"zenith"}
    await w.run("/fin", "chef")


async def test_shared_status_line_counts_watchers(w: World) -> None:
    assert "regard" not in w.h.desk.status(brief=True).text("fr")  # nothing open, nobody watching: no count
    await w.run("/alerte attaque_armee Hall A", "chef")
    line = w.h.desk.status(brief=True).text("fr")
    assert "personne ne regarde" in line and "/statut zenith" in line
    w.h.desk.watching_now = lambda: 2
    line = w.h.desk.status(brief=True).text("fr")
    assert "2 personnes regardent" in line and "\n" not in line
    assert "2 people watching" in w.h.desk.status(brief=True).text("en")
    w.h.desk.watching_now = lambda: 1
    assert "1 personne regarde" in w.h.desk.status(brief=True).text("fr")
    await w.run("/fin", "chef")


def test_backup_without_config_keeps_the_registres_venue(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with Registre(data / "registre.sqlite3", venue="zenith") as r:
        r.append(Kind.TRIGGER, actor="chef", details={})
    Store(data / "state.sqlite3").close()
    backup(data, tmp_path / "b1", actor="backup:test")
    backup(data, tmp_path / "b2", actor="backup:test", venue="zenith")
    with Registre(data / "registre.sqlite3", readonly=True) as r:
        done = [x for x in r.records() if x.kind == Kind.BACKUP]
        assert [x.venue for x in done] == ["zenith", "zenith"] and r.verify().ok
