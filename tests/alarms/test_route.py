"""``POST /hooks/alarm/{source}`` end to end on a real aiohttp server, a real Store and a real registre."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.alarms.route import AlarmIn, AlarmResult, _read_capped, _Refusal, add_routes
from bot.alarms.verify import sign
from bot.audit import Registre
from bot.refusals import RefusalTally
from bot.store import Store

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
BACKUP_SECRET = "whsec_" + base64.b64encode(b"b" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"x" * 32).decode()
SECRETS = {"venue": (SECRET,), "backup": (BACKUP_SECRET,)}
NOW = 1_782_072_900  # 2026-06-21 20:15 UTC
MAX_BODY = 4096
ALARM = {"type": "intrusion", "zone": "Hall A", "message": "porte forcée", "occurred_at": "2026-06-21T22:14:58+02:00"}
_ids = itertools.count()


def new_id() -> str:
    return f"msg_{next(_ids)}"


@dataclass
class FakeDesk:
    result: AlarmResult = AlarmResult(True, "INC-20260621-01", "opened")
    calls: list[AlarmIn] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    hold: asyncio.Event | None = None  # when set, every call waits for it (to observe concurrency)

    async def alarm(self, alarm: AlarmIn) -> AlarmResult:
        self.calls.append(alarm)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.hold is not None:
                await asyncio.wait_for(self.hold.wait(), timeout=10)
            return self.result
        finally:
            self.in_flight -= 1


@dataclass
class Audit:
    """Records what the route audits and writes it to a real registre, which refuses secret-like keys."""

    registre: Registre
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def append(self, kind: str, **kw: Any) -> object:
        self.records.append((kind, kw))
        return self.registre.append(kind, **kw)

    def reasons(self) -> list[str]:
        return [kw["details"]["reason"] for _, kw in self.records]


@dataclass
class Rig:
    client: TestClient[web.Request, web.Application]
    desk: FakeDesk
    audit: Audit
    store: Store
    clock: list[float]
    tally: RefusalTally

    async def post(
        self,
        payload: object = ALARM,
        *,
        source: str = "venue",
        secret: str = SECRET,
        msg_id: str | None = None,
        ts: int | None = None,
        raw: bytes | None = None,
        drop: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        body = raw if raw is not None else json.dumps(payload).encode()
        msg_id = msg_id or new_id()
        ts = NOW if ts is None else ts
        hdrs = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, msg_id, ts, body),
            "content-type": "application/json",
        }
        if drop:
            del hdrs[drop]
        async with self.client.post(f"/hooks/alarm/{source}", data=body, headers=hdrs) as resp:
            return resp.status, await resp.json()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "state.sqlite3")
    yield s
    s.close()


@pytest.fixture
async def rig(tmp_path: Path, store: Store) -> AsyncIterator[Rig]:
    desk = FakeDesk()
    registre = Registre(tmp_path / "registre.sqlite3")
    audit = Audit(registre)
    clock = [float(NOW)]
    tally = RefusalTally(audit, lambda: datetime.fromtimestamp(clock[0], UTC))
    app = web.Application()
    add_routes(
        app,
        desk=desk,
        secrets=lambda s: SECRETS.get(s, ()),
        known_sources=lambda s: s in SECRETS,
        audit=audit.append,
        store=store,
        clock=lambda: clock[0],
        max_body=MAX_BODY,
        tally=tally,
    )
    async with TestClient(TestServer(app)) as client:
        yield Rig(client, desk, audit, store, clock, tally)
    registre.close()


def assert_refused(rig: Rig, reason: str, *, webhook_id: str | None = None, actor: str = "venue") -> None:
    assert rig.desk.calls == []
    assert len(rig.audit.records) == 1
    kind, kw = rig.audit.records[0]
    assert kind == "webhook_refused"
    assert kw["actor"] == actor
    expected = {"reason": reason, "client": "127.0.0.1"}
    if webhook_id is not None:
        expected["webhook_id"] = webhook_id
    assert kw["details"] == expected


def assert_logged_only(rig: Rig, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    """Refused before the signature was proved: anyone's request, so the log and not the registre."""
    assert rig.desk.calls == [] and rig.audit.records == [] and rig.tally.pending() == 0
    assert any(f"reason={reason}" in r.getMessage() for r in caplog.records)


# --- accepted ---


