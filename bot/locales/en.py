"""English catalog: every key of the French one, same placeholders."""

from __future__ import annotations

from collections.abc import Mapping

from ..kinds import Kind
from ..policy.convention import Org, Role
from ..policy.reasons import Why
from .keys import Msg

MESSAGES: Mapping[Msg, str] = {
    Msg.AUDIT_TITLE: "Vigie audit log — incident {incident}",
    Msg.AUDIT_DRILL: "EXERCISE — this is not a real incident",
    Msg.AUDIT_COUNT: "{n} record(s)",
    Msg.AUDIT_CHAIN_OK: "Integrity chain: verified",
    Msg.AUDIT_CHAIN_BAD: "Integrity chain: NOT VERIFIED — {reason}",
    Msg.AUDIT_BY: "by",
    Msg.AUDIT_SEQ: "#{seq}",
    # the rooms: posts about an incident (bot/messages.py)
    Msg.WHO_SYSTEM: "the system",
    Msg.DRILL_PREFIX: "EXERCISE — ",
    Msg.ORIGIN_ALARM: "alarm '{alarm_type}' from {who}{where}",
    Msg.ORIGIN_PERSON: "{org}: {who}{extra}",
    Msg.LINK_HEAD: "🚨 VIDEO ACCESS OPEN — {category} [{incident}]",
    Msg.LINK_TRIGGERED: "Triggered at {at} — {origin}",
    Msg.LINK_UNTIL: "Access for habilitated officers until {until} ({remaining} min left)",
    Msg.CONFIRMED_BY: "Confirmed by {who}",
    Msg.EXTENDED_BY: "Extended by {who}",
    Msg.LINK_URL: "Link (personal password required): ",
    Msg.LIVE_ONLY: "Live only: nothing is recorded through this link.",
    Msg.CONFIRMER_ANY: "an authorised person (venue or police)",
    Msg.CONFIRMER_COUNTERPARTY: "the police",
    Msg.CONFIRM_HEAD: "⚠️ ALERT TO CONFIRM — {category} [{incident}]",
    Msg.CONFIRM_ORIGIN: "Origin: {origin}",
    Msg.CONFIRM_BEFORE: "To be confirmed by {who} before {until}: /confirm {incident}",
    Msg.CONFIRM_BUTTON: "✅ Confirm access",
    Msg.CONFIRMED: "✅ Alert {incident} confirmed by {who} at {at}.",
    Msg.NOT_CONFIRMED: "⏹ Alert {incident} not confirmed in time: no access was opened.",
    Msg.REMINDER: "⏳ Access {incident} ends in {minutes} min ({until}). To extend: /extend 30",
    Msg.EXTENDED: "➕ Access {incident} extended until {until} by {who}.",
    Msg.CLOSED_ENDED: "ended by {who}",
    Msg.CLOSED_EXPIRED: "time limit reached",
    Msg.CLOSED_LAPSED: "prefectoral authorisation lapsed",
    Msg.CLOSED_NOT_CONFIRMED: "alert not confirmed",
    Msg.NOBODY: "none",
    Msg.CLOSURE_HEAD: "🔒 ACCESS ENDED — {category} [{incident}]",
    Msg.CLOSURE_REASON: "Reason: {reason} at {at}",
    Msg.CLOSURE_TRIGGER: "Trigger: {at}, {origin}",
    Msg.CLOSURE_OPEN: "Access open: {start} → {end} ({minutes} min)",
    Msg.CLOSURE_VIEWERS: "Officers who signed in: {seen}",
    Msg.CLOSURE_STREAMS: "Video streams opened: {streams}",
    Msg.CLOSURE_REVOKED: "Links and sessions revoked. Registre: {records} records for this incident.",
    Msg.CLOSURE_ANCHOR: "Registre hash at closing: {anchor}",
    Msg.AUTHORISATION_WARNING: "⚠️ Prefectoral authorisation {reference} expires on {expires:%Y-%m-%d}. Without renewal, Vigie will refuse any transmission after that date.",
    Msg.GUESSING_NOTICE: "⚠️ Password of {name} ({id}) under attack: {failures} failed sign-in(s) in 15 min from {clients} network address(es). Attempts are slowed down; {name} can still sign in. If these are not typos, the link has leaked: /end then /alert give a new link. Lift their locks: /unlock {id}",
    Msg.REFUSED: "Refused: {reason}",

    # the desk: answers to commands and /status (bot/desk.py)
    Msg.STATUS_NONE: "No open incident.",
    Msg.STATUS_DRILL: "EXERCISE ",
    Msg.STATUS_PENDING: "{drill}{incident} — {category}: waiting for confirmation until {until}",
    Msg.STATUS_ACTIVE: "{drill}{incident} — {category}: access open until {until} ({left} min left)",
    Msg.STATUS_ROOM_OK: "Room {room}: ok",
    Msg.STATUS_ROOM_FAILING: "Room {room}: FAILING: {error}",
    Msg.STATUS_AUTHORISATION: "Prefectoral authorisation {reference} valid until {expires:%Y-%m-%d}",
    Msg.ENDED_REPLY: "Access {incident} ended.",
    Msg.JOINED_REPLY: "Incident {incident} is already open: your report has been added to it.",
    Msg.OPENED_REPLY: "{drill}Access {incident} open until {until}; the link is posted in the rooms.",
    Msg.UNLOCKED_REPLY: "Sign-in of {name} unlocked ({locks} locked address(es)).",

    # alarm panels (bot/sia/receiver.py)
    Msg.PANEL_SILENT: "⚠️ Alarm panel '{label}' is not responding: no message since {since} ({minutes} min; a test is expected every {every} s). Its alarms no longer reach Vigie: call the installer. /alert still works.",
    Msg.PANEL_BACK: "✅ Alarm panel '{label}' is responding again (silent since {since}).",

    # commands, in every room (bot/commands.py, bot/console.py, bot/telegram/, bot/matrix/)
    Msg.MENU_ALERT: "Open video access (grave event)",
    Msg.MENU_CONFIRM: "Confirm a pending alert",
    Msg.MENU_STATUS: "Access, rooms and cameras status",
    Msg.MENU_EXTEND: "Extend access (minutes)",
    Msg.MENU_END: "End access",
    Msg.MENU_DRILL: "Start a drill",
    Msg.MENU_UNLOCK: "Unlock a person's sign-in",
    Msg.MENU_HELP: "Help",
    Msg.HELP: "Vigie — police live view of the venue's cameras under the convention.\n/alert <category> [details] — open access. Categories: {categories}\n/confirm [ID] — confirm a pending alert\n/status — state of access, rooms and cameras\n/extend <minutes> [ID] — extend access\n/end [ID] — end access now\n/drill [category] — start an exercise (marked EXERCISE)\n/unlock <person> — lift a sign-in lock (id or RIO)\n/help — this help",
    Msg.WHICH_CATEGORY: "Which category? /alert <category> [details]:",
    Msg.EXTEND_USAGE: "Usage: /extend <minutes> [ID], e.g. /extend 30",
    Msg.UNKNOWN_COMMAND: "Unknown command /{command}. /help lists the commands.",
    Msg.TYPE_HELP: "(type /help for the commands)",
    Msg.INTERNAL_ERROR: "Internal error: see the log.",
    Msg.INTERNAL_ERROR_SHORT: "Internal error.",
    Msg.LATE_NOT_APPLIED: "Your /{command} reached Vigie {minutes} min after you sent it (Vigie was unavailable): it has NOT been applied. Send it again if it still holds.",
    Msg.CATEGORY_BUTTONS: "Which grave event? A button press is /alert <category> by whoever presses it.",
    Msg.CATEGORY_CHOSEN: "Category chosen by {name}: {label}\n→ {answer}",
    Msg.STRANGER_ENCRYPTED: "⚠️ {user} is not on the convention's roster: Vigie sends them nothing (their devices get no keys).",
    Msg.STRANGER_CLEAR: "⚠️ {user} is not on the convention's roster and this room is not encrypted: they can read what Vigie posts here. Remove them from the room.",
    Msg.MATRIX_CONFIRM_HINT: "To confirm: reply /confirm to this message or react ✅.",
    Msg.MATRIX_REDACTED: "Removed by Vigie",

    # cameras (bot/media/)
    Msg.CAMERAS_NONE: "Cameras: none in the convention's scope",
    Msg.CAMERAS_ONLINE: "Cameras: {online}/{total} online",
    Msg.CAMERAS_OFFLINE: " — offline: {names}",
    Msg.MOSAIC_CAPTION: "{drill}Mosaic {at:%H:%M} — {online}/{total} cameras online",

    # the console room of the demo (bot/console.py)
    Msg.CONSOLE_EDITED: "[Vigie #{ref} updated] {text}",
    Msg.CONSOLE_REMOVED: "[Vigie #{ref} removed]",
    Msg.CONSOLE_TILE: "[Vigie #{ref} tile] {caption} — {kib} KiB, sha256 {digest}",
    Msg.CONSOLE_TILE_REPLACED: "[Vigie #{ref} tile replaced] {caption} — {kib} KiB, sha256 {digest}",

    # the live page (bot/access.py, bot/web/); its HTML templates in bot/web/static are French
    Msg.LOGIN_WRONG: "Wrong identity or password.",
    Msg.LOGIN_NOT_HABILITATED: "This person is not habilitated to receive the video protection images.",
    Msg.LOGIN_LOCKED: "Too many failed attempts from this network address: login blocked for {minutes} min.",
    Msg.LOGIN_NOW_LOCKED: " Too many attempts from this network address: login blocked for {minutes} min.",
    Msg.LOGIN_ATTEMPTS_LEFT: " {left} attempt(s) left before lockout.",
    Msg.PAGE_FORBIDDEN_TITLE: "Invalid link",
    Msg.PAGE_FORBIDDEN: "This link is not valid. Open the link posted in the incident's room.",
    Msg.PAGE_GONE_TITLE: "Access has ended",
    Msg.PAGE_GONE: "Access to the images for this incident has ended, or this link has expired. If the incident goes on, open the latest link posted in the room.",
    Msg.PAGE_ENDED: "Access has ended.",
    Msg.PAGE_NO_SESSION_TITLE: "Sign-in required",
    Msg.PAGE_NO_SESSION: "To see the images, open the link posted in the incident's room and sign in.",
    Msg.PAGE_BAD_FORM: "The form received is invalid: type your identity and your password.",
    Msg.PAGE_NO_CAMERA: "No camera in the convention's scope.",
    Msg.PAGE_DRILL: "EXERCISE — this is not a real incident",
    Msg.PAGE_UNKNOWN_CAMERA: "Unknown camera.",
    Msg.PAGE_BAD_QUALITY: "Unknown video quality: \"hd\" or \"saver\" (data saving).",
    Msg.PAGE_ORIGIN_REFUSED: "Origin refused.",
    Msg.PAGE_CROSS_SITE_TITLE: "Request refused",
    Msg.PAGE_CROSS_SITE: "This request does not come from Vigie's page: open the link posted in the room.",

    # the live page's media routes (bot/web/media.py)
    Msg.PAGE_MOSAIC_UNAVAILABLE: "Mosaic unavailable, trying again…",
    Msg.PAGE_SIGN_IN: "Sign-in required.",

    # answers to an alarm webhook's sender, English first (bot/alarms/)
    Msg.HOOK_BAD_SIGNATURE: "Invalid signature.",
    Msg.HOOK_MISSING_HEADERS: "Missing webhook-id, webhook-timestamp or webhook-signature header.",
    Msg.HOOK_STALE_TIMESTAMP: "webhook-timestamp is outside the accepted window; check the sender's clock.",
    Msg.HOOK_BAD_TIMESTAMP: "webhook-timestamp must be Unix seconds.",
    Msg.HOOK_BAD_ID: "webhook-id is longer than {max_id} characters.",
    Msg.HOOK_BAD_JSON: "Body is not valid JSON.",
    Msg.HOOK_BAD_BODY: "Body must be a JSON object.",
    Msg.HOOK_TOO_LARGE: "Body too large.",
    Msg.HOOK_UNKNOWN_SOURCE: "Unknown alarm source.",
    Msg.HOOK_DUPLICATE: "This webhook-id was already delivered.",
    Msg.HOOK_DUPLICATE_KEY: "The same key appears twice in the body.",
    Msg.HOOK_REFUSED: "Alarm refused.",

    # the registre's check and the audit command, both languages at once (bot/audit_chain.py, bot/audit_cli.py)
    Msg.CHAIN_RECORD: "record {seq}: {problem}",
    Msg.CHAIN_MISSING: "missing (removed; #{found} found in its place)",
    Msg.CHAIN_UNEXPECTED: "unexpected number {found} (inserted or renumbered)",
    Msg.CHAIN_UNREADABLE: "unreadable or non-canonical content (altered)",
    Msg.CHAIN_LINK_BROKEN: "chain link broken (a previous record was removed, inserted or moved)",
    Msg.CHAIN_HASH_MISMATCH: "hash mismatch (altered)",
    Msg.CHAIN_HEAD_MISSING: "log head missing (removed)",
    Msg.CHAIN_TRUNCATED: "missing (log truncated: the head says {head} records, {count} found)",
    Msg.CHAIN_ADDED: "added outside the log (the head stops at {head})",
    Msg.CHAIN_REPLACED: "does not match the log head (replaced)",
    Msg.CHAIN_OK: "chain intact, {count} records",
    Msg.CLI_NOT_FOUND: "audit log not found: {db}",
    Msg.CLI_UNREADABLE: "unreadable audit log: {db} ({error})",
    Msg.CLI_FAILED: "FAILED",
    Msg.CLI_ANCHOR_MISSING: "anchor {anchor} not found: the registre was rewritten",
    Msg.CLI_ANCHOR_INVALID: "anchor {anchor} is not the 16 hex digits printed in the closure report",
    Msg.CLI_OK: "OK: {count} records, chain intact{anchors}",
    Msg.CLI_ANCHORS_FOUND: ", {n} closure anchor(s) found",
    Msg.CLI_UNKNOWN_INCIDENT: "unknown incident: {incident} (known: {known})",
    Msg.CLI_NONE: "none",
    Msg.CLI_EXPORT_FAILED: "export failed: {error}",

    # text drawn into pictures, in the service's first language (bot/media/tiles.py)
    Msg.IMAGE_DRILL: "EXERCISE",
    Msg.IMAGE_NO_CAMERA: "No camera",
    Msg.IMAGE_TITLE_NO_CAMERA: "{title} — no camera",
    Msg.PAGE_LOGIN_TITLE: "Vigie — Who are you?",

    # the registre file itself (bot/audit.py)
    Msg.AUDIT_EXPORT_DRILL: "EXERCISE",
    Msg.AUDIT_NOT_A_REGISTRE: "{path}: not a Vigie audit log",
    Msg.AUDIT_UNREADABLE_RECORD: "record {seq} unreadable ({error}); run `audit verify`",

    # the registre's grouped refusals (bot/refusals.py)
    Msg.OTHER_CLIENTS: "other clients",
}

