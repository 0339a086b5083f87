"""What the desk shows of itself: the /status text (open incidents, each room's delivery health, closings
not yet recorded, authorisation, who is watching what) and the live page's incident summary.

A room is "en échec" while its last operation failed, and above all while a link is still owed
to it: a later success of anything else (a tile, a notice) never hides an undelivered link.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .locales import Msg, t
from .messages import Renderer
from .outbox import RoomHealth
from .policy.convention import Authorisation, Convention
from .policy.incident import Incident, State
from .policy.zones import cameras_first
from .viewing import Now

# /statut is read on a phone: past this many viewers of one incident, "… and N more".
MAX_VIEWERS_SHOWN = 12


def status_text(lang: str, render: Renderer, now: datetime, incs: Sequence[Incident],
                health: Mapping[str, RoomHealth], closing: Sequence[str], auth: Authorisation,
                extra: Callable[[str], list[str]] | None) -> str:
    lines = incident_lines(lang, render, now, incs)
    for rid, h in sorted(health.items()):
        if h.ok:
            lines.append(t(lang, Msg.STATUS_ROOM_OK, room=rid))
            continue
        owed = t(lang, Msg.STATUS_LINK_OWED, incidents=", ".join(h.links_failing)) if h.links_failing else ""
        error = h.last_error or t(lang, Msg.STATUS_NO_ANSWER)
        lines.append(t(lang, Msg.STATUS_ROOM_FAILING, room=rid, error=owed + error))
    if closing:
        lines.append(t(lang, Msg.STATUS_CLOSING, incidents=", ".join(closing)))
    lines.append(t(lang, Msg.STATUS_AUTHORISATION, reference=auth.reference, expires=auth.expires))
    if extra is not None:
        lines.extend(extra(lang))
    return "\n".join(lines)


def incident_lines(lang: str, render: Renderer, now: datetime, incs: Sequence[Incident]) -> list[str]:
    """One line per open incident (or the line saying there is none)."""
    lines: list[str] = []
    if not incs:
        lines.append(t(lang, Msg.STATUS_NONE))
    for inc in incs:
        shown = {"drill": t(lang, Msg.STATUS_DRILL) if inc.drill else "", "incident": inc.id,
                 "category": render.category(inc.category, lang),
                 # where to look, as the link said it (or as /zone changed it since)
                 "zone": "" if inc.focus.empty else t(lang, Msg.STATUS_ZONE, zone=render.zone(inc, lang))}
        if inc.state is State.PENDING:
            lines.append(t(lang, Msg.STATUS_PENDING, until=render.hm(inc.confirm_by), **shown))
        else:
            left = max(0, int(((inc.ends_at or now) - now).total_seconds() // 60))
            lines.append(t(lang, Msg.STATUS_ACTIVE, until=render.hm(inc.ends_at), left=left, **shown))
    return lines


def status_line(lang: str, render: Renderer, now: datetime, incs: Sequence[Incident], watching: int = 0) -> str:
    """This venue's one line in a room shared by venues: ``[zenith] INC-… — …; 2 people watching
    (/statut zenith …)``: the duty officer must not read an open access as nobody looking."""
    hint = t(lang, Msg.VENUES_STATUS_HINT, venue=render.venue) if render.venue else ""
    count = ""
    if incs or watching:
        key = Msg.STATUS_WATCHING_NONE if not watching else Msg.STATUS_WATCHING_ONE if watching == 1 else Msg.STATUS_WATCHING_MANY
        count = t(lang, key, n=watching)
    return " ".join(x for x in ("; ".join([*incident_lines(lang, render, now, incs), *([count] if count else [])]), hint) if x)


def viewer_lines(lang: str, render: Renderer, cameras: Mapping[str, str],
                 viewers: Mapping[str, Sequence[Now]]) -> list[str]:
    """Who is watching each open access now, and what: cameras by name, the mosaic, or nothing on screen."""
    lines: list[str] = []
    for incident, now in viewers.items():
        if not now:
            lines.append(t(lang, Msg.STATUS_VIEWERS_NONE, incident=incident))
            continue
        lines.append(t(lang, Msg.STATUS_VIEWERS, incident=incident))
        for n in now[:MAX_VIEWERS_SHOWN]:
            what = [cameras.get(c, c) for c in n.cameras] + ([t(lang, Msg.STATUS_MOSAIC)] if n.mosaic else [])
            lines.append(t(lang, Msg.STATUS_VIEWER, who=render.who(n.person, lang),
                           what=", ".join(what) or t(lang, Msg.STATUS_IDLE)))
        if len(now) > MAX_VIEWERS_SHOWN:
            lines.append(t(lang, Msg.VIEWING_MORE, n=len(now) - MAX_VIEWERS_SHOWN))
    return lines


def page_info(conv: Convention, camera_names: Mapping[str, str], inc: Incident,
              venue_code: str | None = None) -> dict[str, Any]:
    """What the live page shows of an incident: category, venue (and its code), end, focus, the cameras in scope."""
    cat = conv.category(inc.category)
    first = conv.zones.cameras(inc.focus)
    return {
        "incident": inc.id,
        "category_label": cat.label_fr if cat else inc.category,
        "venue": f"{conv.venue} · {venue_code}" if venue_code else conv.venue,
        "venue_code": venue_code,
        "drill": inc.drill,
        "ends_at": inc.ends_at.isoformat() if inc.ends_at else None,
        "focus": conv.zones.label(inc.focus),
        # the zone's cameras first, marked: the page opens on them
        "cameras": [{"id": cid, "name": camera_names[cid], "in_zone": cid in first}
                    for cid in cameras_first([c for c in camera_names if c in conv.cameras_in_scope], first)],
    }
