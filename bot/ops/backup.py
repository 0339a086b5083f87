"""``vigie audit backup DEST``: an online copy of the registre and the state, while the service runs.

Each database is copied with SQLite's backup API in a single step: the copy is the snapshot
of one read transaction, so it holds every record committed before the copy began and never
half a record; in WAL mode that read does not block the running service's writes (the
service keeps appending during the copy, those records go to the next backup).

The copy is then opened read-only and its chain verified; only a verified copy is recorded in
the live registre (``Kind.BACKUP``, with the copy's record count and head hash, which anchor
it). The two files are copied one after the other: each is consistent, the pair is not one
transaction (the state is rebuilt from what the registre says, the registre is what matters).

Copies are written 0600 in a directory 0700 that must not hold a copy already: a backup never
overwrites another one.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..audit import Registre
from ..kinds import Kind

DATABASES = ("registre.sqlite3", "state.sqlite3")


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class BackupResult:
    dest: Path
    count: int
    head: str


def copy_database(source: Path, target: Path) -> None:
    """``source`` (a live SQLite database) copied to the new file ``target`` (0600), self-contained."""
    if not source.is_file():
        raise BackupError(f"{source}: no such database")
    try:
        fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise BackupError(f"{target}: exists") from None
    os.close(fd)
    src = sqlite3.connect(source, isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout = 5000")
        src.execute("PRAGMA query_only = ON")
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)  # pages=-1: the whole database in one step, one snapshot
            # One file, no -wal beside it: the copy can be moved or archived as it is.
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    target.chmod(0o600)


def backup(data_dir: Path, dest: Path, actor: str = "backup", venue: str | None = None) -> BackupResult:
    """Copy both databases of ``data_dir`` into ``dest``, verify the registre copy, record it (with
    ``venue``, or without a config the venue of the registre's latest record that has one)."""
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    dest.chmod(0o700)
    for name in DATABASES:
        copy_database(data_dir / name, dest / name)
    with Registre(dest / "registre.sqlite3", readonly=True) as copy:
        result = copy.verify()
        if not result.ok:
            raise BackupError(f"{dest / 'registre.sqlite3'}: {result.reason}")
        head = copy.head()[1]
        if venue is None:
            venue = next((r.venue for r in reversed(copy.records()) if r.venue), None)
    with Registre(data_dir / "registre.sqlite3", venue=venue) as live:
        live.append(Kind.BACKUP, actor=actor,
                    details={"dest": str(dest), "records": result.count, "head": head[:16]})
    return BackupResult(dest, result.count, head[:16])