REASONS: Mapping[Why, str] = {
    Why.UNKNOWN_PERSON: "You are not on the convention's roster.",
    Why.NOT_GRAVE: "'{shown}' is not a grave-event category of the convention. Accepted: {accepted}.",
    Why.NOT_INITIATOR: "Your role ({role}) may not trigger access.",
    Why.INITIATOR_OK: "{org} by {name}",
    Why.UNKNOWN_SOURCE: "Unknown alarm source.",
    Why.UNMAPPED_ALARM: "Alarm type '{alarm_type}' is not mapped for source {source}.",
    Why.ALARM_OK: "alarm {alarm_type} from {source}",
    Why.GRAVE_CATEGORY: "grave category: {category}",
    Why.AUTHORISATION_LAPSED: "Prefectoral authorisation {reference} expired on {expires:%Y-%m-%d}: "
    "no transmission is possible.",
    Why.JOINED: "joined incident {incident}",
    Why.NEEDS_CONFIRMATION: "confirmation required",
    Why.NOT_PENDING: "No alert is waiting for confirmation.",
    Why.NOT_ACTIVE: "No access is open.",
    Why.CONFIRM_WINDOW_LAPSED: "The confirmation window has lapsed.",
    Why.SELF_CONFIRM: "Confirmation must come from someone other than the initiator.",
    Why.COUNTERPARTY_REQUIRED: "Confirmation must come from the other party to the convention.",
    Why.NOT_ALLOWED_CONFIRM: "Your role may not confirm an alert.",
    Why.NOT_ALLOWED_EXTEND: "Your role may not extend access.",
    Why.NOT_ALLOWED_END: "Your role may not end access.",
    Why.AT_MAXIMUM: "The convention's maximum duration is already reached.",
    Why.BAD_EXTENSION: "The extension must be a positive number of minutes.",
    Why.WRONG_ROOM: "This room is not part of the convention.",
    Why.NOT_DRILL_ROLE: "Your role may not start a drill.",
    Why.NO_SUCH_INCIDENT: "No open incident has that number.",
    Why.RECORDING_REFUSED: "Vigie records nothing: police see live video only. A recording can only be extracted on a "
    "judicial requisition addressed to the venue (security chief), which keeps images at most one month (CSI L252-5). "
    "Your request has been written to the registre.",
    Why.CAMERA_CONTROL_REFUSED: "Camera control is not available: the convention only allows it in a declared "
    "catastrophe.",
    Why.NOT_UNLOCK_ROLE: "Your role may not unlock a sign-in.",
    Why.UNLOCK_WHO: "Unlock whom? /unlock <id or RIO> of a person on the convention's roster.",
}

ORGS: Mapping[Org, str] = {
    Org.VENUE: "venue request",
    Org.POLICE: "police initiative",

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
    Kind.LOGIN_LOCKED: "Device locked for this person",
    Kind.LOGIN_UNLOCKED: "Sign-in unlocked",
    Kind.PASSWORD_GUESSING: "Password under attack",
    Kind.STREAM_OPENED: "Stream opened",
    Kind.STREAM_CLOSED: "Stream closed",
    Kind.ROOM_ERROR: "Room error",
    Kind.LATE_COMMAND: "Command received late",
    Kind.AUTHORISATION_WARNING: "Authorisation expiry warning",
    Kind.WEBHOOK_REFUSED: "Webhook refused",
    Kind.REFUSALS: "Grouped refusals (client, minute)",
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
