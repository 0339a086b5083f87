"""Who may see the images, and for how long: signed links, personal passwords, viewer sessions.

A link posted in a room carries only the incident id, signed with itsdangerous and timed by the
injected clock; it proves nothing about the person. Opening it asks for a roster identity and a
personal password (argon2); only then is a viewer session opened, bound to that person and that
incident. Nothing here trusts what it saw before: every call re-reads the incident through the
``incidents`` callable, so ending or expiring an incident kills its links and sessions at once.

Only the sha256 of a session's cookie value is stored, and no token, password or cookie ever
reaches the registre or the logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error, InvalidHashError
from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from .kinds import Kind
from .locales import Msg, phrase
from .policy.convention import Convention, Person
from .policy.incident import Incident
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


class AuditSink(Protocol):
    """What Access needs of the registre (``bot.audit.Registre`` satisfies it)."""

    def append(
        self,
        kind: Kind,
        *,
        incident: str | None = None,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
        drill: bool = False,
        at: datetime | None = None,
    ) -> object: ...


class _ClockSigner(TimestampSigner):
    """itsdangerous reads ``time.time()``; ours reads the injected clock so tests and the desk agree."""

    def __init__(self, *args: Any, clock: Callable[[], datetime], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock().timestamp())


@dataclass
class _Attempts:
    times: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None


class _Limiter:
    """Failures per key in a sliding window; reaching the limit locks the key for ``lockout``.

    An attempt is counted *before* argon2 runs and forgiven if it succeeds, so a burst of
    concurrent guesses cannot slip more than ``max_failures`` tries past the check.
    """

    def __init__(self, max_failures: int, window: timedelta, lockout: timedelta) -> None:
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self._keys: dict[str, _Attempts] = {}

    def _fresh(self, key: str, now: datetime) -> _Attempts | None:
        a = self._keys.get(key)
        if a is None:
            return None
        a.times = [t for t in a.times if t > now - self.window]
        if a.locked_until is not None and a.locked_until <= now:
            a.locked_until = None
        if not a.times and a.locked_until is None:
            del self._keys[key]
            return None
        return a

    def locked_for(self, key: str, now: datetime) -> timedelta | None:
        a = self._fresh(key, now)
        if a is None:
            return None
        if a.locked_until is not None:
            return a.locked_until - now
        if len(a.times) >= self.max_failures:  # attempts still in flight fill the quota
            return self.lockout
        return None

    def remaining(self, key: str, now: datetime) -> int:
        a = self._fresh(key, now)
        return self.max_failures - (len(a.times) if a else 0)

    def begin(self, key: str, now: datetime) -> None:
        if len(self._keys) > 4096:  # many distinct clients: drop the stale ones
            for k in list(self._keys):
                self._fresh(k, now)
        self._keys.setdefault(key, _Attempts()).times.append(now)

    def failed(self, key: str, now: datetime) -> bool:
        """The attempt begun at ``now`` failed; True when that locks the key."""
        a = self._fresh(key, now)
        if a is not None and len(a.times) >= self.max_failures and a.locked_until is None:
            a.locked_until = now + self.lockout
            return True
        return False

    def forgive(self, key: str, at: datetime) -> None:
        a = self._keys.get(key)
        if a is not None and at in a.times:
            a.times.remove(at)

    def clear(self, key: str) -> None:
        self._keys.pop(key, None)


@dataclass(frozen=True)
class _Try:
    """One login attempt, as the limiter and the registre see it."""

    incident: Incident
    person: Person | None
    person_id: str
    client: str
    now: datetime
    client_key: str

    @property
    def person_key(self) -> str | None:
        return f"person:{self.person.id}" if self.person else None

    @property
    def keys(self) -> list[str]:
        return [k for k in (self.person_key, self.client_key) if k is not None]


def _echo(value: str) -> str:
    """A printable, bounded copy of an untrusted string, safe to write to the registre."""
    return value.encode("utf-8", "replace").decode("utf-8")[:_MAX_ECHO]


def _hash_cookie(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()




class Access:
    def __init__(
        self,
        convention: Convention,
        link_keys: Sequence[str],
        registre: AuditSink,
        store: Store,
        clock: Callable[[], datetime],
        incidents: Callable[[str], Incident | None],
        public_url: str,
        *,
        max_failures: int = 5,
        lockout: timedelta = timedelta(minutes=15),
        hasher: PasswordHasher | None = None,
    ) -> None:
        keys = [k for k in link_keys if k]
        if not keys:
            raise ValueError("at least one link signing key is required")
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        self._convention = convention
        self._registre = registre
        self._store = store
        self._clock = clock
        self._incidents = incidents
        self._public_url = public_url.rstrip("/")
        self._hasher = hasher or PasswordHasher()
        self._limiter = _Limiter(max_failures, lockout, lockout)
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
            self._refuse("bad_link", client, now)
            raise LinkForbidden
        try:
            payload = self._serializer.loads(token, max_age=self._max_age)
        except SignatureExpired:
            # The signature was checked before the age: this link was ours, it is just old.
            self._refuse("link_expired", client, now)
            raise LinkGone from None
        except (BadData, ValueError, TypeError):
            self._refuse("bad_link", client, now)
            raise LinkForbidden from None
        incident_id = payload.get("i") if isinstance(payload, dict) else None
        drill = payload.get("d") if isinstance(payload, dict) else None
        if not isinstance(incident_id, str) or not isinstance(drill, bool):
            self._refuse("bad_link", client, now)
            raise LinkForbidden
        incident = self._incidents(incident_id)
        if incident is None or incident.drill is not drill:
            self._refuse("unknown_incident", client, now, drill=drill)
            raise LinkForbidden
        if not incident.grants_access(now) or incident.id in self._revoked:
            self._refuse("access_ended", client, now, incident=incident)
            raise LinkGone
        return incident

    def _refuse(
        self,
        reason: str,
        client: str,
        now: datetime,
        *,
        incident: Incident | None = None,
        drill: bool = False,
    ) -> None:
        logger.info("live link refused: %s (%s)", reason, _echo(client))
        self._registre.append(
            Kind.REFUSAL,
            incident=incident.id if incident else None,
            details={"reason": reason, "client": _echo(client), "what": "live_link"},
            drill=incident.drill if incident else drill,
            at=now,
        )

    # --- login ---

    async def login(
        self, token: str, person_id: str, password: str, client: str, *, address: str | None = None
    ) -> tuple[str, ViewerSession]:
        """Open a viewer session, or raise LinkForbidden / LinkGone / LoginRefused.

        ``address`` (the client's IP), when given, keys the per-client limit so that changing
        the user agent does not reset it; ``client`` is the description that is audited.
        """
        incident = self.check_link(token, client)
        person = self._convention.person(person_id)
        t = _Try(incident, person, person_id, _echo(client), self._clock(), f"client:{address or client}")
        self._refuse_if_locked(t)
        for key in t.keys:
            self._limiter.begin(key, t.now)

        reason: str | None = None
        if person is None:
            reason = "unknown_person"
        elif not self._convention.may_view(person):
            reason = "not_habilitated"
        elif not await self._verify(person, password):
            reason = "wrong_password"
        if reason is not None or person is None:
            self._fail(t, reason or "unknown_person")

        assert t.person_key is not None  # noqa: S101 - the person is known here
        self._limiter.clear(t.person_key)
        self._limiter.forgive(t.client_key, t.now)
        # The incident may have ended while argon2 ran: look again before opening anything.
        incident = self.check_link(token, client)
        assert incident.ends_at is not None  # noqa: S101 - grants_access implies it
        cookie = secrets.token_urlsafe(32)
        self._store.save_session(
            StoredSession(_hash_cookie(cookie), person.id, incident.id, incident.ends_at, t.client)
        )
        self._audit(t, Kind.LOGIN_OK, at=self._clock())
        logger.info("viewer %s opened a session on %s", person.id, incident.id)
        return cookie, ViewerSession(person, incident.id, incident.ends_at, client)

    def _refuse_if_locked(self, t: _Try) -> None:
        """A locked person or client is refused before argon2 runs, even with the right password."""
        for key in t.keys:
            wait = self._limiter.locked_for(key, t.now)
            if wait is None:
                continue
            self._audit(t, Kind.LOGIN_LOCKED, on="person" if key == t.person_key else "client")
            seconds = max(1, int(wait.total_seconds()))
            minutes = -(-seconds // 60)
            raise LoginRefused(
                "locked",
                phrase(Msg.LOGIN_LOCKED, minutes=minutes),
                locked=True,
                retry_after_s=seconds,
            )

    def _fail(self, t: _Try, reason: str) -> NoReturn:
        newly_locked = [k for k in t.keys if self._limiter.failed(k, t.now)]
        self._audit(t, Kind.LOGIN_FAILED, reason=reason)
        for key in newly_locked:
            self._audit(t, Kind.LOGIN_LOCKED, on="person" if key == t.person_key else "client")
        parts = [phrase(Msg.LOGIN_NOT_HABILITATED if reason == "not_habilitated" else Msg.LOGIN_WRONG)]
        left = min(self._limiter.remaining(k, t.now) for k in t.keys)
        if newly_locked:
            minutes = -(-int(self._limiter.lockout.total_seconds()) // 60)
            parts.append(phrase(Msg.LOGIN_NOW_LOCKED, minutes=minutes))
        elif reason != "not_habilitated" and left > 0:
            parts.append(phrase(Msg.LOGIN_ATTEMPTS_LEFT, left=left))
        raise LoginRefused(
            reason,
            *parts,
            locked=bool(newly_locked),
            retry_after_s=int(self._limiter.lockout.total_seconds()) if newly_locked else 0,
        )

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

    def _audit(self, t: _Try, kind: Kind, *, at: datetime | None = None, **extra: str) -> None:
        person = t.person.id if t.person else _echo(t.person_id)
        self._registre.append(
            kind,
            incident=t.incident.id,
            actor=t.person.id if t.person else None,
            details={"client": t.client, "person": person, **extra},
            drill=t.incident.drill,
            at=at or t.now,
        )

    # --- sessions ---

    def viewer(self, cookie_value: str | None) -> tuple[ViewerSession, Incident] | None:
        """The live session and its incident, or None; the incident is read afresh every time."""
        if not cookie_value or len(cookie_value) > _MAX_COOKIE:
            return None
        stored = self._store.get_session(_hash_cookie(cookie_value))
        if stored is None:
            return None
        person = self._convention.person(stored.person)
        if person is None or not self._convention.may_view(person):
            return None
        incident = self._incidents(stored.incident)
        if incident is None or incident.id in self._revoked or not incident.grants_access(self._clock()):
            return None
        assert incident.ends_at is not None  # noqa: S101 - grants_access implies it
        # ends_at is the incident's current end, not the stored one: /extend moves it.
        return ViewerSession(person, incident.id, incident.ends_at, stored.client), incident

    def session(self, cookie_value: str | None) -> ViewerSession | None:
        found = self.viewer(cookie_value)
        return found[0] if found else None

    def revoke_incident(self, incident_id: str) -> int:
        self._revoked.add(incident_id)
        count = self._store.delete_sessions(incident_id)
        for fn in list(self._listeners):
            try:
                fn(incident_id)
            except Exception:  # one broken listener must not keep streams of the others open
                logger.exception("revocation listener failed for %s", incident_id)
        logger.info("revoked %d viewer session(s) of %s", count, incident_id)
        return count

    def add_revocation_listener(self, fn: Callable[[str], None]) -> None:
        self._listeners.append(fn)
