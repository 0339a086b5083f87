"""Who watched what: the cost of the closure report's timeline and of /statut's viewer lines.

Run:  .venv/bin/python -m bench.bench_viewing [--people 50] [--streams 40] [--rounds 20]

A heavy incident: ``people`` officers, each signing in twice and opening ``streams`` camera
streams (several tabs, reconnections). Each figure is printed beside a baseline measured in
the same process, as a ratio:
- the timeline (pairing, merging, rendering in two languages) against reading the incident's
  records from the registre, which the closing job does anyway;
- /statut with every viewer streaming against /statut without the viewer lines.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.audit import Registre
from bot.kinds import Kind
from bot.messages import Renderer
from bot.outbox import RoomHealth
from bot.policy.incident import Incident, Source, State, TriggerInfo
from bot.status import status_text, viewer_lines
from bot.viewing import OpenStream, Watching, incident_viewers, viewers_now
from tests.policy_fixtures import T0, convention

CAMERAS = [f"cam{i:02d}" for i in range(20)]


def ms(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * (len(times) - 1) + 0.5))]


def fill(registre: Registre, people: int, streams: int) -> Incident:
    trig = TriggerInfo(Source.PERSON, "chef", "attaque_armee", T0)
    inc = Incident("INC-B", False, "attaque_armee", trig, State.ENDED, opened_at=T0, activated_at=T0,
                   ends_at=T0 + timedelta(hours=4), closed_at=T0 + timedelta(hours=4), close_reason="ended")
    for p in range(people):
        person = f"p{p}"
        for half in (0, 1):
            registre.append(Kind.LOGIN_OK, incident=inc.id, actor=person, at=T0 + timedelta(hours=2 * half, seconds=p))
        for s in range(streams):
            at = T0 + timedelta(minutes=5 * s + p % 5)
            details = {"camera": CAMERAS[(p + s // 3) % len(CAMERAS)], "person": person, "stream": f"{p}-{s}"}
            registre.append(Kind.STREAM_OPENED, incident=inc.id, actor=person, details=details, at=at)
            registre.append(Kind.STREAM_CLOSED, incident=inc.id, actor=person, details=details,
                            at=at + timedelta(minutes=4, seconds=55))
    return inc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=50)
    ap.add_argument("--streams", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=20)
    a = ap.parse_args()
    conv = convention()
    render = Renderer(conv, ZoneInfo("Europe/Paris"))
    names = {c: f"Caméra {c}" for c in CAMERAS}
    with tempfile.TemporaryDirectory() as tmp, Registre(Path(tmp) / "registre.sqlite3") as registre:
        inc = fill(registre, a.people, a.streams)
        records = registre.records(inc.id)
        read = ms(lambda: registre.records(inc.id), a.rounds)

        def report() -> None:
            viewers = incident_viewers(inc, records, T0)
            for lang in ("fr", "en"):
                render.closure(inc, lang, viewers, a.people * a.streams, len(records), "0" * 16, names)

        built = ms(report, a.rounds)
    print(f"closure report, {a.people} people × {a.streams} streams ({len(records)} records):")
    print(f"  registre read (floor)   p50 {read[0]:7.2f} ms  p95 {read[1]:7.2f} ms")
    print(f"  timeline + fr/en text   p50 {built[0]:7.2f} ms  p95 {built[1]:7.2f} ms  "
          f"ratio p50 {built[0] / read[0]:.2f}")

    now = datetime.now(UTC)
    live = Incident("INC-L", False, "attaque_armee", TriggerInfo(Source.PERSON, "chef", "attaque_armee", now),
                    State.ACTIVE,
                    opened_at=now, activated_at=now, ends_at=now + timedelta(hours=1))
    watching = Watching()
    people = [f"p{p}" for p in range(a.people)]
    for i, person in enumerate(people):
        for k in range(2):
            watching.opened(OpenStream(f"{i}-{k}", live.id, person, CAMERAS[(i + k) % len(CAMERAS)], now))
    health = {"console": RoomHealth()}

    def plain() -> str:
        return status_text("fr", render, now, [live], health, [], conv.authorisation, None)

    def with_viewers() -> str:
        def extra(lang: str) -> list[str]:
            return viewer_lines(lang, render, names, viewers_now(watching, [live], lambda _: people, now))
        return status_text("fr", render, now, [live], health, [], conv.authorisation, extra)

    base, full = ms(plain, a.rounds * 10), ms(with_viewers, a.rounds * 10)
    print(f"/statut, {a.people} viewers with 2 cameras each:")
    print(f"  without viewer lines    p50 {base[0]:7.3f} ms  p95 {base[1]:7.3f} ms")
    print(f"  with viewer lines       p50 {full[0]:7.3f} ms  p95 {full[1]:7.3f} ms  ratio p50 {full[0] / base[0]:.1f}")


if __name__ == "__main__":
    main()
