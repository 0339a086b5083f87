"""The registre: Vigie's append-only, hash-chained audit log in SQLite.

Every access to the venue's images must be traceable (CSI L255-1), so each step of an
incident is one record, and each record is chained to the previous one::

    canonical = json.dumps({"seq", "at", "kind", "incident", "actor", "details", "drill"},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    hash      = sha256(prev_hash + canonical)          # hex; genesis prev_hash = 64 zeros

``at`` is the ISO-8601 UTC string with microseconds (``2026-11-25T18:04:12.000000+00:00``),
``drill`` a JSON boolean. Anyone can recompute the chain from an export with those two lines.

Defences, from the cheapest to the strongest:

- SQLite triggers refuse UPDATE and DELETE, and refuse an INSERT that does not extend the
  chain, so a slip through the bot or a casual ``sqlite3`` session cannot rewrite history;
- ``verify()`` recomputes every hash, so a record altered, removed, inserted or moved by
  someone who dropped the triggers or edited the file with another tool is named;
- a one-row ``registre_head`` table (record count and last hash), written in the same
  transaction as each append, catches what a chain alone cannot: removing the *last*
  records.

Limit: whoever can write the file can also rewrite the whole chain *and* the head
consistently; nothing stored in the same file can detect that. Publishing the head hash
elsewhere (the closure report posted in the rooms, a copy kept by the police) is what
anchors it.

No secrets and no images: ``append`` refuses details with a key named like a password,
token, secret, cookie or session id, and any bytes value.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

logger = logging.getLogger(__name__)

GENESIS = "0" * 64

# Compared against keys lower-cased with everything but letters and digits removed, so
# "Session-Id", "access_token" and "pass_word" are all caught.
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "motdepasse",
    "token",
    "secret",
    "cookie",
    "sessionid",
    "apikey",
    "privatekey",
)

# Large enough for a closure report, small enough that an image (even base64) cannot hide here.
MAX_DETAILS_CHARS = 64 * 1024

KIND_LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "trigger": "Déclenchement",
        "decision": "Décision",
        "refusal": "Refus",
        "confirmation_requested": "Confirmation demandée",
        "confirmation": "Confirmation",
        "activation": "Accès ouvert",
        "link_issued": "Lien émis",
        "login_ok": "Connexion réussie",
        "login_failed": "Échec de connexion",
        "login_locked": "Poste bloqué pour cette personne",
        "login_unlocked": "Connexion débloquée",
        "password_guessing": "Mot de passe visé",
        "refusals": "Refus groupés (client, minute)",
        "session_opened": "Session ouverte",
        "stream_opened": "Flux ouvert",
        "stream_closed": "Flux fermé",
        "extension": "Prolongation",
        "reminder": "Rappel",
        "end": "Fin",
        "expiry": "Expiration",
        "joined": "Déclenchement rattaché",
        "webhook_refused": "Webhook refusé",
        "room_error": "Erreur de salon",
        "recording_request": "Demande d'enregistrement",
        "camera_control_refused": "Commande de caméra refusée",
        "closure_report": "Rapport de clôture",
        "authorisation_warning": "Alerte d'échéance de l'autorisation",
        "sia_message": "Message de la centrale d'alarme",
        "sia_refused": "Message de centrale refusé",
        "panel_silent": "Centrale d'alarme muette",
        "panel_back": "Centrale d'alarme revenue",
    },
    "en": {
        "trigger": "Trigger",
        "decision": "Decision",
        "refusal": "Refusal",
        "confirmation_requested": "Confirmation requested",
        "confirmation": "Confirmation",
        "activation": "Access opened",
        "link_issued": "Link issued",
        "login_ok": "Login succeeded",
        "login_failed": "Login failed",
        "login_locked": "Device locked for this person",
        "login_unlocked": "Sign-in unlocked",
        "password_guessing": "Password under attack",
        "refusals": "Grouped refusals (client, minute)",
        "session_opened": "Session opened",
        "stream_opened": "Stream opened",
        "stream_closed": "Stream closed",
        "extension": "Extension",
        "reminder": "Reminder",
        "end": "End",
        "expiry": "Expiry",
        "joined": "Trigger joined",
        "webhook_refused": "Webhook refused",
        "room_error": "Room error",
        "recording_request": "Recording request",
        "camera_control_refused": "Camera control refused",
        "closure_report": "Closure report",
        "authorisation_warning": "Authorisation expiry warning",
        "sia_message": "Alarm panel message",
        "sia_refused": "Alarm panel message refused",
        "panel_silent": "Alarm panel silent",
        "panel_back": "Alarm panel back",
    },
}

_TEXT = {
    "fr": {
        "title": "Registre Vigie — incident {incident}",
        "drill": "EXERCICE — ceci n'est pas un incident réel",
        "count": "{n} enregistrement(s)",
        "chain_ok": "Chaîne d'intégrité : vérifiée",
        "chain_bad": "Chaîne d'intégrité : NON VÉRIFIÉE — {reason}",
        "by": "par",
        "seq": "n° {seq}",
    },
    "en": {
        "title": "Vigie audit log — incident {incident}",
        "drill": "EXERCISE — this is not a real incident",
        "count": "{n} record(s)",
        "chain_ok": "Integrity chain: verified",
        "chain_bad": "Integrity chain: NOT VERIFIED — {reason}",
        "by": "by",
        "seq": "#{seq}",
    },
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS registre (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    kind      TEXT NOT NULL,
    incident  TEXT,
    actor     TEXT,
    details   TEXT NOT NULL,
    drill     INTEGER NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS registre_incident ON registre (incident);
CREATE TABLE IF NOT EXISTS registre_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    count     INTEGER NOT NULL,
    last_hash TEXT NOT NULL
);
-- hex(zeroblob(32)) is GENESIS, the 64 zeros the first record chains to.
INSERT OR IGNORE INTO registre_head (id, count, last_hash) VALUES (1, 0, hex(zeroblob(32)));
CREATE TRIGGER IF NOT EXISTS registre_no_update BEFORE UPDATE ON registre
BEGIN SELECT RAISE(ABORT, 'registre is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS registre_no_delete BEFORE DELETE ON registre
BEGIN SELECT RAISE(ABORT, 'registre is append-only: DELETE refused'); END;
CREATE TRIGGER IF NOT EXISTS registre_insert_extends BEFORE INSERT ON registre
WHEN NEW.seq IS NOT (SELECT count FROM registre_head WHERE id = 1) + 1
  OR NEW.prev_hash IS NOT (SELECT last_hash FROM registre_head WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'registre is append-only: INSERT must extend the chain'); END;
CREATE TRIGGER IF NOT EXISTS registre_head_advances BEFORE UPDATE ON registre_head
WHEN NEW.id IS NOT OLD.id
  OR NEW.count IS NOT OLD.count + 1
  OR NEW.last_hash IS NOT (SELECT hash FROM registre WHERE seq = NEW.count)
BEGIN SELECT RAISE(ABORT, 'registre_head only advances with the registre'); END;
CREATE TRIGGER IF NOT EXISTS registre_head_no_delete BEFORE DELETE ON registre_head
BEGIN SELECT RAISE(ABORT, 'registre_head cannot be deleted'); END;
"""

