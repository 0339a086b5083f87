"""What a panel's event means to Vigie: classes of DC-09 event codes, and the convention's sources.

Pure data and functions, no I/O: ``config_load`` uses it to build the alarm sources of a
panel, the receiver (``bot.sia.receiver``) to turn one decoded event into an alarm type.

A panel's ``types`` mapping (``alarms.toml``) names either a class of events or one exact code:

- ``hold_up``: Contact ID 120 panic, 121 duress, 122 silent hold-up, 123 audible hold-up, and
  SIA ``PA`` (panic) / ``HA`` (hold-up, duress). Default: ``attaque_armee``.
- ``burglary``: Contact ID 130–136, 138, 139 and SIA ``BA``. Not mapped by default.
- ``CID-nnn`` / ``SIA-XX``: one exact code, which wins over its class.

Hold-up events reach the convention as the panel's own alarm source, whose confirmation rule
is the panel's ``hold_up_confirm`` (a silent hold-up button is a venue request: "none" by
default). Every other mapped event goes to a second source, ``<panel>.intrusion``, whose rule
is never "none": an automatic detector must be confirmed by a person. Restores (Contact ID
qualifier 3, SIA "…Restore"/"…Restoral") and status reports (qualifier 6, SIA old events) never
open anything, whatever the mapping says; nor does a malformed event (``events``), which never
becomes a ``PanelEvent``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from ..policy.convention import AlarmSource, ConfirmRule

logger = logging.getLogger(__name__)

HOLD_UP = "hold_up"
BURGLARY = "burglary"
# '.' is not allowed in configured source names (slugs), so this can never collide with one.
INTRUSION_SUFFIX = ".intrusion"

HOLD_UP_CID = frozenset({"120", "121", "122", "123"})
HOLD_UP_SIA = frozenset({"PA", "HA"})
# 137 is a tamper, not an intrusion in progress: it stays out of the class (map CID-137 to want it).
BURGLARY_CID = frozenset({"130", "131", "132", "133", "134", "135", "136", "138", "139"})
BURGLARY_SIA = frozenset({"BA"})
CLASSES: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    HOLD_UP: (HOLD_UP_CID, HOLD_UP_SIA),
    BURGLARY: (BURGLARY_CID, BURGLARY_SIA),
}
DEFAULT_TYPES: Mapping[str, str] = {HOLD_UP: "attaque_armee"}

# Periodic tests: a sign of life like a NULL message, never an alarm.
TEST_CID = frozenset({"602", "603"})
TEST_SIA = frozenset({"RP", "RX"})
# Contact ID codes whose three last digits are a user number, not a zone.
_USER_CID = frozenset({"121"}) | frozenset(str(n) for n in range(400, 500))

CID_LABELS_FR: Mapping[str, str] = {
    "120": "panique",
    "121": "contrainte (code sous la menace)",
    "122": "agression silencieuse",
    "123": "agression sonore",
    "130": "intrusion",
    "131": "intrusion périmétrique",
    "132": "intrusion intérieure",
    "133": "intrusion 24 h/24",
    "134": "intrusion entrée/sortie",
    "135": "intrusion jour/nuit",
    "136": "intrusion extérieure",
    "137": "autoprotection",
    "138": "pré-alarme intrusion",
    "139": "intrusion vérifiée",
    "602": "test périodique",
}
SIA_LABELS_FR: Mapping[str, str] = {
    "PA": "panique",
    "HA": "agression / contrainte",
    "BA": "intrusion",
    "PH": "fin de panique",
    "PR": "fin de panique",
    "HH": "fin d'agression",
    "HR": "fin d'agression",
    "BH": "fin d'intrusion",
    "BR": "fin d'intrusion",
    "RP": "test automatique",
}


@dataclass(frozen=True)
class PanelEvent:
    """One decoded event, whatever the protocol (SIA-DCS or Contact ID)."""

    protocol: str  # "SIA-DCS" | "ADM-CID"
    cid: str | None  # Contact ID event code, "120"
    qualifier: str | None  # Contact ID qualifier: "1" new, "3" restore, "6" status
    sia: str | None  # SIA code ("PA"); for Contact ID, pysiaalarm's translation
    sia_type: str  # pysiaalarm's English type ("Panic Alarm"), "" when unknown
    zone: str  # zone number (or user number, see ``zone_is_user``), "" when absent
    zone_name: str
    partition: str  # partition / area, "" when absent
    old: bool = False  # SIA "old event" block: a condition already reported, still present

    @property
    def code(self) -> str:
        """How the registre and the rooms name the event: ``CID 1120`` or ``SIA PA``."""
        if self.cid is not None:
            return f"CID {self.qualifier or ''}{self.cid}"
        return f"SIA {self.sia or '?'}"

    @property
    def restore(self) -> bool:
        if self.cid is not None:
            return self.qualifier == "3"
        return "restor" in self.sia_type.lower()

    @property
    def status_report(self) -> bool:
        """A condition already reported and still present: Contact ID qualifier 6, a SIA old-event block."""
        return self.old or (self.cid is not None and self.qualifier == "6")

    @property
    def test(self) -> bool:
        return (self.cid in TEST_CID) if self.cid is not None else (self.sia in TEST_SIA)

    @property
    def zone_is_user(self) -> bool:
        return self.cid in _USER_CID

    def label_fr(self) -> str:
        if self.cid is not None:
            base = CID_LABELS_FR.get(self.cid, self.sia_type or "événement")
            return f"fin de {base}" if self.restore else base
        return SIA_LABELS_FR.get(self.sia or "", self.sia_type or "événement")

    def where(self) -> str:
        """Zone and partition, as they travel into the room messages: ``005 (Hall A), partition 01``."""
        parts = []
        if self.zone:
            name = f" ({self.zone_name})" if self.zone_name else ""
            parts.append(f"utilisateur {self.zone}{name}" if self.zone_is_user else f"{self.zone}{name}")
        if self.partition:
            parts.append(f"partition {self.partition}")
        return ", ".join(parts)


def candidate_keys(ev: PanelEvent) -> list[str]:
    """The mapping keys that may name this event, most specific first."""
    keys: list[str] = []
    if ev.cid is not None:
        keys.append(f"CID-{ev.cid}")
        keys += [name for name, (cids, _) in CLASSES.items() if ev.cid in cids]
    elif ev.sia is not None:
        keys.append(f"SIA-{ev.sia}")
        keys += [name for name, (_, sias) in CLASSES.items() if ev.sia in sias]
    return keys


def mapped_key(types: Mapping[str, str], ev: PanelEvent) -> str | None:
    """The key of ``types`` this event triggers, or None (not mapped, a restore, a status)."""
    if ev.restore or ev.status_report or ev.test:
        return None
    return next((k for k in candidate_keys(ev) if k in types), None)


def is_hold_up_key(key: str) -> bool:
    if key == HOLD_UP:
        return True
    kind, _, code = key.partition("-")
    return (kind == "CID" and code in HOLD_UP_CID) or (kind == "SIA" and code in HOLD_UP_SIA)


def source_for(panel: str, key: str) -> str:
    """The convention's alarm source an event mapped by ``key`` is reported as."""
    return panel if is_hold_up_key(key) else panel + INTRUSION_SUFFIX


def panel_sources(
    name: str, label: str, types: Mapping[str, str], hold_up_confirm: ConfirmRule, alarm_confirm: ConfirmRule
) -> tuple[AlarmSource, ...]:
    """The convention's alarm sources for one panel (see the module docstring)."""
    hold_up = {k: v for k, v in types.items() if is_hold_up_key(k)}
    other = {k: v for k, v in types.items() if not is_hold_up_key(k)}
    sources = [AlarmSource(name, label, hold_up, hold_up_confirm)]
    if other:
        # An automatic detector never opens access on its own: "none" is not a choice here.
        rule = alarm_confirm if alarm_confirm is not ConfirmRule.NONE else ConfirmRule.ANY
        sources.append(AlarmSource(name + INTRUSION_SUFFIX, label, other, rule))
    return tuple(sources)
