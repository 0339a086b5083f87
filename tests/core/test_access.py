"""Access without the web: signed links, personal passwords, lockouts, sessions and revocation."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from bot.access import SALT, Access, LinkForbidden, LinkGone, LoginRefused
from bot.audit import Registre
from bot.policy import incident as sm
from bot.policy.convention import (
    GRAVE_CATEGORIES,
    Authorisation,
    Convention,
    Limits,
    Org,
    Person,
    Role,
)
from bot.policy.incident import Incident, Source, TriggerInfo
from bot.store import Store, StoredSession

KEY_OLD = "old-key-0123456789abcdef0123456789abcdef"
KEY_NEW = "new-key-0123456789abcdef0123456789abcdef"
PASSWORD = "cheval agrafe batterie correcte"
T0 = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class CountingHasher(PasswordHasher):
    """Counts argon2 verifications, to prove a locked login never reaches argon2."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.calls = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002 - argon2's name
        self.calls += 1
        return super().verify(hash, password)


def roster(hasher: PasswordHasher = FAST, evil_name: str = "Brigadier Test") -> tuple[Person, ...]:
    h = hasher.hash(PASSWORD)
    return (
        Person(
            "cic-moreau", "Cdt Julien Moreau", Org.POLICE, Role.CIC_OFFICER, "DDSP42-VP-003", password_hash=h
        ),
        Person("cic-roux", "Lt Claire Roux", Org.POLICE, Role.VIEWER, "DDSP42-VP-004", password_hash=h),
        Person("fc-nohab", "Cne Sans Habilitation", Org.POLICE, Role.FIELD_COMMANDER, None, password_hash=h),
        Person("mlefevre", "Martine Lefèvre", Org.VENUE, Role.SECURITY_CHIEF, password_hash=h),
        Person("sbonnet", "Samia Bonnet", Org.VENUE, Role.OPERATOR, password_hash=h),
        Person("nopass", "Sans Mot de Passe", Org.POLICE, Role.VIEWER, "DDSP42-VP-009"),
        Person("evil", evil_name, Org.POLICE, Role.VIEWER, "DDSP42-VP-666", password_hash=h),
    )


def make_convention(people: tuple[Person, ...]) -> Convention:
    return Convention(
        venue="Zénith de Saint-Étienne",
        police="DDSP de la Loire",
        categories=GRAVE_CATEGORIES,
        roster=people,
        authorisation=Authorisation("AP 2024-VP-0421", date(2029, 6, 30)),
        limits=Limits(link_validity=timedelta(minutes=15), default_duration=timedelta(minutes=60)),
        cameras_in_scope=frozenset({"parvis-nord", "hall-entree"}),
    )


def make_incident(incident_id: str, now: datetime, *, drill: bool = False) -> Incident:
    trigger = TriggerInfo(Source.PERSON, "mlefevre", "attaque_armee", now, org=Org.VENUE)
    pending = sm.open_pending(incident_id, trigger, sm.ConfirmRule.NONE, timedelta(minutes=5), drill)
    return sm.activate(pending, now, timedelta(minutes=60))


