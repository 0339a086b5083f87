"""The incident's zone at the desk: taken from `/alerte`'s free text, a webhook's zone or a panel's
number; named in the link; changed by the police with `/zone`, recorded, kept across a restart."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from bot import commands
from bot.alarm import AlarmIn
from bot.kinds import Kind
from bot.policy.venues import Action, RoomVenues
from bot.policy.zones import Focus, Zone, ZoneMap
from tests.harness import Harness
from tests.policy_fixtures import convention

ZONES = ZoneMap((
    Zone("hall-a", "Hall A", ("hall",), ("hall d'entrée",)),
    Zone("salle", "Salle", ("fosse",), ("fosse", "gradins")),
))


def conv():  # noqa: ANN201 - test helper
    return dataclasses.replace(convention(), zones=ZONES)


async def run(h: Harness, line: str, who: str, room: str = "console", lang: str = "fr") -> str:
    cmd = commands.parse(line)
    assert cmd is not None
    return await commands.run(h.desk, cmd, h.person(who), room, lang)


def test_alert_text_names_the_zone_and_the_link_says_it_in_both_languages(tmp_path: Path) -> None:
    async def go() -> None:
        h = await Harness(tmp_path, conv=conv()).start()
        try:
            await run(h, "/alerte attaque_armee hall A, coups de feu", "chef")
            inc = h.store.open_incidents()[0]
            assert inc.focus == Focus("hall-a")
            await h.fanout.drain()
            fr, en = (next(t for t in r.texts() if "http" in t) for r in h.rooms)
            assert "📍 Zone : Hall A" in fr and "📍 Zone: Hall A" in en
            trigger = next(r for r in h.registre.records(inc.id) if r.kind == Kind.TRIGGER)
            assert trigger.details["zone"] == "hall-a"
        finally:
            await h.stop()

    asyncio.run(go())


def test_unknown_place_is_kept_and_a_panel_number_maps_to_its_zone(tmp_path: Path) -> None:
    async def go() -> None:
        h = await Harness(tmp_path, conv=conv()).start()
        try:
            await run(h, "/alerte attaque_armee Rue des Aciéries", "chef")
            inc = h.store.open_incidents()[0]
            assert inc.focus == Focus(None, "Rue des Aciéries")
            await h.fanout.drain()
            assert any("« Rue des Aciéries » (hors des zones connues)" in t for t in h.rooms[0].texts())
            await run(h, "/fin", "chef")
            # a panel's zone 005 mapped to "salle" (alarms.toml): the id wins over the text
            res = await h.desk.alarm(AlarmIn("ssi", "panic", "005 (détecteur fosse)", "", None, "d1", zone_id="salle"))
            assert h.store.get(res.incident_id).focus == Focus("salle")  # type: ignore[union-attr]
        finally:
            await h.stop()

    asyncio.run(go())


def test_zone_command_police_only_recorded_announced_and_kept_across_restart(tmp_path: Path) -> None:
    async def go() -> None:
        h = await Harness(tmp_path, conv=conv()).start()
        try:
            await run(h, "/alerte attaque_armee Hall A", "chef")
            inc = h.store.open_incidents()[0]
            refused = await run(h, "/zone Salle", "chef")  # the venue says where, the police decide
            assert "Seule la police" in refused and h.store.get(inc.id).focus == Focus("hall-a")  # type: ignore[union-attr]
            assert "Quelle zone" in await run(h, "/zone", "cic")
            reply = await run(h, "/zone LES GRADINS", "cic", lang="en")
            assert reply.startswith(f"[{inc.id}] Focus zone: Salle")
            assert h.store.get(inc.id).focus == Focus("salle")  # type: ignore[union-attr]
            assert "Salle" in await run(h, "/zone salle", "agent")  # the same zone again: answered, not repeated
            records = [r for r in h.registre.records(inc.id) if r.kind == Kind.FOCUS]
            assert [(r.actor, r.details["zone"], r.details["before"]) for r in records] == [("cic", "salle", "hall-a")]
            refusals = [r.details["reason"] for r in h.registre.records() if r.kind == Kind.REFUSAL]
            assert refusals == ["not_focus_role", "focus_where"]
            await h.fanout.drain()
            assert any("a changé la zone suivie : Salle" in t for t in h.rooms[0].texts())
        finally:
            await h.stop()
        again = await Harness(tmp_path, conv=conv()).start()
        try:
            assert again.store.open_incidents()[0].focus == Focus("salle")
        finally:
            await again.stop()

    asyncio.run(go())


def test_shared_room_venue_word_first_then_category_and_zone_text(tmp_path: Path) -> None:
    """In a police room shared with the stadium, the Zénith's word goes, the rest is read as in its own room."""
    room = RoomVenues("zenith", frozenset({"stade"}), frozenset({"stade", "zenith"}))

    async def addressed(h: Harness, line: str, who: str) -> str | None:
        cmd = commands.parse(line)
        assert cmd is not None
        action, mine = commands.addressed(cmd, room)
        return await commands.run(h.desk, mine, h.person(who), "console", "fr") if action is Action.ACT else None

    async def go() -> None:
        h = await Harness(tmp_path, conv=conv(), venue="zenith").start()
        try:
            assert await addressed(h, "/alerte stade attaque_armee Hall A", "chef") is None  # the stadium's
            assert h.store.open_incidents() == []
            reply = await addressed(h, "/alerte zenith attaque_armee Hall A", "chef")
            assert reply is not None and reply.startswith("[zenith] ")
            inc = h.store.open_incidents()[0]
            assert inc.focus == Focus("hall-a") and inc.category == "attaque_armee"
            trigger = next(r for r in h.registre.records(inc.id) if r.kind == Kind.TRIGGER)
            assert trigger.details["zone"] == "hall-a" and trigger.venue == "zenith"
            assert await addressed(h, "/zone stade Salle", "cic") is None
            assert h.store.get(inc.id).focus == Focus("hall-a")  # type: ignore[union-attr]
            moved = await addressed(h, "/zone zenith Salle", "cic")
            assert moved is not None and moved.startswith(f"[zenith] [{inc.id}]")
            assert h.store.get(inc.id).focus == Focus("salle")  # type: ignore[union-attr]
            await h.fanout.drain()
            link = next(t for t in h.rooms[0].texts() if "http" in t)
            notice = next(t for t in h.rooms[0].texts() if "a changé la zone suivie : Salle" in t)
            assert link.startswith("[zenith] ") and "📍 Zone : Hall A" in link and notice.startswith("[zenith] ")
        finally:
            await h.stop()

    asyncio.run(go())


