"""The pure core imports nothing but itself and the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

POLICY = Path(__file__).resolve().parents[2] / "bot" / "policy"


def test_policy_imports_only_stdlib_and_itself() -> None:
    offenders = []
    files = sorted(POLICY.glob("*.py"))
    assert files, "bot/policy is empty?"
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level > 0:
                    if node.level > 1:  # `from .. import x` would reach outside the package
                        offenders.append(f"{path.name}: from {'.' * node.level}{node.module or ''}")
                    continue
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "__future__" and top not in sys.stdlib_module_names:
                    offenders.append(f"{path.name}: import {name}")
    assert offenders == []


def test_policy_does_no_io() -> None:
    banned = {"open", "print", "input", "socket", "sqlite3", "subprocess", "os", "pathlib", "asyncio", "logging"}
    for path in POLICY.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"open", "print", "input"}, f"{path.name} calls {node.func.id}()"
            if isinstance(node, ast.Import):
                for a in node.names:
                    assert a.name.split(".")[0] not in banned, f"{path.name} imports {a.name}"
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert (node.module or "").split(".")[0] not in banned, f"{path.name} imports {node.module}"
