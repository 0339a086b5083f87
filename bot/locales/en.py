"""English catalog: every key of the French one, same placeholders."""

from __future__ import annotations

from collections.abc import Mapping

from ..kinds import Kind
from ..policy.convention import Role
from .keys import Msg

MESSAGES: Mapping[Msg, str] = {
    Msg.AUDIT_TITLE: "Vigie audit log — incident {incident}",
    Msg.AUDIT_DRILL: "EXERCISE — this is not a real incident",
    Msg.AUDIT_COUNT: "{n} record(s)",
    Msg.AUDIT_CHAIN_OK: "Integrity chain: verified",
    Msg.AUDIT_CHAIN_BAD: "Integrity chain: NOT VERIFIED — {reason}",
    Msg.AUDIT_BY: "by",
    Msg.AUDIT_SEQ: "#{seq}",
}

KINDS: Mapping[Kind, str] = {
    Kind.TRIGGER: "Trigger",
    Kind.DECISION: "Decision",
    Kind.REFUSAL: "Refusal",
    Kind.CONFIRMATION_REQUESTED: "Confirmation requested",
    Kind.CONFIRMATION: "Confirmation",
    Kind.ACTIVATION: "Access opened",
    Kind.JOINED: "Trigger joined",
    Kind.EXTENSION: "Extension",
    Kind.REMINDER: "Reminder",
    Kind.END: "End",
    Kind.EXPIRY: "Expiry",
    Kind.CLOSURE_REPORT: "Closure report",
    Kind.RECORDING_REQUEST: "Recording request",
    Kind.LINK_ISSUED: "Link issued",
    Kind.LOGIN_OK: "Login succeeded",
    Kind.LOGIN_FAILED: "Login failed",
    Kind.LOGIN_LOCKED: "Account locked",
    Kind.STREAM_OPENED: "Stream opened",
    Kind.STREAM_CLOSED: "Stream closed",
    Kind.ROOM_ERROR: "Room error",
    Kind.AUTHORISATION_WARNING: "Authorisation expiry warning",
    Kind.WEBHOOK_REFUSED: "Webhook refused",
    Kind.SIA_MESSAGE: "Alarm panel message",
    Kind.SIA_REFUSED: "Alarm panel message refused",
    Kind.PANEL_SILENT: "Alarm panel silent",
    Kind.PANEL_BACK: "Alarm panel back",
}

# As the rooms have always shown them in English: the role's code with spaces.
ROLES: Mapping[Role, str] = {
    Role.SECURITY_CHIEF: "security chief",
    Role.DIRECTOR: "director",
    Role.OPERATOR: "operator",
    Role.CIC_OFFICER: "cic officer",
    Role.FIELD_COMMANDER: "field commander",
    Role.VIEWER: "viewer",
}
