"""Schema versions of state.sqlite3 and the registre: adopting pre-versioning files, refusing newer ones."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import migrations
from bot.audit import GENESIS, Registre, canonical, chain_hash
from bot.audit_cli import verify_command
from bot.migrations import Migration, SchemaTooNew, migrate, statements, user_version
from bot.outbox_store import Journal, Row
from bot.store import Store

T0 = "2026-11-25T18:04:12.000000+00:00"

# Frozen copies of the SQL the code ran on every open before schema versions existed: files in
# the field were made by exactly this, with user_version left at 0.
PREVIOUS_STATE_SCHEMA = """
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

# What the login limiter ran when it started, before its table became migration v2.
PREVIOUS_LOCKOUT_SCHEMA = """
CREATE TABLE IF NOT EXISTS lockouts (key TEXT PRIMARY KEY, failures TEXT NOT NULL, locked_until TEXT);
"""

PREVIOUS_REGISTRE_SCHEMA = """
CREATE TABLE IF NOT EXISTS registre (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, incident TEXT, actor TEXT,
    details TEXT NOT NULL, drill INTEGER NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS registre_incident ON registre (incident);
CREATE TABLE IF NOT EXISTS registre_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), count INTEGER NOT NULL, last_hash TEXT NOT NULL);
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


# What state migration v3 adds: the outboxes' journal and the closing jobs.
DELIVERY_TABLES = [("table", "outbox"), ("index", "outbox_room"), ("table", "closing"),
                   ("index", "sqlite_autoindex_closing_1"), ("table", "sqlite_sequence")]
# What state migration v4 adds: officers' passkeys and their enrolment links.
PASSKEY_TABLES = [("table", "passkeys"), ("index", "passkeys_person"), ("index", "sqlite_autoindex_passkeys_1"),
                  ("table", "enrolments"), ("index", "sqlite_autoindex_enrolments_1")]
# What state migration v5 adds: catastrophe declarations.
CATASTROPHE_TABLES = [("table", "catastrophes"), ("index", "catastrophes_incident"),
                      ("index", "sqlite_autoindex_catastrophes_1")]

# What the delivery journal ran on its own connection, before its tables became migration v3.
PREVIOUS_JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, lane INTEGER NOT NULL,
    incident TEXT, kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, closing INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS outbox_room ON outbox (room, lane, id);
CREATE TABLE IF NOT EXISTS closing (incident TEXT PRIMARY KEY, data TEXT NOT NULL, revoked INTEGER NOT NULL);
"""


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return user_version(conn)


