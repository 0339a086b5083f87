"""/metrics on the admin listener after a scripted incident, parsed as Prometheus parses it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.app import DESK, REGISTRE
from bot.audit import AuditRecord
from bot.kinds import Kind
from bot.ops.metrics import Metrics, Probes
from tests.ops.support import Service


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(parsed: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return parsed.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_after_a_scripted_incident(tmp_path: Path) -> None:
    async with Service(tmp_path / "data") as svc:
        link = await svc.alert()
        inc = svc.app[DESK].open_incidents()[0]
        # The console room's outbox recorded its link (link_posted), which the metrics time from the trigger.
        posted = [r for r in svc.app[REGISTRE].records(inc.id) if r.kind == Kind.LINK_POSTED]
        assert [r.details["room"] for r in posted] == ["console"]
        async with aiohttp.ClientSession() as s:
            assert await svc.login(s, link, "demo-agent", "wrong-password") == 401
            assert await svc.login(s, link, "demo-agent", svc.demo.passwords["demo-agent"]) == 303
            assert await svc.webhook(s, "msg_1") == 202
            assert await svc.webhook(s, "msg_1") == 409  # replayed
            assert await svc.webhook(s, "msg_2", good=False) == 401
            async with s.get(f"{svc.admin}/metrics") as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
                parsed = samples(await r.text())
            async with s.get(f"{svc.admin}/healthz/details") as r:
                details = await r.json()
            async with s.get(f"{svc.base}/metrics") as r:
                assert r.status == 404  # never on the public listener

    assert value(parsed, "vigie_incidents_open", state="active", drill="false") == 1
    assert value(parsed, "vigie_incidents_open", state="pending", drill="false") == 0
    assert value(parsed, "vigie_activations_total", source="person") == 1
    assert value(parsed, "vigie_logins_total", result="ok") == 1
    assert value(parsed, "vigie_logins_total", result="refused") == 1
    for answer in ("202", "409", "401"):
        assert value(parsed, "vigie_webhook_requests_total", answer=answer) == 1, answer
    assert value(parsed, "vigie_trigger_to_link_seconds_count", room="console") == 1
    assert value(parsed, "vigie_trigger_to_link_seconds_bucket", room="console", le="+Inf") == 1
    assert value(parsed, "vigie_room_up", room="console") == 1
    assert value(parsed, "vigie_room_queue_depth", room="console") >= 0
    assert value(parsed, "vigie_room_failures_total", room="console") == 0
    assert value(parsed, "vigie_cameras") == 2
    assert value(parsed, "vigie_viewers") == 1  # demo-agent signed in
    assert value(parsed, "vigie_open_streams") == 0
    assert value(parsed, "vigie_registre_appends_total", kind="trigger") == 2  # the alert, the joining alarm
    assert value(parsed, "vigie_registre_appends_total", kind="joined") == 1
    assert value(parsed, "vigie_registre_records", kind="activation") == 1
    assert value(parsed, "vigie_registre_records", kind="login_failed") == 1
    assert details["incident_state"] == "active" and "console" in details["rooms"] and len(details["cameras"]) == 2


def record(kind: Kind, incident: str | None = None, **details: object) -> AuditRecord:
    return AuditRecord(1, datetime.now(UTC), kind, incident, "x", dict(details), False, "0" * 64, "0" * 64)


def test_dc09_answers_closures_and_streams_are_counted_from_the_registre() -> None:
    m = Metrics(Probes(lambda: [], dict, dict, lambda: 0, dict))
    for r in (record(Kind.SIA_MESSAGE), record(Kind.SIA_MESSAGE), record(Kind.SIA_REFUSED, answer="NAK"),
              record(Kind.SIA_REFUSED, answer="DUH"), record(Kind.END, "INC-1"), record(Kind.EXPIRY, "INC-2"),
              record(Kind.STREAM_OPENED, "INC-3"), record(Kind.STREAM_OPENED, "INC-3"),
              record(Kind.STREAM_CLOSED, "INC-3"), record(Kind.ACTIVATION, "INC-9")):
        m.observe(r)
    m.link_delivered("matrix:!a:b", 2.5)
    m.link_delivered_at("INC-unknown", "console", datetime.now(UTC))  # no trigger seen: nothing observed
    parsed = samples(m.render().decode())
    assert value(parsed, "vigie_dc09_messages_total", answer="ACK") == 2
    assert value(parsed, "vigie_dc09_messages_total", answer="NAK") == 1
    assert value(parsed, "vigie_dc09_messages_total", answer="DUH") == 1
    assert value(parsed, "vigie_incidents_closed_total", how="ended") == 1
    assert value(parsed, "vigie_incidents_closed_total", how="expired") == 1
    assert value(parsed, "vigie_open_streams") == 1
    assert value(parsed, "vigie_activations_total", source="unknown") == 1
    assert value(parsed, "vigie_trigger_to_link_seconds_bucket", room="matrix:!a:b", le="3.0") == 1
    assert value(parsed, "vigie_trigger_to_link_seconds_bucket", room="matrix:!a:b", le="2.0") == 0
    assert value(parsed, "vigie_trigger_to_link_seconds_count", room="console") == 0


def test_a_broken_probe_does_not_fail_the_scrape() -> None:
    from bot.ops.metrics import safe

    def boom() -> int:
        raise RuntimeError("camera hub gone")

    m = Metrics(Probes(lambda: [], dict, dict, safe(boom, 0), dict))
    assert value(samples(m.render().decode()), "vigie_viewers") == 0
