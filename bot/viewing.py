"""Who is watching now, and who watched what: the live tracker and the registre's reading of it.

``Watching`` is what the service sees this instant, in memory: each camera stream open (the live
page's WebSocket, from ``stream_opened`` to ``stream_closed``) and each viewer's last mosaic
picture. ``/statut`` reads it. The closure report does not: it rebuilds the timeline from the
registre's ``login_ok``, ``stream_opened`` and ``stream_closed`` records (``events``), so it is
the same after a restart, and a stream whose closing was never written (the service was killed)
still ends, at the end of access (``bot.policy.viewing``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .kinds import Kind
from .policy.incident import Incident
from .policy.viewing import Event, SignIn, StreamClosed, StreamOpened, Viewer, timeline

# A viewer whose page fetched a mosaic picture this recently is looking at the mosaic (the page
# fetches one every 1-2 s while it is visible and no camera is open).
MOSAIC_FRESH = timedelta(seconds=15)


def new_stream_id() -> str:
    """Names one stream in its two records, so that the timeline pairs them (not a secret)."""
    return secrets.token_hex(6)


@dataclass(frozen=True)
class OpenStream:
    stream: str
    incident: str
    person: str
    camera: str
    since: datetime


@dataclass(frozen=True)
class Now:
    """One person watching one incident now."""

    person: str
    cameras: tuple[str, ...]  # open now, in the order opened
    mosaic: bool  # fetched a mosaic picture within MOSAIC_FRESH


class Watching:
    """The streams open and the mosaics seen, this instant (memory only: a restart starts empty,
    and the pages reconnect)."""

    def __init__(self, fresh: timedelta = MOSAIC_FRESH) -> None:
        self._fresh = fresh
        self._streams: dict[str, OpenStream] = {}
        self._mosaic: dict[tuple[str, str], datetime] = {}

    def opened(self, stream: OpenStream) -> None:
        self._streams[stream.stream] = stream

    def closed(self, stream_id: str) -> None:
        self._streams.pop(stream_id, None)

    def mosaic_seen(self, incident: str, person: str, at: datetime) -> None:
        self._mosaic[(incident, person)] = at

    def forget(self, incident: str) -> None:
        """Access ended: nobody watches it any more (its streams close on their own)."""
        self._mosaic = {k: v for k, v in self._mosaic.items() if k[0] != incident}

    def now(self, incident: str, signed_in: Iterable[str], at: datetime) -> list[Now]:
        """Everyone signed in to ``incident`` or with a stream open, with what each watches."""
        streams = sorted((s for s in self._streams.values() if s.incident == incident), key=lambda s: s.since)
        people = dict.fromkeys([*signed_in, *(s.person for s in streams)])
        return [Now(p, tuple(dict.fromkeys(s.camera for s in streams if s.person == p)),
                    at - self._mosaic.get((incident, p), datetime.min.replace(tzinfo=at.tzinfo)) <= self._fresh)
                for p in people]


def viewers_now(watching: Watching, incidents: Iterable[Incident], signed_in: Callable[[str], Iterable[str]],
                at: datetime) -> dict[str, list[Now]]:
    """For each incident granting access now: who is signed in or streaming, and what each watches."""
    return {i.id: watching.now(i.id, signed_in(i.id), at) for i in incidents if i.grants_access(at)}


def _stream_key(details: Mapping[str, Any], person: str, camera: str) -> str:
    # Records written before streams carried an id pair by person and camera, in order.
    return str(details.get("stream") or f"{person}\x1f{camera}")


def events(records: Iterable[Any]) -> list[Event]:
    """The viewing events in an incident's registre records (``AuditRecord``-like objects)."""
    out: list[Event] = []
    for r in records:
        details: Mapping[str, Any] = r.details or {}
        person = r.actor or str(details.get("person", "?"))
        if r.kind == Kind.LOGIN_OK:
            out.append(SignIn(person, r.at))
        elif r.kind in (Kind.STREAM_OPENED, Kind.STREAM_CLOSED):
            camera = str(details.get("camera", "?"))
            key = _stream_key(details, person, camera)
            out.append(StreamOpened(key, person, camera, r.at) if r.kind == Kind.STREAM_OPENED
                       else StreamClosed(key, r.at))
    return out


def unclosed(records: Iterable[Any]) -> list[Any]:
    """The ``stream_opened`` records with no ``stream_closed`` after them."""
    waiting: dict[str, list[Any]] = {}
    for r in records:
        if r.kind not in (Kind.STREAM_OPENED, Kind.STREAM_CLOSED):
            continue
        details = r.details or {}
        key = _stream_key(details, r.actor or str(details.get("person", "?")), str(details.get("camera", "?")))
        if r.kind == Kind.STREAM_OPENED:
            waiting.setdefault(key, []).append(r)
        elif waiting.get(key):
            waiting[key].pop(0)
    return sorted((r for pending in waiting.values() for r in pending), key=lambda r: r.seq)


def close_unclosed(registre: Any, incidents: Iterable[Incident], at: datetime) -> int:
    """At start: the streams a killed service left open end now, as far as the registre can tell
    (no page is connected to a service that was not running). Returns how many were closed."""
    n = 0
    for inc in incidents:
        for r in unclosed(registre.records(inc.id)):
            duration = round(max(0.0, (at - r.at).total_seconds()), 1)
            registre.append(Kind.STREAM_CLOSED, incident=inc.id, actor=r.actor, drill=inc.drill, at=at,
                            details={**r.details, "duration_s": duration, "reason": "service_restart"})
            n += 1
    return n


def export_timeline(records: Sequence[Any]) -> list[dict[str, Any]]:
    """Every span of every viewer, uncut, for ``audit export``. The window is read from the records
    themselves: from the activation to the end or expiry (else the last record), widened to every
    viewing record; a stream never closed ends with it."""
    seen = events(records)
    if not seen:
        return []
    first, last = min(e.at for e in seen), max(e.at for e in seen)
    start = min(next((r.at for r in records if r.kind == Kind.ACTIVATION), first), first)
    end = max(next((r.at for r in records if r.kind in (Kind.END, Kind.EXPIRY)), records[-1].at), last)
    return [{"person": v.person, "sign_ins": v.sign_ins,
             "first_sign_in": v.first_sign_in.isoformat() if v.first_sign_in else None,
             "last_sign_in": v.last_sign_in.isoformat() if v.last_sign_in else None,
             "watched_s": round(v.watched.total_seconds(), 1),
             "spans": [{"camera": s.camera, "start": s.start.isoformat(), "end": s.end.isoformat(),
                        "duration_s": round(s.duration.total_seconds(), 1), "unclosed": s.unclosed}
                       for s in v.spans]}
            for v in timeline(events(records), start, end)]


def incident_viewers(inc: Incident, records: Iterable[Any], now: datetime) -> tuple[Viewer, ...]:
    """The viewing timeline of ``inc`` over its access window (to its end, or to ``now``)."""
    start = inc.activated_at or inc.opened_at
    return timeline(events(records), start, inc.closed_at or now)


def summary(viewers: Iterable[Viewer]) -> list[dict[str, Any]]:
    """What the closure report record keeps of the timeline (compact; the stream records hold the rest)."""
    out = []
    for v in viewers:
        cameras: dict[str, float] = {}
        for s in v.spans:
            cameras[s.camera] = round(cameras.get(s.camera, 0.0) + s.duration.total_seconds(), 1)
        out.append({"person": v.person, "sign_ins": v.sign_ins, "watched_s": round(v.watched.total_seconds(), 1),
                    "cameras": cameras})
    return out
