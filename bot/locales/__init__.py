"""Everything Vigie says to people, one catalog per language: ``fr`` (the default) and ``en``.

A typed table rather than gettext catalogs: a message is a member of ``Msg`` (so mypy rejects
a misspelt key), each language maps every member to a ``str.format`` template, and
``tests/core/test_locales.py`` checks that both catalogs have every key with the same
placeholders, and every policy reason (``Why``), registre kind, role and organisation. With two
languages written by the same people, gettext would add an extraction and compile step, ``.mo``
files in the package data, and would find a missing translation or placeholder only at run
time; here a translator edits ``fr.py`` and ``en.py`` side by side.

- ``t(lang, Msg.X, name=value)`` renders one message; an unknown language falls back to French,
  the service's working language. A template may carry a value's format spec
  (``{expires:%d/%m/%Y}``), so a date is written the French or the English way.
- ``phrase(Msg.X, ...)`` binds the values now and lets each room choose its language later.
- ``bilingual(Msg.X, ...)`` writes "français / English" on one line, for readers whose
  language is unknown (an examiner of the registre, the developer of an alarm sender).
- ``reason_text(reason, lang)`` words a policy ``Reason``: the pure policy keeps a code and
  the facts; roles, organisations and categories among the facts are shown in ``lang``.

This package imports only the pure ``policy`` and ``kinds``, so any layer may use it. Not
here, on purpose: category labels and the SIA event labels are data of the convention and of
the alarm protocol; the HTML templates in ``bot/web/static`` are French; so is the demo.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..kinds import Kind
from ..policy.convention import Category, Org, Role
from ..policy.reasons import Reason, Why
from . import en, fr
from .keys import Msg

__all__ = [
    "CATALOGS", "DEFAULT", "LANGS", "Catalog", "Msg",
    "bilingual", "catalog", "kind_label", "phrase", "reason_text", "role_label", "t",
]


@dataclass(frozen=True)
class Catalog:
    messages: Mapping[Msg, str]
    reasons: Mapping[Why, str]  # why a decision went the way it did
    kinds: Mapping[Kind, str]  # labels of registre record kinds
    roles: Mapping[Role, str]
    orgs: Mapping[Org, str]  # who took the initiative, by their organisation


CATALOGS: Mapping[str, Catalog] = {
    "fr": Catalog(fr.MESSAGES, fr.REASONS, fr.KINDS, fr.ROLES, fr.ORGS),
    "en": Catalog(en.MESSAGES, en.REASONS, en.KINDS, en.ROLES, en.ORGS),
}
LANGS: tuple[str, ...] = tuple(CATALOGS)
DEFAULT = "fr"


def catalog(lang: str) -> Catalog:
    return CATALOGS.get(lang) or CATALOGS[DEFAULT]


def t(lang: str, key: Msg, /, **values: object) -> str:
    """The message ``key`` in ``lang`` with its placeholders filled from ``values``."""
    return catalog(lang).messages[key].format(**values)


def phrase(key: Msg, /, **values: object) -> Callable[[str], str]:
    """The message ``key`` with its values bound now, its language chosen later (by each room)."""
    return lambda lang: t(lang, key, **values)


def bilingual(key: Msg, /, *, first: str = DEFAULT, **values: object) -> str:
    """Every language on one line, "français / English", for a reader whose language is unknown
    (someone examining the registre, the developer of an alarm sender)."""
    order = [first, *(lang for lang in LANGS if lang != first)]
    return " / ".join(t(lang, key, **values) for lang in order)


def kind_label(kind: str, lang: str) -> str:
    """Human label of a registre record kind; a kind this version does not know is shown as is."""
    try:
        return catalog(lang).kinds[Kind(kind)]
    except ValueError:
        return kind


def role_label(role: str, lang: str) -> str:
    try:
        return catalog(lang).roles[Role(role)]
    except ValueError:
        return role


def reason_text(reason: Reason, lang: str) -> str:
    """Why a decision went the way it did, in ``lang``; roles, organisations and categories translated."""
    facts = {name: _shown(value, lang) for name, value in reason.facts.items()}
    return catalog(lang).reasons[reason.code].format(**facts)


def _shown(value: object, lang: str) -> object:
    if isinstance(value, Role):
        return catalog(lang).roles[value]
    if isinstance(value, Org):
        return catalog(lang).orgs[value]
    if isinstance(value, Category):
        return value.label(lang)
    return value
