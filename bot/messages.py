"""What the bot says in the rooms, in French (default) and English.

Pure rendering: incident + convention + time → text and minimal HTML. Times are shown in the
venue's time zone; the registre keeps UTC.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from .policy.convention import Convention, Person
from .policy.decide import ROLE_LABELS_FR
from .policy.incident import Incident, Source
from .rooms import Button, Outgoing


@dataclass(frozen=True)
class Reply:
    """A short answer to the person who typed a command, in both languages."""

    fr: str
    en: str

    def text(self, lang: str) -> str:
        return self.en if lang == "en" else self.fr

    @classmethod
    def of(cls, render: Callable[[str], str]) -> Reply:
        return cls(render("fr"), render("en"))


def _t(lang: str, fr: str, en: str) -> str:
    return en if lang == "en" else fr


class Renderer:
    def __init__(self, conv: Convention, tz: tzinfo) -> None:
        self.conv = conv
        self.tz = tz

    def hm(self, at: datetime | None) -> str:
        return at.astimezone(self.tz).strftime("%H:%M") if at else "—"

    def dmy_hm(self, at: datetime) -> str:
        return at.astimezone(self.tz).strftime("%d/%m/%Y %H:%M")

    def category(self, code: str, lang: str) -> str:
        cat = self.conv.category(code)
        return cat.label(lang) if cat else code

    def who(self, actor: str | None, lang: str) -> str:
        if actor is None or actor == "system":
            return _t(lang, "le système", "the system")
        person = self.conv.person(actor)
        if person is not None:
            role = ROLE_LABELS_FR.get(person.role, person.role) if lang != "en" else person.role.replace("_", " ")
            return f"{person.name} ({role})"
        source = self.conv.alarm_source(actor)
        return source.label if source else actor

    def _prefix(self, inc: Incident, lang: str) -> str:
        return _t(lang, "EXERCICE — ", "EXERCISE — ") if inc.drill else ""

    def origin(self, inc: Incident, lang: str) -> str:
        t = inc.trigger
        if t.source is Source.ALARM:
            where = f", zone {t.details}" if t.details else ""
            return _t(lang, f"alarme « {t.alarm_type} » de {self.who(t.actor, lang)}{where}",
                      f"alarm '{t.alarm_type}' from {self.who(t.actor, lang)}{where}")
        person = self.conv.person(t.actor)
        kind = (_t(lang, "demande de l'exploitant", "venue request") if person and person.org == "venue"
                else _t(lang, "initiative de la police", "police initiative"))
        extra = f" — {t.details}" if t.details else ""
        return f"{kind} : {self.who(t.actor, lang)}{extra}" if lang != "en" else f"{kind}: {self.who(t.actor, lang)}{extra}"

    def link(self, inc: Incident, url: str, lang: str, now: datetime) -> Outgoing:
        cat = self.category(inc.category, lang)
        remaining = max(0, int(((inc.ends_at or now) - now).total_seconds() // 60))
        lines = [
            f"{self._prefix(inc, lang)}🚨 {_t(lang, 'ACCÈS VIDÉO OUVERT', 'VIDEO ACCESS OPEN')} — {cat} [{inc.id}]",
            _t(lang, f"Déclenché à {self.hm(inc.trigger.at)} — {self.origin(inc, lang)}",
               f"Triggered at {self.hm(inc.trigger.at)} — {self.origin(inc, lang)}"),
            _t(lang, f"Accès des agents habilités jusqu'à {self.hm(inc.ends_at)} (encore {remaining} min)",
               f"Access for habilitated officers until {self.hm(inc.ends_at)} ({remaining} min left)"),
        ]
        if inc.confirmed_by:
            lines.append(_t(lang, f"Confirmé par {self.who(inc.confirmed_by, lang)}", f"Confirmed by {self.who(inc.confirmed_by, lang)}"))
        if inc.extensions:
            e = inc.extensions[-1]
            lines.append(_t(lang, f"Prolongé par {self.who(e.actor, lang)}", f"Extended by {self.who(e.actor, lang)}"))
        lines.append(_t(lang, f"Lien (personnel, mot de passe requis) : {url}", f"Link (personal password required): {url}"))
        lines.append(_t(lang, "Direct uniquement : aucun enregistrement par ce lien.", "Live only: nothing is recorded through this link."))
        text = "\n".join(lines)
        esc = [html.escape(line) for line in lines[:-2]]
        body = "<br>".join([f"<b>{esc[0]}</b>", *esc[1:]])
        body += "<br>" + _t(lang, "Lien (personnel, mot de passe requis) : ", "Link (personal password required): ")
        body += f'<a href="{html.escape(url)}">{html.escape(url)}</a><br><i>{html.escape(lines[-1])}</i>'
        return Outgoing(text, body)

    def confirm_request(self, inc: Incident, lang: str) -> Outgoing:
        cat = self.category(inc.category, lang)
        who = {"any_authorised": _t(lang, "une personne habilitée (exploitant ou police)", "an authorised person (venue or police)"),
               "counterparty": _t(lang, "la police", "the police")}.get(inc.confirm_rule.value, "")
        text = "\n".join([
            f"{self._prefix(inc, lang)}⚠️ {_t(lang, 'ALERTE À CONFIRMER', 'ALERT TO CONFIRM')} — {cat} [{inc.id}]",
            _t(lang, f"Origine : {self.origin(inc, lang)}", f"Origin: {self.origin(inc, lang)}"),
            _t(lang, f"À confirmer par {who} avant {self.hm(inc.confirm_by)} : /confirm {inc.id}",
               f"To be confirmed by {who} before {self.hm(inc.confirm_by)}: /confirm {inc.id}"),
        ])
        buttons = (Button(_t(lang, "✅ Confirmer l'accès", "✅ Confirm access"), f"confirm:{inc.id}"),)
        return Outgoing(text, html.escape(text).replace("\n", "<br>"), buttons)

    def confirm_closed(self, inc: Incident, lang: str) -> Outgoing:
        if inc.confirmed_by:
            text = _t(lang, f"✅ Alerte {inc.id} confirmée par {self.who(inc.confirmed_by, lang)} à {self.hm(inc.activated_at)}.",
                      f"✅ Alert {inc.id} confirmed by {self.who(inc.confirmed_by, lang)} at {self.hm(inc.activated_at)}.")
        else:
            text = _t(lang, f"⏹ Alerte {inc.id} non confirmée dans le délai : aucun accès n'a été ouvert.",
                      f"⏹ Alert {inc.id} not confirmed in time: no access was opened.")
        return Outgoing(self._prefix(inc, lang) + text, html.escape(self._prefix(inc, lang) + text))

    def reminder(self, inc: Incident, lang: str, now: datetime) -> Outgoing:
        mins = max(0, round(((inc.ends_at or now) - now).total_seconds() / 60))
        text = _t(lang, f"⏳ L'accès {inc.id} se termine dans {mins} min ({self.hm(inc.ends_at)}). Pour prolonger : /extend 30",
                  f"⏳ Access {inc.id} ends in {mins} min ({self.hm(inc.ends_at)}). To extend: /extend 30")
        return self._plain(self._prefix(inc, lang) + text)

    def extended(self, inc: Incident, lang: str) -> Outgoing:
        e = inc.extensions[-1]
        text = _t(lang, f"➕ Accès {inc.id} prolongé jusqu'à {self.hm(e.ends_at)} par {self.who(e.actor, lang)}.",
                  f"➕ Access {inc.id} extended until {self.hm(e.ends_at)} by {self.who(e.actor, lang)}.")
        return self._plain(self._prefix(inc, lang) + text)

    def closure(self, inc: Incident, lang: str, viewers: Sequence[tuple[str, datetime]], streams: int, records: int,
                anchor: str = "") -> Outgoing:
        reason = {
            "ended": _t(lang, f"fin demandée par {self.who(inc.closed_by, lang)}", f"ended by {self.who(inc.closed_by, lang)}"),
            "expired": _t(lang, "durée écoulée", "time limit reached"),
            "authorisation_lapsed": _t(lang, "autorisation préfectorale expirée", "prefectoral authorisation lapsed"),
            "not_confirmed": _t(lang, "alerte non confirmée", "alert not confirmed"),
        }.get(inc.close_reason or "", inc.close_reason or "")
        start = inc.activated_at or inc.opened_at
        minutes = int(((inc.closed_at or start) - start).total_seconds() // 60)
        seen = ", ".join(f"{self.who(p, lang)} ({self.hm(at)})" for p, at in viewers) or _t(lang, "aucun", "none")
        lines = [
            f"{self._prefix(inc, lang)}🔒 {_t(lang, 'ACCÈS TERMINÉ', 'ACCESS ENDED')} — {self.category(inc.category, lang)} [{inc.id}]",
            _t(lang, f"Motif : {reason} à {self.hm(inc.closed_at)}", f"Reason: {reason} at {self.hm(inc.closed_at)}"),
            _t(lang, f"Déclenchement : {self.hm(inc.trigger.at)}, {self.origin(inc, lang)}",
               f"Trigger: {self.hm(inc.trigger.at)}, {self.origin(inc, lang)}"),
            _t(lang, f"Accès ouvert : {self.hm(inc.activated_at)} → {self.hm(inc.closed_at)} ({minutes} min)",
               f"Access open: {self.hm(inc.activated_at)} → {self.hm(inc.closed_at)} ({minutes} min)"),
            _t(lang, f"Agents connectés : {seen}", f"Officers who signed in: {seen}"),
            _t(lang, f"Flux vidéo ouverts : {streams}", f"Video streams opened: {streams}"),
            _t(lang, f"Liens et sessions révoqués. Registre : {records} entrées pour cet incident.",
               f"Links and sessions revoked. Registre: {records} records for this incident."),
        ]
        if anchor:
            lines.append(_t(lang, f"Empreinte du registre à la clôture : {anchor}", f"Registre hash at closing: {anchor}"))
        return self._plain("\n".join(lines))

    def authorisation_warning(self, lang: str) -> Outgoing:
        a = self.conv.authorisation
        return self._plain(_t(
            lang,
            f"⚠️ L'autorisation préfectorale {a.reference} expire le {a.expires:%d/%m/%Y}. Sans renouvellement, Vigie refusera toute transmission après cette date.",
            f"⚠️ Prefectoral authorisation {a.reference} expires on {a.expires:%Y-%m-%d}. Without renewal, Vigie will refuse any transmission after that date.",
        ))

    def notice(self, text_fr: str, text_en: str, lang: str) -> Outgoing:
        return self._plain(_t(lang, text_fr, text_en))

    @staticmethod
    def _plain(text: str) -> Outgoing:
        return Outgoing(text, html.escape(text).replace("\n", "<br>"))


def guessing_notice(person: Person, failures: int, clients: int) -> tuple[str, str]:
    """The rooms' warning when a roster member's password is being guessed (French, English)."""
    return (
        f"⚠️ Mot de passe de {person.name} ({person.id}) visé : {failures} échec(s) de connexion en 15 min "
        f"depuis {clients} adresse(s) réseau. Les essais sont ralentis ; {person.name} peut toujours se connecter. "
        "Si ce ne sont pas des fautes de frappe, le lien a fuité : /fin puis /alerte donnent un nouveau lien. "
        f"Lever ses blocages : /debloquer {person.id}",
        f"⚠️ Password of {person.name} ({person.id}) under attack: {failures} failed sign-in(s) in 15 min "
        f"from {clients} network address(es). Attempts are slowed down; {person.name} can still sign in. "
        "If these are not typos, the link has leaked: /end then /alert give a new link. "
        f"Lift their locks: /unlock {person.id}",
    )
