"""The registre: Vigie's append-only, hash-chained audit log in SQLite.

Every access to the venue's images must be traceable (CSI L255-1), so each step of an
incident is one record, and each record is chained to the previous one::

    canonical = json.dumps({"seq", "at", "kind", "incident", "actor", "details", "drill"},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    hash      = sha256(prev_hash + canonical)          # hex; genesis prev_hash = 64 zeros

``at`` is the ISO-8601 UTC string with microseconds (``2026-11-25T18:04:12.000000+00:00``),
``drill`` a JSON boolean; since schema v2 a ``"venue"`` key (the venue's code) too, absent from
records written before it, which verify as they were written. Anyone can recompute the chain
from an export with those two lines.

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

The tables and triggers are numbered migrations in ``bot/migrations.py`` (``REGISTRE``).

No secrets and no images: ``append`` refuses details with a key named like a password,
token, secret, cookie or session id, and any bytes value.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from . import migrations
from .audit_chain import GENESIS, VerifyResult, canonical, chain_hash, verify_rows
from .audit_chain import dumps as _dumps
from .audit_chain import iso as _iso
from .kinds import Kind
from .locales import LANGS, Msg, bilingual, kind_label, t
from .outbox_store import BUSY_MS, rollback

__all__ = ["GENESIS", "AuditRecord", "Kind", "Registre", "VerifyResult", "canonical", "chain_hash", "kind_label"]

logger = logging.getLogger(__name__)

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

# Text columns are read as bytes so that a file edited with a hex editor (invalid UTF-8)
# is reported by verify() instead of crashing the sqlite3 module.
# A file still at schema v1 (``audit verify`` of an old copy, read-only) has no venue column.
_COLUMNS = (
    "SELECT seq, CAST(at AS BLOB), CAST(kind AS BLOB), CAST(incident AS BLOB),"
    " CAST(actor AS BLOB), CAST(details AS BLOB), drill,"
    " CAST(prev_hash AS BLOB), CAST(hash AS BLOB), {venue} FROM registre"
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
    venue: str | None = None  # the venue's code (schema v2); None in records written before it

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
            "venue": self.venue,
        }


class Registre:
    """The audit log of one venue; safe to share between the event loop and worker threads."""

    def __init__(self, path: Path, *, readonly: bool = False, venue: str | None = None) -> None:
        """Open (and in read-write mode create) the registre at ``path``.

        ``readonly=True`` is for ``audit verify``/``export``: the file must exist and is
        never written, so verifying a tampered file does not repair it (no trigger or head
        row is re-created behind the examiner's back).
        """
        self.path = path
        self.readonly = readonly
        self.venue = venue  # written on, and hashed with, every record appended from now on
        self._lock = threading.Lock()
        # Called with each record once committed (metrics); a failing hook never undoes an append.
        self.on_append: list[Callable[[AuditRecord], None]] = []
        if readonly:
            uri = f"{path.resolve().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves, one per append.
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_MS / 1000)
        try:
            # Short and bounded: the registre is written from the event loop; a lock held elsewhere
            # is an error the caller retries (the closing job does), never seconds of frozen video.
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            if readonly:
                self._conn.execute("PRAGMA query_only = ON")
            missing = self._missing_triggers()
            if missing:
                # Someone went around the bot; verify() will say whether the data survived.
                logger.warning("registre %s: protective triggers missing: %s", path, ", ".join(missing))
            if readonly:
                if missing is None:
                    raise ValueError(bilingual(Msg.AUDIT_NOT_A_REGISTRE, path=path))
                migrations.check_not_newer(self._conn, migrations.REGISTRE, str(path))
            else:
                self._conn.execute("PRAGMA journal_mode = WAL")
                # In WAL mode NORMAL may lose the last commits on a power cut, never corrupt the
                # file; the head is in the same transaction, so it stays consistent with the rows.
                self._conn.execute("PRAGMA synchronous = NORMAL")
                migrations.migrate(self._conn, migrations.REGISTRE, str(path))
                for name in missing or ():  # re-arm the protections for what is written from now on
                    self._conn.execute(migrations.REGISTRE_TRIGGERS[name])
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(registre)")}
            self._select = _COLUMNS.format(venue="CAST(venue AS BLOB)" if "venue" in columns else "NULL")
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
        return [name for name in migrations.REGISTRE_TRIGGERS if name not in names]

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
        kind: Kind,
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
        try:
            kind = Kind(kind)
        except ValueError:
            raise ValueError(f"unknown registre kind {kind!r}: add it to bot.kinds.Kind") from None
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
                    text = canonical(seq, at_iso, kind, incident, actor, stored_details, drill, self.venue)
                    digest = chain_hash(prev_hash, text)
                except UnicodeEncodeError as exc:
                    raise ValueError(f"record is not valid Unicode text: {exc}") from exc
                self._conn.execute(
                    "INSERT INTO registre (seq, at, kind, incident, actor, details, drill, prev_hash, hash, venue)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, at_iso, kind, incident, actor, details_text, int(drill), prev_hash, digest, self.venue),
                )
                self._conn.execute(
                    "UPDATE registre_head SET count = ?, last_hash = ? WHERE id = 1", (seq, digest)
                )
                self._conn.execute("COMMIT")
            except BaseException:
                rollback(self._conn)  # a failing ROLLBACK (full disk) must not hide the real error
                raise
        record = AuditRecord(
            seq=seq,
            at=datetime.fromisoformat(at_iso),
            kind=kind,
            incident=incident,
            actor=actor,
            details=stored_details,
            drill=drill,
            prev_hash=prev_hash,
            hash=digest,
            venue=self.venue,
        )
        for hook in self.on_append:
            try:
                hook(record)
            except Exception:
                logger.exception("registre append hook failed")
        return record

    def head(self) -> tuple[int, str]:
        """The record count and last hash, as the head row says (verify() checks it against the rows)."""
        with self._lock:
            head = self._head()
        return (0, GENESIS) if head is None else (int(head[0]), str(head[1]))

    def kind_counts(self) -> dict[str, int]:
        """How many records of each kind (for the metrics: one read-only scan)."""
        with self._lock:
            rows = self._conn.execute("SELECT kind, count(*) FROM registre GROUP BY kind").fetchall()
        return {str(kind): int(n) for kind, n in rows}

    def records(self, incident: str | None = None, *, drill: bool | None = None) -> list[AuditRecord]:
        """Records in append order, optionally of one incident and/or only drill or only real ones."""
        with self._lock:
            if incident is None:
                rows = self._conn.execute(self._select + " ORDER BY seq").fetchall()
            else:
                rows = self._conn.execute(
                    self._select + " WHERE incident = ? ORDER BY seq", (incident,)
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
                result = verify_rows(self._conn.execute(self._select + " ORDER BY seq"), total, head)
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
            "notice": bilingual(Msg.AUDIT_EXPORT_DRILL) if drill else None,
            "incident": incident,
            "drill": drill,
            "venue": next((r.venue for r in records if r.venue), None),
            "records": [record.as_dict() for record in records],
            "verified": self.verify().ok,
        }

    def timeline_text(self, incident: str, lang: str = "fr") -> str:
        """A readable timeline of one incident (French, or English with ``lang="en"``)."""
        _check_lang(lang)
        records = self.records(incident)
        if not records:
            raise KeyError(incident)
        result = self.verify()
        lines: list[str] = []
        if records[0].drill:
            lines.append(t(lang, Msg.AUDIT_DRILL))
        lines.append(t(lang, Msg.AUDIT_TITLE, incident=incident))
        venues = sorted({r.venue for r in records if r.venue})
        if venues:
            lines.append(t(lang, Msg.AUDIT_VENUE, venue=", ".join(venues)))
        lines.append(t(lang, Msg.AUDIT_COUNT, n=len(records)))
        lines.append(t(lang, Msg.AUDIT_CHAIN_OK) if result.ok else t(lang, Msg.AUDIT_CHAIN_BAD, reason=result.reason))
        lines.append("")
        for record in records:
            line = f"{record.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC  {kind_label(record.kind, lang)}"
            if record.actor:
                line += f" — {t(lang, Msg.AUDIT_BY)} {record.actor}"
            if record.details:
                line += f" — {_render_details(record.details)}"
            line += f" ({t(lang, Msg.AUDIT_SEQ, seq=record.seq)})"
            lines.append(line)
        return "\n".join(lines) + "\n"


def _check_lang(lang: str) -> str:
    if lang not in LANGS:
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
    seq, at, kind, incident, actor, details, drill, prev_hash, digest, venue = row
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
            venue=_decode(venue),
        )
    except ValueError as exc:
        raise ValueError(bilingual(Msg.AUDIT_UNREADABLE_RECORD, seq=seq, error=exc)) from exc