def _schema(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name FROM sqlite_master ORDER BY type, name").fetchall()


def _previous_state(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(PREVIOUS_STATE_SCHEMA)
    conn.execute("INSERT INTO refs VALUES ('INC-1', 'telegram', 'link', '42', 1)")
    conn.execute("INSERT INTO counters VALUES ('incident-2026', 7)")
    conn.execute("INSERT INTO webhook_ids VALUES ('cms', 'msg_1', ?)", (T0,))
    conn.close()


def _previous_registre(path: Path) -> list[str]:
    """A registre written by the previous code: two chained records; returns their hashes."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(PREVIOUS_REGISTRE_SCHEMA)
    prev, hashes = GENESIS, []
    for seq, kind in ((1, "trigger"), (2, "decision")):
        digest = chain_hash(prev, canonical(seq, T0, kind, "INC-1", "chef", {}, False))
        conn.execute(
            "INSERT INTO registre VALUES (?, ?, ?, 'INC-1', 'chef', '{}', 0, ?, ?)", (seq, T0, kind, prev, digest)
        )
        conn.execute("UPDATE registre_head SET count = ?, last_hash = ? WHERE id = 1", (seq, digest))
        prev = digest
        hashes.append(digest)
    conn.close()
    return hashes


def test_new_files_are_at_the_latest_version(tmp_path: Path) -> None:
    Store(tmp_path / "state.sqlite3").close()
    Registre(tmp_path / "registre.sqlite3").close()
    assert _version(tmp_path / "state.sqlite3") == len(migrations.STATE)
    assert _version(tmp_path / "registre.sqlite3") == len(migrations.REGISTRE)


def test_state_file_from_the_previous_schema_is_upgraded_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    _previous_state(path)
    before = _schema(path)
    assert _version(path) == 0
    store = Store(path)
    assert store.get_ref("INC-1", "telegram", "link") == "42"
    assert store.next_number("incident-2026") == 8
    assert not store.first_sighting("cms", "msg_1", datetime.now(UTC), datetime(2000, 1, 1, tzinfo=UTC))
    store.close()
    assert _version(path) == len(migrations.STATE)
    assert _schema(path) == sorted([*before, ("table", "lockouts"), ("index", "sqlite_autoindex_lockouts_1"),
                                    *DELIVERY_TABLES, *PASSKEY_TABLES, *CATASTROPHE_TABLES])


def _v1_state(path: Path) -> None:
    """A state file as the first versioned Vigie left it: schema v1, some data."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, migrations.STATE[:1], "state") == 0
    conn.execute("INSERT INTO counters VALUES ('incident-2026', 3)")
    conn.close()


def test_a_v1_state_file_is_upgraded_to_v2_with_the_sign_in_locks(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    _v1_state(path)
    assert _version(path) == 1 and ("table", "lockouts") not in _schema(path)
    store = Store(path)
    assert _version(path) == len(migrations.STATE) and store.next_number("incident-2026") == 4
    until = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)
    store.save_lockout("pair:cic-moreau|203.0.113.7", [datetime(2026, 11, 25, 18, 10, tzinfo=UTC)], until)
    store.close()
    again = Store(path)  # already at the latest version: nothing re-run, the lock is still there
    assert again.open_lockouts() == [
        ("pair:cic-moreau|203.0.113.7", [datetime(2026, 11, 25, 18, 10, tzinfo=UTC)], until)
    ]
    again.close()
    assert migrations.STATE[1].description.strip()


def test_a_pre_versioning_file_that_already_has_the_locks_table_keeps_its_locks(tmp_path: Path) -> None:
    """The login limiter used to create its table itself when it started: such a file is adopted."""
    path = tmp_path / "state.sqlite3"
    _previous_state(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(PREVIOUS_LOCKOUT_SCHEMA)
    conn.execute("INSERT INTO lockouts VALUES ('person:cic-moreau', ?, NULL)", (f'["{T0}"]',))
    conn.close()
    store = Store(path)
    assert store.open_lockouts() == [("person:cic-moreau", [datetime.fromisoformat(T0)], None)]
    store.close()
    assert _version(path) == len(migrations.STATE)


def test_registre_from_the_previous_schema_is_upgraded_without_loss(tmp_path: Path) -> None:
    path = tmp_path / "registre.sqlite3"
    hashes = _previous_registre(path)
    before = _schema(path)
    with Registre(path, readonly=True) as examined:  # examining never upgrades
        assert examined.verify().ok
    assert _version(path) == 0
    with Registre(path) as reg:
        assert [r.hash for r in reg.records()] == hashes
        assert reg.append("end", incident="INC-1", actor="chef").prev_hash == hashes[-1]
        assert reg.verify().ok and reg.verify().count == 3
    assert _version(path) == len(migrations.REGISTRE) and _schema(path) == before


def test_registre_upgraded_to_venues_keeps_old_hashes_and_chains_the_venue(tmp_path: Path) -> None:
    path = tmp_path / "registre.sqlite3"
    hashes = _previous_registre(path)
    with Registre(path, venue="zenith") as reg:
        new = reg.append("end", incident="INC-1", actor="chef")
        records = reg.records()
        assert [r.venue for r in records] == [None, None, "zenith"] and records[2] == new
        assert [r.hash for r in records[:2]] == hashes
        assert new.hash == chain_hash(hashes[-1], canonical(3, new.as_dict()["at"], "end", "INC-1", "chef", {},
                                                            False, "zenith"))
        assert "Site : zenith" in reg.timeline_text("INC-1")
    assert verify_command(path, io.StringIO()) == 0
    conn = sqlite3.connect(path, isolation_level=None)  # someone moves the record to another venue
    conn.execute("DROP TRIGGER registre_no_update")
    conn.execute("UPDATE registre SET venue = 'stade' WHERE seq = 3")
    conn.close()
    with Registre(path, readonly=True) as examined:
        assert examined.verify().first_broken == 3


@pytest.mark.parametrize("name", ["state.sqlite3", "registre.sqlite3"])
def test_a_file_newer_than_the_code_is_refused_untouched(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    (Store if name == "state.sqlite3" else Registre)(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    before = _schema(path)
    with pytest.raises(SchemaTooNew, match="schema version 99, newer than this Vigie knows"):
        Store(path) if name == "state.sqlite3" else Registre(path)
    assert _version(path) == 99 and _schema(path) == before


def test_audit_verify_names_a_newer_registre(tmp_path: Path) -> None:
    path = tmp_path / "registre.sqlite3"
    Registre(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(migrations.REGISTRE) + 1}")
    out = io.StringIO()
    assert verify_command(path, out) == 2 and "newer than this Vigie knows" in out.getvalue()


def test_appending_a_version_upgrades_existing_files_once(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    Store(path).close()
    calls: list[int] = []

    def backfill(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("INSERT INTO panels VALUES ('centrale', ?)", (T0,))

    n = len(migrations.STATE)
    longer = (
        *migrations.STATE,
        Migration(n + 1, "last heartbeat of each alarm panel",
                  "CREATE TABLE panels (name TEXT PRIMARY KEY, seen_at TEXT);"),
        Migration(n + 2, "a first panel", backfill),
    )
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, longer, "state") == n
    assert migrate(conn, longer, "state") == n + 2 and calls == [1]
    assert conn.execute("SELECT name FROM panels").fetchall() == [("centrale",)]
    conn.close()
    assert _version(path) == n + 2


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    Store(path).close()
    before = _schema(path)
    n = len(migrations.STATE)
    broken = (
        *migrations.STATE,
        Migration(n + 1, "a table", "CREATE TABLE panels (name TEXT);"),
        Migration(n + 2, "a typo", "CREATE TABLEE oops (x);"),
    )
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken, "state")
    conn.close()
    assert _version(path) == n and _schema(path) == before


def test_migrations_are_numbered_from_one_without_gaps(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    with pytest.raises(ValueError, match="numbered"):
        migrate(conn, (Migration(1, "a", "SELECT 1;"), Migration(3, "c", "SELECT 1;")), "x")
    conn.close()
    for steps in (migrations.STATE, migrations.REGISTRE):
        assert [m.version for m in steps] == list(range(1, len(steps) + 1))
        assert all(m.description.strip() for m in steps)


def test_statements_keep_triggers_whole() -> None:
    parts = list(statements(migrations.REGISTRE[0].apply))  # type: ignore[arg-type]
    assert len(parts) == 4 + len(migrations.REGISTRE_TRIGGERS)
    assert sum(p.startswith("CREATE TRIGGER") for p in parts) == 5
    assert all(sqlite3.complete_statement(p) for p in parts)
    with pytest.raises(ValueError, match="incomplete"):
        list(statements("CREATE TABLE t (x);\nCREATE TABLE u (y)"))


def test_a_v2_state_file_is_upgraded_to_v3_with_the_delivery_journal(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, migrations.STATE[:2], "state") == 0
    conn.execute("INSERT INTO counters VALUES ('incident-2026', 5)")
    conn.execute("INSERT INTO refs VALUES ('INC-1', 'telegram', 'link', '42', 1)")
    conn.execute("INSERT INTO lockouts VALUES ('person:cic-moreau', ?, NULL)", (f'["{T0}"]',))
    conn.close()
    assert _version(path) == 2 and ("table", "outbox") not in _schema(path)
    store = Store(path)
    assert _version(path) == len(migrations.STATE) and set(DELIVERY_TABLES) <= set(_schema(path))
    assert store.next_number("incident-2026") == 6 and store.get_ref("INC-1", "telegram", "link") == "42"
    assert store.open_lockouts() == [("person:cic-moreau", [datetime.fromisoformat(T0)], None)]
    store.close()
    journal = Journal(path)
    journal.add([Row("telegram", 1, "INC-1", "post", "report", {"keys": []})])
    journal.open_closing("INC-1", {"id": "INC-1"}, 2)
    assert [r.key for r in journal.pending("telegram")] == ["report"] and journal.closing_jobs()[0].revoked == 2
    journal.close()
    assert migrations.STATE[2].description.strip() and "\n" not in migrations.STATE[2].description


def test_a_file_whose_journal_made_its_own_tables_keeps_what_was_owed(tmp_path: Path) -> None:
    """Before v3 the delivery journal created its tables when it opened: such a file is adopted as is."""
    path = tmp_path / "state.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, migrations.STATE[:2], "state") == 0
    conn.executescript(PREVIOUS_JOURNAL_SCHEMA)
    conn.execute("INSERT INTO outbox (room, lane, incident, kind, key, body) VALUES ('console', 1, 'INC-1', 'post', "
                 "'report', '{\"keys\": []}')")
    conn.execute("INSERT INTO closing VALUES ('INC-1', '{}', 3)")
    conn.close()
    journal = Journal(path)  # the journal alone may open the file first: it runs the migrations too
    assert _version(path) == len(migrations.STATE)
    assert [r.key for r in journal.pending("console")] == ["report"]
    assert [(j.incident, j.revoked) for j in journal.closing_jobs()] == [("INC-1", 3)]
    journal.close()


def test_a_v3_state_file_gains_the_passkey_tables_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, migrations.STATE[:3], "state") == 0
    conn.execute("INSERT INTO counters VALUES ('incident-2026', 5)")
    conn.close()
    store = Store(path)
    assert _version(path) == len(migrations.STATE) and set(PASSKEY_TABLES) <= set(_schema(path))
    assert store.next_number("incident-2026") == 6
    store.close()


def test_a_v4_state_file_gains_the_catastrophe_table_and_keeps_its_passkeys(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, migrations.STATE[:4], "state") == 0
    conn.execute("INSERT INTO passkeys VALUES ('cred-1', 'cic-moreau', x'00', 3, 'phone', ?, NULL, NULL, NULL)", (T0,))
    conn.close()
    assert _version(path) == 4 and ("table", "catastrophes") not in _schema(path)
    Store(path).close()
    assert _version(path) == len(migrations.STATE) == 5 and set(CATASTROPHE_TABLES) <= set(_schema(path))
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT person, sign_count FROM passkeys").fetchall() == [("cic-moreau", 3)]
    conn.close()
