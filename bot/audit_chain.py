"""The registre's hash chain: the canonical text of a record, its hash, and the check of a whole file.

Pure functions over rows, so the examiner's ``audit verify`` and the bot share one definition
of what an intact registre is. The rules themselves are in ``bot/audit.py``'s docstring.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    first_broken: int | None
    reason: str


def canonical(
    seq: int,
    at: str,
    kind: str,
    incident: str | None,
    actor: str | None,
    details: Mapping[str, Any],
    drill: bool,
) -> str:
    """The exact text that is hashed for one record (see ``bot/audit.py``)."""
    return dumps(
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


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def verify_rows(rows: Iterable[tuple[Any, ...]], total: int, head: tuple[Any, Any] | None) -> VerifyResult:
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
            if iso(datetime.fromisoformat(at)) != at:
                raise ValueError("time not in canonical form")
            details = json.loads(details_text)
            if not isinstance(details, dict) or dumps(details) != details_text:
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
