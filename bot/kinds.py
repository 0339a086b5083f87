"""The kinds of record the registre holds: one closed vocabulary, labelled in every language.

A kind is stored as its string value, which is part of each record's hash: renaming a value
would make old records unreadable by name, so values never change; new kinds are appended.
Labels live in the catalogs (``bot/locales``), one per language, tested to cover every kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class Kind(StrEnum):
    # an incident's life
    TRIGGER = "trigger"
    DECISION = "decision"
    REFUSAL = "refusal"
    CONFIRMATION_REQUESTED = "confirmation_requested"
    CONFIRMATION = "confirmation"
    ACTIVATION = "activation"
    JOINED = "joined"
    EXTENSION = "extension"
    REMINDER = "reminder"
    END = "end"
    EXPIRY = "expiry"
    CLOSURE_REPORT = "closure_report"
    RECORDING_REQUEST = "recording_request"
    # the live page
    LINK_ISSUED = "link_issued"
    LOGIN_OK = "login_ok"
    LOGIN_FAILED = "login_failed"
    LOGIN_LOCKED = "login_locked"
    LOGIN_UNLOCKED = "login_unlocked"
    PASSWORD_GUESSING = "password_guessing"  # noqa: S105 - a record kind, not a password
    STREAM_OPENED = "stream_opened"
    STREAM_CLOSED = "stream_closed"
    # the service
    ROOM_ERROR = "room_error"
    AUTHORISATION_WARNING = "authorisation_warning"
    WEBHOOK_REFUSED = "webhook_refused"
    REFUSALS = "refusals"  # unauthenticated refusals, counted per client and minute
    SIA_MESSAGE = "sia_message"
    SIA_REFUSED = "sia_refused"
    PANEL_SILENT = "panel_silent"
    PANEL_BACK = "panel_back"
    LATE_COMMAND = "late_command"  # a command read long after it was typed (Vigie was away)
    LINK_UNDELIVERED = "link_undelivered"  # a room's link overdue: the other rooms were told
    LINK_DELIVERED = "link_delivered"  # that link arrived after all
    LINK_POSTED = "link_posted"  # a room received an incident's link (per room)
    BACKUP = "backup"  # an online copy of the registre and state (vigie audit backup)
    CONSOLE_ATTACHED = "console_attached"  # a console attached to the running service (a room)
    CONSOLE_DETACHED = "console_detached"
    CONSOLE_REFUSED = "console_refused"  # a console refused: other user, unknown person, wrong password
    # catastrophe mode: declared, confirmed, ended; camera control taken, released, each command, homing
    CATASTROPHE_DECLARED = "catastrophe_declared"
    CATASTROPHE_CONFIRMED = "catastrophe_confirmed"
    CATASTROPHE_ENDED = "catastrophe_ended"
    PTZ_TAKEN = "ptz_taken"
    PTZ_RELEASED = "ptz_released"
    PTZ_COMMAND = "ptz_command"  # one gesture (a move from touch to release), a zoom, a preset
    PTZ_HOME = "ptz_home"  # the cameras sent back to their home preset at the end, and which failed
    ENROL_LINK_ISSUED = "enrol_link_issued"  # a one-time passkey enrolment link (vigie enrol)
    PASSKEY_ENROLLED = "passkey_enrolled"
    ENROL_REFUSED = "enrol_refused"  # a wrong personal password or a rejected passkey on an enrolment link
    PASSKEY_REVOKED = "passkey_revoked"  # vigie passkeys revoke (a lost phone)
    PASSKEY_DISABLED = "passkey_disabled"  # its person left the roster
    FOCUS = "focus"  # the zone the officers look at first was changed (page or /zone)


class Recorder(Protocol):
    """What a writer of the registre needs of it (``bot.audit.Registre`` satisfies it)."""

    def append(self, kind: Kind, *, incident: str | None = None, actor: str | None = None,
               details: Mapping[str, Any] | None = None, drill: bool = False,
               at: datetime | None = None) -> Any: ...
