"""Why a decision went the way it did: a stable code and the facts the explanation needs.

The words live in the catalogs (``bot/locales``), one per language, keyed by ``Why``; this
module stays pure data. The code is what the registre keeps, so its values never change.
A fact may be a ``Role``, ``Org`` or ``Category``: the catalog shows it in the reader's language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Why(StrEnum):
    # the decision on a trigger
    UNKNOWN_PERSON = "unknown_person"
    NOT_GRAVE = "not_grave"  # shown, accepted
    NOT_INITIATOR = "not_initiator"  # role
    INITIATOR_OK = "initiator_ok"  # org, name
    UNKNOWN_SOURCE = "unknown_source"
    UNMAPPED_ALARM = "unmapped_alarm"  # alarm_type, source
    ALARM_OK = "alarm_ok"  # alarm_type, source
    GRAVE_CATEGORY = "grave_category"  # category
    AUTHORISATION_LAPSED = "authorisation_lapsed"  # reference, expires
    JOINED = "joined"  # incident
    NEEDS_CONFIRMATION = "needs_confirmation"
    # the incident's transitions
    NOT_PENDING = "not_pending"
    NOT_ACTIVE = "not_active"
    CONFIRM_WINDOW_LAPSED = "confirm_window_lapsed"
    SELF_CONFIRM = "self_confirm"
    COUNTERPARTY_REQUIRED = "counterparty_required"
    NOT_ALLOWED_CONFIRM = "not_allowed_confirm"
    NOT_ALLOWED_EXTEND = "not_allowed_extend"
    NOT_ALLOWED_END = "not_allowed_end"
    AT_MAXIMUM = "at_maximum"
    BAD_EXTENSION = "bad_extension"
    # the desk, before any decision
    WRONG_ROOM = "wrong_room"
    NOT_DRILL_ROLE = "not_drill_role"
    NO_SUCH_INCIDENT = "no_such_incident"
    RECORDING_REFUSED = "recording_refused"
    CAMERA_CONTROL_REFUSED = "camera_control_refused"
    NOT_UNLOCK_ROLE = "not_unlock_role"
    UNLOCK_WHO = "unlock_who"
    # catastrophe mode and camera control
    NOT_ALLOWED_DECLARE = "not_allowed_declare"
    CATASTROPHE_ALREADY = "catastrophe_already"
    NO_CATASTROPHE = "no_catastrophe"  # nothing declared (or pending) to confirm or end
    NOT_ALLOWED_CONTROL = "not_allowed_control"  # role
    NOT_PTZ = "not_ptz"  # camera
    CAMERA_HELD = "camera_held"  # camera, holder
    NOT_CONTROLLER = "not_controller"  # camera
    NOT_FOCUS_ROLE = "not_focus_role"
    FOCUS_WHERE = "focus_where"


@dataclass(frozen=True)
class Reason:
    code: Why
    facts: Mapping[str, object] = field(default_factory=dict, hash=False)


UNKNOWN_PERSON = Reason(Why.UNKNOWN_PERSON)
WRONG_ROOM = Reason(Why.WRONG_ROOM)
# the desk's own refusals, before any decision
NOT_DRILL_ROLE = Reason(Why.NOT_DRILL_ROLE)
NO_SUCH_INCIDENT = Reason(Why.NO_SUCH_INCIDENT)
RECORDING = Reason(Why.RECORDING_REFUSED)
NOT_UNLOCK_ROLE = Reason(Why.NOT_UNLOCK_ROLE)
UNLOCK_WHO = Reason(Why.UNLOCK_WHO)
CAMERA_CONTROL = Reason(Why.CAMERA_CONTROL_REFUSED)


class Refused(Exception):  # noqa: N818 - a domain outcome, not a programming error
    """A request the convention does not allow; carries the reason the user is shown."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.code)
        self.reason = reason
