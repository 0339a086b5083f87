"""Passkeys (WebAuthn) for the people who may view: one-time enrolment, one-touch sign-in.

Every WebAuthn check (challenge, origin, relying-party id hash, user verification, signature,
counter) is py_webauthn's; nothing here parses or verifies a signature itself. The relying
party is the host of ``public_url`` and the only accepted origin is ``public_url``'s, so a
passkey made for another site, or an assertion relayed from another site, is refused.

Enrolment (outside any incident): ``vigie enrol PERSON`` stores a one-time link (``issue_enrolment``).
Opening it, the person types their personal password (checked and limited exactly as on the
sign-in page), the phone creates a discoverable passkey with user verification, and storing it
spends the link. Several passkeys per person (a phone and a spare).

Sign-in (on an incident's link): the page asks the phone for any passkey of this site (no name to
pick). A verified assertion of an active passkey of a roster member who may view opens the same
viewer session as a password. Failures count in the same limiter as passwords; those only a
genuine passkey can cause (revoked, person gone) are recorded one by one until the pair is
locked, the others (unknown or forged credentials, anyone can send them) are only tallied.
A genuine passkey is not stopped by a lock that password typos set: it cannot be guessed.

py_webauthn itself is loaded at the first passkey request (``webauthn_calls``, ``ready``): about
15 MB that a venue signing in with passwords never carries.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
import re
import secrets
import sqlite3
import sys
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

from .access import Access, Attempt, LoginRefused, ViewerSession
from .kinds import Kind, Recorder
from .locales import Msg, phrase
from .passkey_store import Passkey, PasskeyStore, token_hash
from .policy.convention import Convention, Person

logger = logging.getLogger(__name__)

ENROL_TTL = timedelta(minutes=15)
MAX_ENROL_TTL = timedelta(hours=24)
_ENROL_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{32,64}$")
_CHALLENGE_TTL = timedelta(minutes=2)
_MAX_PENDING = 512  # challenges handed out and not yet answered: anyone holding a live link can ask
_MAX_LABEL = 40
_OPTIONS_TIMEOUT_MS = 60_000


class EnrolGone(Exception):  # noqa: N818 - an HTTP outcome (410), named after it
    """Unknown, expired or already used enrolment link: the same answer for all three."""


@dataclass(frozen=True)
class RelyingParty:
    id: str  # the host of public_url
    origin: str  # scheme://host[:port] of public_url

    @classmethod
    def from_url(cls, public_url: str) -> RelyingParty:
        parts = urlsplit(public_url)
        return cls(parts.hostname or "", f"{parts.scheme}://{parts.netloc}".lower())


def user_handle(person_id: str) -> bytes:
    """The WebAuthn user id of a person: stable, so a phone keeps one passkey per person, and no name in it."""
    return hashlib.sha256(b"vigie-user:" + person_id.encode("utf-8")).digest()[:16]


def enrolment_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/live/enrol/{token}"


def issue_enrolment(keys: PasskeyStore, registre: Recorder, person: str, public_url: str, now: datetime,
                    ttl: timedelta, actor: str) -> str:
    """A new one-time enrolment link for ``person`` (recorded; the token itself never is)."""
    token = secrets.token_urlsafe(32)
    keys.add_enrolment(token, person, now, now + ttl)
    registre.append(Kind.ENROL_LINK_ISSUED, actor=actor,
                    details={"person": person, "expires": (now + ttl).isoformat(), "link": token_hash(token)[:12]},
                    at=now)
    return enrolment_url(public_url, token)


def _label(value: object) -> str:
    text = "".join(c for c in str(value or "") if c.isprintable()).strip()[:_MAX_LABEL]
    return text or "clé d'accès"


class Passkeys:
    def __init__(self, access: Access, keys: PasskeyStore, registre: Recorder, clock: Callable[[], datetime],
                 public_url: str) -> None:
        self._access = access
        self._keys = keys
        self._registre = registre
        self._clock = clock
        self.rp = RelyingParty.from_url(public_url)
        self._auth: OrderedDict[str, tuple[str, datetime]] = OrderedDict()  # challenge → (incident, expires)
        self._reg: dict[str, tuple[bytes, datetime, str]] = {}  # link hash → (challenge, expires, person)

    @property
    def convention(self) -> Convention:
        return self._access.convention

    async def ready(self) -> None:
        """Load py_webauthn, once, in a thread (``webauthn_calls``): called by the routes before the checks."""
        if f"{__package__}.webauthn_calls" not in sys.modules:
            await asyncio.to_thread(importlib.import_module, ".webauthn_calls", __package__)

    def disable_absent(self) -> int:
        """At start: the active passkeys of people no longer on the roster are disabled for good (an id
        given later to someone else must not inherit them)."""
        roster = {p.id for p in self.convention.roster}
        now = self._clock()
        disabled = 0
        for person, count in self._keys.orphans(roster).items():
            self._keys.revoke(person, now, "person_removed")
            self._registre.append(Kind.PASSKEY_DISABLED, details={"person": person, "passkeys": count}, at=now)
            logger.warning("%d passkey(s) of %s disabled: no longer on the roster", count, person)
            disabled += count
        return disabled

    # --- enrolment ---

    def enrolment(self, token: str, client: str) -> Person:
        """The person a live enrolment link is for, or EnrolGone (tallied: anyone can try links)."""
        found = self._keys.enrolment(token) if _ENROL_TOKEN.match(token) else None
        person = self.convention.person(found.person) if found else None
        if found is None or person is None or not found.usable(self._clock()):
            reason = "unknown" if found is None else ("used" if found.used_at else "expired")
            self._access.tally.note("enrol", reason if person or not found else "person_removed", client)
            raise EnrolGone
        return person

    async def registration_options(self, token: str, password: str, client: str, address: str) -> dict[str, Any]:
        """Check the personal password (limited like a sign-in), then the options for ``navigator.credentials.create``."""
        person = self.enrolment(token, client)
        t = replace(self._access.attempt(None, person, person.id, client, address),
                    what="enrol", failed_kind=Kind.ENROL_REFUSED)
        person = await self._access.check_password(t, password)
        from . import webauthn_calls as wa

        options = wa.generate_registration_options(
            rp_id=self.rp.id, rp_name="Vigie", user_name=person.id, user_id=user_handle(person.id),
            user_display_name=person.name, timeout=_OPTIONS_TIMEOUT_MS,
            authenticator_selection=wa.AuthenticatorSelectionCriteria(
                resident_key=wa.ResidentKeyRequirement.REQUIRED, require_resident_key=True,
                user_verification=wa.UserVerificationRequirement.REQUIRED),
            exclude_credentials=[wa.PublicKeyCredentialDescriptor(id=wa.base64url_to_bytes(k.id))
                                 for k in self._keys.all(person.id) if k.active],
        )
        self._reg[token_hash(token)] = (options.challenge, self._clock() + _CHALLENGE_TTL, person.id)
        parsed: dict[str, Any] = json.loads(wa.options_to_json(options))
        return parsed

    def register(self, token: str, credential: dict[str, Any], label: object, client: str) -> Passkey:
        """Verify what the phone created and store it, spending the link; EnrolGone or ValueError."""
        from . import webauthn_calls as wa

        person = self.enrolment(token, client)
        pending = self._reg.pop(token_hash(token), None)
        now = self._clock()
        if pending is None or pending[1] <= now or pending[2] != person.id:
            raise ValueError("no password checked for this link, or too long ago")
        try:
            verified = wa.verify_registration_response(
                credential=credential, expected_challenge=pending[0], expected_rp_id=self.rp.id,
                expected_origin=self.rp.origin, require_user_verification=True)
        except (wa.WebAuthnException, ValueError, KeyError, TypeError) as exc:
            # Only someone who just typed the person's password gets here: worth a record.
            self._registre.append(Kind.ENROL_REFUSED, actor=person.id,
                                  details={"person": person.id, "client": client, "reason": "passkey_invalid"}, at=now)
            raise ValueError(str(exc)) from None
        key = Passkey(wa.bytes_to_base64url(verified.credential_id), person.id, verified.credential_public_key,
                      verified.sign_count, _label(label), now)
        try:
            stored = self._keys.enrol(token, key, now)
        except sqlite3.IntegrityError:
            raise ValueError("this passkey is already enrolled") from None
        if not stored:
            raise EnrolGone
        self._registre.append(Kind.PASSKEY_ENROLLED, actor=person.id,
                              details={"person": person.id, "passkey": key.id[:16], "label": key.label,
                                       "client": client}, at=now)
        logger.info("passkey enrolled for %s", person.id)
        return key

    # --- sign-in ---

    def authentication_options(self, token: str, client: str) -> dict[str, Any]:
        """Options for ``navigator.credentials.get`` on a live link: any passkey of this site."""
        incident = self._access.check_link(token, client)
        from . import webauthn_calls as wa

        options = wa.generate_authentication_options(rp_id=self.rp.id, timeout=_OPTIONS_TIMEOUT_MS,
                                                  user_verification=wa.UserVerificationRequirement.REQUIRED)
        now = self._clock()
        while self._auth and (len(self._auth) >= _MAX_PENDING or next(iter(self._auth.values()))[1] <= now):
            self._auth.popitem(last=False)
        self._auth[wa.bytes_to_base64url(options.challenge)] = (incident.id, now + _CHALLENGE_TTL)
        parsed: dict[str, Any] = json.loads(wa.options_to_json(options))
        return parsed

    def sign_in(self, token: str, credential: dict[str, Any], client: str, address: str) -> tuple[str, ViewerSession]:
        """A viewer session for a verified passkey, or LinkForbidden / LinkGone / LoginRefused."""
        from . import webauthn_calls as wa

        incident = self._access.check_link(token, client)
        anonymous = self._access.attempt(incident, None, "?passkey", client, address)
        anonymous = replace(anonymous, what="passkey", extra={"method": "passkey"})
        try:
            parsed = wa.parse_authentication_credential_json(credential)
            challenge = wa.parse_client_data_json(parsed.response.client_data_json).challenge
        except (wa.WebAuthnException, ValueError, KeyError, TypeError):
            self._refuse(anonymous, "passkey_malformed")
        pending = self._auth.pop(wa.bytes_to_base64url(challenge), None)
        if pending is None or pending[0] != incident.id or pending[1] <= anonymous.now:
            self._refuse(anonymous, "passkey_stale")
        key = self._keys.get(parsed.id)
        if key is None:
            self._refuse(anonymous, "passkey_unknown")
        person = self.convention.person(key.person)
        t = replace(anonymous, person=person, typed=key.person)
        locked = self._access.limiter.locked_for(t.who, t.address, t.now) is not None
        self._access.limiter.begin(t.who, t.address, t.now)
        try:
            verified = wa.verify_authentication_response(
                credential=parsed, expected_challenge=challenge, expected_rp_id=self.rp.id,
                expected_origin=self.rp.origin, credential_public_key=key.public_key,
                credential_current_sign_count=key.sign_count, require_user_verification=True)
        except (wa.WebAuthnException, ValueError, KeyError, TypeError):
            # Wrong site, forged, replayed or cloned: anyone who knows a credential id can send these.
            self._access.fail(t, "passkey_invalid", recorded=False)
        # Genuine from here: recorded one by one, until the pair is locked.
        if not key.active:
            self._access.fail(t, key.revoked_why or "passkey_revoked", recorded=not locked)
        if person is None:
            self._access.fail(t, "person_removed", recorded=not locked)
        if not self.convention.may_view(person):
            self._access.fail(t, "not_habilitated", recorded=not locked)
        self._keys.used(key.id, verified.new_sign_count, t.now)
        self._access.limiter.succeeded(t.who, t.address, t.now)
        return self._access.open_session(t, person, token)

    def _refuse(self, t: Attempt, reason: str) -> NoReturn:
        """Refuse an attempt that names no known passkey: limited per client, tallied, never recorded alone."""
        self._access.refuse_if_locked(t)
        self._access.limiter.begin(t.who, t.address, t.now)
        self._access.fail(t, reason)


def refused_text(exc: LoginRefused, lang: str) -> str:
    """What the page says when a passkey is refused: the lock if locked, else one generic sentence."""
    return exc.text(lang) if exc.locked else phrase(Msg.PASSKEY_REFUSED)(lang)
