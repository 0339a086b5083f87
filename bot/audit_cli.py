"""``python -m bot audit verify|export``: check the registre's chain, print an incident's timeline.

Both open the registre read-only: examining a file must never create it, nor repair a
tampered one (re-creating its triggers or head) before the examiner has seen it.
Exit codes: 0 fine, 1 broken chain or unknown incident, 2 no usable registre file.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .audit import Registre
from .locales import LANGS, Msg, bilingual, t
from .migrations import SchemaTooNew
from .viewing import export_timeline

logger = logging.getLogger(__name__)

# Closure reports print 16 hex digits (64 bits); the full 64-digit hash is accepted too.
ANCHOR = re.compile(r"[0-9a-f]{16,64}")


def _open(db: Path, out: TextIO) -> Registre | None:
    if not db.is_file():
        print(bilingual(Msg.CLI_NOT_FOUND, db=db), file=out)
        return None
    try:
        return Registre(db, readonly=True)
    except (ValueError, sqlite3.DatabaseError, SchemaTooNew) as exc:
        print(bilingual(Msg.CLI_UNREADABLE, db=db, error=exc), file=out)
        return None


def verify_command(db: Path, out: TextIO, anchors: Sequence[str] = ()) -> int:
    """Recompute the chain; each anchor (a head hash copied from a closure report posted in a
    room) must still be the prefix of a record's hash, or the registre was rewritten wholesale."""
    registre = _open(db, out)
    if registre is None:
        return 2
    with registre:
        result = registre.verify()
        hashes = [r.hash for r in registre.records()] if result.ok and anchors else []
    if not result.ok:
        print(f"{bilingual(Msg.CLI_FAILED)}: {result.reason}", file=out)
        return 1
    for anchor in anchors:
        a = anchor.strip().lower()
        if not ANCHOR.fullmatch(a):
            print(f"{bilingual(Msg.CLI_FAILED)}: {bilingual(Msg.CLI_ANCHOR_INVALID, anchor=repr(anchor))}", file=out)
            return 2
        if not any(h.startswith(a) for h in hashes):
            print(f"{bilingual(Msg.CLI_FAILED)}: {bilingual(Msg.CLI_ANCHOR_MISSING, anchor=anchor)}", file=out)
            return 1
    print(" / ".join(t(lang, Msg.CLI_OK, count=result.count,
                         anchors=t(lang, Msg.CLI_ANCHORS_FOUND, n=len(anchors)) if anchors else "")
                     for lang in LANGS), file=out)
    return 0


def export_command(db: Path, incident: str, text: bool, lang: str, out: TextIO) -> int:
    registre = _open(db, out)
    if registre is None:
        return 2
    with registre:
        try:
            if text:
                out.write(registre.timeline_text(incident, lang))
            else:
                data = registre.export(incident)
                # who watched what: every span, merged, none cut (the rooms' report shows the first few)
                data["viewing"] = export_timeline(registre.records(incident))
                json.dump(data, out, indent=2, ensure_ascii=False)
                out.write("\n")
        except KeyError:
            known = ", ".join(registre.incidents()) or bilingual(Msg.CLI_NONE)
            print(bilingual(Msg.CLI_UNKNOWN_INCIDENT, incident=incident, known=known), file=out)
            return 1
        except ValueError as exc:  # unreadable record in a tampered file, or unknown lang
            print(bilingual(Msg.CLI_EXPORT_FAILED, error=exc), file=out)
            return 1
    return 0
