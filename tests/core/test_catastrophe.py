"""Catastrophe mode on real parts (registre, store, scheduler, recording rooms) with a recording PTZ driver.

The ONVIF driver against a third-party device simulator is tested in tests/ptz; the page in tests/web.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from bot import commands
from bot.catastrophe import Catastrophes
from bot.policy.catastrophe import CatState
from bot.policy.convention import Org, Person, Role
from bot.policy.reasons import Refused, Why
from bot.ptz_control import CameraControl, PtzError
from bot.store import Store
from tests.harness import Harness
from tests.policy_fixtures import HASH, ROSTER, convention

FIELD = Person("terrain", "Cne Vidal", Org.POLICE, Role.FIELD_COMMANDER, habilitation="HAB-3", password_hash=HASH)


class Driver:
    """Records what it was told; ``fail`` makes every call fail like an unreachable camera."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail = False

    async def _do(self, *call: str) -> None:
        if self.fail:
            raise PtzError(f"{call[0]}: no answer within 5 s")
        self.calls.append(call)

    async def move(self, pan: float, tilt: float, zoom: float) -> None:
        await self._do("move", str(pan), str(tilt), str(zoom))

    async def stop(self) -> None:
        await self._do("stop")

    async def goto_preset(self, token: str) -> None:
        await self._do("preset", token)

    async def home(self) -> None:
        await self._do("home")

    async def presets(self) -> list[tuple[str, str]]:
        return [("scene", "Scène"), ("origine", "Origine")]

    async def close(self) -> None:
        return None


class World:
    def __init__(self, h: Harness) -> None:
        self.h = h
        self.hall, self.fosse = Driver(), Driver()
        self.cats = Catastrophes(h.conv, h.store, h.registre, h.fanout, h.scheduler, h.desk.render, h.clock, h.desk,
                                 lambda: frozenset(h.fanout.room_ids))
        self.control = CameraControl(h.conv, self.cats, h.registre, h.fanout, h.desk.render, h.clock,
                                     {"hall": self.hall, "fosse": self.fosse}, {"hall": "Hall d'entrée", "fosse": "Fosse"})
        h.desk.catastrophes = self.cats

    async def run(self, text: str, who: str) -> str:
        cmd = commands.parse(text)
        assert cmd is not None
        return await commands.run(self.h.desk, cmd, self.h.person(who), "console", "fr")

    def incident(self) -> str:
        return self.h.desk.open_incidents()[0].id

    async def settle(self) -> None:
        await self.cats.stop()  # the homing tasks
        await self.h.fanout.drain()

    def posted(self) -> str:
        return "\n".join(self.h.rooms[0].texts())


@pytest.fixture
async def w(tmp_path):
    base = convention()
    conv = replace(base, roster=(*ROSTER, FIELD),
                   catastrophe=replace(base.catastrophe, max_duration=timedelta(minutes=30)))
    h = await Harness(tmp_path, conv=conv).start()
    world = World(h)
    await world.cats.start()
    yield world
    await h.stop()


async def declared(w: World) -> str:
    await w.run("/alerte attaque_armee Hall A", "chef")
    assert "en attente" not in await w.run("/catastrophe", "chef")
    in_force = await w.run("/catastrophe", "cic")
    assert "EN VIGUEUR" in in_force and "onfirmé par" in in_force and ", )" not in in_force
    return w.incident()


async def test_the_whole_flow_is_announced_recorded_and_the_camera_goes_home(w: World) -> None:
    inc = await declared(w)
    await w.control.take("cic", inc, "hall", False, "page")
    await w.control.command("cic", inc, "hall", "move", {"pan": 0.5, "tilt": 0, "zoom": 0}, "page")
    for _ in range(5):  # a finger held on the picture: ticks, one gesture
        await w.control.command("cic", inc, "hall", "move", {"pan": 0.5, "tilt": 0.1, "zoom": 0}, "page")
    await w.control.command("cic", inc, "hall", "stop", {}, "page")
    await w.control.command("cic", inc, "hall", "preset", {"token": "scene"}, "page")
    view = w.control.view("agent", inc)
    assert view["catastrophe"] and not view["may_control"] and view["cameras"]["hall"]["holder"] == "Cdt Moreau"
    assert view["cameras"]["hall"]["presets"] == []  # a viewer who may not steer sees no presets
    assert w.control.view("cic", inc)["cameras"]["hall"]["presets"][0]["token"] == "scene"
    [line] = w.cats.status_lines("fr", w.control.held_text)
    assert "Catastrophe en vigueur" in line and "Hall d'entrée (Cdt Moreau)" in line
    await w.control.release("cic", inc, "hall", "page")
    assert "terminée" in await w.run("/fin_catastrophe", "cic")
    await w.settle()
    assert w.hall.calls[-1] == ("home",) and w.fosse.calls == []
    moves = [r for r in w.h.registre.records(inc) if r.kind == "ptz_command" and r.details["command"] == "move"]
    assert len(moves) == 1 and moves[0].details["ticks"] == 6, "one record per gesture, not per tick"
    kinds = w.h.kinds(inc)
    for k in ("catastrophe_declared", "catastrophe_confirmed", "ptz_taken", "ptz_released", "catastrophe_ended",
              "ptz_home"):
        assert k in kinds
    text = w.posted()
    assert "CATASTROPHE déclarée" in text and "Hall d'entrée : commandée par Cdt Moreau" in text
    assert "revenues à leur position d'origine : Hall d'entrée" in text
    await w.run("/fin", "chef")
    await w.h.fanout.drain()
    report = next(t for t in w.h.rooms[0].texts() if "ACCÈS TERMINÉ" in t)
    assert "Commandes de caméras (catastrophe) : 2" in report and "Cdt Moreau (officier du CIC) — Hall d'entrée : preset scene" in report


