"""The durable side of delivery, in ``state.sqlite3``: each room's pending operations and the closing jobs.

A row is written when an operation is queued and deleted when it is delivered or cancelled, so a
restart resumes exactly what was still owed to each room. Only text goes to disk: tiles (JPEG)
and messages that carry a link (a bearer credential) stay in memory, and the desk re-derives
them at start from the state (a room without a link message gets one posted).

A ``closing`` row holds an ended incident until its end record, closure report and message
removals are all owed to the outbox: the desk resumes every such row at start.

Both tables are state migration v3 (``bot/migrations.py``); the journal runs the state migrations on
its own connection too, so it works on a file (or ``:memory:``) the store has not opened. Every wait
for a lock is short and bounded (``BUSY_MS``): a locked file is an error to retry, never a frozen
event loop.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import migrations

logger = logging.getLogger(__name__)

BUSY_MS = 200

@dataclass(frozen=True)
class Row:
    """One pending operation for one room, as stored."""

    room: str
    lane: int
    incident: str | None
    kind: str
    key: str
    body: dict[str, Any]
    closing: bool = False
    id: int | None = None


@dataclass(frozen=True)
class ClosingJob:
    incident: str
    data: dict[str, Any]  # the ended incident (policy.incident.to_dict)
    revoked: int


class StateFile:
    """A connection of its own to ``state.sqlite3`` (migrated), with short bounded waits and ``_tx``."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            migrations.migrate(self._db, migrations.STATE, self.path)
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                rollback(self._db)
                raise


class Journal(StateFile):
    """Pending room operations and closing jobs; every method may raise ``sqlite3.Error``."""

    @classmethod
    def memory(cls) -> Journal:
        return cls(":memory:")

    # --- outbox ---

    def add(self, rows: Iterable[Row], *, finish_closing: str | None = None) -> list[int]:
        """Store ``rows`` (and end the closing job of ``finish_closing``) in one transaction; their ids."""
        ids: list[int] = []
        rows = list(rows)
        if not rows and finish_closing is None:
            return ids  # a tile or a link: nothing for the disk, no write transaction
        with self._tx() as db:
            for r in rows:
                cur = db.execute(
                    "INSERT INTO outbox (room, lane, incident, kind, key, body, closing) VALUES (?,?,?,?,?,?,?)",
                    (r.room, r.lane, r.incident, r.kind, r.key, json.dumps(r.body), int(r.closing)))
                ids.append(int(cur.lastrowid or 0))
            if finish_closing is not None:
                db.execute("DELETE FROM closing WHERE incident=?", (finish_closing,))
        return ids

    def update_body(self, row_id: int, kind: str, body: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET kind=?, body=? WHERE id=?", (kind, json.dumps(body), row_id))

    def delete(self, row_ids: Iterable[int]) -> None:
        ids = [(i,) for i in row_ids]
        if ids:
            with self._tx() as db:
                db.executemany("DELETE FROM outbox WHERE id=?", ids)

    def pending(self, room: str) -> list[Row]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, room, lane, incident, kind, key, body, closing FROM outbox WHERE room=? ORDER BY lane, id",
                (room,)).fetchall()
        return [Row(r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), bool(r[7]), r[0]) for r in rows]

    # --- closing jobs ---

    def open_closing(self, incident: str, data: dict[str, Any], revoked: int) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO closing (incident, data, revoked) VALUES (?,?,?)",
                       (incident, json.dumps(data), revoked))

    def closing_jobs(self) -> list[ClosingJob]:
        with self._lock:
            rows = self._db.execute("SELECT incident, data, revoked FROM closing ORDER BY rowid").fetchall()
        return [ClosingJob(r[0], json.loads(r[1]), r[2]) for r in rows]


def rollback(db: sqlite3.Connection) -> None:
    """ROLLBACK that never hides the error being handled (a full disk can make it fail too)."""
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        logger.warning("rollback failed too: %s", exc)


def describe(exc: BaseException, path: str | Path | None = None) -> str:
    """One line naming the file and the cause, for the logs and the rooms."""
    where = f"{path} : " if path else ""
    return f"{where}{type(exc).__name__}: {exc}"[:300]