_TRIGGERS = (
    "registre_no_update",
    "registre_no_delete",
    "registre_insert_extends",
    "registre_head_advances",
    "registre_head_no_delete",
)

# Text columns are read as bytes so that a file edited with a hex editor (invalid UTF-8)
# is reported by verify() instead of crashing the sqlite3 module.
_SELECT = (
    "SELECT seq, CAST(at AS BLOB), CAST(kind AS BLOB), CAST(incident AS BLOB),"
    " CAST(actor AS BLOB), CAST(details AS BLOB), drill,"
    " CAST(prev_hash AS BLOB), CAST(hash AS BLOB) FROM registre"
)


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: datetime
    kind: str
    incident: str | None
    actor: str | None
    details: dict[str, Any]
    drill: bool
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with ``at`` exactly as it was hashed."""
        return {
            "seq": self.seq,
            "at": _iso(self.at),
            "kind": self.kind,
            "incident": self.incident,
            "actor": self.actor,
            "details": self.details,
            "drill": self.drill,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    first_broken: int | None
    reason: str


def kind_label(kind: str, lang: str = "fr") -> str:
    """Human label of a record kind; an unknown kind is shown as is."""
    return KIND_LABELS[_check_lang(lang)].get(kind, kind)


def canonical(
    seq: int,
    at: str,
    kind: str,
    incident: str | None,
    actor: str | None,
    details: Mapping[str, Any],
    drill: bool,
) -> str:
    """The exact text that is hashed for one record (see the module docstring)."""
    return _dumps(
        {
            "seq": seq,
            "at": at,
            "kind": kind,
            "incident": incident,
            "actor": actor,
            "details": details,
            "drill": drill,
        }
    )


def chain_hash(prev_hash: str, canonical_text: str) -> str:
    return hashlib.sha256((prev_hash + canonical_text).encode("utf-8")).hexdigest()


class Registre:
    """The audit log of one venue; safe to share between the event loop and worker threads."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (and in read-write mode create) the registre at ``path``.

        ``readonly=True`` is for ``audit verify``/``export``: the file must exist and is
        never written, so verifying a tampered file does not repair it (no trigger or head
        row is re-created behind the examiner's back).
        """
        self.path = path
        self.readonly = readonly
        self._lock = threading.Lock()
        if readonly:
            uri = f"{path.resolve().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves, one per append.
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._conn.execute("PRAGMA busy_timeout = 5000")
            if readonly:
                self._conn.execute("PRAGMA query_only = ON")
            missing = self._missing_triggers()
            if missing:
                # Someone went around the bot; verify() will say whether the data survived.
                logger.warning("registre %s: protective triggers missing: %s", path, ", ".join(missing))
            if readonly:
                if missing is None:
                    raise ValueError(f"{path}: pas un registre Vigie / not a Vigie audit log")
            else:
                self._conn.execute("PRAGMA journal_mode = WAL")
                # In WAL mode NORMAL may lose the last commits on a power cut, never corrupt the
                # file; the head is in the same transaction, so it stays consistent with the rows.
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.executescript(_SCHEMA)
        except BaseException:
            self._conn.close()
            raise

    def _missing_triggers(self) -> list[str] | None:
        """Protective triggers absent from an existing registre; None if there is no registre table."""
        names = {
            row[0]
            for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        }
        if "registre" not in names:
            return None
        return [name for name in _TRIGGERS if name not in names]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def append(
        self,
        kind: str,
        *,
        incident: str | None = None,
        actor: str | None = None,
        details: Mapping[str, Any] | None = None,
        drill: bool = False,
        at: datetime | None = None,
    ) -> AuditRecord:
        """Write one record, chained to the last one, in its own transaction."""
        if self.readonly:
            raise PermissionError("registre opened read-only")
        if not isinstance(kind, str) or not kind:
            raise ValueError("kind must be a non-empty string")
        for name, value in (("incident", incident), ("actor", actor)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} must be a string or None")
        if at is None:
            at = datetime.now(UTC)
        elif at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("at must be timezone-aware")
        at_iso = _iso(at)
        drill = bool(drill)
        details_dict = dict(details or {})
        _refuse_secrets(details_dict, "details")
        try:
            details_text = _dumps(details_dict)
            details_text.encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"details must be JSON-serialisable: {exc}") from exc
        if len(details_text) > MAX_DETAILS_CHARS:
            raise ValueError(f"details too large ({len(details_text)} > {MAX_DETAILS_CHARS} characters)")
        # Round-trip so that the returned record is exactly what records() will read back.
        stored_details: dict[str, Any] = json.loads(details_text)

        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                count, prev_hash = self._conn.execute(
                    "SELECT count, last_hash FROM registre_head WHERE id = 1"
                ).fetchone()
                if incident is not None:
                    row = self._conn.execute(
                        "SELECT drill FROM registre WHERE incident = ? LIMIT 1", (incident,)
                    ).fetchone()
                    if row is not None and bool(row[0]) != drill:
                        raise ValueError(
                            f"incident {incident!r} is {'a drill' if row[0] else 'real'}: "
                            "drill and real records are never mixed"
                        )
                seq = count + 1
                try:
                    text = canonical(seq, at_iso, kind, incident, actor, stored_details, drill)
                    digest = chain_hash(prev_hash, text)
                except UnicodeEncodeError as exc:
                    raise ValueError(f"record is not valid Unicode text: {exc}") from exc
                self._conn.execute(
                    "INSERT INTO registre (seq, at, kind, incident, actor, details, drill, prev_hash, hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, at_iso, kind, incident, actor, details_text, int(drill), prev_hash, digest),
                )
                self._conn.execute(
                    "UPDATE registre_head SET count = ?, last_hash = ? WHERE id = 1", (seq, digest)
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return AuditRecord(
            seq=seq,
            at=datetime.fromisoformat(at_iso),
            kind=kind,
            incident=incident,
            actor=actor,
            details=stored_details,
            drill=drill,
            prev_hash=prev_hash,
            hash=digest,
        )

    def records(self, incident: str | None = None, *, drill: bool | None = None) -> list[AuditRecord]:
        """Records in append order, optionally of one incident and/or only drill or only real ones."""
        with self._lock:
            if incident is None:
                rows = self._conn.execute(_SELECT + " ORDER BY seq").fetchall()
            else:
                rows = self._conn.execute(
                    _SELECT + " WHERE incident = ? ORDER BY seq", (incident,)
                ).fetchall()
        result = [_record_from_row(row) for row in rows]
        if drill is not None:
            result = [record for record in result if record.drill == drill]
        return result

    def incidents(self) -> list[str]:
        """Incident ids in the order they first appear."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT incident FROM registre WHERE incident IS NOT NULL GROUP BY incident ORDER BY MIN(seq)"
            ).fetchall()
        return [row[0] for row in rows]

    def verify(self) -> VerifyResult:
        """Recompute the whole chain and compare it with the head; name the first broken record.

        Detects a record altered, removed, inserted or moved, and the last records removed
        (thanks to ``registre_head``). Cannot detect a whole chain *and* head rewritten
        consistently by someone with write access to the file: see the module docstring.
        """
        with self._lock:
            # One read transaction, so the head, the count and the rows are the same snapshot.
            self._conn.execute("BEGIN")
            try:
                head = self._head()
                (total,) = self._conn.execute("SELECT count(*) FROM registre").fetchone()
                result = _verify_rows(self._conn.execute(_SELECT + " ORDER BY seq"), total, head)
            finally:
                self._conn.execute("COMMIT")
        if not result.ok:
            logger.warning("registre %s failed verification: %s", self.path, result.reason)
        return result

    def _head(self) -> tuple[Any, Any] | None:
        try:
            row = self._conn.execute("SELECT count, last_hash FROM registre_head WHERE id = 1").fetchone()
        except sqlite3.OperationalError:  # table dropped
            return None
        return None if row is None else (row[0], row[1])

    def export(self, incident: str) -> dict[str, Any]:
        """One incident's records, ready for ``json.dumps``; ``KeyError`` if it never appears.

        ``verified`` is the verification of the whole chain, since each record's integrity
        rests on all those before it.
        """
        records = self.records(incident)
        if not records:
            raise KeyError(incident)
        drill = records[0].drill
        return {
            "notice": "EXERCICE / EXERCISE" if drill else None,
            "incident": incident,
            "drill": drill,
            "records": [record.as_dict() for record in records],
            "verified": self.verify().ok,
        }

    def timeline_text(self, incident: str, lang: str = "fr") -> str:
        """A readable timeline of one incident (French, or English with ``lang="en"``)."""
        words = _TEXT[_check_lang(lang)]
        records = self.records(incident)
        if not records:
            raise KeyError(incident)
        result = self.verify()
        lines: list[str] = []
        if records[0].drill:
            lines.append(words["drill"])
        lines.append(words["title"].format(incident=incident))
        lines.append(words["count"].format(n=len(records)))
        lines.append(words["chain_ok"] if result.ok else words["chain_bad"].format(reason=result.reason))
        lines.append("")
        for record in records:
            line = f"{record.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC  {kind_label(record.kind, lang)}"
            if record.actor:
                line += f" — {words['by']} {record.actor}"
            if record.details:
                line += f" — {_render_details(record.details)}"
            line += f" ({words['seq'].format(seq=record.seq)})"
            lines.append(line)
        return "\n".join(lines) + "\n"


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _check_lang(lang: str) -> str:
    if lang not in _TEXT:
        raise ValueError(f"unknown language {lang!r}; use 'fr' or 'en'")
    return lang


