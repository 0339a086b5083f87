"""The alarm webhook: ``POST /hooks/alarm/{source}``, signed with Standard Webhooks.

The venue's alarm system reports a grave event here; the desk decides what it means under the
convention. This module only guards the door, cheapest check first: known source, body size,
signature and timestamp, replay, body shape. Then it hands an ``AlarmIn`` to the desk and turns
its ``AlarmResult`` into an HTTP answer.

What reaches the registre depends on who could have sent it. A refusal after a good signature
(replay, bad body, refused by the convention) is the source's own and is recorded one by one.
An unknown source is anyone: counted in the registre per client and minute (``RefusalTally``).
A request that fails before its signature is proved (too large, headers, timestamp, signature)
goes to the log only, rate-bounded: anyone can send those by the thousand.

Nothing here serialises requests: an alarm storm reaches the desk as fast as it arrives, and the
desk folds the repeats into the one open incident.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..alarm import AlarmIn, AlarmResult
from ..kinds import Kind
from ..locales import Msg, bilingual, t
from ..logs import Bounded
from ..refusals import RefusalTally
from ..store import Store
from .verify import DEFAULT_TOLERANCE, WebhookError, verify

logger = logging.getLogger(__name__)

ROUTE = "/hooks/alarm/{source}"
MAX_TEXT = 500
# A delivery is accepted within ±tolerance of its timestamp, so an id must be remembered for the
# whole 2 × tolerance span during which that same signed delivery could still be replayed.
REPLAY_WINDOW = timedelta(seconds=2 * DEFAULT_TOLERANCE)
# An unknown source name comes from the URL, i.e. from anyone: keep what is audited short.
_MAX_ECHO = 64


class AlarmDesk(Protocol):
    async def alarm(self, alarm: AlarmIn) -> AlarmResult: ...


class _AlarmBody(BaseModel):
    # strict: a number is not a string; extra="forbid": a misspelt key is an error, not silence.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    type: str = Field(min_length=1, max_length=MAX_TEXT)
    zone: str = Field(default="", max_length=MAX_TEXT)
    message: str = Field(default="", max_length=MAX_TEXT)
    occurred_at: datetime | None = None

    @field_validator("occurred_at", mode="plain")
    @classmethod
    def _iso8601(cls, v: object) -> datetime:
        # pydantic alone would also take "1700000000" as a date; the contract is ISO 8601 with an offset.
        if not isinstance(v, str) or len(v) > 64:
            raise ValueError("must be an ISO 8601 date-time string such as 2026-06-21T22:15:00+02:00")
        try:
            at = datetime.fromisoformat(v)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time such as 2026-06-21T22:15:00+02:00") from None
        if at.tzinfo is None or at.utcoffset() is None:
            # A naive time is ambiguous (local? UTC?) and cannot be compared with the desk's aware times.
            raise ValueError("must include a UTC offset, e.g. 2026-06-21T22:15:00+02:00 or ...Z")
        return at.astimezone(UTC)


class _Refusal(Exception):  # an HTTP answer carried out of the checks, not a fault
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        webhook_id: str | None = None,
        fields: list[dict[str, str]] | None = None,
        *,
        signed: bool = True,
    ) -> None:
        super().__init__(code)
        self.signed = signed
        self.status = status
        self.code = code
        self.message = message
        self.webhook_id = webhook_id
        self.fields = fields


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        # Two readers of one body must not see two different alarms: the last key is not "the" value.
        raise ValueError("duplicate key")
    return dict(pairs)


def _parse(body: bytes, webhook_id: str) -> _AlarmBody:
    try:
        json.loads(body, object_pairs_hook=_no_duplicate_keys)
    except ValueError as e:
        if str(e) == "duplicate key":
            raise _Refusal(400, "duplicate_key", bilingual(Msg.HOOK_DUPLICATE_KEY, first="en"), webhook_id) from None
        # Not JSON at all: pydantic says so below, with the usual answer.
    try:
        return _AlarmBody.model_validate_json(body)
    except ValidationError as e:
        errors = e.errors(include_url=False, include_input=False)
        kinds = {err["type"] for err in errors}
        fields = [
            {"field": ".".join(str(p)[:_MAX_ECHO] for p in err["loc"]) or "(body)", "problem": err["msg"]}
            for err in errors
        ]
        if "json_invalid" in kinds:
            code, summary = "bad_json", bilingual(Msg.HOOK_BAD_JSON, first="en")
        elif "model_type" in kinds:
            code, summary = "bad_body", bilingual(Msg.HOOK_BAD_BODY, first="en")
        else:
            code, summary = "bad_body", "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
        raise _Refusal(400, code, summary, webhook_id, fields) from None


# Answers to the sender of an alarm, English first: the reader is the developer of the sending system.
_TOO_LARGE = bilingual(Msg.HOOK_TOO_LARGE, first="en")


async def _read_capped(request: web.Request, max_body: int) -> bytes:
    """The body, or 413 as soon as it is known to exceed ``max_body`` (never reads past max_body + 1)."""
    if request.content_length is not None and request.content_length > max_body:
        raise _Refusal(413, "too_large", _TOO_LARGE, signed=False)
    buf = bytearray()
    while len(buf) <= max_body:
        chunk = await request.content.read(max_body + 1 - len(buf))
        if not chunk:
            return bytes(buf)
        buf += chunk
    raise _Refusal(413, "too_large", _TOO_LARGE, signed=False)


@dataclass
class _AlarmRoute:
    desk: AlarmDesk
    secrets: Callable[[str], Sequence[str]]
    known_sources: Callable[[str], bool]
    audit: Callable[..., object]
    store: Store
    clock: Callable[[], float]
    max_body: int
    tally: RefusalTally | None = None
    # Refusals before the signature is proved: rate-bounded log lines, never the registre.
    _log: Bounded = field(default_factory=lambda: Bounded(logger))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        source = request.match_info["source"]
        client = request.remote or "?"
        try:
            return await self._handle(request, source)
        except _Refusal as r:
            await self._refused(source, client, r)
            answer: dict[str, object] = {"error": r.code, "message": r.message}
            if r.fields is not None:
                answer["fields"] = r.fields
            resp = web.json_response(answer, status=r.status)
            if r.status == 413:
                # Close rather than let aiohttp drain the rest of an oversized upload.
                resp.force_close()
            return resp

    async def _handle(self, request: web.Request, source: str) -> web.StreamResponse:
        if not self.known_sources(source):
            raise _Refusal(404, "unknown_source", bilingual(Msg.HOOK_UNKNOWN_SOURCE, first="en"), signed=False)
        body = await _read_capped(request, self.max_body)

        now = self.clock()
        try:
            webhook_id, _ts = verify(self.secrets(source), request.headers, body, now)
        except WebhookError as e:
            status = 400 if e.code == "bad_id" else e.status
            raise _Refusal(status, e.code, e.message, signed=False) from None

        # Only now, with the signature good, may an id be recorded: a forger cannot burn ids.
        now_dt = datetime.fromtimestamp(now, tz=UTC)
        if not self.store.first_sighting(source, webhook_id, now_dt, keep_after=now_dt - REPLAY_WINDOW):
            raise _Refusal(409, "duplicate", bilingual(Msg.HOOK_DUPLICATE, first="en"), webhook_id)

        parsed = _parse(body, webhook_id)
        try:
            result = await self.desk.alarm(
                AlarmIn(
                    source=source,
                    alarm_type=parsed.type,
                    zone=parsed.zone,
                    message=parsed.message,
                    occurred_at=parsed.occurred_at,
                    delivery_id=webhook_id,
                )
            )
        except Exception:
            # The alarm was not handled: let the sender's retry (same id) through instead of a 409.
            self.store.forget(source, webhook_id)
            raise
        if result.accepted:
            logger.info("alarm %s from %s: %s %s", webhook_id, source, result.outcome, result.incident_id)
            return web.json_response({"incident": result.incident_id, "outcome": result.outcome}, status=202)
        code = result.reason_code or "refused"
        status = 422 if code == "unmapped_alarm" else 403
        raise _Refusal(status, code, result.reason_fr or t("fr", Msg.HOOK_REFUSED), webhook_id)

    async def _refused(self, source: str, client: str, r: _Refusal) -> None:
        actor = source[:_MAX_ECHO]
        if not r.signed:
            self._log.warning(r.code, "alarm webhook refused: source=%r reason=%s client=%s", actor, r.code, client)
            if r.code == "unknown_source" and self.tally is not None:
                self.tally.note("webhook", r.code, client)
            return
        details = {"reason": r.code, "client": client}
        if r.webhook_id is not None:
            details["webhook_id"] = r.webhook_id
        logger.warning("alarm webhook refused: source=%r reason=%s client=%s", actor, r.code, client)
        outcome = self.audit(Kind.WEBHOOK_REFUSED, actor=actor, details=details)
        # Registre.append is synchronous today; an async registre must not be left un-awaited.
        if inspect.isawaitable(outcome):
            await outcome


def add_routes(
    app: web.Application,
    desk: AlarmDesk,
    secrets: Callable[[str], Sequence[str]],
    known_sources: Callable[[str], bool],
    audit: Callable[..., object],
    store: Store,
    clock: Callable[[], float],
    max_body: int = 65536,
    tally: RefusalTally | None = None,
) -> None:
    """Register the alarm route; ``clock`` gives Unix seconds, ``audit`` is ``Registre.append``,
    ``tally`` counts unknown sources (without one they are only logged)."""
    route = _AlarmRoute(desk, secrets, known_sources, audit, store, clock, max_body, tally)
    app.router.add_post(ROUTE, route.handle)
