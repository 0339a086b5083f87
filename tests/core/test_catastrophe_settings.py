"""check-config on the [catastrophe] section of convention.toml and the [camera.ptz] sections of cameras.toml."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config_load import build_convention, load_settings
from bot.policy.convention import ConfirmRule, Role
from tests.config_support import TODAY, config_problems, copy_example, edit
from tests.core.test_settings import ENV

PTZ = '''# [camera.ptz]
# onvif = "http://10.42.0.17:80"
# username = "vigie-ptz"
# password_file = "/etc/vigie/secrets/onvif_fosse"
# home_preset = "1"'''
ACTIVE = '''[camera.ptz]
onvif = "http://127.0.0.17:80"
username = "vigie-ptz"
home_preset = "1"'''


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return copy_example(tmp_path)


def test_the_example_builds_the_catastrophe_rules(cfg: Path) -> None:
    rules = build_convention(load_settings(cfg, ENV, TODAY)).catastrophe
    assert rules.confirm is ConfirmRule.COUNTERPARTY and rules.max_duration == timedelta(minutes=60)
    assert rules.control_roles == (Role.CIC_OFFICER, Role.FIELD_COMMANDER)
    assert rules.rank(Role.CIC_OFFICER) > rules.rank(Role.FIELD_COMMANDER) > rules.rank(Role.VIEWER)


def test_a_ptz_camera_takes_its_password_from_the_environment(cfg: Path) -> None:
    edit(cfg / "cameras.toml", PTZ, ACTIVE)
    s = load_settings(cfg, {**ENV, "VIGIE_ONVIF_PASSWORD_FOSSE": "a-real-ptz-password"}, TODAY)
    cam = next(c for c in s.cameras.camera if c.id == "fosse")
    assert cam.ptz is not None and cam.ptz.home_preset == "1"
    assert s.secrets.onvif_password("fosse") == "a-real-ptz-password"
    assert "a-real-ptz-password" not in repr(s)
    missing = config_problems(cfg, ENV)
    assert any("camera[6] (fosse).ptz.password_file" in p and "VIGIE_ONVIF_PASSWORD_FOSSE" in p for p in missing)


@pytest.mark.parametrize(
    "file,old,new,expect",
    [
        ("convention.toml", 'control = ["cic_officer", "field_commander"]', 'control = ["cic_officer", "operator"]',
         r"catastrophe.control\[1\]: 'operator' may not view the cameras"),
        ("convention.toml", "max_minutes = 60\n", "max_minutes = 300\n",
         r"catastrophe.max_minutes: longer than the access itself may last"),
        ("convention.toml", 'confirm = "counterparty"', 'confirm = "maybe"', r"catastrophe.confirm: "),
        ("convention.toml", "confirm_window_minutes = 3\n", "confirm_window_minutes = 3\nwho = 1\n",
         r"catastrophe.who: .*remove this key"),
        ("cameras.toml", PTZ, ACTIVE.replace("http://127.0.0.17:80", "http://admin:pw@127.0.0.17"),
         r"camera.6..ptz.onvif: .*without credentials"),
        ("cameras.toml", PTZ, ACTIVE.replace('onvif = "http://127.0.0.17:80"\n', ""),
         r"camera.6.: .*ptz needs onvif"),
    ],
)
def test_each_broken_catastrophe_setting_is_named(cfg: Path, file: str, old: str, new: str, expect: str) -> None:
    edit(cfg / file, old, new)
    found = config_problems(cfg, {**ENV, "VIGIE_ONVIF_PASSWORD_FOSSE": "a-real-ptz-password"})
    assert any(re.search(expect, p) for p in found), found


def test_a_private_camera_is_never_a_ptz_camera(cfg: Path) -> None:
    text = (cfg / "cameras.toml").read_text(encoding="utf-8")
    private = re.search(r'\[\[camera\]\]\nid = "loges-artistes"[^\[]*', text)
    assert private
    edit(cfg / "cameras.toml", private.group(0), private.group(0).rstrip("\n") + '\n\n[camera.ptz]\nonvif = "http://127.0.0.30"\n\n')
    found = config_problems(cfg, ENV)
    assert any("(loges-artistes).ptz: a private camera is never shown" in p for p in found), found
