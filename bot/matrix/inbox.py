"""What people say in the Matrix rooms, turned into desk calls: commands, ✅ reactions, strangers.

Events come from the sync loop through a queue consumed by one owned task, in order, so a slow
reply never holds up the sync and two commands never race. Only configured rooms and people on
the roster (by Matrix user id) are served; anyone else gets a short refusal or silence (the
``strangers`` setting) and a line in the registre. Ordinary chat is not a command and is left
alone. A pending alarm is confirmed by ``/confirm`` (a reply to the confirmation message names
its incident) or by a ✅ reaction on that message.

What was said while Vigie was away is not lost: after the events of each sync, the sync loop
queues the sync's position; the inbox saves it (``inbox-position.json`` in the Matrix store)
once it has handled everything before it, and the first sync after a start resumes from there.
In a room shared with other venues (venues.py), a command is first addressed: another venue's is
left alone, a venue-less one is answered by one instance with the venues to choose from.
Commands typed long ago go through ``commands.run_late`` (``/fin`` applied, a stale ``/alerte``
answered with a request to resend, all in the registre).

Replies and the stranger announcement leave from tasks of their own, retried until
``REPLY_DEADLINE``; one that cannot be delivered (or is still pending at shutdown) is written to
the registre as a ``room_error`` and logged, never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nio

from .. import commands
from ..desk_port import DeskPort
from ..kinds import Kind
from ..locales import Msg, t
from ..messages import refusal
from ..policy.incident import State
from ..policy.reasons import UNKNOWN_PERSON, WRONG_ROOM
from ..policy.venues import PER_VENUE, Action, RoomVenues, first_word
from ..rooms import ReplyTasks
from ..settings import MatrixCfg
from .room import plain_notice
from .venues import Sharing

logger = logging.getLogger(__name__)

# Reaction keys that mean "confirm", after dropping emoji variation selectors (✔️ → ✔).
CONFIRM_KEYS = frozenset({"✅", "✔", "☑"})
REPLY_TIMEOUT = 30.0  # one attempt
REPLY_DEADLINE = 300.0  # retried until then, then reported
POSITION_FILE = "inbox-position.json"
STANDBY = 10.0  # seconds per venue before this one, before answering a venue-less command they left unanswered
_FALLBACK = re.compile(r"\A(?:>[^\n]*\n)+\n?")

SendNotice = Callable[[str, dict[str, Any], str], Awaitable[str]]
Lookup = Callable[[str, str], "str | None"]


def strip_reply_fallback(body: str) -> str:
    """A reply's body may start with the quoted message ("> <@x> …" lines); the command follows."""
    return _FALLBACK.sub("", body, count=1)


