"""The chat commands, shared by every room: parse a line, call the desk, return the reply text.

Telegram, Matrix and the console all go through ``parse`` and ``run``, so the same words do
the same thing everywhere. French aliases: /alerte, /confirmer, /statut, /prolonger, /fin,
/exercice, /aide, /enregistrer, /debloquer, /zone, /catastrophe, /fin_catastrophe.

In a room shared by several venues' Vigie, ``addressed`` says whether a command is for this venue
(bot/policy/venues.py) and strips the venue's word; ``venue_choices`` answers one naming none.

Commands that arrive late (typed while Vigie was stopped or cut off, read on its return) go
through ``run_late``: ``/fin`` is always applied (ending access is never wrong), reading
commands are answered, and anything that would open, confirm or extend access more than
``LATE_WINDOW`` after it was typed is not applied: the person is asked to send it again, so
nobody opens access on a situation that may be over. Each late command is in the registre.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .desk_port import DeskPort
from .kinds import Kind
from .locales import Msg, reason_text, t
from .messages import refusal
from .policy.convention import Person
from .policy.reasons import UNKNOWN_PERSON, Refused
from .policy.venues import Action, RoomVenues, address, first_word

logger = logging.getLogger(__name__)

ALIASES = {
    "alert": "alert", "alerte": "alert",
    "confirm": "confirm", "confirmer": "confirm",
    "status": "status", "statut": "status", "etat": "status",
    "extend": "extend", "prolonger": "extend",
    "end": "end", "fin": "end",
    "drill": "drill", "exercice": "drill",
    "help": "help", "aide": "help", "start": "help",
    "record": "record", "enregistrer": "record",
    "camera": "camera", "ptz": "camera",
    "unlock": "unlock", "debloquer": "unlock",
    "zone": "zone", "focus": "zone",
    "catastrophe": "catastrophe", "confirmer_catastrophe": "catastrophe", "confirm_catastrophe": "catastrophe",
    "fin_catastrophe": "end_catastrophe", "end_catastrophe": "end_catastrophe",
}
# Commands registered with the chat apps' menus: (name, description).
MENU = (
    ("alert", Msg.MENU_ALERT),
    ("confirm", Msg.MENU_CONFIRM),
    ("status", Msg.MENU_STATUS),
    ("extend", Msg.MENU_EXTEND),
    ("end", Msg.MENU_END),
    ("drill", Msg.MENU_DRILL),
    ("zone", Msg.MENU_ZONE),
    ("unlock", Msg.MENU_UNLOCK),
    ("catastrophe", Msg.MENU_CATASTROPHE),
    ("end_catastrophe", Msg.MENU_END_CATASTROPHE),
    ("help", Msg.MENU_HELP),
)
MAX_LINE = 1000
_CMD = re.compile(r"^/([A-Za-z_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    rest: str
    # The word as typed ("alerte", "alert"), to quote it back; not part of the command's meaning.
    word: str = field(default="", compare=False)


def parse(text: str, bot_username: str | None = None) -> Command | None:
    """A command, or None when the line is not one (ordinary chat is ignored)."""
    line = text.strip()[:MAX_LINE]
    m = _CMD.match(line)
    if m is None:
        return None
    word, target, rest = m.group(1).lower(), m.group(2), (m.group(3) or "").strip()
    if target and bot_username and target.lower() != bot_username.lower():
        return None  # addressed to another bot in the group
    name = ALIASES.get(word)
    if name is None:
        return Command("unknown", (word,), rest, word)
    return Command(name, tuple(rest.split()), rest, word)


def help_text(lang: str, desk: DeskPort) -> str:
    return t(lang, Msg.HELP, categories=", ".join(c.code for c in desk.categories()))


def _categories(lang: str, desk: DeskPort) -> str:
    lines = [f"  {c.code} — {c.label(lang)}" for c in desk.categories()]
    return "\n".join([t(lang, Msg.WHICH_CATEGORY), *lines])


def addressed(cmd: Command, room: RoomVenues, replied_venue: str | None = None) -> tuple[Action, Command]:
    """Whether this venue acts on ``cmd`` in ``room`` (bot/policy/venues.py), and the command without
    the venue's word (the rest of the line as typed, so a zone after the category is kept)."""
    action, rest = address(room, cmd.name, cmd.rest, replied_venue)
    if action is not Action.ACT or rest == cmd.rest:
        return action, cmd
    args = cmd.args[:1] if cmd.name == "unknown" else tuple(rest.split())
    return action, Command(cmd.name, args, rest, cmd.word)


def venue_choices(lang: str, cmd: Command, room: RoomVenues) -> str:
    """The answer to a venue-less command in a shared room: the venues, each with its command to copy."""
    word = cmd.word or cmd.name
    examples = "\n".join(f"  /{' '.join(x for x in (word, v, cmd.rest) if x)}" for v in room.venues())
    return t(lang, Msg.VENUES_CHOOSE, venues=", ".join(room.venues()), examples=examples)


