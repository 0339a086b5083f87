"""Prometheus metrics: what a venue's monitoring scrapes from the admin listener's ``/metrics``.

Two kinds of numbers, both in one registry per application (no process-wide globals):

- state read at scrape time (``Probes``): open incidents by state, each room's health and
  queue, cameras online, viewers and open streams, registre records by kind. A ``Collector``
  calls narrow read-only callables wired in ``bot/app.py``, so nothing here reaches into the
  desk or the outboxes, and a scrape costs nothing between scrapes;
- events counted as they happen: every registre append (``observe``, hooked on the registre,
  which already sees activations, logins, DC-09 answers and incident ends), webhook answers
  (``webhook_middleware``), and the time from a trigger to its link delivered in each room
  (``link_delivered``, called by the outboxes).

Labels are closed vocabularies (kinds, states, HTTP statuses, DC-09 answers, room and camera
ids from the config): never a person, an incident id or anything an attacker chooses.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..audit import AuditRecord
from ..kinds import Kind

logger = logging.getLogger(__name__)

# Seconds from the trigger to the link posted: the first seconds matter, a minute is already a failure.
LINK_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 120.0, 300.0)
WEBHOOK_PREFIX = "/hooks/alarm/"
LOGIN_RESULTS = {Kind.LOGIN_OK: "ok", Kind.LOGIN_FAILED: "refused", Kind.LOGIN_LOCKED: "locked"}
CLOSURES = {Kind.END: "ended", Kind.EXPIRY: "expired"}
_REMEMBERED_TRIGGERS = 256  # incidents whose trigger (source, time) is kept for later records


@dataclass(frozen=True)
class RoomProbe:
    ok: bool
    delivered: int
    failures: int
    queued: int


@dataclass(frozen=True)
class Probes:
    """Read-only views of the running service, each called once per scrape."""

    incidents: Callable[[], list[tuple[str, bool]]]  # open incidents: (state, drill)
    rooms: Callable[[], Mapping[str, RoomProbe]]
    cameras: Callable[[], Mapping[str, bool]]  # camera id -> online (cameras in scope)
    viewers: Callable[[], int]  # signed-in viewer sessions of open incidents
    registre_kinds: Callable[[], Mapping[str, int]]  # records in the registre, by kind


class StateCollector(Collector):
    def __init__(self, probes: Probes) -> None:
        self._probes = probes

    def collect(self) -> Iterator[Metric]:
        p = self._probes
        incidents = GaugeMetricFamily("vigie_incidents_open", "Open incidents by state", labels=["state", "drill"])
        counts: dict[tuple[str, str], int] = {(s, d): 0 for s in ("pending", "active") for d in ("false", "true")}
        for state, is_drill in p.incidents():
            key = (state, "true" if is_drill else "false")
            counts[key] = counts.get(key, 0) + 1
        for (state, drill), n in sorted(counts.items()):
            incidents.add_metric([state, drill], n)
        yield incidents
        up = GaugeMetricFamily("vigie_room_up", "1 if the room's last delivery succeeded", labels=["room"])
        queued = GaugeMetricFamily("vigie_room_queue_depth", "Operations waiting for the room", labels=["room"])
        delivered = CounterMetricFamily("vigie_room_delivered", "Operations delivered to the room", labels=["room"])
        failures = CounterMetricFamily("vigie_room_failures", "Operations the room gave up on", labels=["room"])
        for room, r in sorted(p.rooms().items()):
            up.add_metric([room], 1 if r.ok else 0)
            queued.add_metric([room], r.queued)
            delivered.add_metric([room], r.delivered)
            failures.add_metric([room], r.failures)
        yield from (up, queued, delivered, failures)
        cameras = p.cameras()
        camera_up = GaugeMetricFamily("vigie_camera_up", "1 if the camera sends packets", labels=["camera"])
        for cam, online in sorted(cameras.items()):
            camera_up.add_metric([cam], 1 if online else 0)
        yield camera_up
        yield GaugeMetricFamily("vigie_cameras_online", "Cameras in scope that are online",
                                value=sum(1 for online in cameras.values() if online))
        yield GaugeMetricFamily("vigie_cameras", "Cameras in scope", value=len(cameras))
        yield GaugeMetricFamily("vigie_viewers", "Signed-in viewer sessions of open incidents", value=p.viewers())
        records = GaugeMetricFamily("vigie_registre_records", "Records in the registre, by kind", labels=["kind"])
        for kind, n in sorted(p.registre_kinds().items()):
            records.add_metric([kind], n)
        yield records


class Metrics:
    """One application's metrics; ``render()`` is the body of ``/metrics``."""

    def __init__(self, probes: Probes) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(StateCollector(probes))
        r = self.registry
        self.appends = Counter("vigie_registre_appends", "Records appended to the registre since start",
                               ["kind"], registry=r)
        self.activations = Counter("vigie_activations", "Accesses opened, by trigger source", ["source"], registry=r)
        self.closures = Counter("vigie_incidents_closed", "Incidents closed, by how", ["how"], registry=r)
        self.logins = Counter("vigie_logins", "Live page sign-ins, by result", ["result"], registry=r)
        self.webhooks = Counter("vigie_webhook_requests", "Alarm webhook requests, by HTTP answer", ["answer"],
                                registry=r)
        self.dc09 = Counter("vigie_dc09_messages", "SIA DC-09 messages, by answer (ACK, NAK, DUH)", ["answer"],
                            registry=r)
        # Every stream opened is closed with a record (the page's handler ends in a finally).
        self.open_streams = Gauge("vigie_open_streams", "Camera streams open on live pages", registry=r)
        self.link_seconds = Histogram("vigie_trigger_to_link_seconds",
                                      "Seconds from the trigger to the access link delivered, per room", ["room"],
                                      buckets=LINK_BUCKETS, registry=r)
        self._triggers: OrderedDict[str, tuple[str, datetime]] = OrderedDict()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def observe(self, record: AuditRecord) -> None:
        """The registre's append hook: one record just committed."""
        kind = record.kind
        self.appends.labels(kind).inc()
        if kind == Kind.TRIGGER and record.incident:
            self._remember(record.incident, str(record.details.get("source", "unknown")), record.at)
        elif kind == Kind.ACTIVATION:
            known = self._triggers.get(record.incident or "")
            self.activations.labels(known[0] if known else "unknown").inc()
        elif kind in CLOSURES:
            self.closures.labels(CLOSURES[Kind(kind)]).inc()
        elif kind in LOGIN_RESULTS:
            self.logins.labels(LOGIN_RESULTS[Kind(kind)]).inc()
        elif kind == Kind.STREAM_OPENED:
            self.open_streams.inc()
        elif kind == Kind.STREAM_CLOSED:
            self.open_streams.dec()
        elif kind == Kind.LINK_POSTED and record.incident:
            self.link_delivered_at(record.incident, str(record.details.get("room", "unknown")), record.at)
        elif kind == Kind.SIA_MESSAGE and record.details.get("event_index", 1) == 1:
            self.dc09.labels("ACK").inc()  # one answer per message, whatever its number of events
        elif kind == Kind.SIA_REFUSED:
            self.dc09.labels(str(record.details.get("answer", "unknown"))).inc()

    def _remember(self, incident: str, source: str, at: datetime) -> None:
        self._triggers.setdefault(incident, (source, at))
        while len(self._triggers) > _REMEMBERED_TRIGGERS:
            self._triggers.popitem(last=False)

    # The outboxes record each room's link in the registre (``link_posted``), seen by ``observe``.
    def link_delivered(self, room_id: str, seconds: float) -> None:
        """A room delivered an access link ``seconds`` after its trigger."""
        self.link_seconds.labels(room_id).observe(max(0.0, seconds))

    def link_delivered_at(self, incident: str, room_id: str, now: datetime) -> None:
        """The same, timed from the incident's trigger record seen by ``observe``."""
        known = self._triggers.get(incident)
        if known is not None:
            self.link_delivered(room_id, (now - known[1]).total_seconds())

    @web.middleware
    async def webhook_middleware(self, request: web.Request,
                                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Counts each alarm webhook request by the status it was answered with."""
        if not request.path.startswith(WEBHOOK_PREFIX):
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.webhooks.labels(str(exc.status)).inc()
            raise
        self.webhooks.labels(str(response.status)).inc()
        return response


def safe(fn: Callable[[], Any], default: Any) -> Callable[[], Any]:
    """A probe that never fails a scrape: a broken part reads as its default and is logged."""

    def probe() -> Any:
        try:
            return fn()
        except Exception:
            logger.exception("metrics probe failed")
            return default

    return probe
