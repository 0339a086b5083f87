"""What an alarm system says to the desk, and what the desk answers: shared by every alarm edge.

The webhook route and the SIA DC-09 receiver both turn what they receive into an ``AlarmIn``;
the desk decides and answers with an ``AlarmResult``. Kept beside the desk, not in the edges,
so the desk depends on no handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AlarmIn:
    source: str
    alarm_type: str
    zone: str
    message: str
    occurred_at: datetime | None  # timezone-aware, UTC
    delivery_id: str  # the verified webhook-id
    zone_id: str | None = None  # the venue zone a panel's zone/partition maps to (alarms.toml)


@dataclass(frozen=True)
class AlarmResult:
    accepted: bool
    incident_id: str | None
    outcome: str  # "opened" | "pending" | "joined" | "confirmed" | "refused"
    reason_code: str | None = None
    reason_fr: str | None = None
