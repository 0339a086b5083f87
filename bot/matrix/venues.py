"""A police room shared with other venues' Vigie: what this instance knows of it.

The rooms shared, and the other venues' codes and bot accounts, are declared in ``vigie.toml``
(``[[matrix.shared]]``). Discovery complements it: each Vigie marks its own membership of every
configured room with its code (``VENUE_KEY`` in its ``m.room.member`` state event: room state is
never encrypted, and every member's client holds the same), so an instance also knows the venues
whose Vigie sits in the room without being declared (a forgotten declaration, a venue added
later) and refuses venue-less commands there too. From both and the room's members ``view`` gives
the pure core its ``RoomVenues``; ``replied_venue`` says whose message a reply answers (its
sender, asked of the homeserver: the sender of an encrypted event is in clear, so no instance
needs another's room keys). The decision itself is bot/policy/venues.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from ..policy.venues import RoomVenues
from ..settings import MatrixCfg

logger = logging.getLogger(__name__)

VENUE_KEY = "fr.vigie.venue"  # in a Vigie's own m.room.member content: its venue's code
POSITIONS_KEPT = 2000
Members = Callable[[str], Collection[str]]
SenderOf = Callable[[str, str], Awaitable["str | None"]]


class Sharing:
    def __init__(self, venue: str | None, cfg: MatrixCfg, members: Members, sender_of: SenderOf) -> None:
        self.venue = venue
        self._cfg = cfg
        self._members = members
        self._sender_of = sender_of
        self._found: dict[str, dict[str, str]] = {}  # room → {bot user: venue code}, from member state
        # Timeline order, to tell whether a venue answered after a command: each event's position,
        # and the position of the last event each venue's Vigie posted (bounded: recent events only).
        self._seq = 0
        self._position: OrderedDict[str, int] = OrderedDict()
        self._last_from: dict[tuple[str, str], int] = {}

    def heard(self, room_id: str, event_id: str, sender: str) -> None:
        """An event of a room's timeline, in order (the sync loop calls this for every one)."""
        self._seq += 1
        self._position[event_id] = self._seq
        if len(self._position) > POSITIONS_KEPT:
            self._position.popitem(last=False)
        if self.is_venue_bot(room_id, sender):
            self._last_from[(room_id, sender)] = self._seq

    def answered_since(self, room_id: str, event_id: str, venues: Collection[str]) -> bool:
        """Whether one of ``venues``' Vigie posted in the room after ``event_id`` (unknown: assume so)."""
        at = self._position.get(event_id)
        others = self.others(room_id)
        return at is None or any(self._last_from.get((room_id, others.get(v, "")), 0) > at for v in venues)

    def member(self, room_id: str, user_id: str, membership: str, content: Mapping[str, Any]) -> None:
        """A member state event (from a sync's state or timeline): note or forget another venue's Vigie."""
        code = content.get(VENUE_KEY)
        found = self._found.setdefault(room_id, {})
        if membership == "join" and isinstance(code, str) and user_id != self._cfg.user_id and code != self.venue:
            if found.get(user_id) != code:
                logger.info("matrix: %s is the Vigie of venue %s in %s", user_id, code, room_id)
            found[user_id] = code
        else:
            found.pop(user_id, None)

    def others(self, room_id: str) -> dict[str, str]:
        """The other venues of ``room_id``, declared or found: venue code → their bot's Matrix id."""
        found = {code: user for user, code in self._found.get(room_id, {}).items()}
        return {**found, **self._cfg.shared_with(room_id)}

    def view(self, room_id: str) -> RoomVenues:
        others = self.others(room_id)
        joined = set(self._members(room_id))
        present = frozenset(code for code, user in others.items() if user in joined)
        return RoomVenues(self.venue, frozenset(others), present)

    def is_venue_bot(self, room_id: str, user_id: str) -> bool:
        """Another venue's Vigie in this room, declared or found (not a stranger to announce)."""
        return user_id in self.others(room_id).values()

    async def replied_venue(self, room_id: str, event_id: str) -> str | None:
        """The venue whose Vigie posted ``event_id`` (None: a person's message, or unknown)."""
        try:
            sender = await self._sender_of(room_id, event_id)
        except Exception as exc:  # the homeserver cannot say: the reply names no venue (nobody acts on it)
            logger.info("matrix: the sender of %s in %s is unknown (%s)", event_id, room_id, exc)
            return None
        if sender is None:
            return None
        if sender == self._cfg.user_id:
            return self.venue
        return next((code for code, user in self.others(room_id).items() if user == sender), None)


async def mark_rooms(client: Any, rooms: Collection[str], user_id: str, venue: str | None, timeout: float) -> None:
    """Put this venue's code in our own member event of each room of ``rooms`` we are in (a failure
    is logged: the next start tries again, and declared venues need no mark)."""
    for room_id in rooms:
        if venue is None:
            return
        try:
            await _mark(client, room_id, user_id, venue, timeout)
        except Exception as exc:  # the homeserver refused or is down: declared sharing still holds
            logger.warning("matrix: could not mark %s with venue %s: %s", room_id, venue, exc)


async def _mark(client: Any, room_id: str, user_id: str, venue: str, timeout: float) -> None:
    got = await asyncio.wait_for(client.room_get_state_event(room_id, "m.room.member", user_id), timeout)
    content = dict(getattr(got, "content", None) or {})
    if content.get(VENUE_KEY) == venue or content.get("membership") != "join":
        return
    content[VENUE_KEY] = venue
    put = await asyncio.wait_for(client.room_put_state(room_id, "m.room.member", content, state_key=user_id), timeout)
    if getattr(put, "event_id", None) is None:
        raise RuntimeError(f"{put}")
    logger.info("matrix: marked our membership of %s with venue %s", room_id, venue)
