"""Officers' passkeys and their one-time enrolment links, in ``state.sqlite3`` (state migration v4).

A passkey row holds what WebAuthn leaves the server: the credential id, its public key (COSE),
the authenticator's signature counter, and whose it is. No secret is stored: the private key
never leaves the officer's phone. A revoked or disabled passkey keeps its row, with when and why,
so ``passkeys list`` can say what happened to it; it never signs anyone in again.

An enrolment link is a random token; only its sha256 is stored, with the person, its expiry and
when it was used. Using it and storing the new passkey happen in one transaction, so a link
registers at most one passkey even when two browsers race with it.

Opened by the running service and by the command line (``vigie enrol``, ``vigie passkeys``) at
the same time: WAL, short bounded waits, each write its own transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .outbox_store import StateFile


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class Passkey:
    id: str  # the credential id, base64url as the browser sends it
    person: str
    public_key: bytes
    sign_count: int
    label: str
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_why: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Enrolment:
    person: str
    expires_at: datetime
    used_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.used_at is None and now < self.expires_at


_COLUMNS = "id, person, public_key, sign_count, label, created_at, last_used_at, revoked_at, revoked_why"


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _passkey(row: tuple[Any, ...]) -> Passkey:
    created = _when(row[5])
    assert created is not None  # noqa: S101 - NOT NULL column
    return Passkey(row[0], row[1], bytes(row[2]), int(row[3]), row[4], created, _when(row[6]), _when(row[7]), row[8])


class PasskeyStore(StateFile):
    """Every method may raise ``sqlite3.Error`` (a locked or full disk): callers refuse, never guess."""

    # --- enrolment links ---

    def add_enrolment(self, token: str, person: str, now: datetime, expires_at: datetime) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO enrolments (token_hash, person, created_at, expires_at) VALUES (?,?,?,?)",
                       (token_hash(token), person, now.isoformat(), expires_at.isoformat()))

    def enrolment(self, token: str) -> Enrolment | None:
        with self._lock:
            row = self._db.execute("SELECT person, expires_at, used_at FROM enrolments WHERE token_hash=?",
                                   (token_hash(token),)).fetchone()
        if row is None:
            return None
        expires = _when(row[1])
        assert expires is not None  # noqa: S101 - NOT NULL column
        return Enrolment(row[0], expires, _when(row[2]))

    def enrol(self, token: str, key: Passkey, now: datetime) -> bool:
        """Spend the link and store ``key``, both or neither; False if the link was spent or expired."""
        with self._tx() as db:
            spent = db.execute(
                "UPDATE enrolments SET used_at=? WHERE token_hash=? AND person=? AND used_at IS NULL AND expires_at>?",
                (now.isoformat(), token_hash(token), key.person, now.isoformat())).rowcount
            if spent != 1:
                return False
            db.execute(f"INSERT INTO passkeys ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608 - constant
                       (key.id, key.person, key.public_key, key.sign_count, key.label, key.created_at.isoformat(),
                        None, None, None))
        return True

    # --- passkeys ---

    def get(self, credential_id: str) -> Passkey | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM passkeys WHERE id=?",  # noqa: S608 - constant
                                   (credential_id,)).fetchone()
        return _passkey(row) if row else None

    def all(self, person: str | None = None) -> list[Passkey]:
        with self._lock:
            if person is None:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM passkeys ORDER BY person, created_at").fetchall()  # noqa: S608
            else:
                rows = self._db.execute(f"SELECT {_COLUMNS} FROM passkeys WHERE person=? ORDER BY created_at",  # noqa: S608
                                        (person,)).fetchall()
        return [_passkey(r) for r in rows]

    def used(self, credential_id: str, sign_count: int, now: datetime) -> None:
        with self._lock:
            self._db.execute("UPDATE passkeys SET sign_count=?, last_used_at=? WHERE id=?",
                             (sign_count, now.isoformat(), credential_id))

    def revoke(self, person: str, now: datetime, why: str, credential_id: str | None = None) -> list[str]:
        """Revoke the person's active passkeys (or one of them); the ids revoked."""
        with self._tx() as db:
            if credential_id is None:
                rows = db.execute("SELECT id FROM passkeys WHERE person=? AND revoked_at IS NULL", (person,)).fetchall()
            else:
                rows = db.execute("SELECT id FROM passkeys WHERE person=? AND id=? AND revoked_at IS NULL",
                                  (person, credential_id)).fetchall()
            ids = [r[0] for r in rows]
            db.executemany("UPDATE passkeys SET revoked_at=?, revoked_why=? WHERE id=?",
                           [(now.isoformat(), why, i) for i in ids])
        return ids

    def end_sessions(self, person: str) -> int:
        """Delete the person's viewer sessions (a lost phone may hold one): the running service reads
        sessions from this file on every request, so the page stops at its next poll."""
        with self._tx() as db:
            return int(db.execute("DELETE FROM sessions WHERE person=?", (person,)).rowcount)

    def orphans(self, roster: set[str]) -> dict[str, int]:
        """Active passkeys whose person is not in ``roster``: how many per person id."""
        out: dict[str, int] = {}
        for key in self.all():
            if key.active and key.person not in roster:
                out[key.person] = out.get(key.person, 0) + 1
        return out