def test_status_and_closure_report_name_the_zone_followed(tmp_path: Path) -> None:
    """/statut and the closure report say where the incident looks: the zone as /zone last set it,
    in each room's language; an incident with no place given names none."""
    async def go() -> None:
        h = await Harness(tmp_path, conv=conv()).start()
        try:
            await run(h, "/alerte attaque_armee Hall A", "chef")
            inc = h.store.open_incidents()[0]
            assert f"{inc.id} — " in (status := await run(h, "/statut", "cic")) and "(📍 Hall A)" in status
            await run(h, "/zone gradins", "cic")
            assert "(📍 Salle)" in await run(h, "/statut", "cic", lang="en")
            await run(h, "/fin", "cic")
            await h.fanout.drain()
            fr, en = (next(t for t in room.live.values() if "ACCÈS TERMINÉ" in t or "ACCESS ENDED" in t)
                      for room in h.rooms)
            assert "📍 Zone : Salle" in fr and "📍 Zone: Salle" in en
            assert "📍 Zone : Hall A" not in fr  # the zone at the end, not the first (the registre has both)
            await run(h, "/alerte attaque_armee", "chef")
            other = h.store.open_incidents()[0]
            assert other.focus.empty and f"{other.id} — " in (bare := await run(h, "/statut", "cic")) and "📍" not in bare
        finally:
            await h.stop()

    asyncio.run(go())