def _refuse_secrets(value: Any, where: str) -> None:
    if isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"{where}: bytes are never stored in the registre (no images, no raw data)")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: keys must be strings, got {key!r}")
            squashed = re.sub(r"[^a-z0-9]", "", key.lower())
            if any(part in squashed for part in SECRET_KEY_PARTS):
                raise ValueError(f"{where}.{key}: looks like a secret; the registre never stores secrets")
            _refuse_secrets(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_secrets(item, f"{where}[{index}]")


def _render_details(details: Mapping[str, Any], limit: int = 200) -> str:
    parts = []
    for key, value in details.items():
        text = (
            value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        )
        parts.append(f"{key}={_shorten(text, 60)}")
    return _shorten(", ".join(parts), limit)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _decode(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def _record_from_row(row: tuple[Any, ...]) -> AuditRecord:
    seq, at, kind, incident, actor, details, drill, prev_hash, digest = row
    try:
        return AuditRecord(
            seq=seq,
            at=datetime.fromisoformat(_decode(at) or ""),
            kind=_decode(kind) or "",
            incident=_decode(incident),
            actor=_decode(actor),
            details=json.loads(_decode(details) or ""),
            drill=bool(drill),
            prev_hash=_decode(prev_hash) or "",
            hash=_decode(digest) or "",
        )
    except ValueError as exc:
        raise ValueError(
            f"enregistrement {seq} illisible / record {seq} unreadable ({exc}); run `audit verify`"
        ) from exc


def _verify_rows(rows: Iterable[tuple[Any, ...]], total: int, head: tuple[Any, Any] | None) -> VerifyResult:
    def broken(seq: int | None, fr: str, en: str) -> VerifyResult:
        if seq is not None:
            fr, en = f"enregistrement {seq} : {fr}", f"record {seq}: {en}"
        return VerifyResult(False, total, seq, f"{fr} / {en}")

    prev = GENESIS
    position = 0
    for row in rows:
        position += 1
        seq, drill = row[0], row[6]
        if seq != position:
            if seq > position:
                return broken(
                    position,
                    f"manquant (supprimé ; n° {seq} trouvé à sa place)",
                    f"missing (removed; #{seq} found in its place)",
                )
            return broken(
                position,
                f"numéro inattendu {seq} (inséré ou renuméroté)",
                f"unexpected number {seq} (inserted or renumbered)",
            )
        try:
            at, kind, incident, actor, details_text, prev_hash, digest = (
                None if raw is None else raw.decode("utf-8") for raw in row[1:6] + row[7:9]
            )
            if at is None or kind is None or details_text is None or prev_hash is None or digest is None:
                raise ValueError("a required field is NULL")
            if type(drill) is not int or drill not in (0, 1):
                raise ValueError(f"drill is {drill!r}")
            # Text that parses to the same values but is spelled differently was still edited.
            if _iso(datetime.fromisoformat(at)) != at:
                raise ValueError("time not in canonical form")
            details = json.loads(details_text)
            if not isinstance(details, dict) or _dumps(details) != details_text:
                raise ValueError("details not in canonical form")
        except ValueError:  # also UnicodeDecodeError, JSONDecodeError
            return broken(
                position,
                "contenu illisible ou non canonique (modifié)",
                "unreadable or non-canonical content (altered)",
            )
        if prev_hash != prev:
            return broken(
                position,
                "lien de chaîne rompu (enregistrement précédent supprimé, inséré ou déplacé)",
                "chain link broken (a previous record was removed, inserted or moved)",
            )
        if chain_hash(prev, canonical(seq, at, kind, incident, actor, details, bool(drill))) != digest:
            return broken(position, "empreinte invalide (modifié)", "hash mismatch (altered)")
        prev = digest
    count = position

    if head is None:
        return broken(None, "en-tête du registre absent (supprimé)", "log head missing (removed)")
    head_count, head_hash = head
    if head_count > count:
        return broken(
            count + 1,
            f"manquant (registre tronqué : l'en-tête annonce {head_count} enregistrements, {count} trouvés)",
            f"missing (log truncated: the head says {head_count} records, {count} found)",
        )
    if head_count < count:
        return broken(
            head_count + 1,
            f"ajouté hors registre (l'en-tête s'arrête à {head_count})",
            f"added outside the log (the head stops at {head_count})",
        )
    if head_hash != prev:
        return broken(
            count,
            "ne correspond pas à l'en-tête du registre (remplacé)",
            "does not match the log head (replaced)",
        )
    return VerifyResult(
        True, count, None, f"chaîne intacte, {count} enregistrements / chain intact, {count} records"
    )
