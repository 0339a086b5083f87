"""The admin listener's place in vigie.toml: loopback only, its own port."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main
from tests.config_support import copy_example, edit
from tests.core.test_settings import ENV, problems


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "vigie.example.fr"])  # noqa: S104
def test_check_config_refuses_a_non_loopback_admin_listener(tmp_path: Path, host: str,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    cfg = copy_example(tmp_path)
    edit(cfg / "vigie.toml", "# admin_port = 9180", f'admin_port = 9180\nadmin_host = "{host}"')
    assert any("service.admin_host" in p and "this machine only" in p for p in problems(cfg)), problems(cfg)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    assert main(["check-config", "--config", str(cfg)]) == 2
    assert "admin_host" in capsys.readouterr().err


def test_admin_listener_on_loopback_is_accepted_and_needs_its_own_port(tmp_path: Path) -> None:
    from bot.config_load import load_settings
    from tests.config_support import TODAY

    cfg = copy_example(tmp_path)
    edit(cfg / "vigie.toml", "# admin_port = 9180", 'admin_port = 9180\nadmin_host = "::1"')
    svc = load_settings(cfg, ENV, TODAY).vigie.service
    assert (svc.admin_host, svc.admin_port) == ("::1", 9180)
    edit(cfg / "vigie.toml", "admin_port = 9180", "admin_port = 8080")
    assert any("admin_port must differ" in p for p in problems(cfg))