class Sleeps:
    """Stands in for asyncio.sleep: records the slow-down asked for, waits for nothing."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


@dataclass
class World:
    access: Access
    clock: Clock
    incidents: dict[str, Incident]
    registre: Registre
    store: Store
    convention: Convention
    tmp: Path
    hasher: PasswordHasher
    sleeps: Sleeps = field(default_factory=Sleeps)

    def make(self, keys: list[str], **kw: Any) -> Access:
        return Access(
            self.convention,
            keys,
            self.registre,
            self.store,
            self.clock,
            self.incidents.get,
            "https://vigie.example.fr/",
            hasher=self.hasher,
            sleep=self.sleeps,
            **kw,
        )

    def records(self, kind: str) -> list[Any]:
        return [r for r in self.registre.records() if r.kind == kind]

    def tallied(self) -> dict[str, int]:
        """Every reason counted in the grouped refusal records so far, written out first."""
        self.access.tally.flush(everything=True)
        counts: dict[str, int] = {}
        for r in self.records("refusals"):
            for reason, n in r.details["reasons"].items():
                counts[reason] = counts.get(reason, 0) + n
        return counts


@pytest.fixture
def world(tmp_path: Path) -> Any:
    clock = Clock(T0)
    hasher = CountingHasher()
    conv = make_convention(roster(hasher))
    incidents = {"INC-1": make_incident("INC-1", T0), "DRL-1": make_incident("DRL-1", T0, drill=True)}
    registre = Registre(tmp_path / "registre.sqlite3")
    store = Store(tmp_path / "state.sqlite3")
    w = World(None, clock, incidents, registre, store, conv, tmp_path, hasher)  # type: ignore[arg-type]
    w.access = w.make([KEY_OLD, KEY_NEW])
    yield w
    store.close()
    registre.close()


def token_of(url: str) -> str:
    assert url.startswith("https://vigie.example.fr/live/")
    return url.rsplit("/", 1)[1]


def end_incident(w: World, incident_id: str) -> None:
    w.incidents[incident_id] = sm.close(
        w.incidents[incident_id], w.clock(), sm.State.ENDED, "ended", "cic-moreau"
    )


# --- links ---


def test_link_round_trip_and_audit(world: World) -> None:
    url = world.access.issue_link(world.incidents["INC-1"])
    token = token_of(url)
    assert world.access.check_link(token).id == "INC-1"
    drill = token_of(world.access.issue_link(world.incidents["DRL-1"]))
    assert world.access.check_link(drill).drill is True
    issued = world.records("link_issued")
    assert [r.incident for r in issued] == ["INC-1", "DRL-1"]
    assert [r.drill for r in issued] == [False, True]
    assert issued[0].details == {"expires": (T0 + timedelta(minutes=15)).isoformat()}
    assert token not in json.dumps([r.as_dict() for r in world.registre.records()])


def test_no_link_for_an_incident_without_access(world: World) -> None:
    end_incident(world, "INC-1")
    with pytest.raises(ValueError):
        world.access.issue_link(world.incidents["INC-1"])


class T0Signer(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(T0.timestamp())


def signer_at_t0(keys: str | list[str], salt: str, **kw: Any) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(keys, salt=salt, signer=T0Signer, signer_kwargs=kw)


def _flip(token: str, index: int) -> str:
    c = token[index]
    return token[:index] + ("A" if c != "A" else "B") + token[index + 1 :]


def test_forged_links_are_forbidden(world: World, caplog: pytest.LogCaptureFixture) -> None:
    token = token_of(world.access.issue_link(world.incidents["INC-1"]))
    other_key = signer_at_t0("another-key-0123456789abcdef0123456789", SALT, digest_method=hashlib.sha256)
    other_salt = signer_at_t0([KEY_OLD, KEY_NEW], "vigie.something-else", digest_method=hashlib.sha256)
    sha1 = signer_at_t0([KEY_NEW], SALT)  # right key and salt, but not our digest
    forged = [
        _flip(token, len(token) - 3),  # signature
        _flip(token, 2),  # payload
        other_key.dumps({"i": "INC-1", "d": False}),
        other_salt.dumps({"i": "INC-1", "d": False}),
        sha1.dumps({"i": "INC-1", "d": False}),
        "",
        "not-a-token",
        "x" * 5000,
        "../../etc/passwd",
        token + "é",
    ]
    for bad in forged * 3:
        with pytest.raises(LinkForbidden):
            world.access.check_link(bad, "198.51.100.7 ua:abcd")
    # Forged links are anyone's: the log only, and at most 10 lines a minute of it.
    assert world.tallied() == {} and world.registre.records() == world.records("link_issued")
    lines = [r for r in caplog.records if "bad_link" in r.getMessage()]
    assert len(lines) == 10 and "198.51.100.7 ua:abcd" in lines[0].getMessage()


def test_signed_but_wrong_payloads_are_forbidden(world: World) -> None:
    # Signed with our own key and salt (e.g. a future token format): still nothing to open.
    ours = signer_at_t0([KEY_NEW], SALT, digest_method=hashlib.sha256)
    for payload in (["INC-1"], {"i": 1, "d": False}, {"i": "INC-1"}, {"i": "INC-404", "d": False}):
        with pytest.raises(LinkForbidden):
            world.access.check_link(ours.dumps(payload))
    # The drill flag is part of what was signed: a real incident cannot be opened as a drill.
    with pytest.raises(LinkForbidden):
        world.access.check_link(ours.dumps({"i": "INC-1", "d": True}))
    assert world.tallied() == {"live_link:unknown_incident": 2}


def test_expired_link_is_gone(world: World) -> None:
    token = token_of(world.access.issue_link(world.incidents["INC-1"]))
    world.clock.advance(minutes=15)
    assert world.access.check_link(token).id == "INC-1"
    world.clock.advance(seconds=1)
    with pytest.raises(LinkGone):
        world.access.check_link(token)
    assert world.tallied() == {"live_link:link_expired": 1}
    # A fresh link for the same, still active incident works.
    assert world.access.check_link(token_of(world.access.issue_link(world.incidents["INC-1"]))).id == "INC-1"


def test_link_of_an_ended_or_expired_incident_is_gone(world: World) -> None:
    token = token_of(world.access.issue_link(world.incidents["INC-1"]))
    end_incident(world, "INC-1")
    with pytest.raises(LinkGone):
        world.access.check_link(token)
    assert world.tallied() == {"live_link:access_ended": 1}
    assert world.records("refusals")[-1].incident == "INC-1"  # in the incident's timeline

    drill = token_of(world.access.issue_link(world.incidents["DRL-1"]))
    # The incident's end, not the link's age, decides: move past ends_at without re-reading the link.
    world.incidents["DRL-1"] = replace(world.incidents["DRL-1"], ends_at=T0 + timedelta(minutes=5))
    world.clock.advance(minutes=5)
    with pytest.raises(LinkGone):
        world.access.check_link(drill)


def test_unknown_incident_is_forbidden(world: World) -> None:
    token = token_of(world.access.issue_link(world.incidents["INC-1"]))
    del world.incidents["INC-1"]
    with pytest.raises(LinkForbidden):
        world.access.check_link(token)


def test_key_rotation(world: World) -> None:
    old_only = world.make([KEY_OLD])
    rotated = world.make([KEY_OLD, KEY_NEW])
    new_only = world.make([KEY_NEW])
    old_token = token_of(old_only.issue_link(world.incidents["INC-1"]))
    new_token = token_of(rotated.issue_link(world.incidents["INC-1"]))
    assert rotated.check_link(old_token).id == "INC-1"  # old key still listed
    assert new_only.check_link(new_token).id == "INC-1"  # the last key signs
    with pytest.raises(LinkForbidden):
        new_only.check_link(old_token)  # old key retired
    with pytest.raises(LinkForbidden):
        old_only.check_link(new_token)
    with pytest.raises(ValueError):
        world.make([])


# --- login ---


async def login(w: World, person: str, password: str = PASSWORD, client: str = "203.0.113.5 ua:1") -> Any:
    token = token_of(w.access.issue_link(w.incidents["INC-1"]))
    return await w.access.login(token, person, password, client, address=client.split()[0])


async def test_login_ok(world: World) -> None:
    cookie, session = await login(world, "cic-moreau")
    assert session.person.id == "cic-moreau" and session.incident_id == "INC-1"
    assert session.expires == world.incidents["INC-1"].ends_at
    assert len(cookie) >= 40
    assert world.access.session(cookie) == session
    ok = world.records("login_ok")
    assert len(ok) == 1 and ok[0].actor == "cic-moreau" and ok[0].incident == "INC-1"
    assert ok[0].details == {"client": "203.0.113.5 ua:1", "person": "cic-moreau"}
    # A venue viewer role may view too.
    _, venue = await login(world, "mlefevre")
    assert venue.person.org is Org.VENUE


@pytest.mark.parametrize(
    ("person", "password", "reason"),
    [
        ("cic-moreau", "wrong", "wrong_password"),
        ("cic-moreau", "", "wrong_password"),
        ("cic-moreau", "x" * 5000, "wrong_password"),
        ("fc-nohab", PASSWORD, "not_habilitated"),  # police without habilitation (CSI L252-3)
        ("sbonnet", PASSWORD, "not_habilitated"),  # venue operator: not a viewer role
        ("nopass", PASSWORD, "not_habilitated"),  # no personal password in the roster
    ],
)
async def test_login_refused(world: World, person: str, password: str, reason: str) -> None:
    with pytest.raises(LoginRefused) as exc:
        await login(world, person, password)
    assert exc.value.reason == reason and not exc.value.locked
    # One answer for all: the form does not tell who is on the roster or may view.
    assert exc.value.text("fr") == "Identité ou mot de passe incorrect. Encore 4 essai(s) avant blocage."
    assert exc.value.text("en") == "Wrong identity or password. 4 attempt(s) left before lockout."
    failed = world.records("login_failed")
    assert len(failed) == 1 and failed[0].details["reason"] == reason
    assert failed[0].details["person"] == person
    assert world.records("login_ok") == []


async def test_unknown_identities_look_like_known_ones(world: World) -> None:
    calls = world.hasher.calls  # type: ignore[attr-defined]
    with pytest.raises(LoginRefused) as unknown:
        await login(world, "nobody", PASSWORD)
    with pytest.raises(LoginRefused) as known:
        await login(world, "cic-roux", "wrong")
    assert all(unknown.value.text(lang) == known.value.text(lang) for lang in ("fr", "en"))
    # argon2 ran for the unknown identity too (same time), and it is counted, not recorded.
    assert world.hasher.calls == calls + 2  # type: ignore[attr-defined]
    assert [r.details["person"] for r in world.records("login_failed")] == ["cic-roux"]
    assert world.tallied() == {"login:unknown_person": 1}


async def test_identity_is_the_id_or_rio_in_any_case(world: World) -> None:
    with_rio = tuple(replace(p, rio="1234567") if p.id == "cic-roux" else p for p in world.convention.roster)
    world.convention = make_convention(with_rio)
    world.access = world.make([KEY_NEW])
    for typed in ("  CIC-Moreau ", "cic-moreau"):
        _, session = await login(world, typed)
        assert session.person.id == "cic-moreau"
    _, session = await login(world, "1234567")
    assert session.person.id == "cic-roux"


async def test_attacker_cannot_lock_an_officer_out(world: World) -> None:
    attacker = "198.51.100.66 ua:1"
    for _ in range(5):
        with pytest.raises(LoginRefused) as exc:
            await login(world, "cic-moreau", "wrong", client=attacker)
    assert exc.value.locked and exc.value.retry_after_s == 15 * 60
    # The attacker's device is locked for this officer, before argon2 runs, even with the right password.
    calls = world.hasher.calls  # type: ignore[attr-defined]
    for _ in range(20):
        with pytest.raises(LoginRefused) as exc:
            await login(world, "cic-moreau", PASSWORD, client=attacker)
        assert exc.value.locked and exc.value.reason == "locked"
    assert world.hasher.calls == calls  # type: ignore[attr-defined]
    # The officer, from their own device, gets in: slowed down, never refused.
    world.sleeps.asked.clear()
    _, session = await login(world, "cic-moreau", client="192.0.2.99 ua:2")
    assert session.person.id == "cic-moreau" and world.sleeps.asked == [1.0]
    locked = world.records("login_locked")
    assert len(locked) == 1 and locked[0].details["on"] == "person_client" and locked[0].actor == "cic-moreau"
    assert world.tallied() == {"login:locked": 20}  # hammering a locked pair: counted, not recorded
    world.clock.advance(minutes=15, seconds=1)
    await login(world, "cic-moreau", client=attacker)  # the lock lifts after 15 minutes


async def test_slow_down_grows_with_failures_across_clients(world: World) -> None:
    for i in range(9):
        with pytest.raises(LoginRefused) as exc:
            await login(world, "cic-moreau", "wrong", client=f"198.51.100.{i} ua:1")
        assert not exc.value.locked  # one failure per client: nobody is locked
    assert world.sleeps.asked == [1.0, 2.0, 4.0, 8.0]  # from the 6th attempt on, doubling, capped
    await login(world, "cic-moreau", client="192.0.2.99 ua:2")
    assert world.sleeps.asked[-1] == 8.0


async def test_colleagues_behind_one_address_are_not_blocked(world: World) -> None:
    nat = "203.0.113.1"
    for _ in range(5):  # one colleague's typos lock only that colleague, on that address
        with pytest.raises(LoginRefused):
            await login(world, "cic-roux", "wrong", client=f"{nat} ua:typo")
    officers = ("cic-moreau", "mlefevre", "evil")
    for person in officers:
        _, session = await login(world, person, client=f"{nat} ua:other")
        assert session.person.id == person
    assert world.sleeps.asked == []  # 5 failures on the address are below its slow-down
    with pytest.raises(LoginRefused) as exc:
        await login(world, "cic-roux", PASSWORD, client=f"{nat} ua:other")  # same address, any browser
    assert exc.value.locked


async def test_success_clears_the_pair_not_the_person(world: World) -> None:
    for _ in range(4):
        with pytest.raises(LoginRefused):
            await login(world, "cic-moreau", "wrong", client="198.51.100.1 ua:1")
    await login(world, "cic-moreau", client="198.51.100.1 ua:1")
    with pytest.raises(LoginRefused) as exc:  # the pair starts afresh
        await login(world, "cic-moreau", "wrong", client="198.51.100.1 ua:1")
    assert "Encore 4 essai(s)" in exc.value.text("fr")
    # The person's count (5 failures) did not restart: watching an officer sign in does not
    # reset the slow-down.
    with pytest.raises(LoginRefused):
        await login(world, "cic-moreau", "wrong", client="198.51.100.1 ua:1")
    assert world.sleeps.asked == [1.0]


async def test_lockouts_survive_a_restart(world: World) -> None:
    for _ in range(5):
        with pytest.raises(LoginRefused):
            await login(world, "cic-moreau", "wrong", client="198.51.100.1 ua:1")
    world.store.close()
    world.store = Store(world.tmp / "state.sqlite3")
    world.access = world.make([KEY_OLD, KEY_NEW])
    with pytest.raises(LoginRefused) as exc:
        await login(world, "cic-moreau", PASSWORD, client="198.51.100.1 ua:1")
    assert exc.value.locked
    await login(world, "cic-moreau", client="192.0.2.1 ua:1")
    assert world.sleeps.asked == [1.0]  # the person's failures were remembered too


async def test_rooms_are_warned_once_and_unlock_lifts_the_locks(world: World) -> None:
    warned: list[tuple[str, int, int]] = []
    world.access.on_guessing = lambda p, n, c: warned.append((p.id, n, c))
    for i in range(12):
        with pytest.raises(LoginRefused):
            await login(world, "cic-moreau", "wrong", client=f"198.51.100.{i % 2} ua:1")
    assert warned == [("cic-moreau", 5, 2)]  # once per 15 minutes, not per failure
    person = world.convention.person("cic-moreau")
    assert person is not None
    assert world.access.unlock(person, "mlefevre") == 2
    record = world.records("login_unlocked")[-1]
    assert (record.actor, record.details) == ("mlefevre", {"person": "cic-moreau", "locks": 2})
    world.sleeps.asked.clear()
    await login(world, "cic-moreau", client="198.51.100.0 ua:1")
    assert world.sleeps.asked == []


async def test_concurrent_guesses_cannot_exceed_the_limit(world: World) -> None:
    token = token_of(world.access.issue_link(world.incidents["INC-1"]))
    results = await asyncio.gather(
        *(world.access.login(token, "cic-moreau", f"guess{i}", "10.0.0.1 ua:1") for i in range(20)),
        return_exceptions=True,
    )
    assert all(isinstance(r, LoginRefused) for r in results)
    assert world.hasher.calls <= 5  # type: ignore[attr-defined]


# --- sessions ---


async def test_session_follows_the_incident(world: World) -> None:
    cookie, _ = await login(world, "cic-moreau")
    assert world.access.session(None) is None
    assert world.access.session("") is None
    assert world.access.session("not-a-session") is None
    # /extend moves the end: the session follows.
    later = T0 + timedelta(minutes=90)
    world.incidents["INC-1"] = replace(world.incidents["INC-1"], ends_at=later)
    session = world.access.session(cookie)
    assert session is not None and session.expires == later
    world.clock.advance(minutes=89)
    assert world.access.session(cookie) is not None
    world.clock.advance(minutes=1)
    assert world.access.session(cookie) is None  # past the end, even before the desk closes it


async def test_session_dies_when_the_incident_ends(world: World) -> None:
    cookie, _ = await login(world, "cic-moreau")
    end_incident(world, "INC-1")
    assert world.access.session(cookie) is None


async def test_many_sessions_checked_at_once_answer_as_one_by_one(world: World) -> None:
    """The open streams' periodic check: ``viewers`` says for each cookie what ``viewer`` says."""
    first, _ = await login(world, "cic-moreau")
    second, _ = await login(world, "cic-moreau", client="198.51.100.7 ua:2")
    cookies = {first, second, "not-a-session", "x" * 10_000}
    found = world.access.viewers(cookies)
    assert found == {c: world.access.viewer(c) for c in cookies}
    assert found[first] is not None and found[second] is not None and found[first][1].id == "INC-1"
    assert found["not-a-session"] is None and found["x" * 10_000] is None
    end_incident(world, "INC-1")
    assert world.access.viewers(cookies) == dict.fromkeys(cookies)


