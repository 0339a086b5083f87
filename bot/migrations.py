"""Numbered, described schema migrations for Vigie's two SQLite files.

Each file records the version of its schema in ``PRAGMA user_version`` (0 in a new file).
Opening a file runs the migrations it lacks, in order, in one ``BEGIN IMMEDIATE``
transaction that also sets ``user_version``: a crash or a failing step leaves the file as
it was, never half-upgraded. A file newer than this code is refused (``SchemaTooNew``)
rather than written by a program that does not know its tables.

Version 1 is the schema that files created before versioning already have. Its SQL keeps
``IF NOT EXISTS``, so such a file (``user_version`` 0, tables present) is adopted as it
stands: nothing is rebuilt, nothing is lost.

Adding a version means appending one entry to the file's tuple, never editing a shipped
one (files in the field already ran it)::

    STATE = (
        Migration(1, "incidents, message refs, viewer sessions, webhook ids, counters", _STATE_V1),
        Migration(2, "failed sign-ins and locks per (person, client) and per person", _STATE_V2),
        Migration(3, "each room's pending operations by lane, and the closing jobs of ended incidents", _STATE_V3),
        Migration(4, "last heartbeat of each alarm panel",
                  "CREATE TABLE panels (name TEXT PRIMARY KEY, seen_at TEXT NOT NULL);"),
    )

Versions 2 and 3 also keep ``IF NOT EXISTS``: the login limiter and the delivery journal used
to create their tables themselves when they started, so a file from that time may already hold
them, with their locks and pending operations.

``apply`` is SQL (several statements, triggers included) or a function of the connection,
for a step SQL alone cannot express (reshaping JSON, say); it runs inside the transaction
and must not commit.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)


class SchemaTooNew(RuntimeError):
    """The file was written by a newer Vigie: refuse it rather than risk corrupting it."""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: str | Callable[[sqlite3.Connection], None]


# --- state.sqlite3 (bot/store.py) ---

_STATE_V1 = """
CREATE TABLE IF NOT EXISTS incidents (id TEXT PRIMARY KEY, drill INTEGER NOT NULL, state TEXT NOT NULL,
    opened_at TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refs (incident TEXT NOT NULL, room TEXT NOT NULL, key TEXT NOT NULL, ref TEXT NOT NULL,
    live INTEGER NOT NULL DEFAULT 1, PRIMARY KEY (incident, room, key));
CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, person TEXT NOT NULL, incident TEXT NOT NULL,
    expires TEXT NOT NULL, client TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_ids (source TEXT NOT NULL, id TEXT NOT NULL, seen_at TEXT NOT NULL,
    PRIMARY KEY (source, id));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# Failed sign-ins and locks (bot/lockout.py), written through so a restart lifts no lock.
# IF NOT EXISTS: a file from before versioning may already hold this table, created at start.
_STATE_V2 = """
CREATE TABLE IF NOT EXISTS lockouts (key TEXT PRIMARY KEY, failures TEXT NOT NULL, locked_until TEXT);
"""

# Each room's pending operations by lane, and the closing jobs of ended incidents (bot/outbox_store.py).
# IF NOT EXISTS: files from before this version may already hold both, created by the journal itself.
_STATE_V3 = """
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, lane INTEGER NOT NULL,
    incident TEXT, kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, closing INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outbox_room ON outbox (room, lane, id);
CREATE TABLE IF NOT EXISTS closing (incident TEXT PRIMARY KEY, data TEXT NOT NULL, revoked INTEGER NOT NULL);
"""

# Officers' passkeys (bot/passkey_store.py) and the one-time links that enrol them (only their sha256).
_STATE_V4 = """
CREATE TABLE passkeys (id TEXT PRIMARY KEY, person TEXT NOT NULL, public_key BLOB NOT NULL,
    sign_count INTEGER NOT NULL, label TEXT NOT NULL, created_at TEXT NOT NULL, last_used_at TEXT,
    revoked_at TEXT, revoked_why TEXT);
CREATE INDEX passkeys_person ON passkeys (person);
CREATE TABLE enrolments (token_hash TEXT PRIMARY KEY, person TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, used_at TEXT);
"""

# Catastrophe declarations (bot/policy/catastrophe.py), so a restart keeps them and their timers.
_STATE_V5 = """
CREATE TABLE catastrophes (id TEXT PRIMARY KEY, incident TEXT NOT NULL, state TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX catastrophes_incident ON catastrophes (incident);
"""

STATE: tuple[Migration, ...] = (
    Migration(1, "incidents, message refs, viewer sessions, webhook ids, counters", _STATE_V1),
    Migration(2, "failed sign-ins and locks per (person, client) and per person", _STATE_V2),
    Migration(3, "each room's pending operations by lane, and the closing jobs of ended incidents", _STATE_V3),
    Migration(4, "officers' passkeys and their one-time enrolment links", _STATE_V4),
    Migration(5, "catastrophe declarations: state, confirmation, end, cameras moved", _STATE_V5),
)


# --- registre.sqlite3 (bot/audit.py) ---

_REGISTRE_V1_TABLES = """
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
"""

# The protective triggers, by name. Besides v1, Registre re-creates any that someone dropped
# each time it opens the file for writing, so this is their *current* definition: a migration
# that changes one must drop and re-create it, and update this mapping.
REGISTRE_TRIGGERS: dict[str, str] = {
    "registre_no_update": """
CREATE TRIGGER IF NOT EXISTS registre_no_update BEFORE UPDATE ON registre
BEGIN SELECT RAISE(ABORT, 'registre is append-only: UPDATE refused'); END;""",
    "registre_no_delete": """
CREATE TRIGGER IF NOT EXISTS registre_no_delete BEFORE DELETE ON registre
BEGIN SELECT RAISE(ABORT, 'registre is append-only: DELETE refused'); END;""",
    "registre_insert_extends": """
CREATE TRIGGER IF NOT EXISTS registre_insert_extends BEFORE INSERT ON registre
WHEN NEW.seq IS NOT (SELECT count FROM registre_head WHERE id = 1) + 1
  OR NEW.prev_hash IS NOT (SELECT last_hash FROM registre_head WHERE id = 1)
BEGIN SELECT RAISE(ABORT, 'registre is append-only: INSERT must extend the chain'); END;""",
    "registre_head_advances": """
CREATE TRIGGER IF NOT EXISTS registre_head_advances BEFORE UPDATE ON registre_head
WHEN NEW.id IS NOT OLD.id
  OR NEW.count IS NOT OLD.count + 1
  OR NEW.last_hash IS NOT (SELECT hash FROM registre WHERE seq = NEW.count)
BEGIN SELECT RAISE(ABORT, 'registre_head only advances with the registre'); END;""",
    "registre_head_no_delete": """
CREATE TRIGGER IF NOT EXISTS registre_head_no_delete BEFORE DELETE ON registre_head
BEGIN SELECT RAISE(ABORT, 'registre_head cannot be deleted'); END;""",
}

REGISTRE: tuple[Migration, ...] = (
    Migration(
        1,
        "hash-chained records, one-row head, append-only triggers",
        _REGISTRE_V1_TABLES + "".join(REGISTRE_TRIGGERS.values()),
    ),
    # Records written from v2 on carry the venue's code, and their hash covers it (bot/audit_chain.py);
    # older records keep NULL and the hash they were written with.
    Migration(2, "the venue's code on every record", "ALTER TABLE registre ADD COLUMN venue TEXT;"),
)


def user_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def check_not_newer(conn: sqlite3.Connection, migrations: Sequence[Migration], what: str) -> int:
    """The file's schema version; ``SchemaTooNew`` if this code does not know it."""
    version = user_version(conn)
    if version > len(migrations):
        raise SchemaTooNew(
            f"{what}: schema version {version}, newer than this Vigie knows ({len(migrations)}); "
            "run the Vigie that wrote it, or restore a copy made before its upgrade"
        )
    return version


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration], what: str) -> int:
    """Apply the migrations ``conn``'s file lacks; returns the version it had.

    ``conn`` must be in autocommit mode (``isolation_level=None``) and outside a transaction.
    """
    _check_numbering(migrations)
    before = check_not_newer(conn, migrations, what)
    if before == len(migrations):
        return before
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have upgraded the file meanwhile.
        before = check_not_newer(conn, migrations, what)
        for step in migrations[before:]:
            if isinstance(step.apply, str):
                for statement in statements(step.apply):
                    conn.execute(statement)
            else:
                step.apply(conn)
            # A PRAGMA takes no parameters; version is an int from our own table.
            conn.execute(f"PRAGMA user_version = {int(step.version)}")
            logger.info("%s: schema v%d, %s", what, step.version, step.description)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before


def statements(script: str) -> Iterator[str]:
    """Split an SQL script into statements, keeping a trigger's ``BEGIN … END;`` whole.

    ``executescript`` would do it, but it commits first, breaking the one transaction.
    """
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if _code(pending):
                yield pending.strip()
            pending = ""
    if _code(pending):
        raise ValueError(f"incomplete SQL statement: {pending.strip()!r}")


def _code(sql: str) -> bool:
    """Whether ``sql`` holds more than blank lines and ``--`` comments."""
    return any(line.strip() and not line.strip().startswith("--") for line in sql.splitlines())


def _check_numbering(migrations: Sequence[Migration]) -> None:
    numbers = [step.version for step in migrations]
    if numbers != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3… in order, got {numbers}")