async def test_refused_before_the_declaration_after_its_end_and_for_others(w: World) -> None:
    await w.run("/alerte attaque_armee Hall A", "chef")
    inc = w.incident()
    with pytest.raises(Refused) as before:
        await w.control.take("cic", inc, "hall", False, "page")
    assert before.value.reason.code is Why.CAMERA_CONTROL_REFUSED
    assert "Refusé" in await w.run("/ptz hall prendre", "cic")
    await w.run("/catastrophe", "chef")
    with pytest.raises(Refused):  # declared, not yet confirmed
        await w.control.take("cic", inc, "hall", False, "page")
    await w.run("/catastrophe", "cic")
    with pytest.raises(Refused) as viewer:
        await w.control.take("agent", inc, "hall", False, "page")
    assert viewer.value.reason.code is Why.NOT_ALLOWED_CONTROL
    await w.control.take("terrain", inc, "hall", False, "page")
    with pytest.raises(Refused) as second:
        await w.control.command("cic", inc, "hall", "home", {}, "page")
    assert second.value.reason.code is Why.NOT_CONTROLLER
    with pytest.raises(Refused) as held:
        await w.control.take("cic", inc, "hall", False, "page")
    assert held.value.reason.code is Why.CAMERA_HELD
    await w.control.take("cic", inc, "hall", True, "page")  # the CIC takes over a field commander
    assert "reprise par Cdt Moreau" in (await w.settle() or w.posted())
    await w.run("/fin_catastrophe", "chef")
    with pytest.raises(Refused) as after:
        await w.control.command("cic", inc, "hall", "home", {}, "page")
    assert after.value.reason.code is Why.CAMERA_CONTROL_REFUSED
    refusals = [r.details for r in w.h.registre.records() if r.kind == "refusal"]
    assert {d.get("reason") for d in refusals} >= {"camera_control_refused", "not_allowed_control", "not_controller",
                                                  "camera_held"}


async def test_ends_at_its_maximum_and_with_access_and_cameras_that_fail_are_named(w: World) -> None:
    inc = await declared(w)
    await w.control.take("cic", inc, "hall", False, "page")
    await w.control.command("cic", inc, "hall", "preset", {"token": "scene"}, "page")
    w.h.clock.advance(minutes=31)
    await w.cats.sweep()
    assert w.cats.of(inc).state is CatState.EXPIRED  # type: ignore[union-attr]
    await w.settle()
    assert "durée maximale atteinte" in w.posted() and w.hall.calls[-1] == ("home",)
    inc2 = inc
    assert "EN VIGUEUR" in await w.run("/catastrophe", "chef") + await w.run("/catastrophe", "cic")
    await w.control.take("cic", inc2, "hall", False, "page")
    await w.control.command("cic", inc2, "hall", "home", {}, "page")
    w.hall.fail = True
    await w.run("/fin", "cic")
    await w.settle()
    assert w.cats.of(inc2).close_reason == "access_ended"  # type: ignore[union-attr]
    assert "NON revenues à leur position d'origine : Hall d'entrée" in w.posted()
    home = [r for r in w.h.registre.records(inc2) if r.kind == "ptz_home"][-1]
    assert "hall" in home.details["failed"]


async def test_pending_lapses_and_a_declaration_survives_a_restart(w: World, tmp_path) -> None:
    await w.run("/alerte attaque_armee Hall A", "chef")
    inc = w.incident()
    await w.run("/catastrophe", "cic")
    w.h.clock.advance(minutes=4)
    await w.cats.sweep()
    assert w.cats.of(inc).state is CatState.LAPSED  # type: ignore[union-attr]
    await w.run("/catastrophe", "cic")
    await w.run("/catastrophe", "dir")
    store = Store(tmp_path / "state.sqlite3")
    restored = store.catastrophes(open_only=True)
    store.close()
    assert [c.state for c in restored] == [CatState.DECLARED] and restored[0].confirmed_by == "dir"
    again = Catastrophes(w.h.conv, w.h.store, w.h.registre, w.h.fanout, w.h.scheduler, w.h.desk.render, w.h.clock,
                         w.h.desk, lambda: frozenset(w.h.fanout.room_ids))
    await again.start()
    assert again.in_force(inc) is not None
    assert w.h.scheduler.get_job(f"{restored[0].id}:deadline") is not None


