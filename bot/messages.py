"""What the bot says in the rooms, in French (default) and English.

Pure rendering: incident + convention + time → text and minimal HTML. Times are shown in the
venue's time zone; the registre keeps UTC. The words are in the catalogs (``bot/locales``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from .locales import DEFAULT, LANGS, Msg, catalog, phrase, reason_text, role_label, t
from .policy.convention import Convention, Org, Person
from .policy.incident import Incident, Source
from .policy.reasons import Reason
from .policy.viewing import Viewer
from .rooms import Button, Outgoing

# The closure report is read on a phone: this many people and camera spans each, then "… and N more".
MAX_PEOPLE = 8
MAX_SPANS = 4


@dataclass(frozen=True)
class Reply:
    """A short answer to the person who typed a command, in every language."""

    texts: Mapping[str, str]

    def text(self, lang: str) -> str:
        return self.texts.get(lang) or self.texts[DEFAULT]

    @classmethod
    def of(cls, render: Callable[[str], str]) -> Reply:
        return cls({lang: render(lang) for lang in LANGS})


def refusal(reason: Reason, lang: str) -> str:
    """What a refused person reads: "Refusé : " and why."""
    return t(lang, Msg.REFUSED, reason=reason_text(reason, lang))


class Renderer:
    def __init__(self, conv: Convention, tz: tzinfo, venue: str | None = None) -> None:
        self.conv = conv
        self.tz = tz
        self.venue = venue  # the venue's code, at the head of every message (rooms shared by venues)

    def title(self, lang: str) -> str:
        """``[zenith] ``: what starts every message, so a shared room knows which venue speaks."""
        return t(lang, Msg.VENUE_TITLE, venue=self.venue) if self.venue else ""

    def _titled(self, out: Outgoing, lang: str) -> Outgoing:
        head = self.title(lang)
        return replace(out, text=head + out.text, html=html.escape(head) + out.html) if head else out

    def hm(self, at: datetime | None) -> str:
        return at.astimezone(self.tz).strftime("%H:%M") if at else "—"

    def category(self, code: str, lang: str) -> str:
        cat = self.conv.category(code)
        return cat.label(lang) if cat else code

    def who(self, actor: str | None, lang: str) -> str:
        if actor is None or actor == "system":
            return t(lang, Msg.WHO_SYSTEM)
        person = self.conv.person(actor)
        if person is not None:
            return f"{person.name} ({role_label(person.role, lang)})"
        source = self.conv.alarm_source(actor)
        return source.label if source else actor

    def _prefix(self, inc: Incident, lang: str) -> str:
        return t(lang, Msg.DRILL_PREFIX) if inc.drill else ""

    def origin(self, inc: Incident, lang: str) -> str:
        trig = inc.trigger
        if trig.source is Source.ALARM:
            where = f", zone {trig.details}" if trig.details else ""
            return t(lang, Msg.ORIGIN_ALARM, alarm_type=trig.alarm_type, who=self.who(trig.actor, lang), where=where)
        person = self.conv.person(trig.actor)
        org = Org.VENUE if person and person.org == Org.VENUE else Org.POLICE
        extra = f" — {trig.details}" if trig.details else ""
        return t(lang, Msg.ORIGIN_PERSON, org=catalog(lang).orgs[org], who=self.who(trig.actor, lang), extra=extra)

    def zone(self, inc: Incident, lang: str) -> str:
        """The zone the incident looks at: its name, or the place as written, marked unknown."""
        zone = self.conv.zones.get(inc.focus.zone)
        if zone is not None:
            return zone.name
        return t(lang, Msg.ZONE_UNKNOWN, text=inc.focus.text) if inc.focus.text else "—"

    def zone_line(self, inc: Incident, lang: str) -> list[str]:
        """The link's and the closure report's line naming the zone; none when no place was given."""
        return [] if inc.focus.empty else [t(lang, Msg.LINK_ZONE, zone=self.zone(inc, lang))]

    def focus_notice(self, inc: Incident, actor: str) -> Callable[[str], Outgoing]:
        def render(lang: str) -> Outgoing:
            return self._titled(self._plain(t(lang, Msg.FOCUS_NOTICE, drill=self._prefix(inc, lang), incident=inc.id,
                                              who=self.who(actor, lang), zone=self.zone(inc, lang))), lang)

        return render

    def link(self, inc: Incident, url: str, lang: str, now: datetime) -> Outgoing:
        cat = self.category(inc.category, lang)
        remaining = max(0, int(((inc.ends_at or now) - now).total_seconds() // 60))
        lines = [
            self._prefix(inc, lang) + t(lang, Msg.LINK_HEAD, category=cat, incident=inc.id),
            t(lang, Msg.LINK_TRIGGERED, at=self.hm(inc.trigger.at), origin=self.origin(inc, lang)),
            *self.zone_line(inc, lang),
            t(lang, Msg.LINK_UNTIL, until=self.hm(inc.ends_at), remaining=remaining),
        ]
        if inc.confirmed_by:
            lines.append(t(lang, Msg.CONFIRMED_BY, who=self.who(inc.confirmed_by, lang)))
        if inc.extensions:
            lines.append(t(lang, Msg.EXTENDED_BY, who=self.who(inc.extensions[-1].actor, lang)))
        lines.append(t(lang, Msg.LINK_URL) + url)
        lines.append(t(lang, Msg.LIVE_ONLY))
        text = "\n".join(lines)
        esc = [html.escape(line) for line in lines[:-2]]
        body = "<br>".join([f"<b>{esc[0]}</b>", *esc[1:]])
        body += "<br>" + t(lang, Msg.LINK_URL)
        body += f'<a href="{html.escape(url)}">{html.escape(url)}</a><br><i>{html.escape(lines[-1])}</i>'
        return self._titled(Outgoing(text, body, urgent=True), lang)

    def confirm_request(self, inc: Incident, lang: str) -> Outgoing:
        cat = self.category(inc.category, lang)
        confirmers = {"any_authorised": Msg.CONFIRMER_ANY, "counterparty": Msg.CONFIRMER_COUNTERPARTY}
        key = confirmers.get(inc.confirm_rule.value)
        who = t(lang, key) if key else ""
        text = "\n".join([
            self._prefix(inc, lang) + t(lang, Msg.CONFIRM_HEAD, category=cat, incident=inc.id),
            t(lang, Msg.CONFIRM_ORIGIN, origin=self.origin(inc, lang)),
            t(lang, Msg.CONFIRM_BEFORE, who=who, until=self.hm(inc.confirm_by), incident=inc.id),
        ])
        buttons = (Button(t(lang, Msg.CONFIRM_BUTTON), f"confirm:{inc.id}"),)
        return self._titled(Outgoing(text, html.escape(text).replace("\n", "<br>"), buttons), lang)

    def confirm_closed(self, inc: Incident, lang: str) -> Outgoing:
        if inc.confirmed_by:
            text = t(lang, Msg.CONFIRMED, incident=inc.id, who=self.who(inc.confirmed_by, lang),
                     at=self.hm(inc.activated_at))
        else:
            text = t(lang, Msg.NOT_CONFIRMED, incident=inc.id)
        return self._titled(Outgoing(self._prefix(inc, lang) + text, html.escape(self._prefix(inc, lang) + text)), lang)

    def reminder(self, inc: Incident, lang: str, now: datetime) -> Outgoing:
        mins = max(0, round(((inc.ends_at or now) - now).total_seconds() / 60))
        text = t(lang, Msg.REMINDER, incident=inc.id, minutes=mins, until=self.hm(inc.ends_at))
        return self._titled(self._plain(self._prefix(inc, lang) + text), lang)

    def extended(self, inc: Incident, lang: str) -> Outgoing:
        e = inc.extensions[-1]
        text = t(lang, Msg.EXTENDED, incident=inc.id, until=self.hm(e.ends_at), who=self.who(e.actor, lang))
        return self._titled(self._plain(self._prefix(inc, lang) + text), lang)

    def closure(self, inc: Incident, lang: str, viewers: Sequence[Viewer], streams: int, records: int,
                anchor: str = "", cameras: Mapping[str, str] | None = None,
                ptz: Sequence[tuple[str, datetime, Mapping[str, Any]]] = ()) -> Outgoing:
        reasons = {"ended": Msg.CLOSED_ENDED, "expired": Msg.CLOSED_EXPIRED,
                   "authorisation_lapsed": Msg.CLOSED_LAPSED, "not_confirmed": Msg.CLOSED_NOT_CONFIRMED}
        key = reasons.get(inc.close_reason or "")
        reason = t(lang, key, who=self.who(inc.closed_by, lang)) if key else inc.close_reason or ""
        start = inc.activated_at or inc.opened_at
        minutes = int(((inc.closed_at or start) - start).total_seconds() // 60)
        lines = [
            self._prefix(inc, lang)
            + t(lang, Msg.CLOSURE_HEAD, category=self.category(inc.category, lang), incident=inc.id),
            t(lang, Msg.CLOSURE_VENUE, name=self.conv.venue, venue=f" ({self.venue})" if self.venue else ""),
            t(lang, Msg.CLOSURE_REASON, reason=reason, at=self.hm(inc.closed_at)),
            t(lang, Msg.CLOSURE_TRIGGER, at=self.hm(inc.trigger.at), origin=self.origin(inc, lang)),
            *self.zone_line(inc, lang),  # the zone followed at the end (the registre has each /zone change)
            t(lang, Msg.CLOSURE_OPEN, start=self.hm(inc.activated_at), end=self.hm(inc.closed_at), minutes=minutes),
            *self.viewing(inc.id, viewers, cameras or {}, lang),
            t(lang, Msg.CLOSURE_STREAMS, streams=streams),
            t(lang, Msg.CLOSURE_REVOKED, records=records),
        ]
        if ptz:
            lines.extend(self._ptz_lines(ptz, cameras or {}, lang))
        if anchor:
            lines.append(t(lang, Msg.CLOSURE_ANCHOR, anchor=anchor))
        return self._titled(self._plain("\n".join(lines)), lang)

    def _ptz_lines(self, ptz: Sequence[tuple[str, datetime, Mapping[str, Any]]], cameras: Mapping[str, str],
                   lang: str) -> list[str]:
        """Who steered which camera, when, how (the first 20; the registre has them all)."""
        lines = [t(lang, Msg.CLOSURE_PTZ, count=len(ptz))]
        for actor, at, d in ptz[:20]:
            command = str(d.get("command", ""))
            if command == "move":
                command = f"move {d.get('seconds', 0)} s"
            elif command == "preset":
                command = f"preset {d.get('preset', '')}"
            if d.get("error"):
                command += " ✗"
            lines.append(t(lang, Msg.CLOSURE_PTZ_LINE, at=self.hm(at), name=self.who(actor, lang),
                           camera=cameras.get(str(d.get("camera", "")), d.get("camera", "")), command=command))
        if len(ptz) > 20:
            lines.append(t(lang, Msg.CLOSURE_PTZ_MORE, count=len(ptz) - 20))
        return lines

    def viewing(self, incident: str, viewers: Sequence[Viewer], cameras: Mapping[str, str], lang: str) -> list[str]:
        """Who watched what, for a phone: a line per person, a line of cameras under it, long lists cut
        (the registre export has everything)."""
        if not viewers:
            return [t(lang, Msg.VIEWING_NONE)]
        lines = [t(lang, Msg.VIEWING_HEAD, n=len(viewers))]
        for v in viewers[:MAX_PEOPLE]:
            if v.sign_ins > 1:
                signed = t(lang, Msg.VIEWING_SIGN_INS, n=v.sign_ins, first=self.hm(v.first_sign_in),
                           last=self.hm(v.last_sign_in))
            else:
                signed = t(lang, Msg.VIEWING_SIGN_IN_ONCE, first=self.hm(v.first_sign_in or v.first_seen))
            lines.append(t(lang, Msg.VIEWING_PERSON, who=self.who(v.person, lang), sign_ins=signed))
            spans = [t(lang, Msg.VIEWING_SPAN, camera=cameras.get(s.camera, s.camera), start=self.hm(s.start),
                       end=self.hm(s.end), duration=self.duration(s.duration, lang)) for s in v.spans[:MAX_SPANS]]
            if len(v.spans) > MAX_SPANS:
                spans.append(t(lang, Msg.VIEWING_MORE, n=len(v.spans) - MAX_SPANS))
            lines.append("   " + (" · ".join(spans) or t(lang, Msg.VIEWING_NO_CAMERA)))
        if len(viewers) > MAX_PEOPLE:
            lines.append(t(lang, Msg.VIEWING_MORE_PEOPLE, n=len(viewers) - MAX_PEOPLE, incident=incident))
        return lines

    @staticmethod
    def duration(span: timedelta, lang: str) -> str:
        seconds = max(0, round(span.total_seconds()))
        if seconds < 60:
            return t(lang, Msg.DURATION_S, s=seconds)
        minutes = round(seconds / 60)
        if minutes < 60:
            return t(lang, Msg.DURATION_MIN, m=minutes)
        return t(lang, Msg.DURATION_H, h=minutes // 60, m=minutes % 60)

    def authorisation_warning(self, lang: str) -> Outgoing:
        a = self.conv.authorisation
        return self._titled(self._plain(t(lang, Msg.AUTHORISATION_WARNING, reference=a.reference, expires=a.expires)), lang)

    def link_undelivered(self, incident: str, room: str, lang: str) -> Outgoing:
        return self._titled(self._plain(t(lang, Msg.LINK_UNDELIVERED, incident=incident, room=room)), lang)

    def link_delivered_late(self, incident: str, room: str, lang: str) -> Outgoing:
        return self._titled(self._plain(t(lang, Msg.LINK_DELIVERED_LATE, incident=incident, room=room)), lang)

    def close_unrecorded(self, incident: str, cause: str, lang: str) -> Outgoing:
        return self._titled(self._plain(t(lang, Msg.CLOSE_UNRECORDED, incident=incident, cause=cause)), lang)

    def notice(self, text: Callable[[str], str], lang: str) -> Outgoing:
        return self._titled(self._plain(text(lang)), lang)

    @staticmethod
    def _plain(text: str) -> Outgoing:
        return Outgoing(text, html.escape(text).replace("\n", "<br>"))


def guessing_notice(person: Person, failures: int, clients: int) -> Callable[[str], str]:
    """The rooms' warning when a roster member's password is being guessed, in each room's language."""
    return phrase(Msg.GUESSING_NOTICE, name=person.name, id=person.id, failures=failures, clients=clients)