def own_room(cmd: Command, own: str | None, others: frozenset[str]) -> tuple[Command, str | None]:
    """A command in a room of this venue's (officers copy lines from the shared room): this venue's
    own code as first word is dropped; another venue's code gives that venue, and nothing acts."""
    word = first_word(cmd.rest)[0]
    if own is not None and word == own:
        return addressed(cmd, RoomVenues(own))[1], None
    return cmd, (word if word and word != own and word in others else None)


async def run(desk: DeskPort, cmd: Command, person: Person | None, room: str, lang: str) -> str:
    """Execute a parsed command; the answer starts with the venue's title (``[zenith] ``)."""
    own, others = desk.venues()
    cmd, other = own_room(cmd, own, others)
    if other is not None:
        desk.record(Kind.REFUSAL, actor=person.id if person else "unknown", details={
            "reason": "other_venue", "room": room, "command": cmd.name, "venue": other})
        return desk.title(lang) + t(lang, Msg.VENUE_OTHER_ROOM, own=own or "—", other=other)
    return desk.title(lang) + await _run(desk, cmd, person, room, lang)


async def _run(desk: DeskPort, cmd: Command, person: Person | None, room: str, lang: str) -> str:
    """Execute a parsed command; domain refusals become their user-visible text."""
    try:
        if cmd.name == "help":
            return help_text(lang, desk)
        if cmd.name == "alert":
            if not cmd.args:
                return _categories(lang, desk)
            details = cmd.rest[len(cmd.args[0]):].strip()
            return (await desk.alert(person, room, cmd.args[0].lower(), details)).text(lang)
        if cmd.name == "drill":
            category = cmd.args[0].lower() if cmd.args else None
            details = cmd.rest[len(cmd.args[0]):].strip() if cmd.args else ""
            return (await desk.alert(person, room, category, details, drill=True)).text(lang)
        if cmd.name == "confirm":
            return (await desk.confirm(person, room, cmd.args[0] if cmd.args else None)).text(lang)
        if cmd.name == "extend":
            minutes = _minutes(cmd.args[0]) if cmd.args else 30
            if minutes is None:
                return t(lang, Msg.EXTEND_USAGE)
            return (await desk.extend(person, room, minutes, cmd.args[1] if len(cmd.args) > 1 else None)).text(lang)
        if cmd.name == "end":
            return (await desk.end(person, room, cmd.args[0] if cmd.args else None)).text(lang)
        if cmd.name == "status":
            if person is None:
                desk.refuse_stranger("unknown", room, "unknown_person", command="status")
                return reason_text(UNKNOWN_PERSON, lang)
            return desk.status().text(lang)
        if cmd.name == "record":
            return (await desk.record_request(person, room, cmd.rest)).text(lang)
        if cmd.name == "unlock":
            return (await desk.unlock(person, room, cmd.args[0] if cmd.args else "")).text(lang)
        if cmd.name == "zone":
            return (await desk.refocus(person, room, cmd.rest)).text(lang)
        if cmd.name == "catastrophe":
            return (await desk.declare_catastrophe(person, room)).text(lang)
        if cmd.name == "end_catastrophe":
            return (await desk.end_catastrophe(person, room)).text(lang)
        if cmd.name == "camera":
            return (await desk.camera_control(person, room, cmd.rest)).text(lang)
        return t(lang, Msg.UNKNOWN_COMMAND, command=cmd.args[0])
    except Refused as r:
        return refusal(r.reason, lang)


LATE_WINDOW = timedelta(minutes=2)
# Applied whenever they were typed: ending access is always safe, the others only read.
ALWAYS_APPLIED = frozenset({"end", "end_catastrophe", "status", "help", "unknown"})


async def run_late(desk: DeskPort, cmd: Command, person: Person | None, room: str, lang: str,
                   sent_at: datetime, now: datetime) -> str:
    """``run`` for a command typed at ``sent_at``: stale ones are refused with a request to resend."""
    late = now - sent_at
    if late <= LATE_WINDOW or person is None:
        return await run(desk, cmd, person, room, lang)
    applied = cmd.name in ALWAYS_APPLIED
    desk.record(Kind.LATE_COMMAND, actor=person.id, details={
        "room": room, "command": cmd.name, "sent_at": sent_at.isoformat(),
        "late_seconds": int(late.total_seconds()), "applied": applied})
    if applied:
        return await run(desk, cmd, person, room, lang)
    minutes = max(1, int(late.total_seconds() // 60))
    return desk.title(lang) + t(lang, Msg.LATE_NOT_APPLIED, command=cmd.word or cmd.name, minutes=minutes)


def _minutes(word: str) -> int | None:
    m = re.fullmatch(r"(\d{1,4})(?:min|m)?", word.strip().lower())
    return int(m.group(1)) if m else None
