"""Registre record kinds: a closed enum, written only through it, each labelled in every language."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.kinds import Kind
from bot.locales import CATALOGS

BOT = Path(__file__).resolve().parents[2] / "bot"
# Calls that write a registre record, by the attribute called: Registre.append and the small
# wrappers around it (the desk's and the access gate's _audit, the alarm route's audit, announce).
WRITERS = {"append", "_audit", "audit", "announce"}
REGISTRE_RECEIVERS = {"registre", "_registre", "_audit"}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(BOT.rglob("*.py"))]


def _receiver(func: ast.Attribute) -> str:
    value = func.value
    return value.attr if isinstance(value, ast.Attribute) else value.id if isinstance(value, ast.Name) else ""


def test_every_kind_has_a_label_in_every_language() -> None:
    for lang, catalog in CATALOGS.items():
        assert set(catalog.kinds) == set(Kind), lang
        assert all(label.strip() for label in catalog.kinds.values()), lang
    assert len(set(CATALOGS["fr"].kinds.values())) == len(Kind)  # two kinds never read the same


def test_no_registre_write_passes_a_bare_string() -> None:
    values = {kind.value for kind in Kind}
    bare: list[str] = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
                continue
            first = node.args[0]
            if node.func.attr not in WRITERS or not isinstance(first, ast.Constant | ast.JoinedStr):
                continue
            is_kind_text = isinstance(first, ast.Constant) and first.value in values
            if is_kind_text or _receiver(node.func) in REGISTRE_RECEIVERS:
                bare.append(f"{path.relative_to(BOT.parent)}:{node.lineno}")
    assert bare == [], f"pass a bot.kinds.Kind member, not a string: {bare}"


def test_no_record_is_read_by_a_bare_kind_string() -> None:
    values = {kind.value for kind in Kind}
    bare = [
        f"{path.relative_to(BOT.parent)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(isinstance(side, ast.Attribute) and side.attr == "kind" for side in [node.left, *node.comparators])
        and any(isinstance(side, ast.Constant) and side.value in values for side in [node.left, *node.comparators])
    ]
    assert bare == [], f"compare with a bot.kinds.Kind member, not a string: {bare}"


def test_every_kind_is_written_somewhere() -> None:
    """A kind nothing writes is a label nobody will ever read: remove it instead."""
    used = {
        node.attr
        for path, tree in _modules()
        if path.name != "kinds.py" and "locales" not in path.parts
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Kind"
    }
    assert set(Kind.__members__) - used == set()
