"""Who may see the images, and for how long: signed links, personal passwords, viewer sessions.

A link posted in a room carries only the incident id, signed with itsdangerous and timed by the
injected clock; it proves nothing about the person. Opening it asks for a typed identity (roster
id or RIO, any case) and a personal password (argon2); only then is a viewer session opened,
bound to that person and that incident. Failures are limited by ``bot.lockout`` (a lock per
person and client, only a slow-down per person), and refusals anyone can cause without a
credential are counted by ``bot.refusals`` rather than written one by one. Nothing here trusts what it saw before: every call re-reads the incident through the
``incidents`` callable, so ending or expiring an incident kills its links and sessions at once.

Only the sha256 of a session's cookie value is stored, and no token, password or cookie ever
reaches the registre or the logs.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError
from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from .kinds import Kind, Recorder
from .locales import Msg, phrase
from .lockout import Lockout
from .logs import Bounded
from .policy.convention import Convention, Org, Person, Role
from .policy.incident import Incident
from .refusals import RefusalTally
from .store import Store, StoredSession

logger = logging.getLogger(__name__)

SALT = "vigie.live-link"
# URL-safe base64 and the dots between payload, timestamp and signature; anything else is forged.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-.]{16,512}$")
_MAX_COOKIE = 128
# Beyond this a "password" is an attempt to burn argon2's CPU, not a password.
_MAX_PASSWORD = 1024
# Attacker-chosen strings (unknown person ids, client descriptions) are cut before the registre.
_MAX_ECHO = 64


class LinkForbidden(Exception):  # noqa: N818 - an HTTP outcome (403), named after it
    """Bad signature, wrong purpose or unknown incident. Deliberately says nothing more."""


class LinkGone(Exception):  # noqa: N818 - an HTTP outcome (410), named after it
    """The link expired, or its incident no longer grants access."""


class LoginRefused(Exception):  # noqa: N818 - a domain outcome shown to the person
    def __init__(
        self, reason: str, *parts: Callable[[str], str], locked: bool = False, retry_after_s: int = 0
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self._parts = parts
        self.locked = locked
        self.retry_after_s = retry_after_s

    def text(self, lang: str) -> str:
        """What the person reads on the login page."""
        return "".join(part(lang) for part in self._parts)


@dataclass(frozen=True)
class ViewerSession:
    person: Person
    incident_id: str
    expires: datetime
    client: str


class _ClockSigner(TimestampSigner):
    """itsdangerous reads ``time.time()``; ours reads the injected clock so tests and the desk agree."""

    def __init__(self, *args: Any, clock: Callable[[], datetime], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock().timestamp())


@dataclass(frozen=True)
class Attempt:
    """One sign-in attempt (password or passkey, or an enrolment's password), as the limiter and
    the registre see it; ``incident`` is None for an enrolment, outside any incident."""

    incident: Incident | None
    person: Person | None
    typed: str  # what was typed as the identity, bounded
    client: str  # the audited description (address and user agent hash)
    now: datetime
    address: str  # the limiter's notion of the client: its IP address

    what: str = "login"  # the tally's name for it: login, passkey, enrol
    failed_kind: Kind = Kind.LOGIN_FAILED
    extra: Mapping[str, str] = field(default_factory=dict)  # recorded with it (method=passkey…)

    @property
    def who(self) -> str:
        """The limiter's key for the person: an unknown identity is keyed like a known one, so
        locks and counts say nothing about whether it exists."""
        return self.person.id if self.person else "?" + self.typed.strip().casefold()

    @property
    def incident_id(self) -> str | None:
        return self.incident.id if self.incident else None

    @property
    def drill(self) -> bool:
        return self.incident.drill if self.incident else False


def _echo(value: str) -> str:
    """A printable, bounded copy of an untrusted string, safe to write to the registre."""
    return value.encode("utf-8", "replace").decode("utf-8")[:_MAX_ECHO]


def _hash_cookie(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()


# Not a password anyone has: verified against when there is no hash to check, so that an unknown
# identity costs the same argon2 time as a known one.
_DUMMY = "vigie: no such person"  # noqa: S105 - not a secret


class Access:
    def __init__(
        self,
        convention: Convention,
        link_keys: Sequence[str],
        registre: Recorder,
        store: Store,
        clock: Callable[[], datetime],
        incidents: Callable[[str], Incident | None],
        public_url: str,
        *,
        max_failures: int = 5,
        lockout: timedelta = timedelta(minutes=15),
        hasher: PasswordHasher | None = None,
        tally: RefusalTally | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_guessing: Callable[[Person, int, int], None] | None = None,
    ) -> None:
        keys = [k for k in link_keys if k]
        if not keys:
            raise ValueError("at least one link signing key is required")
        self._convention = convention
        self._registre = registre
        self._store = store
        self._clock = clock
        self._incidents = incidents
        self._public_url = public_url.rstrip("/")
        self._hasher = hasher or PasswordHasher()
        self._limiter = Lockout(store, max_failures=max_failures, window=lockout, lock=lockout)
        self.tally = tally or RefusalTally(registre, clock)
        self._sleep = sleep
        self._dummy_hash: str | None = None
        self._log = Bounded(logger)
        # Told when a roster member's password is being guessed (the desk posts it to the rooms).
        self.on_guessing = on_guessing
        self._warned: dict[str, datetime] = {}
        self._listeners: list[Callable[[str], None]] = []
        # Closes the gap between revoke_incident() and the desk saving the closed incident.
        self._revoked: set[str] = set()
        self._max_age = max(1, int(convention.limits.link_validity.total_seconds()))
        # Oldest key first, the last one signs: an old link stays valid while its key is listed.
        self._serializer = URLSafeTimedSerializer(
            secret_key=keys,
            salt=SALT,
            signer=_ClockSigner,
            signer_kwargs={"clock": clock, "digest_method": hashlib.sha256},
        )

    @property
    def convention(self) -> Convention:
        return self._convention

    @property
    def public_url(self) -> str:
        return self._public_url

    def now(self) -> datetime:
        return self._clock()

    # --- links ---

    def issue_link(self, incident: Incident) -> str:
        now = self._clock()
        if not incident.grants_access(now):
            raise ValueError(f"incident {incident.id} does not grant access: no link")
        token = self._serializer.dumps({"i": incident.id, "d": incident.drill})
        assert incident.ends_at is not None  # noqa: S101 - grants_access implies it
        expires = min(now + timedelta(seconds=self._max_age), incident.ends_at)
        self._registre.append(
            Kind.LINK_ISSUED,
            incident=incident.id,
            details={"expires": expires.isoformat()},
            drill=incident.drill,
            at=now,
        )
        return f"{self._public_url}/live/{token}"

    def check_link(self, token: str, client: str = "") -> Incident:
        now = self._clock()
        if not _TOKEN_RE.match(token):
            self._malformed(client)
            raise LinkForbidden
        try:
            payload = self._serializer.loads(token, max_age=self._max_age)
        except SignatureExpired:
            # The signature was checked before the age: this link was ours, it is just old.
            self.tally.note("live_link", "link_expired", _echo(client))
            raise LinkGone from None
        except (BadData, ValueError, TypeError):
            self._malformed(client)
            raise LinkForbidden from None
        incident_id = payload.get("i") if isinstance(payload, dict) else None
        drill = payload.get("d") if isinstance(payload, dict) else None
        if not isinstance(incident_id, str) or not isinstance(drill, bool):
            self._malformed(client)
            raise LinkForbidden
        incident = self._incidents(incident_id)
        if incident is None or incident.drill is not drill:
            self.tally.note("live_link", "unknown_incident", _echo(client), drill=drill)
            raise LinkForbidden
        if not incident.grants_access(now) or incident.id in self._revoked:
            self.tally.note("live_link", "access_ended", _echo(client), incident=incident.id, drill=incident.drill)
            raise LinkGone
        return incident

    def _malformed(self, client: str) -> None:
        """Forged or damaged: anyone can send these by the thousand, so the log only, rate-bounded."""
        self._log.warning("bad_link", "live link refused: bad_link (%s)", _echo(client))

    # --- login ---

    async def login(
        self, token: str, identity: str, password: str, client: str, *, address: str | None = None
    ) -> tuple[str, ViewerSession]:
        """Open a viewer session, or raise LinkForbidden / LinkGone / LoginRefused.

        ``identity`` is what the person typed: their roster id or RIO, in any case. ``address``
        (the client's IP), when given, keys the limits so that changing the user agent does not
        reset them; ``client`` is the description that is audited.
        """
        incident = self.check_link(token, client)
        t = self.attempt(incident, self._convention.identify(identity), identity, client, address)
        person = await self.check_password(t, password)
        return self.open_session(t, person, token)

    def attempt(self, incident: Incident | None, person: Person | None, typed: str, client: str,
                address: str | None) -> Attempt:
        return Attempt(incident, person, _echo(typed), _echo(client), self._clock(), address or client)

    async def check_password(self, t: Attempt, password: str) -> Person:
        """The person of ``t`` if ``password`` is theirs and they may view; else LoginRefused (counted)."""
        self.refuse_if_locked(t)
        slow = self._limiter.slowdown(t.who, t.address, t.now)
        self._limiter.begin(t.who, t.address, t.now)
        if slow.seconds:
            # Slowed, never refused: the officer under attack still gets in with the right password.
            await self._sleep(slow.seconds)
        person = t.person
        reason: str | None = None
        if person is None:
            reason = "unknown_person"
        elif not self._convention.may_view(person):
            reason = "not_habilitated"
        if reason is not None:
            await self._verify_dummy(password)
        elif person is not None and not await self._verify(person, password):
            reason = "wrong_password"
        if reason is not None or person is None:
            self.fail(t, reason or "unknown_person")
        self._limiter.succeeded(t.who, t.address, t.now)
        return person

    def open_session(self, t: Attempt, person: Person, token: str) -> tuple[str, ViewerSession]:
        """A viewer session for ``person``, who has just proved who they are on the link ``token``."""
        # The incident may have ended while argon2 or the passkey check ran: look again before opening anything.
        incident = self.check_link(token, t.client)
        assert incident.ends_at is not None  # noqa: S101 - grants_access implies it
        cookie = secrets.token_urlsafe(32)
        self._store.save_session(
            StoredSession(_hash_cookie(cookie), person.id, incident.id, incident.ends_at, t.client)
        )
        self._audit(t, Kind.LOGIN_OK, at=self._clock(), extra=t.extra)
        logger.info("viewer %s opened a session on %s", person.id, incident.id)
        return cookie, ViewerSession(person, incident.id, incident.ends_at, t.client)

    @property
    def limiter(self) -> Lockout:
        return self._limiter

    def refuse_if_locked(self, t: Attempt) -> None:
        """A locked (person, client) pair is refused before argon2 runs, even with the right password."""
        wait = self._limiter.locked_for(t.who, t.address, t.now)
        if wait is None:
            return
        # Counted, not recorded one by one: hammering a locked pair must not grow the registre.
        self.tally.note(t.what, "locked", t.client, incident=t.incident_id, drill=t.drill)
        seconds = max(1, int(wait.total_seconds()))
        minutes = -(-seconds // 60)
        raise LoginRefused("locked", phrase(Msg.LOGIN_LOCKED, minutes=minutes), locked=True, retry_after_s=seconds)

    def fail(self, t: Attempt, reason: str, *, recorded: bool | None = None) -> NoReturn:
        """Count the failure of ``t`` and refuse it. Recorded one by one (as ``t.failed_kind``) when
        ``recorded``, by default when ``t`` names a roster member; else only tallied."""
        newly_locked = self._limiter.failed(t.who, t.address, t.now)
        if not (t.person is not None if recorded is None else recorded):
            # Attacker-chosen identities are unbounded: counted per client and minute only.
            self.tally.note(t.what, reason, t.client, incident=t.incident_id, drill=t.drill)
        else:
            self._audit(t, t.failed_kind, extra={"reason": reason, **t.extra})
            if newly_locked:
                self._audit(t, Kind.LOGIN_LOCKED, extra={"on": "person_client"})
            if t.person is not None:
                self._warn_rooms(t)
        # One answer for an unknown identity, a roster member who may not view, and a wrong password:
        # the sign-in form must not tell a link holder who is on the roster.
        parts = [phrase(Msg.LOGIN_WRONG)]
        lock_s = int(self._limiter.lock.total_seconds())
        left = self._limiter.remaining(t.who, t.address, t.now)
        if newly_locked:
            parts.append(phrase(Msg.LOGIN_NOW_LOCKED, minutes=-(-lock_s // 60)))
        elif left > 0:
            parts.append(phrase(Msg.LOGIN_ATTEMPTS_LEFT, left=left))
        raise LoginRefused(reason, *parts, locked=newly_locked, retry_after_s=lock_s if newly_locked else 0)

    def _warn_rooms(self, t: Attempt) -> None:
        """Once per window and person, when their failures reach the slow-down threshold."""
        assert t.person is not None  # noqa: S101 - only roster members are announced
        slow = self._limiter.slowdown(t.who, t.address, t.now)
        last = self._warned.get(t.who)
        if slow.person < self._limiter.max_failures or (last is not None and t.now - last < self._limiter.window):
            return
        self._warned[t.who] = t.now
        if self.on_guessing is not None:
            try:
                self.on_guessing(t.person, slow.person, self._limiter.clients_of(t.who, t.now))
            except Exception:  # the warning must never turn a refusal into a 500
                logger.exception("could not warn the rooms about %s", t.who)

    def unlock(self, person: Person, actor: str) -> int:
        """``/debloquer``: lift the locks and counts of a roster member; recorded in the registre."""
        cleared = self._limiter.unlock(person.id)
        self._warned.pop(person.id, None)
        self._registre.append(Kind.LOGIN_UNLOCKED, actor=actor, details={"person": person.id, "locks": cleared})
        logger.info("%s unlocked the sign-in of %s (%d lock(s))", actor, person.id, cleared)
        return cleared

    async def _verify_dummy(self, password: str) -> None:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(self._hasher.hash, _DUMMY)
        await self._verify(Person("?", "?", Org.POLICE, Role.VIEWER, password_hash=self._dummy_hash), password)

    async def _verify(self, person: Person, password: str) -> bool:
        if not person.password_hash or not password or len(password) > _MAX_PASSWORD:
            return False
        try:
            # ~50 ms of CPU with production parameters: keep it off the event loop.
            return await asyncio.to_thread(self._hasher.verify, person.password_hash, password)
        except InvalidHashError:
            logger.error("roster password hash of %s is not a valid argon2 hash", person.id)
            return False
        except Argon2Error:
            return False

    def _audit(self, t: Attempt, kind: Kind, *, at: datetime | None = None,
               extra: Mapping[str, str] | None = None) -> None:
        person = t.person.id if t.person else t.typed
        self._registre.append(
            kind,
            incident=t.incident_id,
            actor=t.person.id if t.person else None,
            details={"client": t.client, "person": person, **(extra or {})},
            drill=t.drill,
            at=at or t.now,
        )

    # --- sessions ---

    def viewer(self, cookie_value: str | None) -> tuple[ViewerSession, Incident] | None:
        """The live session and its incident, or None; the incident is read afresh every time."""
        return self.viewers([cookie_value])[cookie_value] if cookie_value else None

    def viewers(self, cookies: Iterable[str]) -> dict[str, tuple[ViewerSession, Incident] | None]:
        """``viewer`` for many cookies at once (the open streams' periodic check, twice a second):
        their sessions in one read, each incident read once for all its viewers."""
        incidents = functools.cache(self._incidents)  # for this pass only: /extend and /fin still show
        cookies = list(cookies)
        hashes = {c: _hash_cookie(c) for c in cookies if c and len(c) <= _MAX_COOKIE}
        stored = self._store.get_sessions(hashes.values())
        return {c: self._viewer(stored.get(hashes[c]), incidents) if c in hashes else None for c in cookies}

    def _viewer(self, stored: StoredSession | None,
                incidents: Callable[[str], Incident | None]) -> tuple[ViewerSession, Incident] | None:
        if stored is None:
            return None
        person = self._convention.person(stored.person)
        if person is None or not self._convention.may_view(person):
            return None
        incident = incidents(stored.incident)
        if incident is None or incident.id in self._revoked or not incident.grants_access(self._clock()):
            return None
        assert incident.ends_at is not None  # noqa: S101 - grants_access implies it
        # ends_at is the incident's current end, not the stored one: /extend moves it.
        return ViewerSession(person, incident.id, incident.ends_at, stored.client), incident

    def session(self, cookie_value: str | None) -> ViewerSession | None:
        found = self.viewer(cookie_value)
        return found[0] if found else None

    def revoke_incident(self, incident_id: str) -> int:
        # Memory first (links, sessions, streams refused at once), then the stored sessions: a full
        # or locked disk must never leave access open (the closing job deletes them again later).
        self._revoked.add(incident_id)
        for fn in list(self._listeners):
            try:
                fn(incident_id)
            except Exception:  # one broken listener must not keep streams of the others open
                logger.exception("revocation listener failed for %s", incident_id)
        try:
            # The closure report that follows counts and anchors the incident's records: write the
            # refusals counted so far first.
            self.tally.flush(everything=True)
            count = self._store.delete_sessions(incident_id)
        except sqlite3.Error as exc:
            logger.error("sessions of %s refused in memory, not yet deleted from storage: %s", incident_id, exc)
            return 0
        logger.info("revoked %d viewer session(s) of %s", count, incident_id)
        return count

    def add_revocation_listener(self, fn: Callable[[str], None]) -> None:
        self._listeners.append(fn)