def test_sessions_are_read_in_one_pass_whatever_their_number(tmp_path: Path) -> None:
    """More sessions than SQLite takes "?" marks in one query (999 on old builds): all found,
    unknown and repeated hashes changing nothing."""
    store = Store(tmp_path / "state.sqlite3")
    ends = datetime(2026, 12, 3, 12, tzinfo=UTC)
    saved = [StoredSession(f"h{i:04}", "cic-moreau", "INC-1", ends, f"client {i}") for i in range(1200)]
    for session in saved:
        store.save_session(session)
    wanted = [s.id_hash for s in saved] + ["unknown", "h0001"]
    assert store.get_sessions(wanted) == {s.id_hash: s for s in saved}
    assert store.get_sessions([]) == {}
    store.close()


async def test_revoke_incident(world: World) -> None:
    a, _ = await login(world, "cic-moreau")
    b, _ = await login(world, "mlefevre")
    token = token_of(world.access.issue_link(world.incidents["INC-1"]))
    seen: list[str] = []
    world.access.add_revocation_listener(seen.append)

    def broken(_id: str) -> None:
        raise RuntimeError("listener bug")

    world.access.add_revocation_listener(broken)
    world.access.add_revocation_listener(lambda i: seen.append(i + "!"))
    assert world.access.revoke_incident("INC-1") == 2
    assert seen == ["INC-1", "INC-1!"]  # a failing listener does not stop the others
    assert world.access.session(a) is None and world.access.session(b) is None
    assert world.store.sessions_of("INC-1") == []
    # Even before the desk has saved the closed incident, its links are dead.
    with pytest.raises(LinkGone):
        world.access.check_link(token)


