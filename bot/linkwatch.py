"""The link in the rooms: posted, re-issued, owed after a restart, and tracked until delivered.

The desk posts the link when access opens and edits it with a fresh one periodically; at start,
a room that never got an open incident's link gets it posted (an edit would do nothing).

A room's link can be held up (Telegram flood wait, homeserver down). Its outbox keeps retrying
and the room shows as failing in /status and /healthz; once the link has been waiting for
``threshold`` (30 s by default), every other room is told, so someone can warn that room by
other means, and the registre says so. When the link finally arrives, the rooms are told again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .fanout import Fanout
from .kinds import Kind, Recorder
from .messages import Renderer
from .outbox import LINK_KEY, Edit, OnLinkPosted, Post
from .policy.incident import Incident, State
from .rooms import Room
from .store import Store

logger = logging.getLogger(__name__)

LINK_OVERDUE = timedelta(seconds=30)


class LinkWatch:
    def __init__(self, fanout: Fanout, store: Store, append: Callable[..., Any], render: Renderer,
                 clock: Callable[[], datetime], issue: Callable[[Incident], str],
                 threshold: timedelta = LINK_OVERDUE) -> None:
        self._fanout = fanout
        self._store = store
        self._append = append
        self._render = render
        self._clock = clock
        self._issue = issue
        self.threshold = threshold
        self._told: set[tuple[str, str]] = set()  # (room, incident) the others were told about
        self._urls: dict[str, str] = {}

    def _url(self, inc: Incident) -> str:
        url = self._urls.get(inc.id)
        if url is None:
            url = self._urls[inc.id] = self._issue(inc)
        return url

    def forget(self, incident: str) -> None:
        """The next post or edit carries a freshly issued link."""
        self._urls.pop(incident, None)

    def post(self, inc: Incident, now: datetime, rooms: list[str] | None = None) -> None:
        url = self._url(inc)
        self._fanout.put(Post(inc.id, LINK_KEY, lambda lang: self._render.link(inc, url, lang, now)), rooms=rooms)

    def edit(self, inc: Incident, now: datetime) -> None:
        url = self._url(inc)
        self._fanout.put(Edit(inc.id, LINK_KEY, lambda lang: self._render.link(inc, url, lang, now)))

    def post_missing(self, inc: Incident) -> None:
        """At start: the rooms that never got this open incident's link get it now, once."""
        missing = [rid for rid in sorted(self._fanout.room_ids) if self._store.get_ref(inc.id, rid, LINK_KEY) is None]
        if missing:
            logger.info("%s: posting the link to %s, which never got it", inc.id, ", ".join(missing))
            try:
                self.post(inc, self._clock(), missing)
            except sqlite3.Error as exc:  # issuing a link is audited; the periodic re-issue posts it then
                logger.error("%s: link not issued at start (%s); the next re-issue will post it", inc.id, exc)

    def check(self) -> None:
        now = self._clock()
        for o in self._fanout.outboxes:
            rid = o.room.room_id
            for item in o.pending_links():
                key = (rid, item.incident or "")
                if item.incident is None or key in self._told or item.queued_at is None:
                    continue
                if now - item.queued_at >= self.threshold:
                    self._told.add(key)
                    # Overdue is failing, even while one attempt is still waiting (a long flood wait).
                    o.health.links_failing.setdefault(item.incident, item.queued_at)
                    o.health.ok = False
                    self._tell(Kind.LINK_UNDELIVERED, rid, item.incident, self._render.link_undelivered,
                               since=item.queued_at.isoformat(), error=o.health.last_error)
        for rid, incident in sorted(self._told):
            if self._store.get_ref(incident, rid, LINK_KEY) is not None:
                self._told.discard((rid, incident))
                self._tell(Kind.LINK_DELIVERED, rid, incident, self._render.link_delivered_late)
            elif (inc := self._store.get(incident)) is None or inc.state is not State.ACTIVE:
                self._told.discard((rid, incident))

    def _tell(self, kind: Kind, rid: str, incident: str, render: Callable[[str, str, str], Any], **details: Any) -> None:
        logger.warning("%s: room %s, incident %s", kind, rid, incident)
        others = self._fanout.room_ids - {rid}
        self._fanout.put(Post(incident, f"{kind}:{rid}", lambda lang: render(incident, rid, lang)), rooms=others)
        try:
            inc = self._store.get(incident)
            self._append(kind, incident=incident, actor="system", drill=bool(inc and inc.drill),
                         details={"room": rid, **details})
        except Exception:  # the rooms have been told; the registre's own failure is logged
            logger.exception("could not record %s for %s", kind, incident)


def record_link_posted(registre: Recorder) -> OnLinkPosted:
    """When each room got each link, in the registre: the after-action review asks it, and the
    metrics time it from the trigger."""

    def posted(room: Room, incident: str) -> None:
        try:
            registre.append(Kind.LINK_POSTED, incident=incident, actor="system", details={"room": room.room_id})
        except sqlite3.Error as exc:  # the link is out: a registre that cannot take the line must not undo that
            logger.warning("link posted in %s for %s, not recorded: %s", room.room_id, incident, exc)

    return posted
