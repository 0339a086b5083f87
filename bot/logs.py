"""What reaches the logs: link tokens redacted from every record, noisy refusals rate-bounded.

A link token is a bearer credential and it lives in the URL path (``/live/<token>``), so any
library that logs a request line leaks it: aiohttp's access log, and its parser's error log,
which prints the start of an over-long request line (``LineTooLong``) with its traceback.
``RedactTokens`` is a handler filter: installed on the root handlers it sees every record,
whatever logger produced it, and rewrites its message and traceback before any formatter runs.

``JsonFormatter`` writes one JSON object per line (``--log-format json``) for a log collector:
time, level, logger, message, the incident id when the record names one, and the traceback.
It formats records the filter above has already redacted.

``Bounded`` keeps what an attacker can write to the log in check: malformed and badly signed
requests are logged, at most ``limit`` lines per ``period`` per kind, then one line saying how
many were left out.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

# The path segment after /live/ is a token, except the page's fixed routes.
_TOKEN = re.compile(r"(/live/)(?!(?:view|api|static)(?:[/?\s'\"]|$))[^/?\s'\"]+")
REDACTED = "…"


def redact(text: str) -> str:
    return _TOKEN.sub(r"\1" + REDACTED, text)


class RedactTokens(logging.Filter):
    """Rewrites a record so that no ``/live/<token>`` survives in its message or traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: keep the raw template, still redacted
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info:
            # The formatter would print the traceback afresh from exc_info: print it now, redacted.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction(root: logging.Logger | None = None) -> None:
    """Put the filter on every handler of ``root`` (the process's root logger by default)."""
    for handler in (root or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactTokens) for f in handler.filters):
            handler.addFilter(RedactTokens())


# Incident ids as the desk makes them: INC-20261125-01, EX-20261125-02 for a drill.
_INCIDENT = re.compile(r"\b(?:INC|EX)-\d{8}-\d{2,}\b")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; ``incident`` from ``extra={"incident": ...}`` or the message."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        body: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        incident = getattr(record, "incident", None)
        if incident is None and (m := _INCIDENT.search(message)):
            incident = m.group(0)
        if incident is not None:
            body["incident"] = str(incident)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            body["exception"] = record.exc_text
        if record.stack_info:
            body["stack"] = record.stack_info
        return json.dumps(body, ensure_ascii=False)


class RedactingAccessLogger(AbstractAccessLogger):
    """Access log without link tokens (the filter above would also catch them: belt and braces).

    Refused requests (4xx) are what a flood is made of: at most 20 lines a minute per status."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._refused = Bounded(logger, limit=20, level=logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        args = (request.method, redact(request.path), response.status, time * 1000)
        if 400 <= response.status < 500:
            self._refused.log(f"HTTP {response.status}", "%s %s %s %.1fms", *args)
        else:
            self.logger.info("%s %s %s %.1fms", *args)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


@dataclass
class _Window:
    started: float
    lines: int = 0
    dropped: int = 0


@dataclass
class Bounded:
    """At most ``limit`` log lines per ``period`` seconds for each kind; the rest are counted."""

    logger: logging.Logger
    limit: int = 10
    period: float = 60.0
    clock: Callable[[], float] = time.monotonic
    level: int = logging.WARNING
    _windows: dict[str, _Window] = field(default_factory=dict)

    def warning(self, kind: str, msg: str, *args: object) -> None:
        self.log(kind, msg, *args)

    def log(self, kind: str, msg: str, *args: object) -> None:
        now = self.clock()
        w = self._windows.get(kind)
        if w is None or now - w.started >= self.period:
            if w is not None and w.dropped:
                self.logger.log(self.level, "%s: %d more line(s) left out in the last %.0f s",
                                kind, w.dropped, self.period)
            if len(self._windows) > 256:  # kinds are ours, but never let the table grow unchecked
                self._windows.clear()
            w = self._windows[kind] = _Window(now)
        if w.lines < self.limit:
            w.lines += 1
            self.logger.log(self.level, msg, *args)
        else:
            w.dropped += 1
