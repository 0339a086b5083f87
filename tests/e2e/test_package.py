"""The installed package, outside the checkout: the `vigie` CLI, `sia-send`, and its data files.

An installer testing a receiver before touching a panel has Vigie installed, not a clone of
the repository: the wheel is built, installed into a folder of its own, and run from elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_installed_cli_and_data_outside_the_checkout(tmp_path: Path) -> None:
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path,
                   capture_output=True)
    [wheel] = wheels.glob("vigie-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True,
                   capture_output=True)
    # Only the installed copy is importable as `bot` (the dependencies come from this interpreter).
    env = {**os.environ, "PYTHONPATH": str(target)}

    def run(*args: str) -> str:
        done = subprocess.run(list(args), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "sia-send" in run(str(target / "bin" / "vigie"), "--help")
    assert "--account" in run(sys.executable, "-m", "bot", "sia-send", "--help")
    where = run(sys.executable, "-c", "import bot, importlib.resources as r; print(bot.__file__); "
                "print((r.files('bot.web') / 'static' / 'page.html').is_file()); "
                "print((r.files('bot.ops') / 'vigie.service').is_file())").split()
    assert where == [str(target / "bot" / "__init__.py"), "True", "True"]
