"""Panels in alarms.toml: the commented example works once uncommented; each mistake gets one clear line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config_load import build_convention, load_settings
from bot.policy.convention import ConfirmRule
from bot.sia.receiver import receiver_config
from tests.config_support import EXAMPLE, TODAY, config_problems, copy_example, edit

KEY = "Zq3xW8pL2mN7vR4t"
ENV = {"VIGIE_LINK_KEYS": "x7Qk2v9LmP4rT8wZ1nB6cD3fG5hJ0sA2",
       "VIGIE_ALARM_SECRET_SSI_ZENITH": "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
       "VIGIE_SIA_KEY_CENTRALE_ZENITH": KEY}


def uncomment_panel(alarms: Path) -> None:
    """Uncomment the example's SIA block: every line from '# [sia]' down loses its first '# '."""
    lines = alarms.read_text(encoding="utf-8").split("\n")
    start = lines.index("# [sia]")
    lines[start:] = [line[2:] if line.startswith("# ") else line.removeprefix("#") for line in lines[start:]]
    alarms.write_text("\n".join(lines), encoding="utf-8")


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    d = copy_example(tmp_path)
    uncomment_panel(d / "alarms.toml")
    return d


def problems(d: Path, env: dict[str, str] | None = None) -> list[str]:
    return config_problems(d, ENV if env is None else env)


def test_example_panel_is_valid_and_builds_two_sources(cfg: Path) -> None:
    s = load_settings(cfg, ENV, TODAY)
    assert s.alarms.sia is not None and s.alarms.sia.port == 12128
    [panel] = s.alarms.panel
    assert panel.name == "centrale-zenith" and s.secrets.sia_key("centrale-zenith") == KEY
    conv = build_convention(s)
    hold_up = conv.alarm_source("centrale-zenith")
    intrusion = conv.alarm_source("centrale-zenith.intrusion")
    assert hold_up is not None and hold_up.confirm is ConfirmRule.NONE and dict(hold_up.types) == {"hold_up": "attaque_armee"}
    assert intrusion is not None and intrusion.confirm is ConfirmRule.ANY
    assert dict(intrusion.types) == {"burglary": "intrusion_armee"}
    assert conv.alarm_source("ssi-zenith") is not None  # the webhook source is still there
    rc = receiver_config(s)
    assert rc is not None and rc.host == "0.0.0.0" and rc.port == 12128 and not rc.udp  # noqa: S104 - a comparison
    [acct] = rc.panels
    assert acct.account == "A1B2C3" and acct.key == KEY.encode() and acct.heartbeat == timedelta(seconds=120)
    assert KEY not in repr(acct) and KEY not in repr(s)  # never printed by accident


def test_example_as_shipped_has_no_panel() -> None:
    # commented out: the example config runs without a panel key (and test_settings keeps passing)
    text = (EXAMPLE / "alarms.toml").read_text(encoding="utf-8")
    assert "\n[sia]" not in text and "\n[[panel]]" not in text and "# [[panel]]" in text


def test_plain_panel_without_key(cfg: Path) -> None:
    edit(cfg / "alarms.toml", 'key_file = "/etc/vigie/secrets/sia_centrale_zenith"\n', "")
    env = {k: v for k, v in ENV.items() if not k.startswith("VIGIE_SIA")}
    s = load_settings(cfg, env, TODAY)
    rc = receiver_config(s)
    assert rc is not None and rc.panels[0].key is None


def test_key_from_file(cfg: Path, tmp_path: Path) -> None:
    keyfile = tmp_path / "sia.key"
    keyfile.write_text("k" + "0123456789abcdefghijklmnopqrstu" + "\n", encoding="utf-8")  # 32 characters
    edit(cfg / "alarms.toml", "/etc/vigie/secrets/sia_centrale_zenith", str(keyfile))
    env = {k: v for k, v in ENV.items() if not k.startswith("VIGIE_SIA")}
    s = load_settings(cfg, env, TODAY)
    assert s.secrets.sia_key("centrale-zenith") == "k0123456789abcdefghijklmnopqrstu"