async def test_accepted_returns_incident(rig: Rig) -> None:
    status, body = await rig.post(msg_id="msg_ok")
    assert (status, body) == (202, {"incident": "INC-20260621-01", "outcome": "opened"})
    assert rig.desk.calls == [
        AlarmIn(
            source="venue",
            alarm_type="intrusion",
            zone="Hall A",
            message="porte forcée",
            occurred_at=datetime(2026, 6, 21, 20, 14, 58, tzinfo=UTC),
            delivery_id="msg_ok",
        )
    ]
    assert rig.desk.calls[0].occurred_at is not None and rig.desk.calls[0].occurred_at.utcoffset() is not None
    assert rig.audit.records == []


async def test_optional_fields_default(rig: Rig) -> None:
    status, _ = await rig.post({"type": "panic"})
    assert status == 202
    assert (rig.desk.calls[0].zone, rig.desk.calls[0].message, rig.desk.calls[0].occurred_at) == ("", "", None)


async def test_joined_outcome_passed_through(rig: Rig) -> None:
    rig.desk.result = AlarmResult(True, "INC-20260621-01", "joined")
    assert await rig.post() == (202, {"incident": "INC-20260621-01", "outcome": "joined"})


async def test_edge_of_time_window_accepted(rig: Rig) -> None:
    assert (await rig.post(ts=NOW - 300))[0] == 202
    assert (await rig.post(ts=NOW + 300))[0] == 202


async def test_body_of_exactly_max_size_accepted(rig: Rig) -> None:
    raw = json.dumps({"type": "panic"}).encode()
    raw += b" " * (MAX_BODY - len(raw))
    assert len(raw) == MAX_BODY
    assert (await rig.post(raw=raw))[0] == 202


# --- 401 ---


