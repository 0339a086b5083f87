"""The house rules, checked on the source: dependencies point inward, and nothing loops.

- ``bot.policy`` is pure: the standard library and itself only, and no I/O.
- The core (desk, outbox, store, registre, access, messages, settings and config loading…)
  imports no adapter: no transport, no web page, no media pipeline, no composition root.
  Config may read the DC-09 code tables (``bot.sia.codes``), which are pure data like policy.
- ``bot.media`` knows nothing of HTTP or access control.
- Adapters reach the desk through ``bot.desk_port.DeskPort`` only, never ``bot.desk`` itself.
- The DC-09 sender is written from the standard, independently of the receiver's parser.
- No import cycle between modules of ``bot``; no module over 450 lines.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOT = ROOT / "bot"
POLICY = BOT / "policy"

ADAPTERS = ("bot.telegram", "bot.matrix", "bot.sia", "bot.alarms", "bot.web", "bot.media", "bot.console",
            "bot.app", "bot.demo", "bot.__main__", "bot.transport")
CORE = ("bot.policy", "bot.desk", "bot.desk_port", "bot.outbox", "bot.fanout", "bot.store", "bot.audit", "bot.audit_cli", "bot.access",
        "bot.messages", "bot.rooms", "bot.alarm", "bot.commands", "bot.settings", "bot.config_load",
        "bot.migrations", "bot.locales")
# Pure tables an adapter package owns but the config reads (like the policy: no I/O).
PURE_EXCEPTIONS = {"bot.config_load": {"bot.sia.codes"}}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, source: str | None = None) -> Iterator[str]:
    """Absolute names of the modules ``path`` imports at run time (``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    me = module_name(path)
    package = me if is_package(path) else me.rpartition(".")[0]
    skip: set[int] = set()
    for node in ast.walk(tree):
        if _type_checking_block(node):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                target = f"{prefix}.{node.module}" if node.module else prefix
            else:
                target = node.module or ""
            yield target
            for alias in node.names:  # `from . import codes` imports the module bot.sia.codes
                if f"{target}.{alias.name}" in MODULES:
                    yield f"{target}.{alias.name}"


def bot_modules() -> dict[str, Path]:
    return {module_name(p): p for p in BOT.rglob("*.py")}


MODULES = bot_modules()


def _under(name: str, roots: tuple[str, ...] | set[str]) -> bool:
    return any(name == r or name.startswith(r + ".") for r in roots)


def wrong_way(name: str, imported: set[str]) -> list[str]:
    """The imports of module ``name`` that break the layering (empty when it is fine)."""
    bad: list[str] = []
    if _under(name, ("bot.policy",)):
        for target in imported:
            top = target.split(".")[0]
            if not (target.startswith("bot.policy") or top == "__future__" or top in sys.stdlib_module_names):
                bad.append(target)
    elif _under(name, CORE):
        allowed = PURE_EXCEPTIONS.get(name, set())
        bad += [t for t in imported if _under(t, ADAPTERS) and not _under(t, allowed)]
    if _under(name, ("bot.media",)):
        bad += [t for t in imported if _under(t, ("aiohttp", "bot.access", "bot.web", "bot.desk", "bot.app"))]
    if _under(name, ADAPTERS) and not _under(name, ("bot.app", "bot.demo", "bot.__main__")):
        bad += [t for t in imported if _under(t, ("bot.desk",))]
    if name == "bot.sia.sender":
        bad += [t for t in imported if _under(t, ("bot.sia.frame", "bot.sia.codes", "bot.sia.receiver"))]
    return sorted(set(bad))


def graph() -> dict[str, set[str]]:
    mods = bot_modules()
    edges: dict[str, set[str]] = {}
    for name, path in mods.items():
        edges[name] = {t for t in imports_of(path) if t in mods and t != name}
    return edges


def test_dependencies_point_inward() -> None:
    offenders = {name: bad for name, path in bot_modules().items()
                 if (bad := wrong_way(name, set(imports_of(path))))}
    assert offenders == {}


def test_the_rule_catches_a_wrong_way_import() -> None:
    # What the build does when someone makes the desk talk to Telegram or the policy read a file.
    desk = BOT / "desk.py"
    source = desk.read_text(encoding="utf-8") + "\nfrom .telegram.room import TelegramRoom\n"
    assert wrong_way("bot.desk", set(imports_of(desk, source))) == ["bot.telegram.room"]
    policy = POLICY / "decide.py"
    source = policy.read_text(encoding="utf-8") + "\nimport pydantic\nfrom ..store import Store\n"
    assert wrong_way("bot.policy.decide", set(imports_of(policy, source))) == ["bot.store", "pydantic"]
    telegram = BOT / "telegram" / "updates.py"
    source = telegram.read_text(encoding="utf-8") + "\nfrom ..desk import Desk\n"
    assert wrong_way("bot.telegram.updates", set(imports_of(telegram, source))) == ["bot.desk"]
    config = BOT / "config_load.py"
    source = config.read_text(encoding="utf-8") + "\nfrom .matrix.room import MatrixRoom\n"
    assert "bot.matrix.room" in wrong_way("bot.config_load", set(imports_of(config, source)))


def test_no_import_cycle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            # A package importing its own submodule (bot.sia → bot.sia.codes) is not a cycle of files.
            if len(comp) > 1 and not all(c == min(comp) or c.startswith(min(comp) + ".") for c in comp):
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == []


@pytest.mark.parametrize("path", sorted(POLICY.glob("*.py")), ids=lambda p: p.name)
def test_policy_does_no_io(path: Path) -> None:
    banned = {"open", "print", "input", "socket", "sqlite3", "subprocess", "os", "pathlib", "asyncio", "logging"}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"open", "print", "input"}, f"{path.name} calls {node.func.id}()"
        if isinstance(node, ast.Import):
            for a in node.names:
                assert a.name.split(".")[0] not in banned, f"{path.name} imports {a.name}"
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            assert (node.module or "").split(".")[0] not in banned, f"{path.name} imports {node.module}"


MAX_LINES = 450


def test_no_module_over_450_lines() -> None:
    # Small files that say what they hold: past this, a module is two things and wants splitting.
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_the_bot_starts_without_the_passkey_libraries() -> None:
    """py_webauthn and its cryptography (~15 MB resident) load at the first passkey request, not at start."""
    import subprocess

    code = ("import sys, bot.app, bot.passkeys, bot.web.passkeys; "
            "print(sorted(m for m in ('webauthn', 'cryptography', 'OpenSSL', 'cbor2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
