"""Config validation: the example config is valid; each broken config gets one clear message."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config_load import build_convention, load_settings, resolve_data_dir
from tests.config_support import EXAMPLE, TODAY, config_problems, copy_example, edit

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
ENV = {"VIGIE_LINK_KEYS": "x7Qk2v9LmP4rT8wZ1nB6cD3fG5hJ0sA2", "VIGIE_ALARM_SECRET_SSI_ZENITH": WHSEC}


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = copy_example(tmp_path)
    return d


def problems(d: Path, env: dict[str, str] | None = None) -> list[str]:
    return config_problems(d, ENV if env is None else env)


def test_example_config_is_valid_and_builds_the_convention(cfg: Path) -> None:
    s = load_settings(cfg, ENV, TODAY)
    conv = build_convention(s)
    assert len(conv.cameras_in_scope) == 20 and "loges-artistes" not in conv.cameras_in_scope
    assert {p.id for p in conv.viewers()} >= {"cic-moreau", "bac-perrin"}
    with pytest.raises(ValidationError):  # frozen
        s.vigie.service.port = 1  # type: ignore[misc]


def test_relative_data_dir_is_read_from_the_config_directory(cfg: Path) -> None:
    assert resolve_data_dir(load_settings(cfg, ENV, TODAY)) == Path("/var/lib/vigie")
    edit(cfg / "vigie.toml", 'data_dir = "/var/lib/vigie"', 'data_dir = "data"')
    assert resolve_data_dir(load_settings(cfg, ENV, TODAY)) == cfg.resolve() / "data"


def test_example_files_hold_no_secret() -> None:
    for f in EXAMPLE.glob("*.toml"):
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"whsec_[A-Za-z0-9+/=]{8,}", text) and not re.search(r"\d{6,}:[A-Za-z0-9_-]{30,}", text), f.name


@pytest.mark.parametrize(
    "file,old,new,expect",
    [
        ("vigie.toml", "port = 8080", "port = 8080\nprot = 1", r"vigie.toml: service.prot: .*fix: remove this key"),
        ("convention.toml", "expires = 2029-06-30", "expires = 2025-06-30", r"convention.toml: authorisation.expires: .*expired on 2025-06-30"),
        ("convention.toml", '"parking-public"]', '"parking-public", "vestiaires"]', r"scope.cameras\[20\]: camera 'vestiaires' is not defined in .*cameras.toml"),
        ("convention.toml", '"parking-public"]', '"parking-public", "loges-artistes"]', r"marked private"),
        ("roster.toml", 'habilitation = "DDSP42-VP-2025-017"\n', "", r"person\[6\] \(bac-perrin\).habilitation: a police viewer needs"),
        ("roster.toml", "$argon2id$v=19", "$argon2id$v=1x", r"person\[0\] \(mlefevre\).password_hash: not a valid argon2 hash"),
        ("roster.toml", 'role = "director"', 'role = "boss"', r"roster.toml: person\[1\].role: .*fix: use one of the values"),
        ("convention.toml", '"intrusion_armee"]', '"intrusion_armee", "vol_simple"]', r"categories\[8\]: 'vol_simple' is not a grave category"),
        ("alarms.toml", 'bomb_threat = "alerte_bombe"', 'bomb_threat = "incendie"', r"types.bomb_threat: 'incendie' is not an enabled grave category"),
        ("cameras.toml", 'id = "fosse"', 'id = "Fosse !"', r"cameras.toml: camera\[6\].id: .*fix: use lowercase"),
        ("convention.toml", "expires = 2029-06-30", "expires = 30/06/2029", r"convention.toml: not valid TOML"),
        # Typed on the sign-in page: an id or a RIO must name one person only.
        ("roster.toml", 'habilitation = "DDSP42-VP-2025-017"\n', 'habilitation = "DDSP42-VP-2025-017"\nrio = "1234567"\n',
         r"roster.toml: rio '1234567' appears twice"),
        ("roster.toml", 'rio = "1234567"', 'rio = "mlefevre"', r"roster.toml: rio 'mlefevre' is also a person's id"),
        ("vigie.toml", '# health_token_file = "/etc/vigie/secrets/health_token"', 'health_token_file = "short"',
         r"health_token_file: secret file .*short cannot be read"),
        # Rooms shared by venues: the code names this venue, never a category or the venue itself.
        ("vigie.toml", 'venue_code = "zenith"', 'venue_code = "Zénith"', r"vigie.toml: service.venue_code: .*fix"),
        ("vigie.toml", 'venue_code = "zenith"', 'venue_code = "nrbc"', r"service.venue_code: 'nrbc' is also a category"),
    ],
)
def test_each_broken_config_is_named_with_file_key_and_fix(cfg: Path, file: str, old: str, new: str, expect: str) -> None:
    edit(cfg / file, old, new)
    found = problems(cfg)
    assert any(re.search(expect, p) for p in found), found


def test_telegram_enabled_without_token(cfg: Path) -> None:
    edit(cfg / "vigie.toml", "enabled = false\nchats", "enabled = true\nchats")
    assert any("telegram.token_file: Telegram is enabled but no bot token" in p for p in problems(cfg))


@pytest.mark.parametrize(
    "env,expect",
    [
        ({"VIGIE_ALARM_SECRET_SSI_ZENITH": WHSEC}, "no link signing key"),
        ({**ENV, "VIGIE_LINK_KEYS": "changeme"}, "placeholder"),
        ({**ENV, "VIGIE_LINK_KEYS": "short"}, "too short"),
        ({**ENV, "VIGIE_ALARM_SECRET_SSI_ZENITH": "whsec_abc"}, "is not 'whsec_' + base64"),
        ({"VIGIE_LINK_KEYS": ENV["VIGIE_LINK_KEYS"]}, "no webhook secret"),
    ],
)
def test_secrets_missing_or_placeholder(cfg: Path, env: dict[str, str], expect: str) -> None:
    assert any(expect in p for p in problems(cfg, env))


def test_placeholder_telegram_token_refused(cfg: Path) -> None:
    edit(cfg / "vigie.toml", "enabled = false\nchats", "enabled = true\nchats")
    found = problems(cfg, {**ENV, "VIGIE_TELEGRAM_TOKEN": "CHANGE_ME"})
    assert any("placeholder" in p for p in found)


def test_missing_file_and_missing_dir(tmp_path: Path, cfg: Path) -> None:
    (cfg / "roster.toml").unlink()
    assert any("roster.toml: missing" in p for p in problems(cfg))
    assert any("not a directory" in p for p in problems(tmp_path / "nope"))


def test_check_config_cli(cfg: Path) -> None:
    env = {**os.environ, **ENV}
    ok = subprocess.run([sys.executable, "-m", "bot", "check-config", "--config", str(cfg)], env=env,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "OK", ok.stderr
    edit(cfg / "convention.toml", "expires = 2029-06-30", "expires = 2020-01-01")
    bad = subprocess.run([sys.executable, "-m", "bot", "check-config", "--config", str(cfg)], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "authorisation.expires" in bad.stderr
    assert ENV["VIGIE_LINK_KEYS"] not in bad.stderr + bad.stdout


@pytest.mark.parametrize(
    "value,expect",
    [
        ('"http://proxy.example.fr"', "must use https"),
        ('"https://api.telegram.org/bot"', "without the /bot suffix"),
        ('"https://user:pw@proxy.example.fr"', "must not carry credentials"),
        ('"api.telegram.org"', "must be an absolute URL"),
    ],
)
def test_telegram_api_url_is_checked(cfg: Path, value: str, expect: str) -> None:
    edit(cfg / "vigie.toml", 'api_url = "https://api.telegram.org"', f"api_url = {value}")
    found = problems(cfg)
    assert any("vigie.toml: telegram.api_url:" in p and expect in p for p in found), found


@pytest.mark.parametrize("value", ["https://tg-proxy.zenith.fr/telegram", "http://localhost:8081", "http://127.0.0.1:8081/"])
def test_telegram_api_url_accepts_a_local_server_or_a_proxy(cfg: Path, value: str) -> None:
    edit(cfg / "vigie.toml", 'api_url = "https://api.telegram.org"', f'api_url = "{value}"\nfile_url = "{value}"')
    s = load_settings(cfg, ENV, TODAY)
    assert s.vigie.telegram.api_url == value.rstrip("/") == s.vigie.telegram.file_url


def test_health_token(cfg: Path) -> None:
    assert any("health token is too short" in p for p in problems(cfg, {**ENV, "VIGIE_HEALTH_TOKEN": "abc123xyz"}))
    token = "h" * 8 + "Q2w9Zr4kLm7Tn1Bv5Xc8Jd3F"
    s = load_settings(cfg, {**ENV, "VIGIE_HEALTH_TOKEN": token}, TODAY)
    assert s.secrets.health_token is not None and s.secrets.health_token.get_secret_value() == token
    assert load_settings(cfg, ENV, TODAY).secrets.health_token is None


SHARED = '# [[matrix.shared]]\n# room = "!cicloire:agent.interieur.tchap.gouv.fr"\n# venues = '


def test_a_shared_police_room(cfg: Path) -> None:
    edit(cfg / "vigie.toml", SHARED, '[[matrix.shared]]\nroom = "!cicloire:agent.interieur.tchap.gouv.fr"\nvenues = ')
    s = load_settings(cfg, ENV, TODAY)
    assert sorted(s.vigie.matrix.shared_with("!cicloire:agent.interieur.tchap.gouv.fr")) == ["arena", "stade"]
    assert s.vigie.matrix.shared_with("!other:x") == {}
    edit(cfg / "vigie.toml", 'room = "!cicloire', 'room = "!autre')
    edit(cfg / "vigie.toml", "stade = ", "zenith = ")
    edit(cfg / "vigie.toml", 'venue_code = "zenith"\n', "")
    found = problems(cfg)
    for expect in (r"matrix.shared\[0\].room: !autre:.* is not in matrix.rooms",
                   r"matrix.shared\[0\]: a shared room needs service.venue_code"):
        assert any(re.search(expect, p) for p in found), found
    edit(cfg / "vigie.toml", "\n[service]\n", '\n[service]\nvenue_code = "zenith"\n')
    assert any("venues.zenith: that is this venue" in p for p in problems(cfg))
