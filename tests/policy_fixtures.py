"""A small convention for the pure-core tests (no I/O, no fixtures needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.policy.convention import (
    GRAVE_CATEGORIES,
    AlarmSource,
    Authorisation,
    ConfirmRule,
    Convention,
    Limits,
    Org,
    Person,
    Role,
)

T0 = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
HASH = "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"

ROSTER = (
    Person("chef", "Martine Lefèvre", Org.VENUE, Role.SECURITY_CHIEF, telegram_id=1, password_hash=HASH),
    Person("dir", "Paul Garnier", Org.VENUE, Role.DIRECTOR, telegram_id=2, password_hash=HASH),
    Person("op", "Samia Bonnet", Org.VENUE, Role.OPERATOR, telegram_id=3),
    Person("cic", "Cdt Moreau", Org.POLICE, Role.CIC_OFFICER, habilitation="HAB-1", matrix_id="@m:x", password_hash=HASH),
    Person("agent", "Brig. Perrin", Org.POLICE, Role.VIEWER, habilitation="HAB-2", password_hash=HASH),
    Person("nohab", "Gardien sans habilitation", Org.POLICE, Role.VIEWER, password_hash=HASH),
)


def convention(
    person_confirm: ConfirmRule = ConfirmRule.NONE,
    alarm_confirm: ConfirmRule = ConfirmRule.ANY,
    expires: date = date(2029, 6, 30),
    limits: Limits | None = None,
) -> Convention:
    return Convention(
        venue="Zénith",
        police="DDSP 42",
        categories=GRAVE_CATEGORIES,
        roster=ROSTER,
        authorisation=Authorisation("AP-2024-1", expires),
        person_confirm=person_confirm,
        alarm_sources=(AlarmSource("ssi", "Centrale", {"panic": "attaque_armee", "bomb": "alerte_bombe"}, alarm_confirm),),
        limits=limits or Limits(default_duration=timedelta(minutes=60), max_duration=timedelta(minutes=240)),
        cameras_in_scope=frozenset({"hall", "fosse"}),
    )
