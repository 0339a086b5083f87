"""Zones and the plan in the config: the example's zones load; each mistake is one clear line, also
from ``check-config``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.config_load import build_convention, load_settings
from tests.config_support import TODAY, config_problems, copy_example, edit
from tests.core.test_settings import ENV


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return copy_example(tmp_path)


def test_the_example_zones_plan_and_panel_mapping_load(cfg: Path) -> None:
    s = load_settings(cfg, ENV, TODAY)
    zones = build_convention(s).zones
    assert zones.find("HALL-A").cameras[0] == "hall-entree"
    assert zones.find("l'arrière scène").id == "hall-b"
    assert s.cameras.plan is not None and (cfg / s.cameras.plan.image).read_bytes().startswith(b"<svg")
    assert sum(1 for c in s.cameras.camera if c.at is not None) == 20


@pytest.mark.parametrize(
    "file,old,new,expect",
    [
        ("cameras.toml", '"billetterie", "bar-hall"]', '"billetterie", "bar-hal"]',
         r"cameras.toml: zone\[0\] \(hall-a\).cameras\[4\]: camera 'bar-hal' is not defined in .*cameras.toml — add a \[\[camera\]\]"),
        ("cameras.toml", 'cameras = ["quai-livraison"', 'cameras = ["loges-artistes", "quai-livraison"',
         r"zone\[1\] \(hall-b\).cameras\[0\]: camera 'loges-artistes' is marked private"),
        ("cameras.toml", '"entrée artistes"]', '"entrée artistes", "Accueil"]',
         r"zone\[1\] \(hall-b\): 'Accueil' also names zone 'hall-a'"),
        ("cameras.toml", 'id = "hall-b"', 'id = "hall-a"', r"zone 'hall-a' appears twice"),
        ("cameras.toml", 'image = "plan.svg"', 'image = "plans/absent.png"', r"plan.image: .*absent.png does not exist"),
        ("cameras.toml", 'image = "plan.svg"', 'image = "plan.gif"', r"plan.image: the plan is a .svg, .png or .jpg"),
        ("cameras.toml", "at = { x = 0.095, y = 0.24", "at = { x = 1.5, y = 0.24", r"camera\[0\].at.x"),
        ("alarms.toml", '# [panel.zones]', '[[panel]]\nname = "centrale"\nlabel = "Centrale"\naccount = "A1B2"\n[panel.zones]\n"005" = "hall-z"\n#',
         r"panel\[0\] \(centrale\).zones.005: zone 'hall-z' is not defined"),
    ],
)
def test_each_zone_mistake_is_one_clear_line(cfg: Path, file: str, old: str, new: str, expect: str) -> None:
    edit(cfg / file, old, new)
    found = config_problems(cfg, ENV)
    assert any(re.search(expect, p) for p in found), found


def test_check_config_reports_an_unknown_camera_in_a_zone(cfg: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    edit(cfg / "cameras.toml", '"billetterie", "bar-hall"]', '"billetterie", "vestiaire"]')
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "camera 'vestiaire' is not defined" in err and "zone[0] (hall-a)" in err