async def test_forged_signature(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    status, body = await rig.post(secret=OTHER)
    assert status == 401 and body["error"] == "bad_signature"
    assert_logged_only(rig, "bad_signature", caplog)


async def test_forger_cannot_burn_an_id(rig: Rig) -> None:
    assert (await rig.post(secret=OTHER, msg_id="msg_target"))[0] == 401
    assert (await rig.post(msg_id="msg_target"))[0] == 202


async def test_other_sources_secret_is_not_accepted(rig: Rig) -> None:
    assert (await rig.post(source="venue", secret=BACKUP_SECRET))[0] == 401
    assert (await rig.post(source="backup", secret=BACKUP_SECRET))[0] == 202


@pytest.mark.parametrize("skew", [-301, 301, -3600])
async def test_stale_timestamp(rig: Rig, skew: int, caplog: pytest.LogCaptureFixture) -> None:
    status, body = await rig.post(ts=NOW + skew)
    assert status == 401 and body["error"] == "stale_timestamp"
    assert_logged_only(rig, "stale_timestamp", caplog)


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_missing_headers(rig: Rig, header: str, caplog: pytest.LogCaptureFixture) -> None:
    status, body = await rig.post(drop=header)
    assert status == 401 and body["error"] == "missing_headers"
    assert_logged_only(rig, "missing_headers", caplog)


async def test_over_long_webhook_id(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    status, body = await rig.post(msg_id="m" * 7000)
    assert status == 400 and body["error"] == "bad_id"
    assert_logged_only(rig, "bad_id", caplog)
    assert (await rig.post(msg_id="m" * 128))[0] == 202


async def test_duplicate_json_keys(rig: Rig) -> None:
    raw = b'{"type": "panic", "zone": "Hall A", "zone": "Parking"}'
    status, body = await rig.post(raw=raw, msg_id="msg_dup")
    assert status == 400 and body["error"] == "duplicate_key"
    assert rig.desk.calls == []
    assert_refused(rig, "duplicate_key", webhook_id="msg_dup")  # signed: the source's own mistake


# --- 409 ---


async def test_replayed_id(rig: Rig) -> None:
    assert (await rig.post(msg_id="msg_once"))[0] == 202
    status, body = await rig.post(msg_id="msg_once")
    assert status == 409 and body["error"] == "duplicate"
    assert len(rig.desk.calls) == 1
    assert rig.audit.records == [
        ("webhook_refused", {"actor": "venue", "details": {"reason": "duplicate", "client": "127.0.0.1", "webhook_id": "msg_once"}})
    ]


async def test_replay_remembered_through_the_whole_window(rig: Rig) -> None:
    # Sent at the oldest accepted timestamp, replayed at the newest moment it is still valid.
    assert (await rig.post(msg_id="msg_edge", ts=NOW))[0] == 202
    rig.clock[0] = NOW + 300
    assert (await rig.post(msg_id="msg_edge", ts=NOW))[0] == 409
    rig.clock[0] = NOW + 301
    assert (await rig.post(msg_id="msg_edge", ts=NOW))[0] == 401


async def test_same_id_from_two_sources_is_not_a_replay(rig: Rig) -> None:
    assert (await rig.post(msg_id="msg_shared"))[0] == 202
    assert (await rig.post(msg_id="msg_shared", source="backup", secret=BACKUP_SECRET))[0] == 202


# --- 413 ---


async def test_oversized_with_content_length(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    raw = json.dumps({"type": "panic", "message": "x" * MAX_BODY}).encode()
    status, body = await rig.post(raw=raw)
    assert status == 413 and body["error"] == "too_large"
    assert_logged_only(rig, "too_large", caplog)


async def test_oversized_chunked_without_content_length(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    async with rig.client.post("/hooks/alarm/venue", data=chunks()) as resp:
        assert resp.status == 413
    assert_logged_only(rig, "too_large", caplog)


class _Stream:
    def __init__(self, total: int) -> None:
        self.left = total
        self.handed_out = 0

    async def read(self, n: int = -1) -> bytes:
        take = min(self.left, 1000 if n < 0 else min(n, 1000))
        self.left -= take
        self.handed_out += take
        return b"a" * take


class _Request:
    def __init__(self, total: int, declared: int | None) -> None:
        self.content = _Stream(total)
        self.content_length = declared


@pytest.mark.parametrize("total", [0, 10, 4096, 4097, 100_000])
async def test_reader_never_reads_past_the_cap(total: int) -> None:
    req = _Request(total, declared=None)
    if total > 4096:
        with pytest.raises(_Refusal) as info:
            await _read_capped(req, 4096)  # type: ignore[arg-type]
        assert info.value.status == 413
    else:
        assert len(await _read_capped(req, 4096)) == total  # type: ignore[arg-type]
    assert req.content.handed_out <= 4097


async def test_declared_length_refused_before_reading() -> None:
    req = _Request(100_000, declared=100_000)
    with pytest.raises(_Refusal) as info:
        await _read_capped(req, 4096)  # type: ignore[arg-type]
    assert info.value.status == 413
    assert req.content.handed_out == 0


# --- 400 ---


@pytest.mark.parametrize(
    ("raw", "error", "field"),
    [
        (b"not json", "bad_json", None),
        (b"\xff\xfe", "bad_json", None),
        (b"", "bad_json", None),
        (b"[1, 2]", "bad_body", None),
        (b'"intrusion"', "bad_body", None),
        (json.dumps({"type": "panic", "camera": "c1"}).encode(), "bad_body", "camera"),
        (json.dumps({"type": 42}).encode(), "bad_body", "type"),
        (json.dumps({"zone": "Hall"}).encode(), "bad_body", "type"),
        (json.dumps({"type": ""}).encode(), "bad_body", "type"),
        (json.dumps({"type": "panic", "zone": None}).encode(), "bad_body", "zone"),
        (json.dumps({"type": "panic", "message": "x" * 501}).encode(), "bad_body", "message"),
        (json.dumps({"type": "panic", "occurred_at": "2026-06-21T22:14:58"}).encode(), "bad_body", "occurred_at"),
        (json.dumps({"type": "panic", "occurred_at": "1782072900"}).encode(), "bad_body", "occurred_at"),
        (json.dumps({"type": "panic", "occurred_at": 1782072900}).encode(), "bad_body", "occurred_at"),
        (json.dumps({"type": "panic", "occurred_at": "hier soir"}).encode(), "bad_body", "occurred_at"),
    ],
)
async def test_bad_body(rig: Rig, raw: bytes, error: str, field: str | None) -> None:
    status, body = await rig.post(raw=raw, msg_id="msg_bad")
    assert status == 400 and body["error"] == error
    assert body["message"]
    if field is not None:
        assert field in [f["field"] for f in body["fields"]]
        assert field in body["message"]
    assert_refused(rig, error, webhook_id="msg_bad")


async def test_text_of_exactly_500_chars_accepted(rig: Rig) -> None:
    assert (await rig.post({"type": "t" * 500, "zone": "z" * 500, "message": "m" * 500}))[0] == 202


# --- desk refusals ---


@pytest.mark.parametrize(
    ("code", "status"),
    [("unmapped_alarm", 422), ("authorisation_lapsed", 403), ("unknown_source", 403)],
)
async def test_desk_refusals(rig: Rig, code: str, status: int) -> None:
    rig.desk.result = AlarmResult(False, None, "refused", code, f"motif {code}")
    got, body = await rig.post(msg_id="msg_desk")
    assert (got, body) == (status, {"error": code, "message": f"motif {code}"})
    assert len(rig.desk.calls) == 1
    assert rig.audit.records == [
        ("webhook_refused", {"actor": "venue", "details": {"reason": code, "client": "127.0.0.1", "webhook_id": "msg_desk"}})
    ]


# --- 404 ---


async def test_unknown_sources_are_counted_per_client_and_minute(rig: Rig) -> None:
    for i in range(50):
        status, body = await rig.post(source=f"nowhere-{i}")
        assert status == 404 and body["error"] == "unknown_source"
    assert rig.audit.records == [] and rig.tally.pending() == 50
    rig.clock[0] += 60  # the next minute: the bucket becomes one record
    assert rig.tally.flush() == 1
    [(kind, kw)] = rig.audit.records
    assert kind == "refusals" and kw["details"]["client"] == "127.0.0.1"
    assert kw["details"]["count"] == 50 and kw["details"]["reasons"] == {"webhook:unknown_source": 50}


async def test_registre_never_sees_signature_or_secret(rig: Rig) -> None:
    await rig.post(secret=OTHER)
    await rig.post(source="nowhere")
    await rig.post(raw=b"{")
    dumped = json.dumps(rig.audit.records)
    for s in (SECRET, OTHER):
        assert s[6:] not in dumped
    assert "v1," not in dumped


# --- concurrency ---


async def test_fifty_concurrent_deliveries_are_not_serialised(rig: Rig) -> None:
    rig.desk.hold = asyncio.Event()

    async def release_when_all_arrived() -> None:
        while rig.desk.in_flight < 50:
            await asyncio.sleep(0.005)
        assert rig.desk.hold is not None
        rig.desk.hold.set()

    results = await asyncio.wait_for(
        asyncio.gather(release_when_all_arrived(), *(rig.post() for _ in range(50))), timeout=20
    )
    assert [r[0] for r in results[1:]] == [202] * 50
    assert rig.desk.peak == 50
    assert len({c.delivery_id for c in rig.desk.calls}) == 50
    assert rig.audit.records == []


# --- fuzz ---

_json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
_json = st.recursive(_json_scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4), max_leaves=12)
_almost_alarm = st.dictionaries(
    st.sampled_from(["type", "zone", "message", "occurred_at", "extra"]),
    _json | st.text(max_size=600) | st.datetimes().map(lambda d: d.isoformat()),
    max_size=5,
).map(lambda d: json.dumps(d).encode())
_raw = st.binary(max_size=MAX_BODY + 50) | _json.map(lambda v: json.dumps(v).encode()) | _almost_alarm


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_raw)
async def test_fuzz_signed_bodies_never_5xx(rig: Rig, raw: bytes) -> None:
    before = len(rig.desk.calls)
    status, body = await rig.post(raw=raw)
    assert status in (202, 400, 413), (status, body)
    assert (len(rig.desk.calls) == before + 1) == (status == 202)


async def test_desk_failure_lets_the_senders_retry_through(rig: Rig) -> None:
    """A 500 must not burn the webhook-id: the alarm system's retry (same id) is handled, not 409."""
    boom = {"n": 1}
    original = rig.desk.alarm

    async def flaky(alarm: AlarmIn) -> AlarmResult:
        if boom["n"]:
            boom["n"] -= 1
            raise RuntimeError("desk unavailable")
        return await original(alarm)

    rig.desk.alarm = flaky  # type: ignore[method-assign]
    body = json.dumps(ALARM).encode()
    hdrs = {"webhook-id": "msg_retry", "webhook-timestamp": str(NOW),
            "webhook-signature": sign(SECRET, "msg_retry", NOW, body), "content-type": "application/json"}
    async with rig.client.post("/hooks/alarm/venue", data=body, headers=hdrs) as resp:
        assert resp.status == 500
    async with rig.client.post("/hooks/alarm/venue", data=body, headers=hdrs) as resp:
        assert resp.status == 202