class Inbox:
    def __init__(self, desk: DeskPort, cfg: MatrixCfg, own_user: str, send: SendNotice,
                 confirmations: Lookup, encrypted: Callable[[str], bool], store_dir: Path | None = None,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sharing: Sharing | None = None, standby: float = STANDBY) -> None:
        self._desk = desk
        self._sharing = sharing
        self._standby = standby
        self._cfg = cfg
        self._own = own_user
        self._send = send
        self._confirmations = confirmations
        self._encrypted = encrypted
        self._store_dir = store_dir
        self._wall_clock = wall_clock
        # No bound: dropping a command because many arrived at once would lose it silently.
        self._queue: asyncio.Queue[tuple[str | None, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._replies = ReplyTasks()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="matrix-inbox")

    async def stop(self, timeout: float = 1.0) -> None:
        """Stop reading; replies under way go on (the client is still open for the outboxes' drain)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=timeout)
            self._task = None

    async def abandon_replies(self, timeout: float = 1.0) -> None:
        """At close: the replies still not delivered are cancelled, each reporting itself."""
        await self._replies.abandon(timeout)

    # ---------- the position in the rooms' history ----------

    def saved_position(self) -> str | None:
        """The sync token after the last event this inbox finished handling (None: never saved)."""
        if self._store_dir is None:
            return None
        try:
            data = json.loads((self._store_dir / POSITION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        since = data.get("since") if isinstance(data, dict) else None
        return since if isinstance(since, str) and since else None

    def put_position(self, since: str) -> None:
        """Everything queued before this is handled: ``since`` may be saved once it is."""
        self._queue.put_nowait((None, since))

    def forget_position(self) -> None:
        if self._store_dir is not None:
            (self._store_dir / POSITION_FILE).unlink(missing_ok=True)

    def _save_position(self, since: str) -> None:
        if self._store_dir is None:
            return
        path = self._store_dir / POSITION_FILE
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"since": since}), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:  # the next sync saves it again; a restart may re-read a few events
            logger.warning("matrix: could not save the inbox position: %s", exc)

    # ---------- events ----------

    def put(self, room_id: str, event: Any) -> None:
        self._queue.put_nowait((room_id, event))

    async def _run(self) -> None:
        while True:
            room_id, event = await self._queue.get()
            if room_id is None:
                self._save_position(str(event))
                continue
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
        reply_to = (relates.get("m.in_reply_to") or {}).get("event_id")
        venues = self._sharing.view(room_id) if self._sharing is not None else RoomVenues(None)
        replied = None
        named = first_word(cmd.rest)[0] in venues.venues()
        if venues.shared and reply_to and not named and self._sharing is not None:  # whose message, then
            replied = await self._sharing.replied_venue(room_id, reply_to)
        action, cmd = commands.addressed(cmd, venues, replied)
        if action is Action.IGNORE and not named and replied is None and cmd.name not in PER_VENUE and venues.before():
            # Venue-less: a venue before this one answers; stand by in case its Vigie is stopped.
            self._replies.spawn(self._stand_by(room_id, event, cmd, venues), f"matrix-standby:{room_id}")
            return
        if action is Action.IGNORE or (action is Action.STATUS_LINE and venues.answerer() != venues.own
                                       and self._desk.person_by_matrix(event.sender) is None):
            return  # another venue's command (or its answer to a stranger's venue-less /statut)
        if await self._refused_stranger(room_id, event.sender, cmd.name, event.event_id):
            return
        if action is not Action.ACT:
            await self._reply(room_id, self._venues_answer(action, cmd, venues, event.sender, room_id),
                              f"reply:{event.event_id}", event.event_id)
            return
        if cmd.name == "confirm" and not cmd.args and reply_to:
            incident = self.incident_of(room_id, reply_to)
            if incident is not None:
                cmd = commands.Command("confirm", (incident,), incident, cmd.word)
        person = self._desk.person_by_matrix(event.sender)
        text = await commands.run_late(self._desk, cmd, person, self._room_key(room_id), self._lang(),
                                       self._sent_at(event), self._wall_clock())
        # Let the outboxes woken by the command put their link on the wire first: Synapse persists one
        # room's events one at a time, and the link is what the officers are waiting for.
        await asyncio.sleep(0)
        await self._reply(room_id, text, f"reply:{event.event_id}", event.event_id)

    async def _stand_by(self, room_id: str, event: nio.RoomMessageText, cmd: commands.Command,
                        venues: RoomVenues) -> None:
        """Answer a venue-less command after this venue's turn if none of the venues before it did."""
        before = venues.before()
        await asyncio.sleep(self._standby * len(before))
        if self._sharing is None or self._sharing.answered_since(room_id, event.event_id, before):
            return
        logger.warning("matrix: %s did not answer a venue-less command in %s: answering", ", ".join(before), room_id)
        if await self._refused_stranger(room_id, event.sender, cmd.name, event.event_id):
            return
        text = self._venues_answer(Action.LIST, cmd, venues, event.sender, room_id) + "\n" + t(
            self._lang(), Msg.VENUES_SILENT, venues=", ".join(before))
        await self._deliver(room_id, text, f"reply:{event.event_id}", event.event_id)

    def _venues_answer(self, action: Action, cmd: commands.Command, venues: RoomVenues, sender: str,
                       room_id: str) -> str:
        """A venue-less command in a shared room: this venue's /statut line, or the venues to choose
        (that one in the registre of the one venue answering: a roster person's command, refused)."""
        lang = self._lang()
        if action is Action.STATUS_LINE:
            return self._desk.title(lang) + self._desk.status(brief=True).text(lang)
        person = self._desk.person_by_matrix(sender)
        self._desk.record(Kind.REFUSAL, actor=person.id if person else sender, details={
            "reason": "venue_not_named", "room": self._room_key(room_id), "command": cmd.name,
            "venues": list(venues.venues())})
        return self._desk.title(lang) + commands.venue_choices(lang, cmd, venues)

    async def _reaction(self, room_id: str, event: nio.ReactionEvent) -> None:
        if event.key.replace("\ufe0f", "") not in CONFIRM_KEYS:
            return
        incident = self.incident_of(room_id, event.reacts_to)
        current = self._desk.incident(incident) if incident is not None else None
        if current is None or current.state is not State.PENDING:
            return  # a ✅ on anything but a pending request (or after another's confirmation) is just chat
        if await self._refused_stranger(room_id, event.sender, "confirm", event.reacts_to):
            return
        person = self._desk.person_by_matrix(event.sender)
        cmd = commands.Command("confirm", (current.id,), current.id)
        text = await commands.run_late(self._desk, cmd, person, self._room_key(room_id), self._lang(),
                                       self._sent_at(event), self._wall_clock())
        await self._reply(room_id, text, f"reply:{event.event_id}", event.reacts_to)

    async def _member(self, room_id: str, event: nio.RoomMemberEvent) -> None:
        if event.membership != "join" or event.prev_membership == "join":
            return  # a profile change, not an arrival
        user = event.state_key
        if user == self._own or room_id not in self._cfg.rooms or self._desk.person_by_matrix(user) is not None:
            return
        if self._sharing is not None and self._sharing.is_venue_bot(room_id, user):
            logger.info("matrix: %s, another venue's Vigie declared in %s, joined", user, room_id)
            return
        self._desk.refuse_stranger(user, self._room_key(room_id), "not_on_roster", event="joined_room")
        warning = Msg.STRANGER_ENCRYPTED if self._encrypted(room_id) else Msg.STRANGER_CLEAR
        text = t(self._lang(), warning, user=user)
        await self._reply(room_id, text, f"member:{event.event_id}", None)

    async def _refused_stranger(self, room_id: str, sender: str, what: str, reply_to: str) -> bool:
        if room_id not in self._cfg.rooms:
            reason = WRONG_ROOM
        elif self._desk.person_by_matrix(sender) is None:
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
            if self._desk.is_confirmation_request(inc.id, room_key, event_id):
                return inc.id
        return self._confirmations(room_id, event_id)

    def _sent_at(self, event: Any) -> datetime:
        ts = getattr(event, "server_timestamp", None)
        return datetime.fromtimestamp(ts / 1000, UTC) if isinstance(ts, int) and ts > 0 else self._wall_clock()

    async def _reply(self, room_id: str, text: str, key: str, reply_to: str | None) -> None:
        """Send from a task of its own (see the module doc); the inbox goes on with the next event."""
        self._replies.spawn(self._deliver(room_id, text, key, reply_to), f"matrix-reply:{room_id}")

    async def _deliver(self, room_id: str, text: str, key: str, reply_to: str | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REPLY_DEADLINE
        delay = 0.5
        error = "stopping"
        try:
            while True:
                try:
                    await asyncio.wait_for(self._send(room_id, plain_notice(text, reply_to), key), REPLY_TIMEOUT)
                    return
                except Exception as exc:  # the same key each time: Synapse never posts it twice
                    error = f"{type(exc).__name__}: {exc}"[:300]
                if loop.time() + delay > deadline:
                    break
                logger.info("matrix: reply in %s not delivered yet (%s), again in %.1fs", room_id, error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        except asyncio.CancelledError:
            self._report(room_id, text, error)
            raise
        self._report(room_id, text, error)

    def _report(self, room_id: str, text: str, error: str) -> None:
        logger.error("matrix: reply in %s NOT delivered (%s): %s", room_id, error, text[:80])
        with contextlib.suppress(Exception):  # reporting must not mask the cause in the log
            self._desk.record(Kind.ROOM_ERROR, actor="system", details={
                "room": self._room_key(room_id), "operation": "reply", "error": error, "text": text[:200]})