async def test_ptz_from_a_room(w: World) -> None:
    inc = await declared(w)
    assert "Refusé" in await w.run("/ptz hall", "cic")  # no verb: refused, recorded
    assert "fait" in await w.run("/ptz hall prendre", "cic")
    assert "fait" in await w.run("/ptz hall preset scene", "cic")
    assert "Refusé" in await w.run("/ptz hall origine", "terrain")  # not the controller
    w.hall.fail = True
    assert "n'a pas répondu" in await w.run("/ptz hall origine", "cic")
    w.hall.fail = False
    assert "fait" in await w.run("/ptz hall rendre", "cic")
    commands_ = [r.details for r in w.h.registre.records(inc) if r.kind == "ptz_command"]
    assert [(d["command"], d.get("via")) for d in commands_] == [("preset", "console"), ("home", "console")]
    assert "error" in commands_[1]


async def test_a_held_finger_refused_is_recorded_once_not_per_tick(w: World) -> None:
    inc = await declared(w)
    await w.control.take("terrain", inc, "hall", False, "page")
    for _ in range(8):  # another officer's finger on the pad: 8 ticks in 2 s
        with pytest.raises(Refused):
            await w.control.command("cic", inc, "hall", "move", {"pan": 1}, "page")
        w.h.clock.advance(seconds=0.25)
    w.h.clock.advance(seconds=10)
    with pytest.raises(Refused):
        await w.control.command("cic", inc, "hall", "move", {"pan": 1}, "page")
    refused = [r.details for r in w.h.registre.records(inc) if r.kind == "refusal" and r.details.get("command") == "move"]
    assert len(refused) == 2 and refused[1]["repeated_before"] == 7


async def test_a_slow_camera_holds_neither_the_others_nor_its_own_ticks(w: World) -> None:
    inc = await declared(w)
    await w.control.take("cic", inc, "hall", False, "page")
    await w.control.take("cic", inc, "fosse", False, "page")
    gate = asyncio.Event()
    real_move = w.hall.move

    async def slow_move(pan: float, tilt: float, zoom: float) -> None:
        await gate.wait()
        await real_move(pan, tilt, zoom)

    w.hall.move = slow_move  # type: ignore[method-assign]
    first = asyncio.create_task(w.control.command("cic", inc, "hall", "move", {"pan": 1}, "page"))
    await asyncio.sleep(0)
    for _ in range(3):  # ticks while the first move is still on its way: folded into the gesture
        await w.control.command("cic", inc, "hall", "move", {"pan": 1}, "page")
    await w.control.command("cic", inc, "fosse", "preset", {"token": "scene"}, "page")
    assert w.fosse.calls == [("preset", "scene")] and not first.done()
    gate.set()
    await first
    assert [c[0] for c in w.hall.calls] == ["move"]


async def test_who_steers_which_camera_survives_a_restart(w: World) -> None:
    inc = await declared(w)
    await w.control.take("terrain", inc, "hall", False, "page")
    await w.control.take("cic", inc, "hall", True, "page")  # the CIC takes over the field commander
    await w.control.take("terrain", inc, "fosse", False, "page")
    await w.control.release("terrain", inc, "fosse", "page")
    # the bot restarts mid-catastrophe: a new control, its holders replayed from the registre
    again = CameraControl(w.h.conv, w.cats, w.h.registre, w.h.fanout, w.h.desk.render, w.h.clock,
                          {"hall": w.hall, "fosse": w.fosse}, {"hall": "Hall d'entrée", "fosse": "Fosse"})
    restored = again.restore(w.h.registre.records)
    assert {c: h.person for c, h in restored.items()} == {"hall": "cic"}
    with pytest.raises(Refused) as held:  # the field commander cannot take it back by asking first
        await again.take("terrain", inc, "hall", False, "page")
    assert held.value.reason.code is Why.CAMERA_HELD
    await again.command("cic", inc, "hall", "home", {}, "page")  # the holder steers on
    await again.take("terrain", inc, "fosse", False, "page")  # a released camera is free
    # a holder no longer allowed to steer is not restored; nothing is once the catastrophe is over
    demoted = replace(w.h.conv, roster=tuple(p for p in w.h.conv.roster if p.id != "cic"))
    third = CameraControl(demoted, w.cats, w.h.registre, w.h.fanout, w.h.desk.render, w.h.clock,
                          {"hall": w.hall, "fosse": w.fosse}, {})
    assert {c: h.person for c, h in third.restore(w.h.registre.records).items()} == {"fosse": "terrain"}

    def unreadable(incident: str) -> list[Any]:
        raise sqlite3.OperationalError("database is locked")

    assert third.restore(unreadable) == {} and third.holders == {}  # logged; Vigie still starts
    await w.run("/fin_catastrophe", "cic")
    await w.settle()
    assert again.restore(w.h.registre.records) == {}
