"""``vigie enrol``, ``vigie passkeys``, and what ``check-config`` says about passkeys and the public URL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.audit import Registre
from bot.passkey_store import PasskeyStore
from tests.config_support import copy_example, edit
from tests.core.test_settings import ENV, problems


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = copy_example(tmp_path)
    edit(d / "vigie.toml", 'data_dir = "/var/lib/vigie"', f'data_dir = "{tmp_path / "data"}"')
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    return d


@pytest.mark.parametrize("url", ["http://vigie.zenith-saint-etienne.fr", "http://192.168.1.10:8080"])
def test_check_config_refuses_plain_http_except_on_this_machine(cfg: Path, url: str) -> None:
    edit(cfg / "vigie.toml", 'public_url = "https://vigie.zenith-saint-etienne.fr"', f'public_url = "{url}"')
    assert any("public_url" in p and "https" in p for p in problems(cfg)), problems(cfg)


def test_plain_http_on_localhost_is_accepted(cfg: Path) -> None:
    edit(cfg / "vigie.toml", 'public_url = "https://vigie.zenith-saint-etienne.fr"', 'public_url = "http://localhost:8080"')
    assert main(["check-config", "--config", str(cfg)]) == 0


def test_enrol_list_revoke_and_check_config_on_a_person_gone(cfg: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["enrol", "nobody", "--config", str(cfg)]) == 2
    assert "n'est pas sur la liste" in capsys.readouterr().err
    assert main(["enrol", "sbonnet", "--config", str(cfg)]) == 2  # a video operator does not view
    assert "ne peut pas voir les images" in capsys.readouterr().err

    assert main(["enrol", "bac-perrin", "--config", str(cfg), "--minutes", "10"]) == 0
    out = capsys.readouterr().out
    token = re.search(r"https://vigie\.zenith-saint-etienne\.fr/live/enrol/(\S+)", out)
    assert token, out
    with Registre(tmp_path / "data" / "registre.sqlite3", readonly=True) as registre:
        issued = [r for r in registre.records() if r.kind == "enrol_link_issued"]
    assert issued[0].details["person"] == "bac-perrin" and token.group(1) not in str(issued[0].details)

    # a passkey whose person has since left the roster: reported, not fatal
    keys = PasskeyStore(tmp_path / "data" / "state.sqlite3")
    keys.add_enrolment("t" * 43, "ancien-agent", issued[0].at, issued[0].at.replace(year=2099))
    from bot.passkey_store import Passkey
    assert keys.enrol("t" * 43, Passkey("cred-1", "ancien-agent", b"k", 0, "tél.", issued[0].at), issued[0].at)
    keys.close()
    assert main(["check-config", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "ancien-agent, qui n'est plus sur la liste" in out and out.strip().endswith("OK")

    assert main(["passkeys", "list", "--config", str(cfg)]) == 0
    assert "ancien-agent  cred-1" in capsys.readouterr().out
    assert main(["passkeys", "revoke", "ancien-agent", "--config", str(cfg)]) == 0
    assert "1 clé(s) d'accès de ancien-agent révoquée(s)" in capsys.readouterr().out
    assert main(["check-config", "--config", str(cfg)]) == 0
    assert capsys.readouterr().out.strip() == "OK"
    with Registre(tmp_path / "data" / "registre.sqlite3", readonly=True) as registre:
        revoked = [r for r in registre.records() if r.kind == "passkey_revoked"]
    assert revoked[0].details["person"] == "ancien-agent" and revoked[0].actor.startswith("cli:")
