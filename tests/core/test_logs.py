"""What reaches the logs: link tokens redacted from any record, refusals rate-bounded."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from bot.__main__ import _logging
from bot.logs import Bounded, RedactTokens, install_redaction, redact

TOKEN = "eyJpIjoiSU5DLTEiLCJkIjpmYWxzZX0.awc-QA.HK7P6F3N-oCFtXHRCKQ9T1x608MZnmfTUEV5XAm0Ap0"


def test_redact_keeps_the_page_routes() -> None:
    assert redact(f"GET /live/{TOKEN}?q=1 HTTP/1.1") == "GET /live/…?q=1 HTTP/1.1"
    assert redact(f"b'/live/{TOKEN}'") == "b'/live/…'"
    for fixed in ("/live/view", "/live/api/state", "/live/static/app.js", "/live/api/cam/x/ws"):
        assert redact(fixed) == fixed
    assert redact(f"https://vigie.example.fr/live/{TOKEN}") == "https://vigie.example.fr/live/…"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactTokens())
    log = logging.getLogger("test.logs.redaction")
    log.addHandler(handler)
    log.propagate = False
    yield log, out
    log.removeHandler(handler)


def test_filter_redacts_arguments_tracebacks_and_stacks(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = captured
    log.warning("request %s refused", f"/live/{TOKEN}")
    try:
        raise ValueError(f"bad line: /live/{TOKEN}?q=aaaa")
    except ValueError:
        log.exception("Error handling request")
    log.warning("here", stack_info=True, extra={"x": 1})
    log.warning("odd %s %s", "one")  # a broken call is still redacted, not dropped
    text = out.getvalue()
    assert TOKEN not in text and TOKEN[:16] not in text
    assert "/live/…" in text and "ValueError: bad line: /live/…?q=aaaa" in text and "Traceback" in text


def test_the_logging_setup_installs_the_filter() -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        _logging(verbose=False)
        assert any(isinstance(f, RedactTokens) for f in handler.filters)
        install_redaction()  # twice: still one filter
        assert sum(isinstance(f, RedactTokens) for f in handler.filters) == 1
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_bounded_logs_at_most_limit_lines_per_period(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    bounded = Bounded(logging.getLogger("test.logs.bounded"), limit=3, period=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "test.logs.bounded"):
        for i in range(1000):
            bounded.warning("bad_link", "refused %d", i)
            bounded.warning("other", "other %d", i)
        now[0] = 61.0
        bounded.warning("bad_link", "refused %d", 1000)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:2] == ["refused 0", "other 0"] and len(lines) == 3 + 3 + 2
    assert "bad_link: 997 more line(s) left out in the last 60 s" in lines


async def test_access_log_is_redacted_and_bounds_refusals(caplog: pytest.LogCaptureFixture) -> None:
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from bot.logs import RedactingAccessLogger

    log = logging.getLogger("test.logs.access")
    access = RedactingAccessLogger(log, "")
    with caplog.at_level(logging.INFO, "test.logs.access"):
        for _ in range(100):
            access.log(make_mocked_request("GET", f"/live/{TOKEN}"), web.Response(status=403), 0.001)
        access.log(make_mocked_request("GET", "/live/view"), web.Response(status=200), 0.001)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 21 and lines[0] == "GET /live/… 403 1.0ms" and lines[-1] == "GET /live/view 200 1.0ms"
    assert TOKEN not in caplog.text
