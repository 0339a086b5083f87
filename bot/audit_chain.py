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

from .locales import LANGS, Msg, bilingual, t

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
    venue: str | None = None,
) -> str:
    """The exact text that is hashed for one record (see ``bot/audit.py``).

    ``venue`` is in the text only when the record has one: records written before the venue
    existed (schema v1) keep the text, and the hash, they were written with.
    """
    record: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "kind": kind,
        "incident": incident,
        "actor": actor,
        "details": details,
        "drill": drill,
    }
    if venue is not None:
        record["venue"] = venue
    return dumps(record)


def chain_hash(prev_hash: str, canonical_text: str) -> str:
    return hashlib.sha256((prev_hash + canonical_text).encode("utf-8")).hexdigest()


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def verify_rows(rows: Iterable[tuple[Any, ...]], total: int, head: tuple[Any, Any] | None) -> VerifyResult:
    def broken(seq: int | None, problem: Msg, **values: object) -> VerifyResult:
        def text(lang: str) -> str:
            said = t(lang, problem, **values)
            return said if seq is None else t(lang, Msg.CHAIN_RECORD, seq=seq, problem=said)

        return VerifyResult(False, total, seq, " / ".join(text(lang) for lang in LANGS))

    prev = GENESIS
    position = 0
    for row in rows:
        position += 1
        seq, drill = row[0], row[6]
        if seq != position:
            if seq > position:
                return broken(position, Msg.CHAIN_MISSING, found=seq)
            return broken(position, Msg.CHAIN_UNEXPECTED, found=seq)
        try:
            at, kind, incident, actor, details_text, prev_hash, digest, venue = (
                None if raw is None else raw.decode("utf-8") for raw in row[1:6] + row[7:10]
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
            return broken(position, Msg.CHAIN_UNREADABLE)
        if prev_hash != prev:
            return broken(position, Msg.CHAIN_LINK_BROKEN)
        if chain_hash(prev, canonical(seq, at, kind, incident, actor, details, bool(drill), venue)) != digest:
            return broken(position, Msg.CHAIN_HASH_MISMATCH)
        prev = digest
    count = position

    if head is None:
        return broken(None, Msg.CHAIN_HEAD_MISSING)
    head_count, head_hash = head
    if head_count > count:
        return broken(count + 1, Msg.CHAIN_TRUNCATED, head=head_count, count=count)
    if head_count < count:
        return broken(head_count + 1, Msg.CHAIN_ADDED, head=head_count)
    if head_hash != prev:
        return broken(count, Msg.CHAIN_REPLACED)
    return VerifyResult(True, count, None, bilingual(Msg.CHAIN_OK, count=count))
