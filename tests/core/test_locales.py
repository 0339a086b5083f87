"""The catalogs: every message in French and English with the same placeholders; no language branches left."""

from __future__ import annotations

import ast
import string
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path

import pytest

from bot.kinds import Kind
from bot.locales import CATALOGS, LANGS, Msg, phrase, reason_text, t
from bot.messages import guessing_notice
from bot.policy.convention import GRAVE_CATEGORIES, Org, Person, Role
from bot.policy.reasons import Reason, Why
from bot.refusals import OTHERS

BOT = Path(__file__).resolve().parents[2] / "bot"
TABLES = ("messages", "reasons", "kinds", "roles", "orgs")
KEYS: dict[str, type[Enum]] = {"messages": Msg, "reasons": Why, "kinds": Kind, "roles": Role, "orgs": Org}


def _fields(template: str) -> set[str]:
    """The names a template needs, without attribute, index or format spec."""
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            assert field, f"positional placeholder in {template!r}: name it"
            names.add(field.split(".")[0].split("[")[0])
    return names


def _table(lang: str, name: str) -> Mapping[Enum, str]:
    table: Mapping[Enum, str] = getattr(CATALOGS[lang], name)
    return table


def test_french_first_and_english_available() -> None:
    assert LANGS[0] == "fr" and set(LANGS) == {"fr", "en"}


@pytest.mark.parametrize("name", TABLES)
def test_every_entry_exists_in_every_language(name: str) -> None:
    for lang in LANGS:
        table = _table(lang, name)
        assert set(table) == set(KEYS[name]), f"{lang}.{name}"
        assert all(isinstance(text, str) and text.strip() for text in table.values()), f"{lang}.{name}"


@pytest.mark.parametrize("name", TABLES)
def test_same_placeholders_in_every_language(name: str) -> None:
    for key in KEYS[name]:
        fields = {lang: _fields(_table(lang, name)[key]) for lang in LANGS}
        assert fields["fr"] == fields["en"], f"{name}[{key}]"


def test_keys_are_unique_and_named_by_their_place() -> None:
    assert len({m.value for m in Msg}) == len(Msg)
    assert all("." in m.value for m in Msg)


def test_rendering_fills_placeholders_and_formats_dates_per_language() -> None:
    lapsed = Reason(Why.AUTHORISATION_LAPSED, {"reference": "AP-42", "expires": date(2026, 3, 1)})
    assert reason_text(lapsed, "fr").endswith("a expiré le 01/03/2026 : aucune transmission n'est possible.")
    assert "expired on 2026-03-01" in reason_text(lapsed, "en")
    assert reason_text(lapsed, "de") == reason_text(lapsed, "fr")  # French is the fallback
    role = Reason(Why.NOT_INITIATOR, {"role": Role.OPERATOR})
    assert "(opérateur vidéo)" in reason_text(role, "fr") and "(operator)" in reason_text(role, "en")
    grave = Reason(Why.GRAVE_CATEGORY, {"category": GRAVE_CATEGORIES[0]})
    assert reason_text(grave, "fr") == "catégorie grave : attaque armée"
    assert reason_text(grave, "en") == "grave category: armed attack"
    who = Reason(Why.INITIATOR_OK, {"org": Org.VENUE, "name": "Claire"})
    assert reason_text(who, "en") == "venue request by Claire"
    at = datetime(2026, 11, 25, 18, 4, tzinfo=UTC)
    caption = phrase(Msg.MOSAIC_CAPTION, drill="", at=at, online=3, total=4)
    assert caption("fr") == "Mosaïque 18:04 — 3/4 caméras en ligne"
    assert caption("en") == t("en", Msg.MOSAIC_CAPTION, drill="", at=at, online=3, total=4)


def test_no_language_branches_left_in_bot() -> None:
    """Text per language lives in bot/locales only: no `lang == "en"` (or "fr") anywhere else."""
    found = []
    for path in sorted(BOT.rglob("*.py")):
        if "locales" in path.relative_to(BOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(isinstance(side, ast.Constant) and side.value in LANGS for side in sides):
                    found.append(f"{path.relative_to(BOT.parent)}:{node.lineno}")
    assert found == []


def test_sign_in_protection_speaks_each_rooms_language() -> None:
    agent = Person("agent-00", "Agent 0", Org.POLICE, Role.VIEWER)
    notice = guessing_notice(agent, 5, 2)
    assert notice("fr").startswith("⚠️ Mot de passe de Agent 0 (agent-00) visé : 5 échec(s)")
    assert notice("fr").endswith("/debloquer agent-00") and notice("en").endswith("/unlock agent-00")
    assert "/unlock <id or RIO>" in reason_text(Reason(Why.UNLOCK_WHO), "en")
    assert reason_text(Reason(Why.NOT_UNLOCK_ROLE), "fr") == "Votre rôle ne permet pas de débloquer une connexion."
    assert OTHERS == "(autres clients / other clients)"  # stored in the registre: both languages
