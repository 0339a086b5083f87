"""The closure report says who watched what, when: per person, sign-ins and camera spans,
de-duplicated, in French and English, rebuilt from the registre (also after a restart)."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import timedelta
from pathlib import Path

from bot.audit import AuditRecord, Registre
from bot.audit_cli import export_command
from bot.kinds import Kind
from bot.policy.convention import Convention
from bot.viewing import close_unclosed
from tests.harness import FAST_HASHER, Clock, Harness
from tests.policy_fixtures import T0, convention

PASSWORD = "correct horse"  # noqa: S105 - test roster
HASH = FAST_HASHER.hash(PASSWORD)


def roster() -> Convention:
    conv = convention()
    return dataclasses.replace(conv, roster=tuple(dataclasses.replace(p, password_hash=HASH) for p in conv.roster))


class Scene:
    """Drives one incident on the harness clock: sign-ins through Access, streams as the media routes
    record them (T0 is 19:00 in Paris, where the harness shows times)."""

    def __init__(self, h: Harness, clock: Clock) -> None:
        self.h, self.clock = h, clock
        self.n = 0

    def at(self, minutes: float) -> None:
        self.clock.now = T0 + timedelta(minutes=minutes)

    async def open(self) -> str:
        await self.h.desk.alert(self.h.person("chef"), "console", "attaque_armee", "Hall A")
        inc = self.h.desk.open_incidents()[0]
        self.token = self.h.access.issue_link(inc).rsplit("/", 1)[1]
        return inc.id

    async def sign_in(self, person: str, client: str) -> None:
        await self.h.access.login(self.token, person, PASSWORD, client, address=client.split()[0])

    def stream(self, kind: Kind, incident: str, person: str, camera: str, stream: str) -> None:
        self.h.registre.append(kind, incident=incident, actor=person, at=self.clock(),
                               details={"camera": camera, "person": person, "mode": "video", "stream": stream,
                                        "client": "198.51.100.7 ua:1"})

    async def end(self) -> tuple[str, str]:
        await self.h.desk.end(self.h.person("cic"), "console")
        await self.h.fanout.drain()
        fr, en = (next(t for t in room.live.values() if "ACCÈS TERMINÉ" in t or "ACCESS ENDED" in t)
                  for room in self.h.rooms)
        return fr, en


async def test_two_viewers_three_cameras_a_re_sign_in(tmp_path: Path) -> None:
    clock = Clock()
    h = await Harness(tmp_path, conv=roster(), clock=clock).start()
    s = Scene(h, clock)
    try:
        inc = await s.open()
        s.at(2)
        await s.sign_in("agent", "198.51.100.7 ua:1")
        s.at(3)
        s.stream(Kind.STREAM_OPENED, inc, "agent", "hall", "a1")
        s.at(4)
        s.stream(Kind.STREAM_OPENED, inc, "agent", "hall", "a2")  # a second tab, same camera
        s.at(5)
        await s.sign_in("cic", "203.0.113.9 ua:2")
        s.at(6)
        s.stream(Kind.STREAM_CLOSED, inc, "agent", "hall", "a2")
        s.stream(Kind.STREAM_OPENED, inc, "cic", "fosse", "c1")
        s.at(9)
        s.stream(Kind.STREAM_CLOSED, inc, "cic", "fosse", "c1")
        s.at(10)
        s.stream(Kind.STREAM_CLOSED, inc, "agent", "hall", "a1")  # the phone's connection dropped
        s.at(10 + 2 / 60)
        await s.sign_in("agent", "198.51.100.7 ua:1")  # signed in again, opens the same camera
        s.at(10 + 6 / 60)
        s.stream(Kind.STREAM_OPENED, inc, "agent", "hall", "a3")
        s.at(15)
        s.stream(Kind.STREAM_CLOSED, inc, "agent", "hall", "a3")
        s.at(16)
        s.stream(Kind.STREAM_OPENED, inc, "agent", "loges", "a4")  # still open at the end
        s.at(30)
        fr, en = await s.end()
    finally:
        await h.stop()

    assert ("Qui a regardé quoi (2 personne(s)) :\n"
            "• Brig. Perrin (agent habilité) — 2 connexions (19:02 → 19:10)\n"
            "   Hall d'entrée 19:03–19:15 (12 min) · Loges 19:16–19:30 (14 min)\n"
            "• Cdt Moreau (officier du CIC) — 1 connexion à 19:05\n"
            "   Fosse 19:06–19:09 (3 min)\n") in fr, fr
    assert fr.count("Brig. Perrin") == 1, "one entry per person, whatever the number of sign-ins"
    assert "Flux vidéo ouverts : 5" in fr
    assert ("Who watched what (2 person(s)):\n"
            "• Brig. Perrin (viewer) — 2 sign-ins (19:02 → 19:10)\n"
            "   Hall d'entrée 19:03–19:15 (12 min) · Loges 19:16–19:30 (14 min)\n") in en, en
    report = next(r for r in stored_records(tmp_path) if r.kind == Kind.CLOSURE_REPORT)
    assert report.details["viewers"] == ["agent", "cic"]
    assert report.details["viewing"] == [
        {"person": "agent", "sign_ins": 2, "watched_s": 1560.0, "cameras": {"hall": 720.0, "loges": 840.0}},
        {"person": "cic", "sign_ins": 1, "watched_s": 180.0, "cameras": {"fosse": 180.0}},
    ]


def stored_records(data_dir: Path) -> list[AuditRecord]:
    with Registre(data_dir / "registre.sqlite3", readonly=True) as r:
        return r.records()


async def test_report_rebuilt_from_the_registre_after_a_restart(tmp_path: Path) -> None:
    """The service was killed with a camera open: no closing was written. The start closes it, the
    report names the sign-ins and cameras of both runs, and audit export has the same timeline."""
    clock = Clock()
    h = await Harness(tmp_path, conv=roster(), clock=clock).start()
    s = Scene(h, clock)
    inc = await s.open()
    s.at(2)
    await s.sign_in("agent", "198.51.100.7 ua:1")
    s.at(3)
    s.stream(Kind.STREAM_OPENED, inc, "agent", "hall", "a1")
    await h.stop()  # nothing in memory survives: the report must come from the registre

    s.at(8)
    h = Harness(tmp_path, conv=roster(), clock=clock, rooms=h.rooms)
    # what build_app's start does before the desk's: no page is connected to a service just started
    assert close_unclosed(h.registre, h.store.open_incidents(), clock()) == 1
    assert close_unclosed(h.registre, h.store.open_incidents(), clock()) == 0, "once"
    await h.start()
    s.h = h
    try:
        s.at(12)
        await s.sign_in("agent", "198.51.100.7 ua:1")  # the page signs in again after the restart
        s.stream(Kind.STREAM_OPENED, inc, "agent", "fosse", "b1")
        s.at(14)
        s.stream(Kind.STREAM_CLOSED, inc, "agent", "fosse", "b1")
        s.at(20)
        fr, en = await s.end()
    finally:
        await h.stop()
    assert ("• Brig. Perrin (agent habilité) — 2 connexions (19:02 → 19:12)\n"
            "   Hall d'entrée 19:03–19:08 (5 min) · Fosse 19:12–19:14 (2 min)\n") in fr, fr
    assert "Hall d'entrée 19:03–19:08 (5 min) · Fosse 19:12–19:14 (2 min)" in en
    closed = [r for r in stored_records(tmp_path) if r.kind == Kind.STREAM_CLOSED and r.details["stream"] == "a1"]
    assert [(r.details["reason"], r.details["duration_s"]) for r in closed] == [("service_restart", 300.0)]

    out = io.StringIO()  # audit export: the same timeline, every span, none cut
    assert export_command(tmp_path / "registre.sqlite3", inc, False, "fr", out) == 0
    viewing = json.loads(out.getvalue())["viewing"]
    assert [(v["person"], v["sign_ins"], [(x["camera"], x["duration_s"]) for x in v["spans"]]) for v in viewing] == [
        ("agent", 2, [("hall", 300.0), ("fosse", 120.0)])]
