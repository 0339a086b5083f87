"""The keys of every message Vigie shows, grouped by where they appear."""

from __future__ import annotations

from enum import StrEnum


class Msg(StrEnum):
    # registre timeline (audit export --text)
    AUDIT_TITLE = "audit.title"
    AUDIT_DRILL = "audit.drill"
    AUDIT_COUNT = "audit.count"
    AUDIT_CHAIN_OK = "audit.chain_ok"
    AUDIT_CHAIN_BAD = "audit.chain_bad"
    AUDIT_BY = "audit.by"
    AUDIT_SEQ = "audit.seq"
