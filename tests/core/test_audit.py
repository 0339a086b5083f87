"""The registre: chain, tamper detection, refusal of secrets, drills, export, timelines, CLI."""
# ruff: noqa: S608  (these tests play a tamperer composing raw SQL from constant column names)

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.audit import GENESIS, Registre, canonical, chain_hash
from bot.kinds import Kind
from bot.locales import CATALOGS

T0 = datetime(2026, 11, 25, 18, 4, 12, tzinfo=UTC)
FIELDS = "seq, at, kind, incident, actor, details, drill, prev_hash, hash"


def _fill(path: Path, n: int = 6) -> Registre:
    reg = Registre(path)
    for i in range(n):
        reg.append(
            "trigger" if i == 0 else "stream_opened",
            incident="INC-1",
            actor=f"agent-{i}",
            details={"camera": f"cam{i}", "i": i},
            at=T0 + timedelta(seconds=i),
        )
    return reg


def _raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 session, as a tamperer would open one, with the protections dropped."""
    conn = sqlite3.connect(path, isolation_level=None)
    for name in ("registre_no_update", "registre_no_delete", "registre_insert_extends"):
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def _verify(path: Path) -> Any:
    with Registre(path, readonly=True) as reg:
        return reg.verify()


def test_append_and_read_back(tmp_path: Path) -> None:
    with Registre(tmp_path / "r.db") as reg:
        first = reg.append(
            "trigger", incident="INC-1", actor="cic-dupont", details={"category": "attaque_armee"}, at=T0
        )
        second = reg.append(
            "decision", incident="INC-1", actor="system", details={"granted": True, "n": [1, 2]}
        )
        assert (first.seq, second.seq) == (1, 2)
        assert first.prev_hash == GENESIS and second.prev_hash == first.hash
        assert first.at == T0 and first.at.tzinfo is not None
        assert reg.records() == [first, second]
        assert reg.records("INC-1") == [first, second]
        assert reg.records("INC-2") == []
    with Registre(tmp_path / "r.db") as reopened:
        assert reopened.records() == [first, second]
        assert reopened.append("end", incident="INC-1").seq == 3


def test_hash_is_recomputable_from_the_documented_canonical_form(tmp_path: Path) -> None:
    with Registre(tmp_path / "r.db") as reg:
        rec = reg.append("trigger", incident="INC-é", actor="x", details={"b": 1, "a": "é"}, at=T0)
    text = canonical(
        1, "2026-11-25T18:04:12.000000+00:00", "trigger", "INC-é", "x", {"a": "é", "b": 1}, False
    )
    assert text == (
        '{"actor":"x","at":"2026-11-25T18:04:12.000000+00:00","details":{"a":"é","b":1},'
        '"drill":false,"incident":"INC-é","kind":"trigger","seq":1}'
    )
    assert rec.hash == chain_hash(GENESIS, text)


def test_non_utc_time_is_stored_in_utc(tmp_path: Path) -> None:
    paris = timezone(timedelta(hours=1))
    with Registre(tmp_path / "r.db") as reg:
        rec = reg.append("trigger", at=datetime(2026, 11, 25, 19, 4, 12, tzinfo=paris))
        assert rec.at == T0 and rec.at.utcoffset() == timedelta(0)
        with pytest.raises(ValueError, match="timezone-aware"):
            reg.append("trigger", at=datetime(2026, 11, 25, 19, 4, 12))


def test_wal_mode(tmp_path: Path) -> None:
    with Registre(tmp_path / "r.db") as reg:
        reg.append("trigger")
    conn = sqlite3.connect(tmp_path / "r.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_chain_verifies(tmp_path: Path) -> None:
    with _fill(tmp_path / "r.db", 10) as reg:
        result = reg.verify()
    assert result.ok and result.count == 10 and result.first_broken is None
    with Registre(tmp_path / "empty.db") as empty:
        assert empty.verify().ok and empty.verify().count == 0


def test_triggers_block_update_delete_and_forged_insert(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    conn = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE registre SET actor = 'someone else' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM registre WHERE seq = 6")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute(
            f"INSERT INTO registre ({FIELDS}) SELECT 7, at, kind, incident, actor, details, drill, "
            "prev_hash, hash FROM registre WHERE seq = 6"
        )
    with pytest.raises(sqlite3.DatabaseError, match="registre_head"):
        conn.execute("UPDATE registre_head SET count = 5")
    with pytest.raises(sqlite3.DatabaseError, match="registre_head"):
        conn.execute("DELETE FROM registre_head")
    conn.close()
    assert _verify(tmp_path / "r.db").ok


def test_altered_record_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        conn.execute("UPDATE registre SET actor = 'quelqu-un' WHERE seq = 3")
    result = _verify(tmp_path / "r.db")
    assert not result.ok and result.first_broken == 3 and result.count == 6
    assert "enregistrement 3 : empreinte invalide (modifié)" in result.reason


def test_altered_details_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        # Same value, spelled differently: still an edit of the record as written.
        conn.execute("""UPDATE registre SET details = '{"camera": "cam4", "i": 4}' WHERE seq = 5""")
    assert _verify(tmp_path / "r.db").first_broken == 5


def test_removed_middle_record_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        conn.execute("DELETE FROM registre WHERE seq = 4")
    result = _verify(tmp_path / "r.db")
    assert not result.ok and result.first_broken == 4 and "manquant" in result.reason


def test_removed_and_renumbered_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        conn.execute("DELETE FROM registre WHERE seq = 4")
        conn.execute("UPDATE registre SET seq = seq - 1 WHERE seq > 4")
    result = _verify(tmp_path / "r.db")
    assert not result.ok and result.first_broken == 4 and "lien de chaîne rompu" in result.reason


def test_removed_last_record_detected_by_head(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        conn.execute("DELETE FROM registre WHERE seq IN (5, 6)")
    result = _verify(tmp_path / "r.db")
    assert not result.ok and result.first_broken == 5 and result.count == 4
    assert "tronqué" in result.reason and "truncated" in result.reason


def test_replaced_last_record_detected_by_head(tmp_path: Path) -> None:
    """A forger who re-hashes the last record correctly still disagrees with the head."""
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        prev = conn.execute("SELECT prev_hash FROM registre WHERE seq = 6").fetchone()[0]
        at = "2026-11-25T18:04:17.000000+00:00"
        forged = chain_hash(prev, canonical(6, at, "end", "INC-1", "nobody", {}, False))
        conn.execute(
            "UPDATE registre SET kind = 'end', actor = 'nobody', details = '{}', hash = ? WHERE seq = 6",
            (forged,),
        )
    result = _verify(tmp_path / "r.db")
    assert not result.ok and result.first_broken == 6 and "en-tête" in result.reason


def test_removed_head_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        conn.execute("DROP TABLE registre_head")
    result = _verify(tmp_path / "r.db")
    assert not result.ok and "en-tête du registre absent" in result.reason


def test_reordered_records_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        cols = "at, kind, incident, actor, details, drill, prev_hash, hash"
        row2 = conn.execute(f"SELECT {cols} FROM registre WHERE seq = 2").fetchone()
        row5 = conn.execute(f"SELECT {cols} FROM registre WHERE seq = 5").fetchone()
        sets = ", ".join(f"{c} = ?" for c in cols.split(", "))
        conn.execute(f"UPDATE registre SET {sets} WHERE seq = 2", row5)
        conn.execute(f"UPDATE registre SET {sets} WHERE seq = 5", row2)
    result = _verify(tmp_path / "r.db")
    assert not result.ok and result.first_broken == 2


def test_reordered_contents_keeping_hashes_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        a = conn.execute("SELECT actor, details FROM registre WHERE seq = 3").fetchone()
        b = conn.execute("SELECT actor, details FROM registre WHERE seq = 4").fetchone()
        conn.execute("UPDATE registre SET actor = ?, details = ? WHERE seq = 3", b)
        conn.execute("UPDATE registre SET actor = ?, details = ? WHERE seq = 4", a)
    result = _verify(tmp_path / "r.db")
    assert not result.ok and result.first_broken == 3 and "empreinte invalide" in result.reason


def test_inserted_record_in_the_middle_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        # Make room at 3 (from the top, to keep seq unique), then slip a well-chained forgery in.
        for seq in range(6, 2, -1):
            conn.execute("UPDATE registre SET seq = ? WHERE seq = ?", (seq + 1, seq))
        prev = conn.execute("SELECT hash FROM registre WHERE seq = 2").fetchone()[0]
        at = "2026-11-25T18:04:13.500000+00:00"
        forged = chain_hash(prev, canonical(3, at, "login_ok", "INC-1", "intrus", {}, False))
        conn.execute(
            f"INSERT INTO registre ({FIELDS}) VALUES (3, ?, 'login_ok', 'INC-1', 'intrus', '{{}}', 0, ?, ?)",
            (at, prev, forged),
        )
    result = _verify(tmp_path / "r.db")
    # The forgery itself chains; the record it displaced no longer does.
    assert not result.ok and result.first_broken == 4


def test_appended_outside_the_bot_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        prev = conn.execute("SELECT hash FROM registre WHERE seq = 6").fetchone()[0]
        at = "2026-11-25T18:05:00.000000+00:00"
        forged = chain_hash(prev, canonical(7, at, "end", "INC-1", "intrus", {}, False))
        conn.execute(
            f"INSERT INTO registre ({FIELDS}) VALUES (7, ?, 'end', 'INC-1', 'intrus', '{{}}', 0, ?, ?)",
            (at, prev, forged),
        )
    result = _verify(tmp_path / "r.db")
    assert not result.ok and result.first_broken == 7 and "hors registre" in result.reason


def test_invalid_utf8_from_a_hex_editor_detected(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        conn.execute("UPDATE registre SET actor = CAST(? AS TEXT) WHERE seq = 2", (b"agent-\xff",))
    result = _verify(tmp_path / "r.db")
    assert not result.ok and result.first_broken == 2
    with Registre(tmp_path / "r.db", readonly=True) as reg:
        assert reg.records()[1].actor == "agent-\ufffd"  # still readable for the examiner


@pytest.mark.parametrize(
    "details",
    [
        {"password": "hunter2"},
        {"user": {"Password": "x"}},
        {"access_token": "abc"},
        {"link": {"token": "abc"}},
        {"client_secret": "abc"},
        {"Cookie": "vigie=abc"},
        {"session_id": "abc"},
        {"Session-Id": "abc"},
        {"passwd": "abc"},
        {"items": [{"ok": 1}, {"refresh_token": "abc"}]},
        {"tile": b"\xff\xd8\xff"},
        {"frames": [bytearray(b"x")]},
        {"nested": {"deeper": {"jpeg": memoryview(b"x")}}},
    ],
)
def test_secrets_and_bytes_refused(tmp_path: Path, details: dict[str, Any]) -> None:
    with Registre(tmp_path / "r.db") as reg:
        with pytest.raises(ValueError):
            reg.append("login_failed", incident="INC-1", actor="p1", details=details)
        assert reg.records() == []
        assert reg.verify().ok


def test_unserialisable_details_refused(tmp_path: Path) -> None:
    with Registre(tmp_path / "r.db") as reg:
        for details in (
            {"when": datetime.now(UTC)},
            {"x": float("nan")},
            {1: "int key"},
            {"x": "x" * 70_000},
        ):
            with pytest.raises(ValueError):
                reg.append("trigger", details=details)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            reg.append("")
        assert reg.records() == []
        assert reg.append("trigger", details={"session": "s-42", "camera": "hall"}).seq == 1


def test_drill_records_kept_apart(tmp_path: Path) -> None:
    with Registre(tmp_path / "r.db") as reg:
        reg.append("trigger", incident="INC-1", actor="p1")
        reg.append("trigger", incident="EX-1", actor="p2", drill=True)
        reg.append("end", incident="EX-1", actor="p2", drill=True)
        reg.append("end", incident="INC-1", actor="p1")
        assert [r.incident for r in reg.records(drill=False)] == ["INC-1", "INC-1"]
        assert [r.kind for r in reg.records(drill=True)] == ["trigger", "end"]
        assert reg.records("EX-1", drill=False) == []
        assert reg.incidents() == ["INC-1", "EX-1"]
        with pytest.raises(ValueError, match="never mixed"):
            reg.append("stream_opened", incident="EX-1", actor="p2")
        with pytest.raises(ValueError, match="never mixed"):
            reg.append("stream_opened", incident="INC-1", actor="p2", drill=True)
        assert reg.verify().ok and reg.verify().count == 4


def test_export_shape(tmp_path: Path) -> None:
    with _fill(tmp_path / "r.db", 3) as reg:
        reg.append("trigger", incident="EX-1", drill=True)
        data = reg.export("INC-1")
        drill = reg.export("EX-1")
        with pytest.raises(KeyError):
            reg.export("INC-404")
    assert list(data) == ["notice", "incident", "drill", "venue", "records", "verified"]
    assert data["incident"] == "INC-1" and data["drill"] is False and data["verified"] is True
    assert data["notice"] is None and drill["notice"] == "EXERCICE / EXERCISE" and drill["drill"] is True
    first = data["records"][0]
    assert set(first) == {"seq", "at", "kind", "incident", "actor", "details", "drill", "prev_hash", "hash", "venue"}
    assert first["at"] == "2026-11-25T18:04:12.000000+00:00" and first["prev_hash"] == GENESIS
    assert json.loads(json.dumps(data)) == data
    # The export alone is enough to recompute the chain.
    prev = GENESIS
    for rec in data["records"]:
        fields = {k: rec[k] for k in ("seq", "at", "kind", "incident", "actor", "details", "drill", "venue")}
        assert rec["prev_hash"] == prev and chain_hash(prev, canonical(**fields)) == rec["hash"]
        prev = rec["hash"]


def test_export_says_unverified_when_tampered(tmp_path: Path) -> None:
    _fill(tmp_path / "r.db").close()
    with _raw(tmp_path / "r.db") as conn:
        conn.execute("UPDATE registre SET kind = 'reminder' WHERE seq = 2")
    with Registre(tmp_path / "r.db", readonly=True) as reg:
        assert reg.export("INC-1")["verified"] is False
        assert "NON VÉRIFIÉE" in reg.timeline_text("INC-1")


def _incident(reg: Registre, incident: str, drill: bool = False) -> None:
    for i, kind in enumerate(Kind):
        reg.append(
            kind,
            incident=incident,
            actor="cic-dupont",
            details={"n": i},
            drill=drill,
            at=T0 + timedelta(seconds=i),
        )
    _newer_vigie_appends(reg.path, "custom_kind", incident, drill, T0 + timedelta(minutes=5))


def _newer_vigie_appends(path: Path, kind: str, incident: str, drill: bool, at: datetime) -> None:
    """A record of a kind this version does not know, chained as a newer Vigie would write it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    count, prev = conn.execute("SELECT count, last_hash FROM registre_head").fetchone()
    at_iso = at.isoformat(timespec="microseconds")
    digest = chain_hash(prev, canonical(count + 1, at_iso, kind, incident, None, {}, drill))
    conn.execute(
        f"INSERT INTO registre ({FIELDS}) VALUES (?, ?, ?, ?, NULL, '{{}}', ?, ?, ?)",
        (count + 1, at_iso, kind, incident, int(drill), prev, digest),
    )
    conn.execute("UPDATE registre_head SET count = ?, last_hash = ? WHERE id = 1", (count + 1, digest))
    conn.execute("COMMIT")
    conn.close()


