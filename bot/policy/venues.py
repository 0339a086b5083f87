"""Which venue a command in a chat room is for: the decision each instance takes on its own.

Several venues (the Zénith, a stadium, an arena) each run their own Vigie, and the police duty
officers have one room for all of them. A command there must name its venue — ``/alerte zenith
attaque_armee Hall A``, ``/fin zenith`` — or reply to a message of that venue's Vigie. Each
instance decides alone, from the same facts (the venues sharing the room, those present in it,
the words typed, the message replied to), so no coordination is needed:

- a command naming this venue (first word, or a reply to this venue's message) is acted on, with
  the venue's word removed and the rest of the line untouched;
- a command naming another venue is ignored;
- a command naming no venue is acted on by nobody, and answered by one instance only: the one
  with the lowest code among the venues present in the room (every instance computes the same);
  the next ones stand by, each answering after its turn if every one before it stayed silent
  (a Vigie that is stopped stays a member of the room);
- ``/statut`` naming no venue is answered by every instance with its one line (one per venue);
- in a room this venue has to itself, a command needs no venue (naming it is allowed).

Pure: stdlib only, no I/O (tested with hypothesis in tests/core/test_venues.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Action(StrEnum):
    ACT = "act"  # run the command here (``rest`` is the line without the venue's word)
    IGNORE = "ignore"  # another venue's command, or a venue-less one another instance answers
    LIST = "list"  # answer with the venues to choose from; act on nothing
    STATUS_LINE = "status_line"  # a venue-less /statut in a shared room: this venue's one line


# Commands a venue-less line may ask of every instance: each answers for itself, once.
PER_VENUE = frozenset({"status"})


@dataclass(frozen=True)
class RoomVenues:
    """What one instance knows of a room: its own code, the other venues declared there, and the
    venues whose instance is in the room now (its own always is: it is reading the room)."""

    own: str | None
    others: frozenset[str] = frozenset()
    present: frozenset[str] = frozenset()

    @property
    def shared(self) -> bool:
        return bool(self.others - {self.own})

    def venues(self) -> tuple[str, ...]:
        """Every venue of the room, sorted (the list shown to the officer)."""
        return tuple(sorted(self.others | ({self.own} if self.own else set())))

    def ranked(self) -> tuple[str, ...]:
        """The venues present, lowest code first: the order in which they answer a venue-less command."""
        return tuple(sorted((self.present & self.others) | ({self.own} if self.own else set())))

    def answerer(self) -> str | None:
        """The venue whose instance answers venue-less commands: the lowest code present."""
        ranked = self.ranked()
        return ranked[0] if ranked else None

    def before(self) -> tuple[str, ...]:
        """The venues that answer before this one: if all of them stay silent (their Vigie stopped
        but still a member of the room), this one answers instead, after waiting its turn."""
        ranked = self.ranked()
        return ranked[:ranked.index(self.own)] if self.own in ranked else ranked


class Addressed(NamedTuple):
    action: Action
    rest: str


def first_word(rest: str) -> tuple[str, str]:
    """The first word (lower-cased) and what follows it, stripped; ("", "") for an empty line."""
    parts = rest.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0].lower(), parts[1].strip() if len(parts) > 1 else ""


def address(room: RoomVenues, command: str, rest: str, replied_venue: str | None = None) -> Addressed:
    """What this instance does with ``/command rest`` (``replied_venue``: whose message it replies to)."""
    word, after = first_word(rest)
    if room.own is not None and word == room.own:
        return Addressed(Action.ACT, after)
    if not room.shared:
        return Addressed(Action.ACT, rest.strip())
    if word in room.others:
        return Addressed(Action.IGNORE, rest.strip())
    if replied_venue is not None:
        if replied_venue == room.own:
            return Addressed(Action.ACT, rest.strip())
        return Addressed(Action.IGNORE, rest.strip())
    if command in PER_VENUE:
        return Addressed(Action.STATUS_LINE, rest.strip())
    if room.answerer() == room.own:
        return Addressed(Action.LIST, rest.strip())
    return Addressed(Action.IGNORE, rest.strip())