async def test_session_of_a_person_struck_off_the_roster(world: World, tmp_path: Path) -> None:
    cookie, _ = await login(world, "cic-moreau")
    smaller = make_convention(tuple(p for p in world.convention.roster if p.id != "cic-moreau"))
    other = Access(
        smaller,
        [KEY_NEW],
        world.registre,
        world.store,
        world.clock,
        world.incidents.get,
        "https://x",
        hasher=FAST,
    )
    assert other.session(cookie) is None


async def test_no_secret_is_stored(world: World) -> None:
    token = token_of(world.access.issue_link(world.incidents["INC-1"]))
    cookie, _ = await world.access.login(token, "cic-moreau", PASSWORD, "203.0.113.5 ua:1")
    with pytest.raises(LoginRefused):
        await world.access.login(token, "cic-roux", "mauvais-mot-de-passe-42", "203.0.113.5 ua:1")
    stored = world.store.sessions_of("INC-1")
    assert [s.id_hash for s in stored] == [hashlib.sha256(cookie.encode()).hexdigest()]
    secrets = [cookie, PASSWORD, "mauvais-mot-de-passe-42", token, token.split(".")[-1]]
    text = json.dumps([r.as_dict() for r in world.registre.records()], ensure_ascii=False)
    for secret in secrets:
        assert secret not in text
    blobs = b"".join(p.read_bytes() for p in world.tmp.iterdir() if p.is_file())
    assert blobs  # the databases and their WAL files were read
    for secret in secrets:
        assert secret.encode() not in blobs


async def test_counted_refusals_are_written_before_the_incident_closes(world: World) -> None:
    with pytest.raises(LoginRefused):
        await login(world, "nobody", PASSWORD)
    assert world.records("refusals") == []
    world.access.revoke_incident("INC-1")
    [grouped] = world.records("refusals")
    assert grouped.incident == "INC-1" and grouped.details["reasons"] == {"login:unknown_person": 1}