def test_unknown_kinds_are_refused_on_append(tmp_path: Path) -> None:
    with Registre(tmp_path / "r.db") as reg:
        with pytest.raises(ValueError, match="unknown registre kind 'custom_kind'"):
            reg.append("custom_kind", incident="INC-1")  # type: ignore[arg-type]
        assert reg.records() == []


def test_timeline_french(tmp_path: Path) -> None:
    with Registre(tmp_path / "r.db") as reg:
        _incident(reg, "INC-1")
        reg.append(
            "stream_opened",
            incident="INC-1",
            actor="p1",
            details={"camera": "hall", "zones": ["a", "b"], "long": "x" * 300},
            at=T0 + timedelta(minutes=6),
        )
        text = reg.timeline_text("INC-1")
        with pytest.raises(KeyError):
            reg.timeline_text("INC-404")
        with pytest.raises(ValueError):
            reg.timeline_text("INC-1", lang="de")
    lines = text.splitlines()
    assert lines[0] == "Registre Vigie — incident INC-1"
    assert "Chaîne d'intégrité : vérifiée" in text and "EXERCICE" not in text
    for label in CATALOGS["fr"].kinds.values():
        assert label in text
    assert "2026-11-25 18:04:12 UTC  Déclenchement — par cic-dupont — n=0 (n° 1)" in lines
    n_kinds = len(Kind)
    assert f"2026-11-25 18:09:12 UTC  custom_kind (n° {n_kinds + 1})" in lines
    last = lines[-1]
    assert "Flux ouvert — par p1 — camera=hall" in last and 'zones=["a","b"]' in last and "…" in last
    assert len(last) < 300


