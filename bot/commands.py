"""The chat commands, shared by every room: parse a line, call the desk, return the reply text.

Telegram, Matrix and the console all go through ``parse`` and ``run``, so the same words do
the same thing everywhere. French aliases: /alerte, /confirmer, /statut, /prolonger, /fin,
/exercice, /aide, /enregistrer, /debloquer.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from .desk import Desk
from .policy.convention import Person
from .policy.reasons import Refused

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
}
# Commands registered with the chat apps' menus: (name, French, English).
MENU = (
    ("alert", "Déclencher l'accès vidéo (événement grave)", "Open video access (grave event)"),
    ("confirm", "Confirmer une alerte en attente", "Confirm a pending alert"),
    ("status", "État de l'accès, des salons et caméras", "Access, rooms and cameras status"),
    ("extend", "Prolonger l'accès (minutes)", "Extend access (minutes)"),
    ("end", "Mettre fin à l'accès", "End access"),
    ("drill", "Lancer un exercice", "Start a drill"),
    ("unlock", "Débloquer la connexion d'une personne", "Unlock a person's sign-in"),
    ("help", "Aide", "Help"),
)
MAX_LINE = 1000
_CMD = re.compile(r"^/([A-Za-z_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    rest: str


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
        return Command("unknown", (word,), rest)
    return Command(name, tuple(rest.split()), rest)


def help_text(lang: str, desk: Desk) -> str:
    cats = ", ".join(c.code for c in desk.conv.categories)
    if lang == "en":
        return (
            "Vigie — police live view of the venue's cameras under the convention.\n"
            f"/alert <category> [details] — open access. Categories: {cats}\n"
            "/confirm [ID] — confirm a pending alert\n/status — state of access, rooms and cameras\n"
            "/extend <minutes> [ID] — extend access\n/end [ID] — end access now\n"
            "/drill [category] — start an exercise (marked EXERCISE)\n"
            "/unlock <person> — lift a sign-in lock (id or RIO)\n/help — this help"
        )
    return (
        "Vigie — accès de la police aux caméras du site, selon la convention.\n"
        f"/alerte <catégorie> [précisions] — ouvrir l'accès. Catégories : {cats}\n"
        "/confirmer [N°] — confirmer une alerte en attente\n/statut — état de l'accès, des salons et caméras\n"
        "/prolonger <minutes> [N°] — prolonger l'accès\n/fin [N°] — mettre fin à l'accès\n"
        "/exercice [catégorie] — lancer un exercice (marqué EXERCICE)\n"
        "/debloquer <personne> — lever un blocage de connexion (identifiant ou RIO)\n/aide — cette aide"
    )


def _categories(lang: str, desk: Desk) -> str:
    lines = [f"  {c.code} — {c.label(lang)}" for c in desk.conv.categories]
    head = "Which category? /alert <category> [details]:" if lang == "en" else "Quelle catégorie ? /alerte <catégorie> [précisions] :"
    return "\n".join([head, *lines])


async def run(desk: Desk, cmd: Command, person: Person | None, room: str, lang: str) -> str:
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
                return ("Usage: /extend <minutes> [ID], e.g. /extend 30" if lang == "en"
                        else "Usage : /prolonger <minutes> [N°], par exemple /prolonger 30")
            return (await desk.extend(person, room, minutes, cmd.args[1] if len(cmd.args) > 1 else None)).text(lang)
        if cmd.name == "end":
            return (await desk.end(person, room, cmd.args[0] if cmd.args else None)).text(lang)
        if cmd.name == "status":
            if person is None:
                desk.refuse_stranger("unknown", room, "unknown_person", command="status")
                return "You are not on the convention's roster." if lang == "en" else "Vous n'êtes pas sur la liste de la convention."
            return desk.status().text(lang)
        if cmd.name == "record":
            return (await desk.record_request(person, room, cmd.rest)).text(lang)
        if cmd.name == "unlock":
            return (await desk.unlock(person, room, cmd.args[0] if cmd.args else "")).text(lang)
        if cmd.name == "camera":
            return (await desk.camera_control(person, room, cmd.rest)).text(lang)
        return (f"Unknown command /{cmd.args[0]}. /help lists the commands." if lang == "en"
                else f"Commande inconnue /{cmd.args[0]}. /aide donne la liste des commandes.")
    except Refused as r:
        return ("Refused: " if lang == "en" else "Refusé : ") + r.reason.text(lang)


def _minutes(word: str) -> int | None:
    m = re.fullmatch(r"(\d{1,4})(?:min|m)?", word.strip().lower())
    return int(m.group(1)) if m else None
