"""Helpers for tests that copy the example config, break one thing and read the problems."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pytest

from bot.config_load import ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config"
TODAY = date(2026, 11, 25)


def copy_example(tmp_path: Path) -> Path:
    """A copy of the example config whose cameras point at loopback addresses.

    The example's cameras sit on a venue LAN (10.42.0.x); a test that starts the app must never
    send traffic there, so the copy keeps the same shape on 127.0.0.x, where nothing answers.
    """
    d = tmp_path / "config"
    shutil.copytree(EXAMPLE, d)
    cams = d / "cameras.toml"
    cams.write_text(cams.read_text(encoding="utf-8").replace("rtsp://10.42.0.", "rtsp://127.0.0."), encoding="utf-8")
    return d


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def config_problems(d: Path, env: Mapping[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_settings(d, env, TODAY)
    return exc.value.problems


def runnable_example(tmp_path: Path, port: int) -> tuple[Path, dict[str, str]]:
    """The example config, ready for ``run`` on this machine: its port, a private data directory,
    links on http://127.0.0.1:PORT, and its secrets in the environment it returns."""
    cfg = copy_example(tmp_path)
    edit(cfg / "vigie.toml", "port = 8080", f"port = {port}")
    edit(cfg / "vigie.toml", 'data_dir = "/var/lib/vigie"', f'data_dir = "{tmp_path / "data"}"')
    edit(cfg / "vigie.toml", 'link_keys_file = "/etc/vigie/secrets/link_keys"\n', "")
    edit(cfg / "vigie.toml", 'public_url = "https://vigie.zenith-saint-etienne.fr"',
         f'public_url = "http://127.0.0.1:{port}"')
    edit(cfg / "alarms.toml", 'secret_file = "/etc/vigie/secrets/alarm_ssi_zenith"\n', "")
    env = {**os.environ, "VIGIE_LINK_KEYS": "p" + "Qk2v9LmP4rT8wZ1nB6cD3fG5hJ0sA2x7",
           "VIGIE_ALARM_SECRET_SSI_ZENITH": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    return cfg, env


def set_password(cfg: Path, person: str, password: str) -> None:
    """Give a roster person of the example a password the test knows."""
    from argon2 import PasswordHasher

    roster = cfg / "roster.toml"
    old = re.search(rf'id = "{person}"[^\[]*?password_hash = "([^"]+)"', roster.read_text(encoding="utf-8"))
    assert old, person
    edit(roster, old.group(1), PasswordHasher().hash(password))