def test_timeline_english_and_drill(tmp_path: Path) -> None:
    with Registre(tmp_path / "r.db") as reg:
        _incident(reg, "EX-1", drill=True)
        english = reg.timeline_text("EX-1", lang="en")
        french = reg.timeline_text("EX-1")
    assert english.splitlines()[0].startswith("EXERCISE")
    assert french.splitlines()[0].startswith("EXERCICE")
    assert "Vigie audit log — incident EX-1" in english and "Integrity chain: verified" in english
    for label in CATALOGS["en"].kinds.values():
        assert label in english
    assert "2026-11-25 18:04:12 UTC  Trigger — by cic-dupont — n=0 (#1)" in english


def test_concurrent_appends_from_threads(tmp_path: Path) -> None:
    with Registre(tmp_path / "r.db") as reg:

        def work(name: str) -> None:
            for i in range(50):
                reg.append("stream_opened", incident="INC-1", actor=name, details={"i": i})

        threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        result = reg.verify()
        assert result.ok and result.count == 400
        assert [r.seq for r in reg.records()] == list(range(1, 401))


def test_verify_cli_with_closure_anchor_detects_a_wholesale_rewrite(tmp_path: Path) -> None:
    """A forger who rewrites the whole chain and its head passes the chain check, not the anchor."""
    import io

    from bot.audit_cli import verify_command

    db = tmp_path / "r.db"
    with Registre(db) as reg:
        reg.append("trigger", incident="INC-1", actor="chef", details={"n": 1}, at=T0)
        anchor = reg.append("closure_report", incident="INC-1", actor="system", details={}, at=T0).hash[:16]
    out = io.StringIO()
    assert verify_command(db, out, [anchor]) == 0 and "1 empreinte(s)" in out.getvalue()
    # the forger: a brand-new, self-consistent registre with different content in its place
    db.unlink()
    with Registre(db) as forged:
        forged.append("trigger", incident="INC-1", actor="someone-else", details={"n": 1}, at=T0)
        forged.append("closure_report", incident="INC-1", actor="system", details={}, at=T0)
    out = io.StringIO()
    assert verify_command(db, io.StringIO()) == 0  # the chain alone cannot tell
    assert verify_command(db, out, [anchor]) == 1 and "réécrit" in out.getvalue()


@pytest.mark.parametrize("anchor", ["", "abcd", "0123abcd", "0123456789abcde", "0123456789abcdeg", "  "])
def test_verify_cli_anchor_must_be_16_hex_digits(tmp_path: Path, anchor: str) -> None:
    """Closure reports print 16 hex digits: 8 would match some record of a long registre by luck."""
    import io

    from bot.audit_cli import verify_command

    db = tmp_path / "r.db"
    with Registre(db) as reg:
        full = reg.append("closure_report", incident="INC-1", actor="system", details={}, at=T0).hash
    out = io.StringIO()
    assert verify_command(db, out, [anchor]) == 2 and "16" in out.getvalue()
    assert verify_command(db, io.StringIO(), [full[:16].upper()]) == 0
    assert verify_command(db, io.StringIO(), [full]) == 0