@pytest.mark.parametrize("env_key,expect", [
    ("short-key", r"panel\[0\] \(centrale-zenith\).key_file: the AES key must be 16, 24 or 32 characters"),
    ("0123456789abcdef0", "16, 24 or 32 characters"),
    ("0000000000000000", "is a placeholder"),
    ("abcd efgh ijkl m", "16, 24 or 32 characters"),
])
def test_bad_keys(cfg: Path, env_key: str, expect: str) -> None:
    import re

    found = problems(cfg, {**ENV, "VIGIE_SIA_KEY_CENTRALE_ZENITH": env_key})
    assert any(re.search(expect, p) for p in found), found
    # the key itself is not echoed (the test's own directory name carries it: leave that out)
    assert all(env_key not in p.replace(str(cfg), "") for p in found)


def test_missing_key_file(cfg: Path) -> None:
    env = {k: v for k, v in ENV.items() if not k.startswith("VIGIE_SIA")}
    found = problems(cfg, env)
    assert any("sia_centrale_zenith cannot be read" in p and "VIGIE_SIA_KEY_CENTRALE_ZENITH" in p for p in found), found


@pytest.mark.parametrize("old,new,expect", [
    ('hold_up = "attaque_armee"         #', 'hold_up = "incendie"         #',
     "types.hold_up: 'incendie' is not an enabled grave category"),
    ('burglary = "intrusion_armee"', 'panic = "intrusion_armee"', "'panic' is not hold_up, burglary, CID-nnn or SIA-XX"),
    ('alarm_confirm = "any_authorised"', 'alarm_confirm = "none"', "an automatic detector must be confirmed"),
    ('account = "A1B2C3"', 'account = "ZZ"', "account"),
    ('name = "centrale-zenith"', 'name = "ssi-zenith"', "already the name of a webhook [[source]]"),
    ('heartbeat_seconds = 120', 'heartbeat_seconds = -5', "heartbeat_seconds"),
    ('port = 12128', 'port = 70000', "sia.port"),
    ("[sia]\n", "[siaa]\n", "siaa"),
])
def test_each_mistake_gets_one_clear_line(cfg: Path, old: str, new: str, expect: str) -> None:
    edit(cfg / "alarms.toml", old, new)
    found = problems(cfg)
    assert any(expect in p for p in found), found


def test_panels_need_a_receiver_section(cfg: Path) -> None:
    text = (cfg / "alarms.toml").read_text(encoding="utf-8")
    start, end = text.index("\n[sia]\n"), text.index("\n[[panel]]")
    (cfg / "alarms.toml").write_text(text[:start] + text[end:], encoding="utf-8")
    found = problems(cfg)
    assert any("no [sia] section" in p for p in found), found


def test_duplicate_accounts(cfg: Path) -> None:
    text = (cfg / "alarms.toml").read_text(encoding="utf-8")
    block = text[text.index("\n[[panel]]"):]
    (cfg / "alarms.toml").write_text(text + "\n" + block.replace('name = "centrale-zenith"', 'name = "centrale-2"')
                                     .replace("A1B2C3", "a1b2c3"), encoding="utf-8")
    found = problems(cfg, {**ENV, "VIGIE_SIA_KEY_CENTRALE_2": KEY})
    assert any("panel account 'A1B2C3' appears twice" in p for p in found), found


def test_hex_key(cfg: Path) -> None:
    edit(cfg / "alarms.toml", 'key_format = "ascii"', 'key_format = "hex"')
    hex_key = "FA415FA2FB3C7F13FA415FA2FB3C7F13"
    s = load_settings(cfg, {**ENV, "VIGIE_SIA_KEY_CENTRALE_ZENITH": hex_key}, TODAY)
    rc = receiver_config(s)
    assert rc is not None and rc.panels[0].key == bytes.fromhex(hex_key)  # AES-128, not 32 ASCII bytes
    found = problems(cfg, {**ENV, "VIGIE_SIA_KEY_CENTRALE_ZENITH": "FA415FA2FB3C7F13"})
    assert any('with key_format = "hex" the AES key must be 32, 48 or 64 hex digits' in p for p in found), found
