"""Incident state that must survive a restart, in SQLite (``state.sqlite3`` beside the registre).

The registre is the append-only record of what happened; this store is the mutable present:
open and closed incidents, the references of messages posted in each room (so a restarted bot
can still edit or delete them), viewer sessions (hashed ids), seen webhook ids (replay
protection), counters and failed sign-ins. Small synchronous writes: sub-millisecond in WAL mode. Its tables are
versioned migrations in ``bot/migrations.py`` (``STATE``).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import migrations
from .outbox_store import BUSY_MS, rollback
from .policy import catastrophe as cm
from .policy import incident as sm
from .policy.catastrophe import Catastrophe
from .policy.incident import Incident

logger = logging.getLogger(__name__)

_IN_CHUNK = 500  # "?" marks per query, well under SQLite's oldest limit (999)
_NUMBERED = re.compile(r"^([A-Z]+)-(\d{8})-(\d+)$")  # INC-20261125-01 counts under INC20261125


@dataclass(frozen=True)
class StoredSession:
    id_hash: str
    person: str
    incident: str
    expires: datetime
    client: str


class Store:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # A locked file is a short, bounded wait and then an error: never seconds on the event loop.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=BUSY_MS / 1000)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            migrations.migrate(self._db, migrations.STATE, str(path))
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- incidents ---

    def save(self, inc: Incident) -> None:
        """Save an incident; its number is taken (``next_number``) only once it is saved, never burnt."""
        numbered = _NUMBERED.match(inc.id)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO incidents (id, drill, state, opened_at, data) VALUES (?,?,?,?,?) "
                    "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
                    (inc.id, int(inc.drill), inc.state.value, inc.opened_at.isoformat(), json.dumps(sm.to_dict(inc))),
                )
                if numbered:
                    self._db.execute(
                        "INSERT INTO counters (name, value) VALUES (?,?) "
                        "ON CONFLICT(name) DO UPDATE SET value=max(value, excluded.value)",
                        (numbered[1] + numbered[2], int(numbered[3])))
                self._db.execute("COMMIT")
            except BaseException:
                rollback(self._db)
                raise

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM incidents WHERE id=?", (incident_id,)).fetchone()
        return sm.from_dict(json.loads(row[0])) if row else None

    def open_incidents(self) -> list[Incident]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM incidents WHERE state IN ('pending','active') ORDER BY opened_at"
            ).fetchall()
        return [sm.from_dict(json.loads(r[0])) for r in rows]

    def recent(self, limit: int = 20) -> list[Incident]:
        with self._lock:
            rows = self._db.execute("SELECT data FROM incidents ORDER BY opened_at DESC LIMIT ?", (limit,)).fetchall()
        return [sm.from_dict(json.loads(r[0])) for r in rows]

    def next_number(self, name: str) -> int:
        """The next free number under ``name``; it is taken when the incident is saved (a failed attempt
        burns nothing). Callers hold the desk's lock, so two incidents never get the same one."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()
        return int(row[0] if row else 0) + 1

    # --- catastrophe declarations ---

    def save_catastrophe(self, cat: Catastrophe) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO catastrophes (id, incident, state, data) VALUES (?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data",
                (cat.id, cat.incident, cat.state.value, json.dumps(cm.to_dict(cat))))

    def catastrophes(self, incident: str | None = None, open_only: bool = False) -> list[Catastrophe]:
        """Declarations, oldest first: of one access, or every one still open (restored at start)."""
        sql, args = "SELECT data FROM catastrophes WHERE 1=1", []
        if incident is not None:
            sql, args = sql + " AND incident=?", [incident]
        if open_only:
            sql += " AND state IN ('pending','declared')"
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY rowid", args).fetchall()
        return [cm.from_dict(json.loads(r[0])) for r in rows]

    # --- message references per room ---

    def set_ref(self, incident: str, room: str, key: str, ref: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO refs (incident, room, key, ref, live) VALUES (?,?,?,?,1) "
                "ON CONFLICT(incident, room, key) DO UPDATE SET ref=excluded.ref, live=1",
                (incident, room, key, ref),
            )

    def get_ref(self, incident: str, room: str, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT ref FROM refs WHERE incident=? AND room=? AND key=? AND live=1", (incident, room, key)
            ).fetchone()
        return row[0] if row else None

    def live_refs(self, incident: str, room: str) -> dict[str, str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, ref FROM refs WHERE incident=? AND room=? AND live=1", (incident, room)
            ).fetchall()
        return {k: r for k, r in rows}

    def drop_ref(self, incident: str, room: str, key: str) -> None:
        with self._lock:
            self._db.execute("UPDATE refs SET live=0 WHERE incident=? AND room=? AND key=?", (incident, room, key))

    # --- viewer sessions (only a hash of the cookie value is kept) ---

    def save_session(self, s: StoredSession) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO sessions (id_hash, person, incident, expires, client) VALUES (?,?,?,?,?)",
                (s.id_hash, s.person, s.incident, s.expires.isoformat(), s.client),
            )

    def get_sessions(self, id_hashes: Iterable[str]) -> dict[str, StoredSession]:
        """The stored sessions among ``id_hashes``, by hash: one read for many (the open streams'
        check runs twice a second over all of them)."""
        wanted, found = list(dict.fromkeys(id_hashes)), dict[str, StoredSession]()
        for i in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[i:i + _IN_CHUNK]
            marks = ",".join("?" * len(chunk))
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id_hash, person, incident, expires, client FROM sessions WHERE id_hash IN ({marks})",  # noqa: S608 - only "?" marks
                    chunk,
                ).fetchall()
            found.update((r[0], StoredSession(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4])) for r in rows)
        return found

    def sessions_of(self, incident: str) -> list[StoredSession]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id_hash, person, incident, expires, client FROM sessions WHERE incident=?", (incident,)
            ).fetchall()
        return [StoredSession(r[0], r[1], r[2], datetime.fromisoformat(r[3]), r[4]) for r in rows]

    def delete_sessions(self, incident: str) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM sessions WHERE incident=?", (incident,)).rowcount

    # --- webhook replay protection ---

    def first_sighting(self, source: str, webhook_id: str, now: datetime, keep_after: datetime) -> bool:
        """Record ``webhook_id``; False if it was already seen (a replay). Prunes ids older than ``keep_after``."""
        with self._lock:
            self._db.execute("DELETE FROM webhook_ids WHERE seen_at < ?", (keep_after.isoformat(),))
            cur = self._db.execute(
                "INSERT OR IGNORE INTO webhook_ids (source, id, seen_at) VALUES (?,?,?)",
                (source, webhook_id, now.isoformat()),
            )
            return cur.rowcount == 1

    def forget(self, source: str, webhook_id: str) -> None:
        """Un-see an id whose alarm could not be handled, so the sender's retry is accepted."""
        with self._lock:
            self._db.execute("DELETE FROM webhook_ids WHERE source=? AND id=?", (source, webhook_id))

    # --- failed sign-ins (bot/lockout.py): written through, so a restart lifts no lock ---

    def open_lockouts(self) -> list[tuple[str, list[datetime], datetime | None]]:
        """Every row: (key, failure times, locked until); the table is migration v2."""
        with self._lock:
            rows = self._db.execute("SELECT key, failures, locked_until FROM lockouts").fetchall()
        return [
            (key, [datetime.fromisoformat(t) for t in json.loads(times)],
             datetime.fromisoformat(until) if until else None)
            for key, times, until in rows
        ]

    def save_lockout(self, key: str, failures: list[datetime], locked_until: datetime | None) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO lockouts (key, failures, locked_until) VALUES (?,?,?) ON CONFLICT(key) DO UPDATE "
                "SET failures=excluded.failures, locked_until=excluded.locked_until",
                (key, json.dumps([t.isoformat() for t in failures]), locked_until.isoformat() if locked_until else None),
            )

    def delete_lockouts(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM lockouts WHERE key=?", [(k,) for k in keys])
