"""The /status text: open incidents, each room's delivery health, closings not yet recorded, authorisation.

A room is "en échec" while its last operation failed, and above all while a link is still owed
to it: a later success of anything else (a tile, a notice) never hides an undelivered link.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from .messages import Renderer
from .outbox import RoomHealth
from .policy.convention import Authorisation
from .policy.incident import Incident, State


def status_text(lang: str, render: Renderer, now: datetime, incs: Sequence[Incident],
                health: Mapping[str, RoomHealth], closing: Sequence[str], auth: Authorisation,
                extra: Callable[[str], list[str]] | None) -> str:
    en = lang == "en"
    lines: list[str] = []
    if not incs:
        lines.append("No open incident." if en else "Aucun incident ouvert.")
    for inc in incs:
        prefix = ("EXERCISE " if en else "EXERCICE ") if inc.drill else ""
        cat = render.category(inc.category, lang)
        if inc.state is State.PENDING:
            lines.append(f"{prefix}{inc.id} — {cat}: " + (f"waiting for confirmation until {render.hm(inc.confirm_by)}"
                         if en else f"en attente de confirmation jusqu'à {render.hm(inc.confirm_by)}"))
        else:
            left = max(0, int(((inc.ends_at or now) - now).total_seconds() // 60))
            lines.append(f"{prefix}{inc.id} — {cat}: " + (f"access open until {render.hm(inc.ends_at)} ({left} min left)"
                         if en else f"accès ouvert jusqu'à {render.hm(inc.ends_at)} (encore {left} min)"))
    for rid, h in sorted(health.items()):
        owed = ", ".join(h.links_failing)
        why = ((f"link {owed} not delivered — " if en else f"lien {owed} non remis — ") if owed else "")
        error = h.last_error or ("no answer yet" if en else "toujours sans réponse")
        state = "ok" if h.ok else (f"FAILING: {why}{error}" if en else f"EN ÉCHEC : {why}{error}")
        lines.append(f"{'Room' if en else 'Salon'} {rid}: {state}")
    if closing:
        lines.append(("Closing not yet recorded (retrying): " if en else
                      "Clôture pas encore inscrite (nouvel essai en cours) : ") + ", ".join(closing))
    lines.append(f"Prefectoral authorisation {auth.reference} valid until {auth.expires:%Y-%m-%d}" if en
                 else f"Autorisation préfectorale {auth.reference} valable jusqu'au {auth.expires:%d/%m/%Y}")
    if extra is not None:
        lines.extend(extra(lang))
    return "\n".join(lines)
