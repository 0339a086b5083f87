"""Everything Vigie says to people, one catalog per language: ``fr`` (the default) and ``en``.

A typed table rather than gettext: a message is a member of ``Msg`` (so mypy rejects a
misspelt key), each language maps every member to a ``str.format`` template, and
``tests/core/test_locales.py`` checks that both catalogs have every key with the same
placeholders, every registre kind and every role. No extraction or compile step, no ``.mo``
files to ship; a translator edits ``fr.py`` / ``en.py`` side by side.

``t(lang, Msg.X, name=value)`` renders one message; an unknown language falls back to French,
the service's working language. Values may carry their own format spec in the template
(``{expires:%d/%m/%Y}``), so a date can be written the French or the English way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..kinds import Kind
from ..policy.convention import Role
from . import en, fr
from .keys import Msg

__all__ = ["CATALOGS", "LANGS", "Catalog", "Msg", "kind_label", "role_label", "t"]


@dataclass(frozen=True)
class Catalog:
    messages: Mapping[Msg, str]
    kinds: Mapping[Kind, str]  # labels of registre record kinds
    roles: Mapping[Role, str]


CATALOGS: Mapping[str, Catalog] = {
    "fr": Catalog(fr.MESSAGES, fr.KINDS, fr.ROLES),
    "en": Catalog(en.MESSAGES, en.KINDS, en.ROLES),
}
LANGS: tuple[str, ...] = tuple(CATALOGS)
DEFAULT = "fr"


def catalog(lang: str) -> Catalog:
    return CATALOGS.get(lang) or CATALOGS[DEFAULT]


def t(lang: str, key: Msg, /, **values: object) -> str:
    """The message ``key`` in ``lang`` with its placeholders filled from ``values``."""
    return catalog(lang).messages[key].format(**values)


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
