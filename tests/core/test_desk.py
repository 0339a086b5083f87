"""The desk on real parts: registre, state store, access links, scheduler, and recording rooms."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from bot import commands
from bot.alarms.route import AlarmIn
from bot.policy.incident import State
from tests.harness import Clock, Harness, RecordingRoom
from tests.policy_fixtures import convention

LINK = re.compile(r"https://vigie\.test/live/\S+")


@pytest.fixture
async def h(tmp_path):
    harness = await Harness(tmp_path).start()
    yield harness
    await harness.stop()


async def run(h: Harness, text: str, who: str | None = "chef", room: str = "console", lang: str = "fr") -> str:
    cmd = commands.parse(text)
    assert cmd is not None
    return await commands.run(h.desk, cmd, h.person(who) if who else None, room, lang)


async def test_alert_posts_link_in_every_room_and_end_removes_it(h: Harness) -> None:
    reply = await run(h, "/alerte attaque_armee Hall A, tireur")
    assert "ouvert" in reply
    await h.fanout.drain()
    fr, en = h.rooms
    link_fr = next(t for t in fr.texts() if "ACCÈS VIDÉO OUVERT" in t)
    assert "attaque armée" in link_fr and LINK.search(link_fr) and "Hall A, tireur" in link_fr
    assert any("VIDEO ACCESS OPEN" in t for t in en.texts())
    inc = h.desk.open_incidents()[0]
    url = LINK.search(link_fr).group(0)  # type: ignore[union-attr]
    token = url.rsplit("/", 1)[1]
    assert h.access.check_link(token).id == inc.id

    assert "terminé" in await run(h, "/fin", who="cic")
    await h.fanout.drain()
    assert not any("ACCÈS VIDÉO OUVERT" in t for t in fr.live.values()), "link message removed at the end"
    assert any("ACCÈS TERMINÉ" in t and "Cdt Moreau" in t for t in fr.live.values()), "closure report posted"
    from bot.access import LinkGone
    with pytest.raises(LinkGone):
        h.access.check_link(token)
    kinds = h.kinds(inc.id)
    for k in ("trigger", "decision", "activation", "link_issued", "end", "closure_report"):
        assert k in kinds
    assert h.registre.verify().ok


@pytest.mark.parametrize(
    "text,who,room,code",
    [
        ("/alert vol_simple", "chef", "console", "not_grave"),
        ("/alert attaque_armee", None, "console", "unknown_person"),
        ("/alert attaque_armee", "chef", "telegram:-999", "wrong_room"),
        ("/alert attaque_armee", "op", "console", "not_initiator"),
        ("/extend 30", "chef", "console", "not_active"),
        ("/end", "chef", "console", "not_active"),
        ("/confirm", "chef", "console", "not_pending"),
        ("/record RJ-2026-77", "cic", "console", "recording_refused"),
        ("/camera ptz hall", "cic", "console", "camera_control_refused"),
    ],
)
async def test_bad_input_gets_clear_answer_changes_nothing_and_is_audited(h: Harness, text, who, room, code) -> None:
    before = h.store.open_incidents()
    reply = await run(h, text, who=who, room=room)
    assert reply.startswith("Refusé")
    assert h.store.open_incidents() == before
    refusals = [r for r in h.registre.records() if r.kind == "refusal"]
    if code == "recording_refused":
        assert any(r.kind == "recording_request" for r in h.registre.records())
    else:
        assert refusals and refusals[-1].details["reason"] == code
    await h.fanout.drain()
    assert all(not r.log for r in h.rooms), "a refusal posts nothing in the rooms"


async def test_repeated_alert_joins_open_incident(h: Harness) -> None:
    await run(h, "/alert attaque_armee")
    reply = await run(h, "/alert attaque_armee encore", who="cic")
    assert "déjà ouvert" in reply
    assert len(h.store.open_incidents()) == 1
    await h.fanout.drain()
    assert sum("ACCÈS VIDÉO OUVERT" in t for t in h.rooms[0].texts()) == 1


async def test_alarm_needs_confirmation_then_opens(h: Harness) -> None:
    res = await h.desk.alarm(AlarmIn("ssi", "panic", "Hall A", "", None, "msg_1"))
    assert res.accepted and res.outcome == "pending"
    await h.fanout.drain()
    assert any("ALERTE À CONFIRMER" in t for t in h.rooms[0].texts())
    assert "Refusé" in await run(h, "/confirm", who="op")  # operator may not confirm
    assert "ouvert" in await run(h, f"/confirm {res.incident_id}", who="cic")
    await h.fanout.drain()
    inc = h.store.get(res.incident_id or "")
    assert inc is not None and inc.state is State.ACTIVE and inc.confirmed_by == "cic"
    assert any("confirmée par Cdt Moreau" in t for t in h.rooms[0].live.values())


async def test_alarm_storm_joins_one_incident(h: Harness) -> None:
    results = [await h.desk.alarm(AlarmIn("ssi", "panic", "Hall A", "", None, f"m{i}")) for i in range(30)]
    assert {r.incident_id for r in results} == {results[0].incident_id}
    assert len(h.store.open_incidents()) == 1
    assert h.kinds(results[0].incident_id).count("joined") == 29


async def test_confirmation_window_lapses(h: Harness) -> None:
    res = await h.desk.alarm(AlarmIn("ssi", "panic", "", "", None, "m"))
    h.clock.advance(minutes=6)
    await h.desk.sweep()
    inc = h.store.get(res.incident_id or "")
    assert inc is not None and inc.state is State.REFUSED
    await h.fanout.drain()
    assert any("non confirmée" in t for t in h.rooms[0].live.values())


async def test_expiry_reminder_extension_and_maximum(h: Harness) -> None:
    await run(h, "/alert prise_otages")
    inc = h.store.open_incidents()[0]
    await h.desk._remind(inc.id)
    assert "prolongé" in await run(h, "/prolonger 30", who="cic")
    assert "Refusé" in await run(h, "/extend 30", who="agent")  # a viewer may not extend
    for _ in range(10):
        await run(h, "/extend 60", who="chef")
    inc = h.store.get(inc.id)
    assert inc is not None and inc.ends_at == inc.activated_at + timedelta(hours=4)  # type: ignore[operator]
    h.clock.now = inc.ends_at  # type: ignore[assignment]
    await h.desk.sweep()
    assert h.store.get(inc.id).state is State.EXPIRED  # type: ignore[union-attr]
    await h.fanout.drain()
    assert any("se termine dans" in t for t in h.rooms[0].texts())
    assert any("durée écoulée" in t for t in h.rooms[0].live.values())


async def test_drill_is_kept_apart_from_real(h: Harness) -> None:
    await run(h, "/exercice")
    await run(h, "/alert attaque_armee")
    real = next(i for i in h.store.open_incidents() if not i.drill)
    drill = next(i for i in h.store.open_incidents() if i.drill)
    assert drill.id.startswith("EX-") and real.id.startswith("INC-")
    await run(h, "/end")  # without a number: the real one first
    assert h.store.get(real.id).state is State.ENDED  # type: ignore[union-attr]
    assert h.store.get(drill.id).is_open  # type: ignore[union-attr]
    await h.fanout.drain()
    assert any(t.startswith("EXERCICE") for t in h.rooms[0].texts())
    assert all(r.drill for r in h.registre.records(drill.id))


async def test_lapsed_authorisation_ends_open_access(tmp_path) -> None:
    clock = Clock()
    h = await Harness(tmp_path, conv=convention(expires=date(2026, 11, 25)), clock=clock).start()
    try:
        await run(h, "/alert attaque_armee")
        clock.advance(days=1)
        await h.desk.sweep()
        assert h.store.open_incidents() == []
        assert h.registre.records()[-2].details.get("reason") == "authorisation_lapsed" or any(
            r.details.get("reason") == "authorisation_lapsed" for r in h.registre.records())
        assert "Refusé" in await run(h, "/alert attaque_armee")
    finally:
        await h.stop()


async def test_failing_room_never_blocks_the_others(tmp_path) -> None:
    bad = RecordingRoom("telegram:-1", fail=100)
    good = RecordingRoom("console")
    h = await Harness(tmp_path, rooms=[bad, good]).start()
    try:
        await run(h, "/alert attaque_armee")
        await h.fanout.outboxes[1].drain()
        assert any("ACCÈS VIDÉO OUVERT" in t for t in good.texts())
        await h.fanout.drain()
        assert h.fanout.health()["telegram:-1"].ok is False
        assert "EN ÉCHEC" in h.desk.status().text("fr")
        assert "room_error" in h.kinds()
    finally:
        bad.fail = 0
        await h.stop()


async def test_restart_mid_incident_restores_state_links_and_refs(tmp_path) -> None:
    clock = Clock()
    rooms = [RecordingRoom("console")]
    h = await Harness(tmp_path, clock=clock, rooms=rooms).start()
    await run(h, "/alert attaque_armee")
    await h.fanout.drain()
    url = LINK.search(next(t for t in rooms[0].texts() if "OUVERT" in t)).group(0)  # type: ignore[union-attr]
    await h.stop()

    h2 = await Harness(tmp_path, clock=clock, rooms=rooms).start()  # same rooms: the messages still exist there
    try:
        inc = h2.desk.open_incidents()[0]
        assert h2.access.check_link(url.rsplit("/", 1)[1]).id == inc.id, "link still valid after restart"
        assert h2.scheduler.get_job(f"{inc.id}:expiry") is not None, "timers re-armed"
        await run(h2, "/end")
        await h2.fanout.drain()
        assert not any("OUVERT" in t for t in rooms[0].live.values()), "message posted before the restart deleted"
        assert h2.registre.verify().ok
    finally:
        await h2.stop()


async def test_status_and_help(h: Harness) -> None:
    assert "Aucun incident" in await run(h, "/statut")
    assert "/alerte" in await run(h, "/aide")
    assert "/alert" in await run(h, "/help", lang="en")
    assert "Quelle catégorie" in await run(h, "/alert")
    assert "Commande inconnue" in await run(h, "/bonjour")


async def test_rooms_warned_before_the_authorisation_lapses(tmp_path) -> None:
    h = await Harness(tmp_path, conv=convention(expires=date(2027, 1, 10))).start()
    try:
        await h.fanout.drain()
        assert any("expire le 10/01/2027" in t for t in h.rooms[0].texts())
        h.desk.check_authorisation()  # same day: not twice
        await h.fanout.drain()
        assert sum("expire le" in t for t in h.rooms[0].texts()) == 1
        assert "authorisation_warning" in h.kinds()
    finally:
        await h.stop()


async def test_closure_report_anchors_the_registre_head(h: Harness) -> None:
    await run(h, "/alert attaque_armee")
    await run(h, "/end")
    await h.fanout.drain()
    report = next(t for t in h.rooms[0].live.values() if "ACCÈS TERMINÉ" in t)
    head = next(r for r in reversed(h.registre.records()) if r.kind == "closure_report")
    assert f"Empreinte du registre à la clôture : {head.hash[:16]}" in report
    assert any(f"Registre hash at closing: {head.hash[:16]}" in t for t in h.rooms[1].live.values())
