"""What people say in the Matrix rooms, turned into desk calls: commands, ✅ reactions, strangers.

Events come from the sync loop through a queue consumed by one owned task, in order, so a slow
reply never holds up the sync and two commands never race. Only configured rooms and people on
the roster (by Matrix user id) are served; anyone else gets a short refusal or silence (the
``strangers`` setting) and a line in the registre. Ordinary chat is not a command and is left
alone. A pending alarm is confirmed by ``/confirm`` (a reply to the confirmation message names
its incident) or by a ✅ reaction on that message.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import nio

from .. import commands
from ..desk import UNKNOWN_PERSON, WRONG_ROOM, Desk
from ..locales import Msg, t
from ..messages import refusal
from ..policy.incident import State
from ..settings import MatrixCfg
from .room import plain_notice

logger = logging.getLogger(__name__)

# Reaction keys that mean "confirm", after dropping emoji variation selectors (✔️ → ✔).
CONFIRM_KEYS = frozenset({"✅", "✔", "☑"})
REPLY_TIMEOUT = 30.0
_QUEUE_MAX = 1000
_FALLBACK = re.compile(r"\A(?:>[^\n]*\n)+\n?")

SendNotice = Callable[[str, dict[str, Any], str], Awaitable[str]]
Lookup = Callable[[str, str], "str | None"]


def strip_reply_fallback(body: str) -> str:
    """A reply's body may start with the quoted message ("> <@x> …" lines); the command follows."""
    return _FALLBACK.sub("", body, count=1)


class Inbox:
    def __init__(self, desk: Desk, cfg: MatrixCfg, own_user: str, send: SendNotice,
                 confirmations: Lookup, encrypted: Callable[[str], bool]) -> None:
        self._desk = desk
        self._cfg = cfg
        self._own = own_user
        self._send = send
        self._confirmations = confirmations
        self._encrypted = encrypted
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(_QUEUE_MAX)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="matrix-inbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def put(self, room_id: str, event: Any) -> None:
        try:
            self._queue.put_nowait((room_id, event))
        except asyncio.QueueFull:
            logger.warning("matrix: inbox full, dropping %s in %s", type(event).__name__, room_id)

    async def _run(self) -> None:
        while True:
            room_id, event = await self._queue.get()
            try:
                await self.handle(room_id, event)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad event must not stop the room
                logger.exception("matrix: handling %s in %s failed", type(event).__name__, room_id)

    def _room_key(self, room_id: str) -> str:
        return f"matrix:{room_id}"

    def _lang(self) -> str:
        return self._cfg.language

    async def handle(self, room_id: str, event: Any) -> None:
        if getattr(event, "sender", None) == self._own:
            return
        if isinstance(event, nio.RoomMessageText):
            await self._text(room_id, event)
        elif isinstance(event, nio.ReactionEvent):
            await self._reaction(room_id, event)
        elif isinstance(event, nio.RoomMemberEvent):
            await self._member(room_id, event)
        elif isinstance(event, nio.MegolmEvent):
            logger.warning("matrix: undecryptable event %s from %s in %s (session %s)", event.event_id,
                           event.sender, room_id, event.session_id)

    async def _text(self, room_id: str, event: nio.RoomMessageText) -> None:
        relates = event.source.get("content", {}).get("m.relates_to") or {}
        if relates.get("rel_type") == "m.replace":
            return  # an edited line is not a new command
        cmd = commands.parse(strip_reply_fallback(event.body))
        if cmd is None:
            return
        if await self._refused_stranger(room_id, event.sender, cmd.name, event.event_id):
            return
        reply_to = (relates.get("m.in_reply_to") or {}).get("event_id")
        if cmd.name == "confirm" and not cmd.args and reply_to:
            incident = self.incident_of(room_id, reply_to)
            if incident is not None:
                cmd = commands.Command("confirm", (incident,), incident)
        person = self._desk.conv.by_matrix(event.sender)
        text = await commands.run(self._desk, cmd, person, self._room_key(room_id), self._lang())
        # Let the outboxes woken by the command put their link on the wire first: Synapse persists one
        # room's events one at a time, and the link is what the officers are waiting for.
        await asyncio.sleep(0)
        await self._reply(room_id, text, f"reply:{event.event_id}", event.event_id)

    async def _reaction(self, room_id: str, event: nio.ReactionEvent) -> None:
        if event.key.replace("\ufe0f", "") not in CONFIRM_KEYS:
            return
        incident = self.incident_of(room_id, event.reacts_to)
        current = self._desk.incident(incident) if incident is not None else None
        if current is None or current.state is not State.PENDING:
            return  # a ✅ on anything but a pending request (or after another's confirmation) is just chat
        if await self._refused_stranger(room_id, event.sender, "confirm", event.reacts_to):
            return
        person = self._desk.conv.by_matrix(event.sender)
        cmd = commands.Command("confirm", (current.id,), current.id)
        text = await commands.run(self._desk, cmd, person, self._room_key(room_id), self._lang())
        await self._reply(room_id, text, f"reply:{event.event_id}", event.reacts_to)

    async def _member(self, room_id: str, event: nio.RoomMemberEvent) -> None:
        if event.membership != "join" or event.prev_membership == "join":
            return  # a profile change, not an arrival
        user = event.state_key
        if user == self._own or room_id not in self._cfg.rooms or self._desk.conv.by_matrix(user) is not None:
            return
        self._desk.refuse_stranger(user, self._room_key(room_id), "not_on_roster", event="joined_room")
        warning = Msg.STRANGER_ENCRYPTED if self._encrypted(room_id) else Msg.STRANGER_CLEAR
        text = t(self._lang(), warning, user=user)
        await self._reply(room_id, text, f"member:{event.event_id}", None)

    async def _refused_stranger(self, room_id: str, sender: str, what: str, reply_to: str) -> bool:
        if room_id not in self._cfg.rooms:
            reason = WRONG_ROOM
        elif self._desk.conv.by_matrix(sender) is None:
            reason = UNKNOWN_PERSON
        else:
            return False
        self._desk.refuse_stranger(sender, self._room_key(room_id), reason.code, command=what)
        logger.info("matrix: refused %s from %s in %s (%s)", what, sender, room_id, reason.code)
        if self._cfg.strangers == "refuse":
            text = refusal(reason, self._lang())
            await self._reply(room_id, text, f"refusal:{room_id}:{reply_to}:{sender}", reply_to)
        return True

    def incident_of(self, room_id: str, event_id: str) -> str | None:
        """The incident a confirmation request (by its event id) is about, also after a restart."""
        room_key = self._room_key(room_id)
        for inc in self._desk.open_incidents():
            if self._desk.store.get_ref(inc.id, room_key, "confirm") == event_id:
                return inc.id
        return self._confirmations(room_id, event_id)

    async def _reply(self, room_id: str, text: str, key: str, reply_to: str | None) -> None:
        try:
            await asyncio.wait_for(self._send(room_id, plain_notice(text, reply_to), key), REPLY_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("matrix: reply in %s not delivered: %s: %s", room_id, type(exc).__name__, exc)
