"""Fixtures: a fake Bot API with the venue's people and groups, and running Vigie apps against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeTelegram
from tests.telegram.support import Vigie, free_port, make_fake, make_settings

# PTB 22 warns that RetryAfter.retry_after will become a timedelta; the rate limiter reads it.
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning")

Start = Callable[..., Awaitable[Vigie]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    tg = make_fake()
    await tg.start()
    yield tg
    await tg.stop()
    assert tg.problems == [], tg.problems


@pytest.fixture
async def vigie(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[Start]:
    """``await vigie(**settings_kw)`` starts an app on ``tmp_path/data``; every app is stopped at the end."""
    running: list[Vigie] = []

    async def start(*, port: int | None = None, wait_intake: bool = True, options: Any = None,
                    rooms: tuple[Any, ...] = (), **settings_kw: Any) -> Vigie:
        port = port or free_port()
        app = Vigie(fake, tmp_path / "data", make_settings(port, **settings_kw), port, options, rooms)
        running.append(app)
        return await app.start(wait_intake=wait_intake)

    yield start
    for app in reversed(running):
        await app.stop()
    # Everything Vigie posts is protected from forwarding and saving: replies, keyboards, refusals too.
    unprotected = [(name, params.get("text") or params.get("caption")) for name, params in fake.calls
                   if name in ("sendMessage", "sendPhoto") and str(params.get("protect_content")).lower() != "true"]  # raw when refused
    assert running == [] or not unprotected, unprotected
