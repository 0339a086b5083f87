"""A police room shared with other venues' Vigie: what this instance knows of it.

The rooms shared, and the other venues' codes and bot accounts, are declared in ``vigie.toml``
(``[[matrix.shared]]``). From that and the room's members (nio's room state: the same for every
instance) ``view`` gives the pure core its ``RoomVenues``; ``replied_venue`` says whose message
a reply answers (its sender, asked of the homeserver: the sender of an encrypted event is in
clear, so no instance needs another's room keys). The decision itself is bot/policy/venues.py.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection

from ..policy.venues import RoomVenues
from ..settings import MatrixCfg

logger = logging.getLogger(__name__)

Members = Callable[[str], Collection[str]]
SenderOf = Callable[[str, str], Awaitable["str | None"]]


class Sharing:
    def __init__(self, venue: str | None, cfg: MatrixCfg, members: Members, sender_of: SenderOf) -> None:
        self.venue = venue
        self._cfg = cfg
        self._members = members
        self._sender_of = sender_of

    def view(self, room_id: str) -> RoomVenues:
        others = self._cfg.shared_with(room_id)
        joined = set(self._members(room_id))
        present = frozenset(code for code, user in others.items() if user in joined)
        return RoomVenues(self.venue, frozenset(others), present)

    def is_venue_bot(self, room_id: str, user_id: str) -> bool:
        """Another venue's Vigie, declared in this room (not a stranger to announce)."""
        return user_id in self._cfg.shared_with(room_id).values()

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
        return next((code for code, user in self._cfg.shared_with(room_id).items() if user == sender), None)
