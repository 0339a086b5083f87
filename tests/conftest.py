"""Every async test runs on the event loop Vigie runs on in production (``bot.loops``: uvloop's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from bot.loops import new_event_loop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Any]:
    return {"uvloop": new_event_loop}
