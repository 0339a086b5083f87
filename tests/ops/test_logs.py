"""``--log-format json``: one object per line, parseable, and never a password, token or secret."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from pathlib import Path

import aiohttp

from bot.logs import JsonFormatter, RedactTokens
from tests.e2e.test_demo import Demo, login, wait_healthy
from tests.ops.support import Service


def test_formatter_writes_one_object_with_incident_and_redacted_traceback() -> None:
    record = logging.LogRecord("bot.desk", logging.WARNING, __file__, 1, "link for %s: %s", ("INC-20261125-01",
                               "https://v.example/live/SeCrEtToKeN"), None)
    try:
        raise ValueError("https://v.example/live/SeCrEtToKeN failed")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactTokens().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line and "SeCrEtToKeN" not in line
    body = json.loads(line)
    assert body["level"] == "WARNING" and body["logger"] == "bot.desk" and body["incident"] == "INC-20261125-01"
    assert body["message"] == "link for INC-20261125-01: https://v.example/live/…"
    assert "ValueError" in body["exception"] and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["time"])
    extra = logging.LogRecord("bot", logging.INFO, __file__, 1, "room down", None, None)
    extra.incident = "EX-20261125-02"
    assert json.loads(JsonFormatter().format(extra))["incident"] == "EX-20261125-02"


async def test_verbose_json_run_of_the_demo_parses_and_leaks_nothing(tmp_path: Path) -> None:
    demo = Demo(tmp_path, ("--log-format", "json"))
    try:
        await demo.read_until(r"Fin de saisie")
        assert await wait_healthy(demo.base)
        banner = "".join(demo.lines)
        passwords = re.findall(r"mot de passe : (\S+)$", banner, re.M)
        secret = re.search(r"secret : (whsec_\S+)", banner).group(1)  # type: ignore[union-attr]
        aes = re.search(r"clé AES (\S+)", banner).group(1)  # type: ignore[union-attr]
        assert len(passwords) == 5
        demo.type("/alert attaque_armee Hall A")
        link = (await demo.read_until(r"(http://127\.0\.0\.1:\d+/live/\S+)")).group(1)
        async with aiohttp.ClientSession() as s:
            assert (await login(s, link, "demo-agent", passwords[0] + "x"))[0] == 401
            status, cookie = await login(s, link, "demo-agent", passwords[3])
            assert status == 303 and cookie
        demo.type("/end")
        await demo.read_until(r"ACCÈS TERMINÉ")
        assert demo.proc.stdin is not None and demo.proc.stderr is not None
        demo.proc.stdin.close()
        assert await asyncio.to_thread(demo.proc.wait, 15) == 0
        logs = demo.proc.stderr.read()
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
            demo.proc.wait(10)
    lines = logs.splitlines()
    assert len(lines) > 10
    bodies = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= b.keys() for b in bodies)
    assert any(b.get("incident", "").startswith("INC-") for b in bodies)
    assert any(b["level"] == "DEBUG" for b in bodies)  # verbose indeed
    key_hex = base64.b64decode(secret.removeprefix("whsec_")).hex()
    for leak in (*passwords, secret, secret.removeprefix("whsec_"), key_hex, aes, link.rsplit("/", 1)[1], cookie):
        assert leak not in logs, leak


async def test_app_logs_at_debug_never_carry_the_service_secrets(tmp_path: Path, caplog: object) -> None:
    """The in-process service, signed webhooks included: nothing secret reaches any logger."""
    import pytest

    assert isinstance(caplog, pytest.LogCaptureFixture)
    caplog.set_level(logging.DEBUG)
    async with Service(tmp_path / "data") as svc:
        link = await svc.alert()
        async with aiohttp.ClientSession() as s:
            assert await svc.login(s, link, "demo-cic", svc.demo.passwords["demo-cic"]) == 303
            assert await svc.webhook(s, "msg_log") == 202
    text = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    for leak in (*svc.demo.passwords.values(), svc.demo.alarm_secret, link.rsplit("/", 1)[1],
                 svc.demo.settings.secrets.link_keys[0].get_secret_value()):
        assert leak not in text
